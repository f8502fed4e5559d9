/**
 * Every engine op against PyTorch: values and gradients on the same inputs.
 *
 * test/reference/gen_cases.py runs each case through PyTorch (Debian's python3-torch, the same
 * libtorch 1.13 Kiln links) and writes test/reference/cases.json (`npm run refs`). Here each
 * case is rebuilt from its inputs, run through the public engine API and compared: output
 * shapes and dtypes exactly, float values within the case's tolerance (float32: rtol 1e-5,
 * atol 1e-6), integer and bool values exactly. Then `Σ_i sum(out_i * w_i)` is back-propagated,
 * with the case's fixed random weights `w_i`, and each input's `.grad` is compared.
 *
 * The OPS table maps each case's op name to engine calls. A case naming an unknown op fails,
 * and so does an op in the table without a case, so coverage cannot shrink silently.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import {
  DTYPES,
  Tensor,
  arange,
  binaryCrossEntropyWithLogits,
  buildInfo,
  cat,
  crossEntropy,
  dropout,
  embedding,
  empty,
  fromTypedArray,
  full,
  isFloatingDType,
  klDiv,
  layerNorm,
  linear,
  liveTensorCount,
  manualSeed,
  mseLoss,
  ones,
  onesLike,
  rand,
  randint,
  randn,
  randperm,
  stack,
  tensor,
  tidy,
  where,
  zeros,
  zerosLike,
  type DType,
  type Operand,
  type Reduction,
} from '../src/engine/index.js';
import { expectClose } from './helpers/close.js';
import { REPO_ROOT } from './helpers/python.js';

// ---------------------------------------------------------------------------------------
// The case file
// ---------------------------------------------------------------------------------------
type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
/** A JSON number, a bool, or "nan" / "inf" / "-inf". */
type EncodedValue = number | boolean | string;

interface EncodedTensor {
  dtype: DType;
  shape: number[];
  values: EncodedValue[];
}
interface InputSpec extends EncodedTensor {
  name: string;
  requiresGrad: boolean;
}
type Check = 'values' | 'shape' | 'dropout';
interface Case {
  name: string;
  op: string;
  kwargs: Record<string, Json>;
  inputs: InputSpec[];
  outputs: EncodedTensor[];
  weights: (EncodedTensor | null)[];
  grads: (EncodedTensor | null)[];
  rtol: number;
  atol: number;
  check: Check;
}
interface CaseFile {
  torch: string;
  seed: number;
  cases: Case[];
}

const CASES_PATH = join(REPO_ROOT, 'test', 'reference', 'cases.json');

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function checkTensor(value: unknown, where: string): EncodedTensor {
  if (!isRecord(value)) throw new Error(`${where}: expected a tensor object`);
  const { dtype, shape, values } = value;
  if (typeof dtype !== 'string' || !DTYPES.includes(dtype as DType)) throw new Error(`${where}: unknown dtype ${String(dtype)}`);
  if (!Array.isArray(shape) || !shape.every((d) => Number.isInteger(d))) throw new Error(`${where}: bad shape`);
  if (!Array.isArray(values)) throw new Error(`${where}: values must be an array`);
  const numel = (shape as number[]).reduce((a, b) => a * b, 1);
  if (values.length !== numel) throw new Error(`${where}: ${values.length} values for shape [${shape.join(', ')}]`);
  return value as unknown as EncodedTensor;
}

/** Parses cases.json, checking the structure the runner relies on. */
function parseCaseFile(text: string): CaseFile {
  const raw: unknown = JSON.parse(text);
  if (!isRecord(raw) || !Array.isArray(raw.cases) || typeof raw.torch !== 'string') throw new Error('cases.json: expected {torch, cases: [...]}');
  raw.cases.forEach((c: unknown, i: number) => {
    if (!isRecord(c) || typeof c.name !== 'string' || typeof c.op !== 'string') throw new Error(`cases.json: case ${i} has no name/op`);
    const where = `cases.json ${c.name}`;
    if (!isRecord(c.kwargs)) throw new Error(`${where}: kwargs must be an object`);
    if (!Array.isArray(c.inputs) || !Array.isArray(c.outputs) || !Array.isArray(c.weights) || !Array.isArray(c.grads)) throw new Error(`${where}: missing inputs/outputs/weights/grads`);
    c.inputs.forEach((t: unknown, k: number) => {
      checkTensor(t, `${where} input ${k}`);
      if (!isRecord(t) || typeof t.name !== 'string' || typeof t.requiresGrad !== 'boolean') throw new Error(`${where} input ${k}: needs name and requiresGrad`);
    });
    c.outputs.forEach((t: unknown, k: number) => checkTensor(t, `${where} output ${k}`));
    if (c.weights.length !== c.outputs.length) throw new Error(`${where}: one weight (or null) per output`);
    if (c.grads.length !== c.inputs.length) throw new Error(`${where}: one grad (or null) per input`);
    c.weights.forEach((t: unknown, k: number) => t === null || checkTensor(t, `${where} weight ${k}`));
    c.grads.forEach((t: unknown, k: number) => t === null || checkTensor(t, `${where} grad ${k}`));
    if (typeof c.rtol !== 'number' || typeof c.atol !== 'number') throw new Error(`${where}: rtol/atol must be numbers`);
    if (c.check !== 'values' && c.check !== 'shape' && c.check !== 'dropout') throw new Error(`${where}: unknown check ${String(c.check)}`);
  });
  return raw as unknown as CaseFile;
}

let loaded: CaseFile | null = null;
let loadError: string | null = null;
if (!existsSync(CASES_PATH)) {
  loadError = `${CASES_PATH} is missing: run \`npm run refs\` (it runs test/reference/gen_cases.py with /usr/bin/python3 and python3-torch)`;
} else {
  try {
    loaded = parseCaseFile(readFileSync(CASES_PATH, 'utf8'));
  } catch (error) {
    loadError = `${(error as Error).message}; regenerate it with \`npm run refs\``;
  }
}
const CASES: Case[] = loaded?.cases ?? [];

// ---------------------------------------------------------------------------------------
// Decoding
// ---------------------------------------------------------------------------------------
function decodeNumber(value: Json | undefined, where: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'boolean') return value ? 1 : 0;
  if (value === 'nan') return Number.NaN;
  if (value === 'inf') return Number.POSITIVE_INFINITY;
  if (value === '-inf') return Number.NEGATIVE_INFINITY;
  throw new Error(`${where}: expected a number, got ${JSON.stringify(value)}`);
}

function decodeValues(t: EncodedTensor, where: string): number[] {
  return t.values.map((v) => decodeNumber(v, where));
}

/** A Kiln tensor holding exactly the encoded values (16-bit floats via exact float32). */
function buildTensor(t: EncodedTensor, requiresGrad: boolean, where: string): Tensor {
  const values = decodeValues(t, where);
  const shape = t.shape;
  let out: Tensor;
  switch (t.dtype) {
    case 'float32':
      return fromTypedArray(Float32Array.from(values), { shape, requiresGrad });
    case 'float64':
      return fromTypedArray(Float64Array.from(values), { shape, requiresGrad });
    case 'float16':
    case 'bfloat16':
      out = fromTypedArray(Float32Array.from(values), { shape }).to(t.dtype);
      return requiresGrad ? out.requiresGrad_(true) : out;
    case 'int64':
      return fromTypedArray(BigInt64Array.from(values, (v) => BigInt(v)), { shape });
    case 'int32':
      return fromTypedArray(Int32Array.from(values), { shape });
    case 'uint8':
    case 'bool':
      return fromTypedArray(Uint8Array.from(values), { shape, dtype: t.dtype });
  }
}

/** Keyword arguments with typed, checked accessors. */
class Kwargs {
  constructor(
    private readonly raw: Record<string, Json>,
    private readonly where: string,
  ) {}
  has(key: string): boolean {
    return key in this.raw;
  }
  private get(key: string): Json {
    const value = this.raw[key];
    if (value === undefined) throw new Error(`${this.where}: missing kwarg '${key}'`);
    return value;
  }
  num(key: string): number {
    return decodeNumber(this.get(key), `${this.where}: kwarg '${key}'`);
  }
  optNum(key: string): number | undefined {
    return this.has(key) ? this.num(key) : undefined;
  }
  int(key: string): number {
    const v = this.num(key);
    if (!Number.isInteger(v)) throw new Error(`${this.where}: kwarg '${key}' must be an integer, got ${v}`);
    return v;
  }
  optInt(key: string): number | undefined {
    return this.has(key) ? this.int(key) : undefined;
  }
  bool(key: string): boolean {
    const v = this.get(key);
    if (typeof v !== 'boolean') throw new Error(`${this.where}: kwarg '${key}' must be a boolean`);
    return v;
  }
  /** A number or a boolean (fill values, scalar operands). */
  scalar(key: string): number | boolean {
    const v = this.get(key);
    return typeof v === 'boolean' ? v : this.num(key);
  }
  /** An integer list; a single integer is a one-element list. */
  ints(key: string): number[] {
    const v = this.get(key);
    const list = Array.isArray(v) ? v : [v];
    return list.map((item, i) => {
      const n = decodeNumber(item, `${this.where}: kwarg '${key}'[${i}]`);
      if (!Number.isInteger(n)) throw new Error(`${this.where}: kwarg '${key}'[${i}] must be an integer`);
      return n;
    });
  }
  oneOf<const T extends string>(key: string, allowed: readonly T[]): T {
    const v = this.get(key);
    if (typeof v !== 'string' || !(allowed as readonly string[]).includes(v)) throw new Error(`${this.where}: kwarg '${key}' must be one of ${allowed.join(', ')}`);
    return v as T;
  }
  dtype(key: string): DType {
    return this.oneOf(key, DTYPES);
  }
  optDtype(key: string): DType | undefined {
    return this.has(key) ? this.dtype(key) : undefined;
  }
  dtypes(key: string): DType[] {
    const v = this.get(key);
    if (!Array.isArray(v)) throw new Error(`${this.where}: kwarg '${key}' must be a list of dtypes`);
    return v.map((d) => {
      if (typeof d !== 'string' || !DTYPES.includes(d as DType)) throw new Error(`${this.where}: kwarg '${key}': unknown dtype ${JSON.stringify(d)}`);
      return d as DType;
    });
  }
  /** Nested arrays of numbers/booleans, for `tensor()`. */
  nested(key: string): NestedData {
    const check = (v: Json): NestedData => {
      if (Array.isArray(v)) return v.map(check);
      if (typeof v === 'boolean') return v;
      return decodeNumber(v, `${this.where}: kwarg '${key}'`);
    };
    return check(this.get(key));
  }
}
type NestedData = number | boolean | NestedData[];

/** The case's input tensors by name, in order. */
class Inputs {
  constructor(
    private readonly byName: ReadonlyMap<string, Tensor>,
    private readonly where: string,
  ) {}
  get(name: string): Tensor {
    const t = this.byName.get(name);
    if (t === undefined) throw new Error(`${this.where}: no input named '${name}' (have ${[...this.byName.keys()].join(', ') || 'none'})`);
    return t;
  }
  opt(name: string): Tensor | undefined {
    return this.byName.get(name);
  }
  all(): Tensor[] {
    return [...this.byName.values()];
  }
}

// ---------------------------------------------------------------------------------------
// The op table: each case's `op` → engine calls
// ---------------------------------------------------------------------------------------
type OpFn = (t: Inputs, kw: Kwargs) => Tensor | Tensor[];

const REDUCTIONS = ['none', 'mean', 'sum'] as const satisfies readonly Reduction[];

/** `a op b` with b an input tensor, or the scalar kwarg `other`. */
function binary(f: (a: Tensor, b: Operand) => Tensor): OpFn {
  return (t, kw) => f(t.get('a'), t.opt('b') ?? kw.scalar('other'));
}
/** `a op b` with both operands tensors. */
function binaryTensors(f: (a: Tensor, b: Tensor) => Tensor): OpFn {
  return (t) => f(t.get('a'), t.get('b'));
}
function unary(f: (x: Tensor) => Tensor): OpFn {
  return (t) => f(t.get('x'));
}
function pair(result: { values: Tensor; indices: Tensor }): Tensor[] {
  return [result.values, result.indices];
}
function seeded(f: (kw: Kwargs) => Tensor): OpFn {
  return (_t, kw) => {
    manualSeed(kw.int('seed'));
    return f(kw);
  };
}

const OPS: Record<string, OpFn> = {
  // linear algebra
  matmul: binaryTensors((a, b) => a.matmul(b)),
  bmm: binaryTensors((a, b) => a.bmm(b)),
  linear: (t) => linear(t.get('x'), t.get('weight'), t.opt('bias') ?? null),

  // element-wise binary
  add: binary((a, b) => a.add(b)),
  sub: binary((a, b) => a.sub(b)),
  mul: binary((a, b) => a.mul(b)),
  div: binary((a, b) => a.div(b)),
  pow: binary((a, b) => a.pow(b)),
  remainder: binary((a, b) => a.remainder(b)),
  rsub: (t, kw) => t.get('x').rsub(kw.num('value')),
  maximum: binaryTensors((a, b) => a.maximum(b)),
  minimum: binaryTensors((a, b) => a.minimum(b)),

  // element-wise unary
  neg: unary((x) => x.neg()),
  abs: unary((x) => x.abs()),
  exp: unary((x) => x.exp()),
  log: unary((x) => x.log()),
  log1p: unary((x) => x.log1p()),
  sqrt: unary((x) => x.sqrt()),
  rsqrt: unary((x) => x.rsqrt()),
  square: unary((x) => x.square()),
  tanh: unary((x) => x.tanh()),
  erf: unary((x) => x.erf()),
  relu: unary((x) => x.relu()),
  sigmoid: unary((x) => x.sigmoid()),
  sin: unary((x) => x.sin()),
  cos: unary((x) => x.cos()),
  sign: unary((x) => x.sign()),
  gelu: (t, kw) => t.get('x').gelu(kw.oneOf('approximate', ['none', 'tanh'])),
  clamp: (t, kw) => t.get('x').clamp(kw.optNum('min'), kw.optNum('max')),

  // comparisons and logic
  eq: binary((a, b) => a.eq(b)),
  ne: binary((a, b) => a.ne(b)),
  lt: binary((a, b) => a.lt(b)),
  le: binary((a, b) => a.le(b)),
  gt: binary((a, b) => a.gt(b)),
  ge: binary((a, b) => a.ge(b)),
  logical_and: binaryTensors((a, b) => a.logicalAnd(b)),
  logical_or: binaryTensors((a, b) => a.logicalOr(b)),
  logical_not: unary((x) => x.logicalNot()),
  isnan: unary((x) => x.isnan()),
  isfinite: unary((x) => x.isfinite()),
  any: unary((x) => x.any()),
  all: unary((x) => x.all()),

  // softmax, normalisation, embedding, dropout
  softmax: (t, kw) => t.get('x').softmax(kw.int('dim')),
  log_softmax: (t, kw) => t.get('x').logSoftmax(kw.int('dim')),
  normalize: (t, kw) => t.get('x').normalize({ p: kw.num('p'), dim: kw.int('dim'), eps: kw.num('eps') }),
  layer_norm: (t, kw) => layerNorm(t.get('x'), kw.ints('normalized_shape'), t.opt('weight') ?? null, t.opt('bias') ?? null, kw.num('eps')),
  embedding: (t, kw) => embedding(t.get('indices'), t.get('weight'), kw.optInt('padding_idx') ?? null),
  dropout: (t, kw) => dropout(t.get('x'), kw.num('p'), kw.bool('training')),

  // shapes and indexing
  reshape: (t, kw) => t.get('x').reshape(...kw.ints('shape')),
  view: (t, kw) => t.get('x').view(...kw.ints('shape')),
  transpose: (t, kw) => t.get('x').transpose(kw.int('dim0'), kw.int('dim1')),
  permute: (t, kw) => t.get('x').permute(...kw.ints('dims')),
  contiguous: (t, kw) => {
    const transposed = t.get('x').transpose(kw.int('dim0'), kw.int('dim1'));
    expect(transposed.isContiguous(), 'the transposed view is not contiguous').toBe(false);
    const out = transposed.contiguous();
    expect(out.isContiguous(), 'contiguous() result').toBe(true);
    return out;
  },
  unsqueeze: (t, kw) => t.get('x').unsqueeze(kw.int('dim')),
  squeeze: (t, kw) => t.get('x').squeeze(kw.optInt('dim')),
  expand: (t, kw) => t.get('x').expand(...kw.ints('shape')),
  flatten: (t, kw) => t.get('x').flatten(kw.int('start_dim'), kw.int('end_dim')),
  cat: (t, kw) => cat(t.all(), kw.int('dim')),
  stack: (t, kw) => stack(t.all(), kw.int('dim')),
  slice: (t, kw) => t.get('x').slice(kw.int('dim'), kw.int('start'), kw.int('end'), kw.int('step')),
  narrow: (t, kw) => t.get('x').narrow(kw.int('dim'), kw.int('start'), kw.int('length')),
  select: (t, kw) => t.get('x').select(kw.int('dim'), kw.int('index')),
  index_select: (t, kw) => t.get('x').indexSelect(kw.int('dim'), t.get('index')),
  gather: (t, kw) => t.get('x').gather(kw.int('dim'), t.get('index')),
  masked_fill: (t, kw) => t.get('x').maskedFill(t.get('mask'), kw.scalar('value')),
  where: (t, kw) => where(t.get('condition'), t.opt('a') ?? kw.scalar('a'), t.opt('b') ?? kw.scalar('b')),
  tril: (t, kw) => t.get('x').tril(kw.int('diagonal')),
  triu: (t, kw) => t.get('x').triu(kw.int('diagonal')),

  // reductions
  sum: (t, kw) => (kw.has('dims') ? t.get('x').sum(kw.ints('dims'), { keepdim: kw.bool('keepdim') }) : t.get('x').sum()),
  mean: (t, kw) => (kw.has('dims') ? t.get('x').mean(kw.ints('dims'), { keepdim: kw.bool('keepdim') }) : t.get('x').mean()),
  max: (t, kw) => (kw.has('dim') ? pair(t.get('x').max(kw.int('dim'), { keepdim: kw.bool('keepdim') })) : t.get('x').max()),
  min: (t, kw) => (kw.has('dim') ? pair(t.get('x').min(kw.int('dim'), { keepdim: kw.bool('keepdim') })) : t.get('x').min()),
  argmax: (t, kw) => (kw.has('dim') ? t.get('x').argmax(kw.int('dim'), { keepdim: kw.bool('keepdim') }) : t.get('x').argmax()),
  logsumexp: (t, kw) => t.get('x').logsumexp(kw.ints('dims'), { keepdim: kw.bool('keepdim') }),
  norm: (t, kw) => t.get('x').norm(kw.num('p'), kw.ints('dims'), { keepdim: kw.bool('keepdim') }),
  topk: (t, kw) => pair(t.get('x').topk(kw.int('k'), { dim: kw.int('dim'), largest: kw.bool('largest'), sorted: kw.bool('sorted') })),
  sort: (t, kw) => pair(t.get('x').sort({ dim: kw.int('dim'), descending: kw.bool('descending'), stable: kw.bool('stable') })),
  cumsum: (t, kw) => t.get('x').cumsum(kw.int('dim')),

  // losses
  cross_entropy: (t, kw) =>
    crossEntropy(t.get('input'), t.get('target'), {
      weight: t.opt('weight'),
      reduction: kw.oneOf('reduction', REDUCTIONS),
      ignoreIndex: kw.optInt('ignore_index'),
      labelSmoothing: kw.optNum('label_smoothing'),
    }),
  bce_with_logits: (t, kw) =>
    binaryCrossEntropyWithLogits(t.get('input'), t.get('target'), {
      weight: t.opt('weight'),
      posWeight: t.opt('pos_weight'),
      reduction: kw.oneOf('reduction', REDUCTIONS),
    }),
  mse_loss: (t, kw) => mseLoss(t.get('input'), t.get('target'), { reduction: kw.oneOf('reduction', REDUCTIONS) }),
  kl_div: (t, kw) =>
    klDiv(t.get('input'), t.get('target'), { reduction: kw.oneOf('reduction', [...REDUCTIONS, 'batchmean']), logTarget: kw.bool('log_target') }),

  // casts and copies
  to: (t, kw) => kw.dtypes('dtypes').reduce((x, dtype) => x.to(dtype), t.get('x')),
  float: unary((x) => x.float()),
  clone: unary((x) => x.clone()),
  detach: unary((x) => x.detach()),

  // in place, on a clone so gradients reach the input through it
  zero_: unary((x) => x.clone().zero_()),
  fill_: (t, kw) => t.get('x').clone().fill_(kw.scalar('value')),
  copy_: (t) => t.get('x').clone().copy_(t.get('source')),
  add_: (t, kw) => t.get('x').clone().add_(t.get('other'), kw.num('alpha')),
  mul_: (t, kw) => t.get('x').clone().mul_(t.opt('other') ?? kw.num('other')),
  normal_: seeded((kw) => zeros(kw.ints('shape')).normal_(kw.num('mean'), kw.num('std'))),
  uniform_: seeded((kw) => zeros(kw.ints('shape')).uniform_(kw.num('low'), kw.num('high'))),

  // creation
  zeros: (_t, kw) => zeros(kw.ints('shape'), { dtype: kw.dtype('dtype') }),
  ones: (_t, kw) => ones(kw.ints('shape'), { dtype: kw.dtype('dtype') }),
  full: (_t, kw) => full(kw.ints('shape'), kw.scalar('value'), { dtype: kw.dtype('dtype') }),
  arange: (_t, kw) => arange(kw.num('start'), kw.num('end'), kw.num('step'), { dtype: kw.dtype('dtype') }),
  empty: (_t, kw) => empty(kw.ints('shape'), { dtype: kw.dtype('dtype') }),
  zeros_like: unary((x) => zerosLike(x)),
  ones_like: unary((x) => onesLike(x)),
  tensor: (_t, kw) => tensor(kw.nested('data'), { dtype: kw.optDtype('dtype') }),
  randn: seeded((kw) => randn(kw.ints('shape'), { dtype: kw.dtype('dtype') })),
  rand: seeded((kw) => rand(kw.ints('shape'), { dtype: kw.dtype('dtype') })),
  randint: seeded((kw) => randint(kw.int('low'), kw.int('high'), kw.ints('shape'))),
  randperm: seeded((kw) => randperm(kw.int('n'))),
};

// ---------------------------------------------------------------------------------------
// Running a case
// ---------------------------------------------------------------------------------------
function expectTensor(actual: Tensor, expected: EncodedTensor, what: string, c: Case, valuesToo = true): void {
  expect(actual.shape, `${what}: shape`).toEqual(expected.shape);
  expect(actual.dtype, `${what}: dtype`).toBe(expected.dtype);
  if (!valuesToo) return;
  const want = decodeValues(expected, what);
  if (isFloatingDType(expected.dtype)) {
    expectClose(actual.toArray(), want, { rtol: c.rtol, atol: c.atol, what });
  } else {
    expect(actual.toArray(), `${what}: values`).toEqual(want);
  }
}

/** Dropout with a random mask: each output is 0 or x/(1-p), the gradient follows the mask. */
function checkDropout(c: Case, x: Tensor, out: Tensor, kw: Kwargs): void {
  const p = kw.num('p');
  const scale = 1 / (1 - p);
  const xs = x.toArray();
  const ys = out.toArray();
  expect(out.shape).toEqual(x.shape);
  let zeros = 0;
  const kept: number[] = [];
  const keptWant: number[] = [];
  ys.forEach((y, i) => {
    if (y === 0) zeros++;
    else {
      kept.push(y);
      keptWant.push(xs[i]! * scale);
    }
  });
  expectClose(kept, keptWant, { rtol: c.rtol, atol: c.atol, what: 'kept elements = x/(1-p)' });
  const fraction = zeros / ys.length;
  expect(Math.abs(fraction - p), `zeroed fraction ${fraction} for p=${p} over ${ys.length} elements`).toBeLessThan(0.06);
}

function runCase(c: Case): void {
  const op = OPS[c.op];
  if (op === undefined) expect.fail(`case ${c.name}: op '${c.op}' is not in the OPS table of test/ops.test.ts`);
  const kw = new Kwargs(c.kwargs, c.name);
  const liveBefore = liveTensorCount();
  tidy(() => {
    const leaves = c.inputs.map((spec, i) => buildTensor(spec, spec.requiresGrad, `${c.name} input ${i} (${spec.name})`));
    const inputs = new Inputs(new Map(c.inputs.map((spec, i) => [spec.name, leaves[i]!])), c.name);

    const result = op(inputs, kw);
    const outs = Array.isArray(result) ? result : [result];
    expect(outs.length, 'number of outputs').toBe(c.outputs.length);

    outs.forEach((out, i) => {
      const expected = c.outputs[i]!;
      const what = `output ${i}`;
      if (c.check === 'dropout') {
        expect(out.dtype, `${what}: dtype`).toBe(expected.dtype);
        checkDropout(c, inputs.get('x'), out, kw);
      } else {
        expectTensor(out, expected, what, c, c.check === 'values');
      }
      // Kiln's result takes part in autograd exactly when PyTorch's did.
      expect(out.requiresGrad, `${what}: requiresGrad`).toBe(c.weights[i] !== null);
    });

    // Back-propagate Σ sum(out_i * w_i) over the differentiable outputs.
    let loss: Tensor | null = null;
    for (const [i, w] of c.weights.entries()) {
      if (w === null) continue;
      const term = outs[i]!.mul(buildTensor(w, false, `${c.name} weight ${i}`)).sum();
      loss = loss === null ? term : loss.add(term);
    }
    if (loss !== null) loss.backward();

    c.grads.forEach((expected, i) => {
      const spec = c.inputs[i]!;
      const what = `grad of input ${i} (${spec.name})`;
      const grad = leaves[i]!.grad;
      if (expected === null) {
        expect(grad, `${what}: PyTorch has none`).toBeNull();
        return;
      }
      if (grad === null) expect.fail(`${what}: Kiln has none, PyTorch has one`);
      if (c.check === 'dropout') {
        // d/dx sum(dropout(x) * w) = w/(1-p) where kept, 0 where dropped
        const scale = 1 / (1 - kw.num('p'));
        const ys = outs[0]!.toArray();
        const ws = decodeValues(c.weights[0]!, 'weight');
        expectClose(grad.toArray(), ys.map((y, k) => (y === 0 ? 0 : ws[k]! * scale)), { rtol: c.rtol, atol: c.atol, what });
      } else {
        expectTensor(grad, expected, what, c);
      }
    });
  });
  expect(liveTensorCount(), 'live tensor handles after the case (a leak)').toBe(liveBefore);
}

// ---------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------
describe('reference cases', () => {
  it('cases.json is present and well-formed', () => {
    if (loadError !== null) expect.fail(loadError);
    expect(CASES.length).toBeGreaterThan(0);
  });

  it('every case names an op in the OPS table', () => {
    const unknown = [...new Set(CASES.filter((c) => !(c.op in OPS)).map((c) => c.op))];
    expect(unknown, `ops in cases.json that test/ops.test.ts does not know: ${unknown.join(', ')}`).toEqual([]);
  });

  it('every op in the OPS table has a case', () => {
    if (loadError !== null) expect.fail(loadError);
    const covered = new Set(CASES.map((c) => c.op));
    const missing = Object.keys(OPS).filter((op) => !covered.has(op));
    expect(missing, `ops with no case in test/reference/gen_cases.py: ${missing.join(', ')}`).toEqual([]);
  });

  it('case names are unique', () => {
    const seen = new Set<string>();
    const duplicates = CASES.map((c) => c.name).filter((name) => (seen.has(name) ? true : (seen.add(name), false)));
    expect(duplicates).toEqual([]);
  });

  it("the reference PyTorch uses Kiln's libtorch version", () => {
    if (loaded === null) expect.fail(loadError ?? 'cases.json not loaded');
    // The seeded random cases need the same generator code; everything else the same kernels.
    const majorMinor = (v: string) => v.split('.').slice(0, 2).join('.');
    expect(majorMinor(loaded.torch), `cases.json from torch ${loaded.torch}, Kiln links ${buildInfo().torchVersion}`).toBe(majorMinor(buildInfo().torchVersion));
  });
});

const BY_OP = new Map<string, Case[]>();
for (const c of CASES) BY_OP.set(c.op, [...(BY_OP.get(c.op) ?? []), c]);

// Without cases.json there is nothing to group; 'cases.json is present' above fails instead.
if (BY_OP.size > 0) {
  describe('ops match PyTorch', () => {
    for (const [op, cases] of [...BY_OP].sort(([a], [b]) => a.localeCompare(b))) {
      describe(op, () => {
        it.each(cases)('$name', (c) => runCase(c));
      });
    }
  });
}

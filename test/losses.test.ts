/**
 * src/losses against an independent PyTorch reference (test/reference/losses_ref.py).
 *
 * Each case fixes a batch (scores, and optionally positives, an exclusion mask with some flags
 * on positives, teacher scores with ties, query groups) and a loss's options. The reference
 * computes the value and the gradients w.r.t. the scores and any learnable scalar in float64 —
 * F.binary_cross_entropy_with_logits, F.cross_entropy, and for the VP-matrix loss the explicit
 * n × n V and P matrices — and Kiln must match it: float64 within rtol 1e-10, float32 within
 * rtol 1e-5 (inputs are float32-exact, so both dtypes see the same numbers).
 *
 * Then the registry and option errors, the weighted sum, and tensor leaks.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import { dispose, liveTensorCount, noGrad, tensor, tidy } from '../src/engine/index.js';
import {
  BceLoss,
  InfonceLoss,
  LOSSES,
  LOSS_NAMES,
  MaskedLmLoss,
  ScoredLoss,
  VpMatrixLoss,
  WeightedLoss,
  bceOptionsSchema,
  createLoss,
  createWeightedLoss,
  infonceOptionsSchema,
  lossEntrySchema,
  gathersNegatives,
  lossListSchema,
  vpMatrixOptionsSchema,
  type LossEntryInput,
  type ScoredBatch,
} from '../src/losses/index.js';
import type { DType } from '../src/engine/dtype.js';
import { expectClose } from './helpers/close.js';
import { REPO_ROOT, runPython } from './helpers/python.js';
import { Rng } from '../src/data/rng.js';

// ---------------------------------------------------------------------------------------
// Deterministic inputs
// ---------------------------------------------------------------------------------------

/** mulberry32: a small seeded generator, so every input is fixed by the case's seed. */
function generator(seed: number): () => number {
  const rng = new Rng(seed); // Mulberry32, the data layer's generator
  return () => rng.next();
}

interface CaseSpec {
  id: string;
  loss: 'bce' | 'infonce' | 'vp_matrix';
  options: Record<string, unknown>;
  B: number;
  C: number;
  seed: number;
  /** Fraction of pairs flagged as false negatives (some land on positives: they must be ignored). */
  exclude?: number;
  /** 'perm': a shuffled permutation of 0..B-1; 'hard': some positives in hard-negative columns. */
  positives?: 'perm' | 'hard';
  /** Teacher probabilities on a grid of this many steps (a coarse grid makes many ties). */
  teacherLevels?: number;
  /** Number of distinct query groups. */
  groups?: number;
  /** Evaluate the reference block-wise (large n), value and score gradient only. */
  chunked?: boolean;
  /** float32 tolerance override (long cumulative sums over 16k pairs). */
  rtol32?: number;
}

interface CaseData {
  spec: CaseSpec;
  options: Record<string, unknown>;
  scores: number[][];
  positiveIndex?: number[];
  exclude?: boolean[][];
  teacher?: number[][];
  groups?: number[];
}

function makeCase(spec: CaseSpec): CaseData {
  const rand = generator(spec.seed);
  const { B, C } = spec;
  // Cosine-like scores, float32-exact; positives a little higher so the losses are realistic.
  let positiveIndex: number[] | undefined;
  if (spec.positives === 'perm') {
    positiveIndex = Array.from({ length: B }, (_, i) => i);
    for (let i = B - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1));
      [positiveIndex[i], positiveIndex[j]] = [positiveIndex[j]!, positiveIndex[i]!];
    }
  } else if (spec.positives === 'hard') {
    positiveIndex = Array.from({ length: B }, (_, i) => (i % 3 === 0 ? B + Math.floor(rand() * (C - B)) : i));
  }
  const pos = (i: number): number => positiveIndex?.[i] ?? i;
  const scores = Array.from({ length: B }, (_, i) =>
    Array.from({ length: C }, (_, j) => Math.fround(Math.max(-1, Math.min(1, rand() * 1.4 - 0.7 + (j === pos(i) ? 0.3 : 0))))),
  );
  const data: CaseData = { spec, options: {}, scores };
  if (positiveIndex !== undefined) data.positiveIndex = positiveIndex;
  if (spec.exclude !== undefined) {
    const p = spec.exclude;
    data.exclude = Array.from({ length: B }, () => Array.from({ length: C }, () => rand() < p));
    data.exclude[0]![pos(0)] = true; // a flag on a positive, which every loss must ignore
  }
  if (spec.teacherLevels !== undefined) {
    const L = spec.teacherLevels;
    data.teacher = Array.from({ length: B }, (_, i) => Array.from({ length: C }, (_, j) => Math.round((j === pos(i) ? 0.5 + 0.5 * rand() : 0.6 * rand()) * L) / L));
  }
  if (spec.groups !== undefined) {
    const G = spec.groups;
    // Sparse, unordered ids: groups are identities, not indices.
    data.groups = Array.from({ length: B }, () => 7 * Math.floor(rand() * G) + 3);
  }
  return data;
}

const CASES: CaseSpec[] = [
  // BCE
  { id: 'bce default, in-batch only', loss: 'bce', options: {}, B: 6, C: 6, seed: 1 },
  { id: 'bce hard negatives + exclude + pos_weight', loss: 'bce', options: { pos_weight: 3, scale: 12, bias: -6 }, B: 6, C: 14, seed: 2, exclude: 0.15 },
  { id: 'bce fixed affine, positives in hard columns', loss: 'bce', options: { learnable_scale: false, learnable_bias: false, scale: 5, bias: -2 }, B: 7, C: 15, seed: 3, exclude: 0.1, positives: 'hard' },
  { id: 'bce learnable scale only', loss: 'bce', options: { learnable_bias: false }, B: 5, C: 9, seed: 4, exclude: 0.2 },
  // InfoNCE
  { id: 'infonce default, in-batch only', loss: 'infonce', options: {}, B: 6, C: 6, seed: 11 },
  { id: 'infonce hard negatives + exclude', loss: 'infonce', options: { temperature: 0.1 }, B: 6, C: 14, seed: 12, exclude: 0.2 },
  { id: 'infonce symmetric, learnable τ, exclude', loss: 'infonce', options: { symmetric: true, learnable_temperature: true, temperature: 0.07 }, B: 7, C: 15, seed: 13, exclude: 0.15 },
  { id: 'infonce symmetric, permuted positives', loss: 'infonce', options: { symmetric: true, learnable_temperature: true }, B: 6, C: 10, seed: 14, exclude: 0.1, positives: 'perm' },
  { id: 'infonce symmetric, no exclude', loss: 'infonce', options: { symmetric: true }, B: 8, C: 8, seed: 15 },
  { id: 'infonce positives in hard columns', loss: 'infonce', options: { learnable_temperature: true, temperature: 0.2 }, B: 6, C: 12, seed: 16, exclude: 0.1, positives: 'hard' },
  // VP-matrix
  { id: 'vp label key, no teacher', loss: 'vp_matrix', options: {}, B: 5, C: 5, seed: 21 },
  { id: 'vp exclude + hard negatives, label key', loss: 'vp_matrix', options: { key: 'label', tau: 0.3 }, B: 6, C: 13, seed: 22, exclude: 0.15, teacherLevels: 8 },
  { id: 'vp teacher key with ties + teacher predicate', loss: 'vp_matrix', options: {}, B: 6, C: 13, seed: 23, exclude: 0.15, teacherLevels: 4 },
  { id: 'vp teacher target, groups, learnable affine', loss: 'vp_matrix', options: { target: 'teacher', group_predicates: true, learnable_scale: true, learnable_bias: true, tau: 0.6 }, B: 8, C: 17, seed: 24, exclude: 0.1, teacherLevels: 5, groups: 3 },
  { id: 'vp groups without teacher', loss: 'vp_matrix', options: { group_predicates: true }, B: 7, C: 12, seed: 25, exclude: 0.1, groups: 4 },
  { id: 'vp tau 0 (P only)', loss: 'vp_matrix', options: { tau: 0, group_predicates: true }, B: 6, C: 11, seed: 26, teacherLevels: 10, groups: 2 },
  { id: 'vp tau 1 (V only), teacher target', loss: 'vp_matrix', options: { tau: 1, target: 'teacher' }, B: 6, C: 11, seed: 27, exclude: 0.2, teacherLevels: 3 },
  { id: 'vp positives in hard columns', loss: 'vp_matrix', options: { learnable_scale: true }, B: 6, C: 12, seed: 28, exclude: 0.1, positives: 'hard', teacherLevels: 6 },
  { id: 'vp n = 4096 with ties and groups', loss: 'vp_matrix', options: { group_predicates: true, target: 'teacher' }, B: 32, C: 128, seed: 29, exclude: 0.05, teacherLevels: 16, groups: 6 },
  { id: 'vp n = 16384 (block-wise reference)', loss: 'vp_matrix', options: { group_predicates: true }, B: 128, C: 128, seed: 30, exclude: 0.03, teacherLevels: 32, groups: 9, chunked: true, rtol32: 1e-4 },
];

const PARSERS = { bce: bceOptionsSchema, infonce: infonceOptionsSchema, vp_matrix: vpMatrixOptionsSchema } as const;

interface Reference {
  value: number;
  grad_scores: number[][];
  grad_params: Record<string, number>;
}

const DATA = CASES.map((spec) => {
  const data = makeCase(spec);
  data.options = PARSERS[spec.loss].parse(spec.options) as Record<string, unknown>;
  return data;
});
let REFERENCE: Reference[] = [];

beforeAll(() => {
  const cases = DATA.map((d) => ({
    loss: d.spec.loss,
    options: d.options,
    scores: d.scores,
    positive_index: d.positiveIndex ?? null,
    exclude: d.exclude ?? null,
    teacher: d.teacher ?? null,
    groups: d.groups ?? null,
    chunked: d.spec.chunked === true,
  }));
  const out = runPython([`${REPO_ROOT}/test/reference/losses_ref.py`], { input: JSON.stringify({ cases }) });
  REFERENCE = (JSON.parse(out) as { results: Reference[] }).results;
});

function batchOf(data: CaseData, dtype: DType): ScoredBatch {
  const batch: ScoredBatch = { scores: tensor(data.scores, { dtype, requiresGrad: true }) };
  if (data.positiveIndex !== undefined) batch.positiveIndex = tensor(data.positiveIndex, { dtype: 'int64' });
  if (data.exclude !== undefined) batch.exclude = tensor(data.exclude, { dtype: 'bool' });
  if (data.teacher !== undefined) batch.teacher = tensor(data.teacher, { dtype });
  if (data.groups !== undefined) batch.groups = Int32Array.from(data.groups);
  return batch;
}

function maxAbs(values: number[]): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

// ---------------------------------------------------------------------------------------
// Values and gradients against PyTorch
// ---------------------------------------------------------------------------------------

describe.each([
  ['float64', 1e-10],
  ['float32', 1e-5],
] as const)('losses vs PyTorch (%s)', (dtype, rtol) => {
  it.each(DATA.map((d, i) => [d.spec.id, i] as const))('%s', (_id, index) => {
    const data = DATA[index]!;
    const ref = REFERENCE[index]!;
    const tol = dtype === 'float32' ? (data.spec.rtol32 ?? rtol) : rtol;
    const loss = LOSSES[data.spec.loss].create(data.options, { dtype }) as ScoredLoss;
    const batch = batchOf(data, dtype);
    try {
      const value = tidy(() => {
        const out = loss.forward(batch);
        expect(out.shape).toEqual([]);
        expect(out.dtype).toBe(dtype);
        out.backward();
        return out.item();
      });
      expectClose([value], [ref.value], { rtol: tol, atol: 0, what: 'value' });

      const expectedGrad = ref.grad_scores.flat();
      const grad = tidy(() => batch.scores.grad!.toArray());
      expectClose(grad, expectedGrad, { rtol: tol, atol: tol * maxAbs(expectedGrad), what: 'd loss / d scores' });

      const params = new Map(loss.namedParameters());
      expect([...params.keys()].sort()).toEqual(Object.keys(ref.grad_params).sort());
      for (const [name, expected] of Object.entries(ref.grad_params)) {
        const g = tidy(() => params.get(name)!.grad!.item());
        expectClose([g], [expected], { rtol: tol, atol: tol * 1e-3, what: `d loss / d ${name}` });
      }
    } finally {
      dispose(batch);
      loss.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Behaviour beyond the reference cases
// ---------------------------------------------------------------------------------------

/** The losses that read a score matrix (masked_lm reads tokens and has its own test below). */
const SCORE_LOSSES = LOSS_NAMES.filter((name) => LOSSES[name].input === 'scores');

describe('loss behaviour', () => {
  const simple = (): ScoredBatch => batchOf(makeCase({ id: '', loss: 'bce', options: {}, B: 4, C: 7, seed: 99, exclude: 0.2, teacherLevels: 4, groups: 2 }), 'float64');

  it('computes 16-bit scores in float32', () => {
    for (const name of SCORE_LOSSES) {
      const loss = (createLoss({ name }) as ScoredLoss);
      const batch = simple();
      const half = tidy(() => batch.scores.to('bfloat16'));
      const out = tidy(() => loss.forward({ ...batch, scores: half }));
      expect(out.dtype).toBe('float32');
      expect(Number.isFinite(out.item())).toBe(true);
      dispose([out, half, batch]);
      loss.dispose();
    }
  });

  it('projects a learnt temperature back onto its floor, and a learnt scale under its cap', () => {
    const infonce = new InfonceLoss(infonceOptionsSchema.parse({ learnable_temperature: true, temperature: 0.05, min_temperature: 0.02 }));
    const bce = new BceLoss(bceOptionsSchema.parse({ max_scale: 50 }));
    // As if an optimizer step had overshot both bounds.
    noGrad(() =>
      tidy(() => {
        infonce.logTemperature!.copy_(tensor(Math.log(0.001), { dtype: 'float32' }));
        bce.logScale!.copy_(tensor(Math.log(500), { dtype: 'float32' }));
      }),
    );
    const batch = simple();
    tidy(() => {
      infonce.forward(batch);
      bce.forward(batch);
    });
    expect(infonce.temperature).toBeCloseTo(0.02, 8);
    expect(Math.exp(bce.logScale!.item())).toBeCloseTo(50, 4);
    dispose(batch);
    infonce.dispose();
    bce.dispose();
  });

  it('gives no gradient to excluded pairs', () => {
    for (const name of SCORE_LOSSES) {
      const loss = (createLoss({ name }) as ScoredLoss);
      const batch = simple();
      tidy(() => loss.forward(batch).backward());
      const C = batch.scores.size(1);
      const [grad, excluded] = tidy(() => [batch.scores.grad!.toArray(), batch.exclude!.toArray()]);
      excluded.forEach((flag, k) => {
        const isPositive = k % C === Math.floor(k / C); // default positives: column = row
        if (flag === 1 && !isPositive) expect(Math.abs(grad[k]!), `${name}: pair ${k}`).toBe(0);
      });
      dispose(batch);
      loss.dispose();
    }
  });

  it('rejects batches it cannot score', () => {
    const batch = simple();
    const vp = (createLoss({ name: 'vp_matrix', target: 'teacher' }) as ScoredLoss);
    expect(() => vp.forward({ scores: batch.scores })).toThrow(/target 'teacher' needs batch.teacher/);
    const grouped = (createLoss({ name: 'vp_matrix', group_predicates: true }) as ScoredLoss);
    expect(() => grouped.forward({ scores: batch.scores })).toThrow(/group_predicates needs batch.groups/);
    const sym = (createLoss({ name: 'infonce', symmetric: true }) as ScoredLoss);
    const notPerm = tensor([0, 0, 2, 3], { dtype: 'int64' });
    expect(() => sym.forward({ scores: batch.scores, positiveIndex: notPerm })).toThrow(/permutation/);
    const bad = tensor([[1, 2]]);
    expect(() => sym.forward({ scores: batch.scores, exclude: bad })).toThrow(/exclude must be \[4, 7\]/);
    dispose([batch, notPerm, bad]);
    for (const l of [vp, grouped, sym]) l.dispose();
  });
});

// ---------------------------------------------------------------------------------------
// Registry, options, weighted sum
// ---------------------------------------------------------------------------------------

describe('registry and options', () => {
  it('lists every loss with a schema, a citation and a factory', () => {
    expect(LOSS_NAMES).toEqual(['bce', 'infonce', 'vp_matrix', 'masked_lm', 'embedding_mse', 'similarity_kl', 'margin_mse', 'hidden_mse', 'attention_kl']);
    expect(LOSS_NAMES.map((n) => LOSSES[n].input)).toEqual(['scores', 'scores', 'scores', 'tokens', 'embeddings', 'teacher_scores', 'teacher_scores', 'layers', 'layers']);
    for (const name of LOSS_NAMES) {
      const def = LOSSES[name];
      expect(def.name).toBe(name);
      expect(def.citation.length).toBeGreaterThan(20);
      // The sizes the distillation losses' projections need (ignored by the others).
      const loss = def.create(undefined, { distillDims: { student: 4, teacher: 6 }, layerPairs: 2 });
      expect(loss.constructor).toHaveProperty('lossName', name);
      loss.dispose();
    }
    expect(BceLoss.citation).toMatch(/2303\.15343/);
    expect(InfonceLoss.citation).toMatch(/1807\.03748/);
    expect(VpMatrixLoss.citation).toMatch(/JUDE/);
    expect(MaskedLmLoss.citation).toMatch(/1810\.04805/);
  });

  it('applies defaults and registers learnable parameters', () => {
    const entry = lossEntrySchema.parse({ name: 'infonce' });
    expect(entry).toEqual({ name: 'infonce', weight: 1, temperature: 0.05, learnable_temperature: false, min_temperature: 0.01, symmetric: false, gather_negatives: false });
    expect(createLoss({ name: 'bce' }).namedParameters().map(([n]) => n)).toEqual(['log_scale', 'bias']);
    expect(createLoss({ name: 'vp_matrix' }).parameters()).toEqual([]);
    expect(createLoss({ name: 'infonce', learnable_temperature: true }).namedParameters().map(([n]) => n)).toEqual(['log_temperature']);
    // gather_negatives shapes the batch, not the loss: the loss is built without it.
    expect(createLoss({ name: 'infonce', gather_negatives: true })).toBeInstanceOf(InfonceLoss);
    expect(gathersNegatives([lossEntrySchema.parse({ name: 'infonce', gather_negatives: true })])).toBe(true);
    expect(gathersNegatives([lossEntrySchema.parse({ name: 'infonce' }), lossEntrySchema.parse({ name: 'masked_lm' })])).toBe(false);
  });

  it('reports bad options with their path', () => {
    const issue = (value: unknown): { path: PropertyKey[]; code: string } => {
      const result = lossEntrySchema.safeParse(value);
      expect(result.success).toBe(false);
      return result.error!.issues[0]!;
    };
    expect(issue({ name: 'infonce', temperature: 0 }).path).toEqual(['temperature']);
    expect(issue({ name: 'infonce', temperature: -1 }).path).toEqual(['temperature']);
    expect(issue({ name: 'vp_matrix', tau: 1.5 }).path).toEqual(['tau']);
    expect(issue({ name: 'vp_matrix', target: 'probability' }).path).toEqual(['target']);
    expect(issue({ name: 'bce', weight: -1 }).path).toEqual(['weight']);
    expect(issue({ name: 'bce', temperature: 0.1 }).code).toBe('unrecognized_keys');
    expect(issue({ name: 'triplet' }).path).toEqual(['name']);
    expect(issue({ name: 'infonce', learnable_temperature: true, temperature: 0.001 }).path).toEqual(['temperature']);
    const list = lossListSchema.safeParse([{ name: 'bce' }, { name: 'infonce', temperature: 0 }]);
    expect(list.error!.issues[0]!.path).toEqual([1, 'temperature']);
    expect(lossListSchema.safeParse([]).success).toBe(false);
    expect(() => createWeightedLoss([{ name: 'infonce', temperature: 0 }])).toThrow(/temperature/);
  });

  it('sums weighted losses, keys repeats, and returns detached parts', () => {
    const entries: LossEntryInput[] = [
      { name: 'infonce', weight: 1, temperature: 0.05, learnable_temperature: true },
      { name: 'bce', weight: 0.5 },
      { name: 'vp_matrix', weight: 2, group_predicates: true },
      { name: 'infonce', weight: 0.25, symmetric: true, temperature: 0.1 },
    ];
    const weighted = createWeightedLoss(entries, { dtype: 'float64' });
    expect(weighted).toBeInstanceOf(WeightedLoss);
    expect(weighted.entries.map((e) => e.key)).toEqual(['infonce', 'bce', 'vp_matrix', 'infonce_2']);
    expect(weighted.namedParameters().map(([n]) => n)).toEqual(['infonce.log_temperature', 'bce.log_scale', 'bce.bias']);

    const batch = batchOf(makeCase({ id: '', loss: 'bce', options: {}, B: 6, C: 11, seed: 7, exclude: 0.1, teacherLevels: 8, groups: 3 }), 'float64');
    const { total, parts } = tidy(() => weighted.forward({ scores: batch }));
    expect(Object.keys(parts)).toEqual(['infonce', 'bce', 'vp_matrix', 'infonce_2']);
    for (const part of Object.values(parts)) expect(part.requiresGrad).toBe(false);
    expect(total.requiresGrad).toBe(true);
    const expected = weighted.entries.reduce((sum, e) => sum + e.weight * parts[e.key]!.item(), 0);
    expectClose([total.item()], [expected], { rtol: 1e-12, what: 'total' });
    // Each part equals its loss alone, and the total's gradient is the weighted sum of theirs.
    tidy(() => total.backward());
    const gradTotal = tidy(() => batch.scores.grad!.toArray());
    const gradSum = new Array<number>(gradTotal.length).fill(0);
    for (const e of weighted.entries) {
      batch.scores.zeroGrad(true);
      const alone = tidy(() => {
        const v = (e.loss as ScoredLoss).forward(batch);
        v.backward();
        return v.item();
      });
      expectClose([alone], [parts[e.key]!.item()], { rtol: 1e-12, what: e.key });
      tidy(() => batch.scores.grad!.toArray()).forEach((g, k) => (gradSum[k]! += e.weight * g));
    }
    expectClose(gradTotal, gradSum, { rtol: 1e-10, atol: 1e-14, what: 'd total / d scores' });
    dispose([total, parts, batch]);
    weighted.dispose();
  });

  it('leaks no tensors across training-like steps', () => {
    const weighted = createWeightedLoss(
      [
        { name: 'infonce', symmetric: true, learnable_temperature: true },
        { name: 'bce', pos_weight: 2 },
        { name: 'vp_matrix', group_predicates: true, learnable_scale: true, target: 'teacher' },
      ],
      { dtype: 'float32' },
    );
    const data = makeCase({ id: '', loss: 'bce', options: {}, B: 8, C: 20, seed: 5, exclude: 0.1, positives: 'perm', teacherLevels: 8, groups: 3 });
    const batch = batchOf(data, 'float32');
    const step = (): void => {
      tidy(() => {
        const { total, parts } = weighted.forward({ scores: batch });
        total.backward();
        for (const p of Object.values(parts)) p.item();
      });
      weighted.zeroGrad();
      batch.scores.zeroGrad(true);
    };
    step(); // first call may allocate lazily
    const before = liveTensorCount();
    for (let i = 0; i < 20; i++) step();
    expect(liveTensorCount()).toBe(before);
    // Each loss alone, too.
    for (const { loss } of weighted.entries) {
      const start = liveTensorCount();
      for (let i = 0; i < 5; i++) tidy(() => (loss as ScoredLoss).forward(batch).backward());
      expect(liveTensorCount()).toBe(start);
    }
    dispose(batch);
    weighted.dispose();
  });
});

describe('masked_lm', () => {
  it('equals PyTorch cross_entropy with ignore_index -100 and label smoothing, value and gradient', () => {
    const rng = new Rng(11);
    const N = 9;
    const V = 13;
    const logits = Array.from({ length: N }, () => Array.from({ length: V }, () => (rng.next() - 0.5) * 6));
    const labels = Array.from({ length: N }, (_, i) => (i % 4 === 3 ? -100 : rng.int(V)));
    const script = `
import json, sys, torch
d = json.load(sys.stdin)
out = []
for eps in (0.0, 0.1):
    z = torch.tensor(d['logits'], dtype=torch.float64, requires_grad=True)
    loss = torch.nn.functional.cross_entropy(z, torch.tensor(d['labels']), ignore_index=-100, label_smoothing=eps)
    loss.backward()
    out.append({'loss': loss.item(), 'grad': z.grad.flatten().tolist()})
print(json.dumps(out))
`;
    const reference = JSON.parse(runPython(['-c', script], { input: JSON.stringify({ logits, labels }) })) as Array<{ loss: number; grad: number[] }>;
    [0, 0.1].forEach((eps, k) => {
      const loss = createLoss({ name: 'masked_lm', label_smoothing: eps }) as MaskedLmLoss;
      const z = tensor(logits, { dtype: 'float64' });
      z.requiresGrad = true;
      const value = tidy(() => {
        const out = loss.forward({ logits: z, labels: tensor(labels, { dtype: 'int64' }) });
        out.backward();
        return out.item();
      });
      expectClose([value], [reference[k]!.loss], { rtol: 1e-12, what: `loss ε=${eps}` });
      expectClose(tidy(() => z.grad!.toArray()), reference[k]!.grad, { rtol: 1e-10, atol: 1e-14, what: `grad ε=${eps}` });
      dispose(z);
    });
    // A weighted sum hands it the tokens input; without it, the error names the loss and the input.
    const weighted = createWeightedLoss([{ name: 'masked_lm' }]);
    expect(weighted.inputs).toEqual(['tokens']);
    expect(() => tidy(() => weighted.forward({}))).toThrow(/masked_lm.*tokens/);
    weighted.dispose();
  });
});

/**
 * The distillation losses (embedding_mse, similarity_kl, margin_mse, hidden_mse, attention_kl)
 * against an independent PyTorch float64 reference (test/reference/distill_losses_ref.py).
 *
 * Each case fixes random float64 inputs from a seed (excluded entries for the score losses,
 * padding in the mask for the layer losses, differing hidden sizes with a learned projection and
 * equal sizes without) and the loss's options. Kiln's projection weights are handed to the
 * reference, so both sides use the same parameters. Value within rtol 1e-9, gradients w.r.t. the
 * student inputs and the projection parameters within rtol 1e-8.
 *
 * Then hand-computed tiny cases, construction and shape errors, a weighted sum with `infonce`,
 * and tensor leaks.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { dispose, liveTensorCount, manualSeed, tensor, tidy, type Tensor } from '../src/engine/index.js';
import {
  AttentionKlLoss,
  EmbeddingMseLoss,
  HiddenMseLoss,
  LOSSES,
  MarginMseLoss,
  SimilarityKlLoss,
  createLoss,
  createWeightedLoss,
  type AnyLoss,
  type DistillScoreBatch,
  type EmbeddingDistillBatch,
  type LayerDistillBatch,
  type LossFactoryOptions,
  type ScoredBatch,
} from '../src/losses/index.js';
import { Rng } from '../src/data/rng.js';
import { expectClose } from './helpers/close.js';
import { REPO_ROOT, runPython } from './helpers/python.js';

// ---------------------------------------------------------------------------------------
// Deterministic inputs
// ---------------------------------------------------------------------------------------

type DistillName = 'embedding_mse' | 'similarity_kl' | 'margin_mse' | 'hidden_mse' | 'attention_kl';
type Grid = number[] | Grid[];

/** Uniform values in [lo, hi) of the given shape, as nested arrays. */
function uniform(rng: Rng, shape: number[], lo = -1, hi = 1): Grid {
  const [n, ...rest] = shape;
  return Array.from({ length: n! }, () => (rest.length === 0 ? lo + (hi - lo) * rng.next() : uniform(rng, rest, lo, hi))) as Grid;
}

/** [N, L] 0/1 mask: text n has lengths[n] real tokens, then padding. */
function maskOf(lengths: number[], L: number): number[][] {
  return lengths.map((len) => Array.from({ length: L }, (_, l) => (l < len ? 1 : 0)));
}

/**
 * [N, H, L, L] attention probabilities as BERT makes them: a softmax over the keys of random
 * logits, padded keys exactly 0 (every query row, padded ones included, is a distribution over
 * the real keys).
 */
function attentionMaps(rng: Rng, H: number, mask: number[][], spread: number): number[][][][] {
  const L = mask[0]!.length;
  return mask.map((row) =>
    Array.from({ length: H }, () =>
      Array.from({ length: L }, () => {
        const logits = row.map((m) => (m === 1 ? spread * (rng.next() * 2 - 1) : -Infinity));
        const top = Math.max(...logits);
        const e = logits.map((z) => (z === -Infinity ? 0 : Math.exp(z - top)));
        const total = e.reduce((a, b) => a + b, 0);
        return e.map((v) => v / total);
      }),
    ),
  );
}

/** [B, C] bool: each entry flagged with probability p, plus a flag on row 0's positive (to be ignored). */
function excludeOf(rng: Rng, B: number, C: number, p: number, positive: (i: number) => number): boolean[][] {
  const flags = Array.from({ length: B }, () => Array.from({ length: C }, () => rng.next() < p));
  flags[0]![positive(0)] = true;
  return flags;
}

interface CaseSpec {
  id: string;
  loss: DistillName;
  options: Record<string, unknown>;
  factory: LossFactoryOptions;
  /** Inputs as the reference reads them (snake_case keys, nested lists). */
  inputs: Record<string, unknown>;
}

function embeddingCase(id: string, seed: number, N: number, Hs: number, Ht: number, options: Record<string, unknown>): CaseSpec {
  const rng = new Rng(seed);
  return { id, loss: 'embedding_mse', options, factory: { distillDims: { student: Hs, teacher: Ht } }, inputs: { student: uniform(rng, [N, Hs]), teacher: uniform(rng, [N, Ht]) } };
}

function scoreCase(id: string, loss: 'similarity_kl' | 'margin_mse', seed: number, B: number, C: number, options: Record<string, unknown>, extra: { exclude?: number; positives?: boolean; teacherRange?: number }): CaseSpec {
  const rng = new Rng(seed);
  const positiveIndex = extra.positives === true ? Array.from({ length: B }, () => rng.int(C)) : null;
  const pos = (i: number): number => positiveIndex?.[i] ?? 0;
  const r = extra.teacherRange ?? 1;
  const inputs: Record<string, unknown> = {
    student: uniform(rng, [B, C]),
    teacher: uniform(rng, [B, C], -r, r),
    positive_index: positiveIndex,
    exclude: extra.exclude === undefined ? null : excludeOf(rng, B, C, extra.exclude, pos),
  };
  return { id, loss, options, factory: {}, inputs };
}

function hiddenCase(id: string, seed: number, K: number, lengths: number[], L: number, Hs: number, Ht: number, options: Record<string, unknown>): CaseSpec {
  const rng = new Rng(seed);
  const N = lengths.length;
  return {
    id,
    loss: 'hidden_mse',
    options,
    factory: { distillDims: { student: Hs, teacher: Ht }, layerPairs: K },
    inputs: {
      student_hidden: Array.from({ length: K }, () => uniform(rng, [N, L, Hs], -2, 2)),
      teacher_hidden: Array.from({ length: K }, () => uniform(rng, [N, L, Ht], -2, 2)),
      mask: maskOf(lengths, L),
    },
  };
}

function attentionCase(id: string, seed: number, K: number, lengths: number[], L: number, Hs: number, Ht: number, options: Record<string, unknown>): CaseSpec {
  const rng = new Rng(seed);
  const mask = maskOf(lengths, L);
  return {
    id,
    loss: 'attention_kl',
    options,
    factory: {},
    inputs: {
      student_attentions: Array.from({ length: K }, () => attentionMaps(rng, Hs, mask, 2)),
      teacher_attentions: Array.from({ length: K }, () => attentionMaps(rng, Ht, mask, 4)),
      mask,
    },
  };
}

const CASES: CaseSpec[] = [
  embeddingCase('embedding_mse: Hs 4 → Ht 6, learned projection', 1, 5, 4, 6, {}),
  embeddingCase('embedding_mse: equal sizes, identity', 2, 6, 5, 5, {}),
  embeddingCase('embedding_mse: equal sizes, projection linear, normalize', 3, 5, 5, 5, { projection: 'linear', normalize: true }),
  embeddingCase('embedding_mse: Hs 3 → Ht 7, normalize', 4, 4, 3, 7, { normalize: true }),
  scoreCase('similarity_kl: in-batch [5, 5] with exclusions', 'similarity_kl', 11, 5, 5, {}, { exclude: 0.25 }),
  scoreCase('similarity_kl: cross-encoder [4, 6], τ_t 1, scaled, positives, exclusions', 'similarity_kl', 12, 4, 6, { student_temperature: 0.1, teacher_temperature: 1, scale_by_temperature: true }, { exclude: 0.2, positives: true, teacherRange: 6 }),
  scoreCase('similarity_kl: no exclusions', 'similarity_kl', 13, 3, 7, { student_temperature: 0.2, teacher_temperature: 0.07 }, {}),
  scoreCase('margin_mse: [4, 5] with exclusions', 'margin_mse', 21, 4, 5, {}, { exclude: 0.25 }),
  scoreCase('margin_mse: positives elsewhere, margin_scale 2.5', 'margin_mse', 22, 5, 6, { margin_scale: 2.5 }, { positives: true, exclude: 0.15 }),
  scoreCase('margin_mse: one negative per query', 'margin_mse', 23, 6, 2, {}, { teacherRange: 5 }),
  hiddenCase('hidden_mse: Hs 4 → Ht 6, 3 pairs, padding', 31, 3, [5, 3, 2], 5, 4, 6, {}),
  hiddenCase('hidden_mse: equal sizes, identity, padding', 32, 2, [4, 4, 1, 3], 4, 5, 5, {}),
  hiddenCase('hidden_mse: equal sizes, projection linear', 33, 2, [3, 2], 3, 4, 4, { projection: 'linear' }),
  attentionCase('attention_kl: 2 student heads vs 4 teacher heads, padding', 41, 2, [5, 3, 2], 5, 2, 4, {}),
  attentionCase('attention_kl: per head (3 vs 3), padding', 42, 2, [4, 2, 3], 4, 3, 3, { average_heads: false }),
  attentionCase('attention_kl: heads averaged, no padding', 43, 1, [3, 3], 3, 3, 3, {}),
];

/** The Kiln batch of a case, with its student leaves (requiring grad) by the reference's names. */
function batchOf(spec: CaseSpec): { batch: EmbeddingDistillBatch | DistillScoreBatch | LayerDistillBatch; leaves: Map<string, Tensor>; all: Tensor[] } {
  const f64 = (x: unknown, requiresGrad = false): Tensor => tensor(x as number[], { dtype: 'float64', requiresGrad });
  const inp = spec.inputs;
  const leaves = new Map<string, Tensor>();
  switch (spec.loss) {
    case 'embedding_mse': {
      const batch = { student: f64(inp.student, true), teacher: f64(inp.teacher) };
      leaves.set('student', batch.student);
      return { batch, leaves, all: [batch.student, batch.teacher] };
    }
    case 'similarity_kl':
    case 'margin_mse': {
      const batch: DistillScoreBatch = { student: f64(inp.student, true), teacher: f64(inp.teacher) };
      if (inp.positive_index !== null) batch.positiveIndex = tensor(inp.positive_index as number[], { dtype: 'int64' });
      if (inp.exclude !== null) batch.exclude = tensor(inp.exclude as boolean[][], { dtype: 'bool' });
      leaves.set('student', batch.student);
      return { batch, leaves, all: [batch.student, batch.teacher, ...(batch.positiveIndex ? [batch.positiveIndex] : []), ...(batch.exclude ? [batch.exclude] : [])] };
    }
    case 'hidden_mse':
    case 'attention_kl': {
      const hidden = spec.loss === 'hidden_mse';
      const student = ((hidden ? inp.student_hidden : inp.student_attentions) as unknown[]).map((x) => f64(x, true));
      const teacher = ((hidden ? inp.teacher_hidden : inp.teacher_attentions) as unknown[]).map((x) => f64(x));
      const mask = tensor(inp.mask as number[][], { dtype: 'int64' });
      const batch: LayerDistillBatch = hidden
        ? { studentHidden: student, teacherHidden: teacher, studentAttentions: [], teacherAttentions: [], mask }
        : { studentHidden: [], teacherHidden: [], studentAttentions: student, teacherAttentions: teacher, mask };
      student.forEach((t, k) => leaves.set(`${hidden ? 'student_hidden' : 'student_attentions'}.${k}`, t));
      return { batch, leaves, all: [...student, ...teacher, mask] };
    }
  }
}

function maxAbs(values: number[]): number {
  return values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
}

function create(spec: CaseSpec): AnyLoss {
  return createLoss({ name: spec.loss, ...spec.options } as Parameters<typeof createLoss>[0], { ...spec.factory, dtype: 'float64' });
}

/** forward + backward of any distillation loss on its batch: returns the value. */
function run(loss: AnyLoss, batch: unknown): number {
  return tidy(() => {
    const out = (loss.forward as (b: unknown) => Tensor)(batch);
    expect(out.shape).toEqual([]);
    out.backward();
    return out.item();
  });
}

// ---------------------------------------------------------------------------------------
// Values and gradients against PyTorch
// ---------------------------------------------------------------------------------------

interface Reference {
  value: number;
  grad_inputs: Record<string, number[]>;
  grad_params: Record<string, number[]>;
}

describe('distillation losses vs PyTorch (float64)', () => {
  let losses: AnyLoss[] = [];
  let reference: Reference[] = [];

  beforeAll(() => {
    manualSeed(1234);
    losses = CASES.map(create);
    const cases = CASES.map((spec, i) => ({
      loss: spec.loss,
      options: LOSSES[spec.loss].schema.parse(spec.options),
      inputs: spec.inputs,
      params: Object.fromEntries(losses[i]!.namedParameters().map(([name, t]) => [name, { shape: t.shape, data: tidy(() => t.toArray()) }])),
    }));
    const out = runPython([`${REPO_ROOT}/test/reference/distill_losses_ref.py`], { input: JSON.stringify({ cases }) });
    reference = (JSON.parse(out) as { results: Reference[] }).results;
  });

  afterAll(() => {
    for (const loss of losses) loss.dispose();
  });

  it.each(CASES.map((spec, i) => [spec.id, i] as const))('%s', (_id, index) => {
    const spec = CASES[index]!;
    const loss = losses[index]!;
    const ref = reference[index]!;
    const { batch, leaves, all } = batchOf(spec);
    try {
      const value = run(loss, batch);
      expectClose([value], [ref.value], { rtol: 1e-9, atol: 0, what: 'value' });
      expect([...leaves.keys()].sort()).toEqual(Object.keys(ref.grad_inputs).sort());
      for (const [name, leaf] of leaves) {
        const expected = ref.grad_inputs[name]!;
        expectClose(tidy(() => leaf.grad!.toArray()), expected, { rtol: 1e-8, atol: 1e-8 * maxAbs(expected), what: `d loss / d ${name}` });
      }
      const params = new Map(loss.namedParameters());
      expect([...params.keys()].sort()).toEqual(Object.keys(ref.grad_params).sort());
      for (const [name, expected] of Object.entries(ref.grad_params)) {
        expectClose(tidy(() => params.get(name)!.grad!.toArray()), expected, { rtol: 1e-8, atol: 1e-8 * maxAbs(expected), what: `d loss / d ${name}` });
      }
    } finally {
      dispose(all);
    }
  });

  it('registers the projections under their documented names', () => {
    const names = (i: number): string[] => losses[i]!.namedParameters().map(([n]) => n);
    expect(names(0)).toEqual(['projection.weight', 'projection.bias']);
    expect(names(1)).toEqual([]);
    expect(names(10)).toEqual(['projections.0.weight', 'projections.0.bias', 'projections.1.weight', 'projections.1.bias', 'projections.2.weight', 'projections.2.bias']);
    expect(names(11)).toEqual([]);
    expect(losses[0]!.namedParameters()[0]![1].shape).toEqual([6, 4]); // [Ht, Hs]
    expect([...losses[10]!.stateDict().keys()]).toHaveLength(6);
  });
});

// ---------------------------------------------------------------------------------------
// Hand-computed cases
// ---------------------------------------------------------------------------------------

describe('hand-computed', () => {
  const one = (student: number[], teacher: number[], extra: Partial<DistillScoreBatch> = {}): DistillScoreBatch => ({
    student: tensor([student], { dtype: 'float64', requiresGrad: true }),
    teacher: tensor([teacher], { dtype: 'float64' }),
    ...extra,
  });

  it('similarity_kl on one row of three columns', () => {
    // τ_s = τ_t = 1. s = [0, 0, 0] → q = [1/3, 1/3, 1/3]; t = [ln 2, 0, 0] → p = [2, 1, 1]/4.
    // KL(p‖q) = ½ ln(½ / ⅓) + 2 · ¼ ln(¼ / ⅓) = ½ ln(3/2) + ½ ln(3/4) = ½ ln(9/8).
    // dL/ds = (q − p)/τ_s = [1/3 − 1/2, 1/3 − 1/4, 1/3 − 1/4] = [−1/6, 1/12, 1/12].
    const loss = createLoss({ name: 'similarity_kl', student_temperature: 1, teacher_temperature: 1 });
    let batch = one([0, 0, 0], [Math.LN2, 0, 0]);
    expectClose([run(loss, batch)], [0.5 * Math.log(9 / 8)], { rtol: 1e-14, atol: 0 });
    expectClose(tidy(() => batch.student.grad!.toArray()), [-1 / 6, 1 / 12, 1 / 12], { rtol: 1e-14, atol: 1e-16 });
    dispose(batch);

    // Column 2 excluded: p = [2, 1]/3 and q = [½, ½] over columns 0, 1.
    // KL = ⅔ ln(⅔ / ½) + ⅓ ln(⅓ / ½) = ⅔ ln(4/3) + ⅓ ln(2/3); dL/ds = q − p = [−1/6, 1/6, 0].
    batch = one([0, 0, 5], [Math.LN2, 0, 9], { exclude: tensor([[false, false, true]], { dtype: 'bool' }) });
    expectClose([run(loss, batch)], [(2 / 3) * Math.log(4 / 3) + (1 / 3) * Math.log(2 / 3)], { rtol: 1e-14, atol: 0 });
    expectClose(tidy(() => batch.student.grad!.toArray()), [-1 / 6, 1 / 6, 0], { rtol: 1e-14, atol: 1e-16 });
    dispose(batch);

    // τ_s = ½ with scale_by_temperature: s/τ_s is still uniform, so the KL is ½ ln(9/8) times
    // τ_s² = ¼, and dL/ds = τ_s² (q − p)/τ_s = (q − p)/2.
    const scaled = createLoss({ name: 'similarity_kl', student_temperature: 0.5, teacher_temperature: 1, scale_by_temperature: true });
    batch = one([0, 0, 0], [Math.LN2, 0, 0]);
    expectClose([run(scaled, batch)], [0.125 * Math.log(9 / 8)], { rtol: 1e-14, atol: 0 });
    expectClose(tidy(() => batch.student.grad!.toArray()), [-1 / 12, 1 / 24, 1 / 24], { rtol: 1e-14, atol: 1e-16 });
    dispose(batch);
  });

  it('margin_mse on one row of three columns', () => {
    // Positive column 0, margin_scale ½. Student margins 0.9 − 0.4 = 0.5 and 0.9 − 0.1 = 0.8;
    // teacher margins (3 − 1)·½ = 1 and (3 − 2)·½ = 0.5. Errors e = [−0.5, 0.3]:
    // L = (0.25 + 0.09)/2 = 0.17. dL/ds_0 = Σ e_j = −0.2, dL/ds_j = −e_j → [−0.2, 0.5, −0.3].
    const loss = createLoss({ name: 'margin_mse', margin_scale: 0.5 });
    let batch = one([0.9, 0.4, 0.1], [3, 1, 2]);
    expectClose([run(loss, batch)], [0.17], { rtol: 1e-14, atol: 0 });
    expectClose(tidy(() => batch.student.grad!.toArray()), [-0.2, 0.5, -0.3], { rtol: 1e-14, atol: 1e-16 });
    dispose(batch);

    // Positive in column 1 (its exclude flag ignored), column 2 excluded: only the pair (0, 0)
    // is left: e = (0.4 − 0.9) − ½(1 − 3) = 0.5; L = e² = 0.25, dL/ds = [−2e, 2e, 0] = [−1, 1, 0].
    batch = one([0.9, 0.4, 0.1], [3, 1, 2], {
      positiveIndex: tensor([1], { dtype: 'int64' }),
      exclude: tensor([[false, true, true]], { dtype: 'bool' }),
    });
    expectClose([run(loss, batch)], [0.25], { rtol: 1e-14, atol: 0 });
    expectClose(tidy(() => batch.student.grad!.toArray()), [-1, 1, 0], { rtol: 1e-14, atol: 1e-16 });
    dispose(batch);
  });

  it('attention_kl and hidden_mse are 0 when the student equals the teacher, and padding gets no gradient', () => {
    const spec = CASES.find((c) => c.id.startsWith('attention_kl: per head'))!;
    const a = tensor(spec.inputs.student_attentions as number[][][][][], { dtype: 'float64' }).select(0, 0);
    const student = a.clone().requiresGrad_();
    const mask = tensor(spec.inputs.mask as number[][], { dtype: 'int64' });
    const loss = createLoss({ name: 'attention_kl', average_heads: false });
    const value = run(loss, { studentHidden: [], teacherHidden: [], studentAttentions: [student], teacherAttentions: [a], mask });
    expect(Math.abs(value)).toBeLessThan(1e-15);

    const hiddenSpec = CASES[10]!; // Hs 4 → Ht 6, padding
    const { batch, all } = batchOf(hiddenSpec);
    const hidden = create(hiddenSpec);
    run(hidden, batch);
    const grad = tidy(() => (batch as LayerDistillBatch).studentHidden[0]!.grad!.toArray());
    const m = (hiddenSpec.inputs.mask as number[][]).flat();
    grad.forEach((g, k) => {
      if (m[Math.floor(k / 4)] === 0) expect(g).toBe(0);
    });
    expect(grad.some((g) => g !== 0)).toBe(true);
    dispose([a, student, mask, ...all]);
    hidden.dispose();
  });
});

describe('registry and dtypes', () => {
  it('registers each loss with its input and citation', () => {
    expect(LOSSES.embedding_mse.input).toBe('embeddings');
    expect(LOSSES.similarity_kl.input).toBe('teacher_scores');
    expect(LOSSES.margin_mse.input).toBe('teacher_scores');
    expect(LOSSES.hidden_mse.input).toBe('layers');
    expect(LOSSES.attention_kl.input).toBe('layers');
    expect(EmbeddingMseLoss.citation).toMatch(/2004\.09813.*1909\.10351/);
    expect(SimilarityKlLoss.citation).toMatch(/1503\.02531.*2110\.07367.*2104\.06967/);
    expect(MarginMseLoss.citation).toMatch(/2010\.02666/);
    expect(HiddenMseLoss.citation).toMatch(/1909\.10351/);
    expect(AttentionKlLoss.citation).toMatch(/2002\.10957/);
  });

  it('computes float32 and 16-bit student inputs in float32', () => {
    for (const spec of [CASES[0]!, CASES[5]!, CASES[8]!, CASES[10]!, CASES[13]!]) {
      const loss = createLoss({ name: spec.loss, ...spec.options } as Parameters<typeof createLoss>[0], spec.factory);
      const { batch, all } = batchOf(spec);
      for (const dtype of ['float32', 'bfloat16'] as const) {
        const out = tidy(() => {
          const low = (t: Tensor): Tensor => t.detach().to(dtype);
          const b = batch as unknown as Record<string, unknown>;
          const lowered =
            'studentHidden' in b
              ? { ...b, studentHidden: (b.studentHidden as Tensor[]).map(low), studentAttentions: (b.studentAttentions as Tensor[]).map(low) }
              : { ...b, student: low(b.student as Tensor) };
          return (loss.forward as (x: unknown) => Tensor)(lowered);
        });
        expect(out.dtype, `${spec.id} ${dtype}`).toBe('float32');
        expect(Number.isFinite(out.item()), `${spec.id} ${dtype}`).toBe(true);
        out.dispose();
      }
      dispose(all);
      loss.dispose();
    }
  });
});

// ---------------------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------------------

describe('errors', () => {
  it('needs the hidden sizes for a projection', () => {
    expect(() => createLoss({ name: 'embedding_mse' })).toThrow(/embedding_mse needs the student's and the teacher's hidden sizes/);
    expect(() => createLoss({ name: 'hidden_mse' }, { layerPairs: 2 })).toThrow(/hidden_mse needs the student's and the teacher's hidden sizes/);
    expect(() => createLoss({ name: 'hidden_mse' }, { distillDims: { student: 4, teacher: 4 } })).toThrow(/hidden_mse needs the number of mapped layer pairs/);
  });

  it("rejects projection 'none' with different sizes, naming both", () => {
    expect(() => createLoss({ name: 'embedding_mse', projection: 'none' }, { distillDims: { student: 4, teacher: 6 } })).toThrow(/projection 'none'.*student's is 4 and the teacher's 6/);
    expect(() => createLoss({ name: 'hidden_mse', projection: 'none' }, { distillDims: { student: 8, teacher: 3 }, layerPairs: 1 })).toThrow(/student's is 8 and the teacher's 3/);
    const same = createLoss({ name: 'embedding_mse', projection: 'none' }, { distillDims: { student: 5, teacher: 5 } });
    expect(same.parameters()).toEqual([]);
  });

  it('rejects different head counts when heads are not averaged, naming both', () => {
    const spec = CASES[13]!; // 2 student heads vs 4 teacher heads
    const { batch, all } = batchOf(spec);
    const loss = createLoss({ name: 'attention_kl', average_heads: false });
    expect(() => run(loss, batch)).toThrow(/head counts must be equal.*2 student heads and 4 teacher heads/);
    dispose(all);
  });

  it('rejects batches of the wrong shape', () => {
    const emb = createLoss({ name: 'embedding_mse' }, { distillDims: { student: 4, teacher: 6 } }) as EmbeddingMseLoss;
    const s = tensor([[1, 2, 3]], { dtype: 'float64' });
    const t = tensor([[1, 2, 3, 4, 5, 6]], { dtype: 'float64' });
    expect(() => emb.forward({ student: s, teacher: t })).toThrow(/student embeddings must be \[N, 4\].*got \[1, 3\]/);
    const kl = createLoss({ name: 'similarity_kl' }) as SimilarityKlLoss;
    expect(() => kl.forward({ student: s, teacher: t })).toThrow(/teacher scores must be \[1, 3\]/);
    const mm = createLoss({ name: 'margin_mse' }) as MarginMseLoss;
    expect(() => mm.forward({ student: s, teacher: s, exclude: t })).toThrow(/exclude must be \[1, 3\]/);
    const hidden = createLoss({ name: 'hidden_mse' }, { distillDims: { student: 4, teacher: 6 }, layerPairs: 2 }) as HiddenMseLoss;
    const mask = tensor([[1]], { dtype: 'int64' });
    expect(() => hidden.forward({ studentHidden: [], teacherHidden: [], studentAttentions: [], teacherAttentions: [], mask })).toThrow(/expected 2 layer pairs/);
    const att = createLoss({ name: 'attention_kl' }) as AttentionKlLoss;
    expect(() => att.forward({ studentHidden: [], teacherHidden: [], studentAttentions: [], teacherAttentions: [], mask })).toThrow(/attention maps/);
    dispose([s, t, mask]);
    emb.dispose();
    hidden.dispose();
  });
});

// ---------------------------------------------------------------------------------------
// Weighted sum, leaks
// ---------------------------------------------------------------------------------------

describe('in a weighted sum', () => {
  it('infonce + embedding_mse + similarity_kl sums its parts and exposes the projection', () => {
    const weighted = createWeightedLoss(
      [
        { name: 'infonce', temperature: 0.1 },
        { name: 'embedding_mse', weight: 0.5 },
        { name: 'similarity_kl', weight: 2, teacher_temperature: 0.1 },
      ],
      { dtype: 'float64', distillDims: { student: 4, teacher: 6 } },
    );
    expect(weighted.inputs).toEqual(['scores', 'embeddings', 'teacher_scores']);
    expect(weighted.namedParameters().map(([n]) => n)).toEqual(['embedding_mse.projection.weight', 'embedding_mse.projection.bias']);
    expect([...weighted.stateDict().keys()]).toContain('embedding_mse.projection.weight');

    const emb = batchOf(CASES[0]!); // [5, 4] → [5, 6]
    const sim = batchOf(CASES[4]!); // [5, 5]
    const scores: ScoredBatch = { scores: (sim.batch as DistillScoreBatch).student };
    const { total, parts } = tidy(() => weighted.forward({ scores, embeddings: emb.batch as EmbeddingDistillBatch, teacher_scores: sim.batch as DistillScoreBatch }));
    expect(Object.keys(parts)).toEqual(['infonce', 'embedding_mse', 'similarity_kl']);
    const inputs: Record<string, unknown> = { scores, embeddings: emb.batch, teacher_scores: sim.batch };
    const alone = weighted.entries.map((e) => tidy(() => (e.loss.forward as (b: unknown) => Tensor)(inputs[e.input]).item()));
    alone.forEach((v, k) => expectClose([parts[weighted.entries[k]!.key]!.item()], [v], { rtol: 1e-14, what: weighted.entries[k]!.key }));
    expectClose([total.item()], [alone[0]! + 0.5 * alone[1]! + 2 * alone[2]!], { rtol: 1e-13, what: 'total' });
    tidy(() => total.backward());
    expect(tidy(() => weighted.parameters()[0]!.grad!.abs().sum().item())).toBeGreaterThan(0);
    dispose([total, parts, emb.all, sim.all]);
    weighted.dispose();
  });

  it('leaks no tensors', () => {
    for (const spec of [CASES[0]!, CASES[5]!, CASES[8]!, CASES[10]!, CASES[13]!, CASES[14]!]) {
      const loss = create(spec);
      const { batch, all } = batchOf(spec);
      run(loss, batch); // the first call may allocate lazily
      const start = liveTensorCount();
      for (let i = 0; i < 5; i++) {
        run(loss, batch);
        loss.zeroGrad();
      }
      for (const t of all) t.zeroGrad(true);
      expect(liveTensorCount(), spec.id).toBe(start);
      dispose(all);
      loss.dispose();
    }
  });
});

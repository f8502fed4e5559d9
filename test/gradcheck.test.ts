/**
 * Finite-difference gradient checks of composite functions, in float64.
 *
 * test/ops.test.ts compares each op's gradient with PyTorch's; here whole blocks built from
 * many ops (an attention layer, a contrastive loss, a pair classifier, distillation) are
 * checked against central differences, so a wrong backward anywhere in a chain, or a wrong
 * composition in the engine, shows up even where no reference exists.
 *
 * For each element x_i of each input: (f(x + ε e_i) − f(x − ε e_i)) / 2ε with ε = 1e-6,
 * compared with autograd's ∂f/∂x_i under |a − n| ≤ atol + rtol·|n| (rtol 1e-6, atol 1e-8).
 * In float64 the truncation error is O(ε²·f''') ≈ 1e-12 and the rounding error about
 * 1e-16·|f|/ε ≈ 1e-10·|f|, so functions are scaled to |f| ≈ 1.
 */
import { describe, expect, it } from 'vitest';

import {
  Tensor,
  arange,
  binaryCrossEntropyWithLogits,
  cat,
  crossEntropy,
  keep,
  klDiv,
  layerNorm,
  linear,
  manualSeed,
  mseLoss,
  noGrad,
  randn,
  tensor,
  tidy,
} from '../src/engine/index.js';

interface GradcheckResult {
  ok: boolean;
  checked: number;
  /** The worst element: input index, flat element index, autograd and numeric values. */
  worst: { input: number; element: number; analytic: number; numeric: number; excess: number } | null;
}

/**
 * Compares autograd's gradient of the scalar `fn(...inputs)` with central differences.
 * `inputs` are float64 leaves that require grad; their values are restored afterwards.
 */
function gradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[], options: { eps?: number; rtol?: number; atol?: number } = {}): GradcheckResult {
  const eps = options.eps ?? 1e-6;
  const rtol = options.rtol ?? 1e-6;
  const atol = options.atol ?? 1e-8;
  for (const x of inputs) {
    expect(x.dtype).toBe('float64');
    expect(x.requiresGrad).toBe(true);
    x.zeroGrad(true);
  }

  // Autograd.
  tidy(() => {
    const out = fn(...inputs);
    expect(out.numel).toBe(1);
    out.backward();
  });
  const analytic = inputs.map((x) =>
    tidy(() => {
      const g = x.grad;
      expect(g, 'every input must receive a gradient').not.toBeNull();
      return Float64Array.from(g!.toTypedArray<'float64'>());
    }),
  );

  // Central differences: perturb one element at a time through a view of the input's memory.
  let worst: GradcheckResult['worst'] = null;
  let checked = 0;
  noGrad(() => {
    const evaluate = (): number => tidy(() => fn(...inputs).item());
    inputs.forEach((x, k) => {
      expect(x.isContiguous()).toBe(true);
      const data = x.toTypedArray<'float64'>({ share: true });
      for (let i = 0; i < data.length; i++) {
        const original = data[i]!;
        data[i] = original + eps;
        const plus = evaluate();
        data[i] = original - eps;
        const minus = evaluate();
        data[i] = original;
        const numeric = (plus - minus) / (2 * eps);
        const a = analytic[k]![i]!;
        const excess = Math.abs(a - numeric) - (atol + rtol * Math.abs(numeric));
        checked++;
        if (!(excess <= 0) && (worst === null || !(excess <= worst.excess))) worst = { input: k, element: i, analytic: a, numeric, excess };
      }
    });
  });
  return { ok: worst === null, checked, worst };
}

function expectGradcheck(fn: (...xs: Tensor[]) => Tensor, inputs: Tensor[]): void {
  const result = gradcheck(fn, inputs);
  const total = inputs.reduce((n, x) => n + x.numel, 0);
  expect(result.checked).toBe(total);
  expect(result.ok, `gradcheck failed: ${JSON.stringify(result.worst)}`).toBe(true);
}

/** A float64 leaf that requires grad, kept out of scopes (the caller disposes it). */
function leaf(shape: number[], scale = 1): Tensor {
  return keep(tidy(() => randn(shape, { dtype: 'float64' }).mul(scale)).requiresGrad_());
}

function disposeAll(ts: Tensor[]): void {
  for (const t of ts) t.dispose();
}

describe('gradcheck helper', () => {
  it('passes a function whose gradient autograd gets right', () => {
    manualSeed(1);
    const x = leaf([3, 2]);
    try {
      const result = gradcheck((a) => a.mul(a).sin().sum(), [x]);
      expect(result.ok, JSON.stringify(result.worst)).toBe(true);
    } finally {
      x.dispose();
    }
  });

  it('fails a function whose autograd gradient is wrong (x · detach(x) has numeric gradient 2x)', () => {
    manualSeed(2);
    const x = leaf([4]);
    try {
      const result = gradcheck((a) => a.mul(a.detach()).sum(), [x]);
      expect(result.ok).toBe(false);
      expect(result.worst!.numeric).toBeCloseTo(2 * result.worst!.analytic, 5);
    } finally {
      x.dispose();
    }
  });
});

describe('composite gradients match finite differences (float64)', () => {
  it('a BERT-style encoder layer: q/k/v, masked scaled softmax attention, residual, LayerNorm, GELU feed-forward', () => {
    manualSeed(10);
    const B = 2;
    const S = 4;
    const H = 6;
    const heads = 2;
    const dh = H / heads;
    const F = 8;
    const x = leaf([B, S, H]);
    const [wq, wk, wv, wo] = [0, 1, 2, 3].map(() => leaf([H, H], 0.5));
    const [bq, bk, bv, bo] = [0, 1, 2, 3].map(() => leaf([H], 0.1));
    const ln1w = leaf([H], 0.2);
    const ln1b = leaf([H], 0.1);
    const w1 = leaf([F, H], 0.5);
    const b1 = leaf([F], 0.1);
    const w2 = leaf([H, F], 0.5);
    const b2 = leaf([H], 0.1);
    const ln2w = leaf([H], 0.2);
    const ln2b = leaf([H], 0.1);
    // Padding: the second sequence has two padded positions; masked keys get -inf scores.
    const padding = keep(tensor([[false, false, false, false], [false, false, true, true]]).view(B, 1, 1, S));
    const readout = keep(randn([B, S, H], { dtype: 'float64' }).div(B * S));
    const inputs = [x, wq!, bq!, wk!, bk!, wv!, bv!, wo!, bo!, ln1w, ln1b, w1, b1, w2, b2, ln2w, ln2b];
    try {
      const block = (...p: Tensor[]): Tensor => {
        const [xx, Wq, Bq, Wk, Bk, Wv, Bv, Wo, Bo, L1w, L1b, W1, B1, W2, B2, L2w, L2b] = p;
        const split = (t: Tensor) => t.view(B, S, heads, dh).transpose(1, 2); // (B, heads, S, dh)
        const q = split(linear(xx!, Wq!, Bq!));
        const k = split(linear(xx!, Wk!, Bk!));
        const v = split(linear(xx!, Wv!, Bv!));
        const scores = q.matmul(k.transpose(-1, -2)).div(Math.sqrt(dh)).maskedFill(padding, -Infinity);
        const context = scores.softmax(-1).matmul(v).transpose(1, 2).reshape(B, S, H);
        const attended = layerNorm(linear(context, Wo!, Bo!).add(xx!), [H], L1w!.add(1), L1b!, 1e-12);
        const ff = linear(linear(attended, W1!, B1!).gelu(), W2!, B2!);
        const out = layerNorm(ff.add(attended), [H], L2w!.add(1), L2b!, 1e-12);
        return out.mul(readout).sum();
      };
      expectGradcheck(block, inputs);
    } finally {
      disposeAll([...inputs, padding, readout]);
    }
  });

  it('an InfoNCE loss: masked mean pooling, L2 normalisation, cosine similarity matrix, cross entropy both ways', () => {
    manualSeed(11);
    const B = 3;
    const S = 4;
    const H = 5;
    const tokensA = leaf([B, S, H]);
    const tokensB = leaf([B, S, H]);
    const projection = leaf([H, H], 0.5);
    const maskA = keep(tensor([[1, 1, 1, 0], [1, 1, 0, 0], [1, 1, 1, 1]], { dtype: 'float64' }));
    const maskB = keep(tensor([[1, 0, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]], { dtype: 'float64' }));
    const labels = keep(arange(0, B));
    const temperature = 0.5;
    try {
      const pool = (tokens: Tensor, mask: Tensor): Tensor => {
        const m = mask.unsqueeze(-1); // (B, S, 1)
        return tokens.mul(m).sum(1).div(m.sum(1).clamp(1e-9)); // (B, H)
      };
      const loss = (a: Tensor, b: Tensor, w: Tensor): Tensor => {
        const za = linear(pool(a, maskA), w).normalize({ dim: -1 });
        const zb = linear(pool(b, maskB), w).normalize({ dim: -1 });
        const similarity = za.matmul(zb.transpose(0, 1)).div(temperature); // (B, B) cosine / τ
        return crossEntropy(similarity, labels).add(crossEntropy(similarity.transpose(0, 1), labels)).div(2);
      };
      expectGradcheck(loss, [tokensA, tokensB, projection]);
    } finally {
      disposeAll([tokensA, tokensB, projection, maskA, maskB, labels]);
    }
  });

  it('cross entropy with class weights, label smoothing and an ignored row', () => {
    manualSeed(12);
    const logits = leaf([5, 4]);
    const weight = keep(tensor([0.5, 1, 2, 1.5], { dtype: 'float64' }));
    const target = keep(tensor([0, 3, -100, 1, 2], { dtype: 'int64' }));
    try {
      expectGradcheck((z) => crossEntropy(z, target, { weight, labelSmoothing: 0.1 }), [logits]);
    } finally {
      disposeAll([logits, weight, target]);
    }
  });

  it('binary cross entropy with logits over a Hadamard-product MLP pair head', () => {
    manualSeed(13);
    const N = 4;
    const D = 3;
    const u = leaf([N, D]);
    const v = leaf([N, D]);
    const w1 = leaf([5, 4 * D], 0.5);
    const b1 = leaf([5], 0.1);
    const w2 = leaf([1, 5], 0.5);
    const b2 = leaf([1], 0.1);
    const target = keep(tensor([1, 0, 1, 0], { dtype: 'float64' }));
    const posWeight = keep(tensor([2], { dtype: 'float64' }));
    const inputs = [u, v, w1, b1, w2, b2];
    try {
      const head = (a: Tensor, b: Tensor, W1: Tensor, B1: Tensor, W2: Tensor, B2: Tensor): Tensor => {
        // [u, v, u∘v, (u−v)²]: the usual sentence-pair features, kept smooth for differencing.
        const features = cat([a, b, a.mul(b), a.sub(b).square()], -1);
        const logits = linear(linear(features, W1, B1).tanh(), W2, B2).squeeze(-1);
        return binaryCrossEntropyWithLogits(logits, target, { posWeight });
      };
      expectGradcheck(head, inputs);
    } finally {
      disposeAll([...inputs, target, posWeight]);
    }
  });

  it('distillation: KL divergence between temperature-scaled log_softmax pairs (probability and log targets)', () => {
    manualSeed(14);
    const student = leaf([3, 5]);
    const teacher = leaf([3, 5]);
    const T = 2;
    try {
      expectGradcheck(
        (s, t) => klDiv(s.div(T).logSoftmax(-1), t.div(T).softmax(-1), { reduction: 'batchmean' }).mul(T * T),
        [student, teacher],
      );
      expectGradcheck(
        (s, t) => klDiv(s.div(T).logSoftmax(-1), t.div(T).logSoftmax(-1), { reduction: 'batchmean', logTarget: true }).mul(T * T),
        [student, teacher],
      );
      expectGradcheck((s, t) => klDiv(s.logSoftmax(-1), t.softmax(-1), { reduction: 'sum' }), [student, teacher]);
    } finally {
      disposeAll([student, teacher]);
    }
  });

  it('regression head: MSE over a residual MLP with gathered rows and a log-sum-exp pooling', () => {
    manualSeed(15);
    const x = leaf([4, 3]);
    const w = leaf([3, 3], 0.5);
    const y = keep(randn([3, 3], { dtype: 'float64' }));
    const rows = keep(tensor([[2, 0, 1], [3, 3, 0], [1, 2, 2]], { dtype: 'int64' }));
    try {
      expectGradcheck(
        (a, W) => {
          const h = linear(a, W).sigmoid().add(a); // (4, 3)
          const picked = h.gather(0, rows); // (3, 3)
          return mseLoss(picked.logsumexp(1, { keepdim: true }).expand(3, 3).add(picked), y);
        },
        [x, w],
      );
    } finally {
      disposeAll([x, w, y, rows]);
    }
  });
});

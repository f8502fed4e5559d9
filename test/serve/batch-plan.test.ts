/**
 * planRuns (src/serve/batch-plan.ts): how one model call's texts are cut into onnxruntime runs.
 * Hand-computed plans, and on random inputs the exact optimum found by trying every cut of the
 * sorted order.
 */
import { describe, expect, it } from 'vitest';

import { planRuns } from '../../src/serve/batch-plan.js';

/** Σ (overhead + rows × longest) of a plan. */
function planCost(lengths: readonly number[], runs: number[][], overhead: number): number {
  return runs.reduce((sum, run) => sum + overhead + run.length * Math.max(...run.map((i) => lengths[i]!)), 0);
}

/** The cheapest plan's cost over every way to cut the sorted lengths into runs of at most maxRows. */
function bruteForceCost(lengths: readonly number[], maxRows: number, overhead: number): number {
  const sorted = [...lengths].sort((a, b) => a - b);
  const n = sorted.length;
  let best = Infinity;
  for (let mask = 0; mask < 1 << Math.max(0, n - 1); mask++) {
    let cost = 0;
    let start = 0;
    let ok = true;
    for (let i = 1; i <= n; i++) {
      if (i === n || (mask & (1 << (i - 1))) !== 0) {
        if (i - start > maxRows) ok = false;
        cost += overhead + (i - start) * sorted[i - 1]!;
        start = i;
      }
    }
    if (ok) best = Math.min(best, cost);
  }
  return n === 0 ? 0 : best;
}

describe('planRuns', () => {
  it('splits off a long text when padding the short ones to it costs more than a run', () => {
    // Sorted: 4, 4, 4, 16 (rows 0, 2, 3, 1). One run: 16 + 4 × 16 = 80 positions; two: (16 + 3 × 4) + (16 + 16) = 60.
    expect(planRuns([4, 16, 4, 4], 64, 16)).toEqual([[0, 2, 3], [1]]);
    // A run costing more than the padding saved: one run.
    expect(planRuns([4, 16, 4, 4], 64, 1000)).toEqual([[0, 2, 3, 1]]);
    // 5 and 6 tokens: one run costs o + 12, two cost 2o + 11, so they split only when a run costs under a token.
    expect(planRuns([6, 5], 64, 0.5)).toEqual([[1], [0]]);
    expect(planRuns([6, 5], 64, 16)).toEqual([[1, 0]]);
  });

  it('keeps ties in input order, puts no more than maxRows in a run, and covers every row once', () => {
    expect(planRuns([7, 7, 7], 64, 16)).toEqual([[0, 1, 2]]);
    const runs = planRuns([3, 3, 3, 3, 3], 2, 16);
    expect(runs).toHaveLength(3);
    expect(runs.every((run) => run.length <= 2)).toBe(true);
    expect(runs.flat().sort()).toEqual([0, 1, 2, 3, 4]);
    expect(planRuns([], 64, 16)).toEqual([]);
  });

  it('finds the cheapest plan: the same cost as trying every cut, on random lengths', () => {
    let seed = 7;
    const random = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 2 ** 32);
    for (let trial = 0; trial < 200; trial++) {
      const n = 1 + Math.floor(random() * 11);
      const lengths = Array.from({ length: n }, () => 2 + Math.floor(random() * 30));
      const maxRows = 1 + Math.floor(random() * 6);
      const overhead = [0, 4, 16, 64][trial % 4]!;
      const runs = planRuns(lengths, maxRows, overhead);
      expect(runs.flat().sort((a, b) => a - b)).toEqual(lengths.map((_, i) => i));
      expect(runs.every((run) => run.length <= maxRows)).toBe(true);
      expect(planCost(lengths, runs, overhead), JSON.stringify({ lengths, maxRows, overhead })).toBe(bruteForceCost(lengths, maxRows, overhead));
    }
  });

  it('rejects a maxRows below 1 and a negative overhead', () => {
    expect(() => planRuns([1], 0, 16)).toThrow('maxRows must be an integer ≥ 1, got 0');
    expect(() => planRuns([1], 4, -1)).toThrow('runOverheadTokens must be ≥ 0, got -1');
  });
});

/**
 * Re-ranking: a first stage's candidates re-scored by a pair scorer, checked on a hand-built
 * split where the answer is known.
 */
import { describe, expect, it } from 'vitest';

import { evaluateRetrieval, sampleQueries } from '../../src/eval/evaluate.js';
import { cachedFirstStage, evaluateSplitsReranked, rerankedScorer, standardize, type PairScorer } from '../../src/eval/rerank.js';
import type { EvalSplit } from '../../src/eval/splits.js';
import type { EvalSpec } from '../../src/config/schema.js';
import type { RetrievalSplit } from '../../src/data/types.js';

const split: RetrievalSplit = {
  name: 'toy',
  queryType: 'q',
  docType: 'd',
  corpus: ['a', 'b', 'c', 'd', 'e'].map((text, i) => ({ id: String(i), text })),
  queries: [
    { id: 'q0', text: 'x', relevant: [3], source: '' },
    { id: 'q1', text: 'y', relevant: [4], source: '' },
  ],
  labelledPairs: [],
};

// First stage: q0 ranks d0 > d1 > d2 > d3 > d4; q1 ranks d4 first.
const firstRows = Float32Array.from([5, 4, 3, 2, 1, 1, 2, 3, 4, 5]);
const firstStage = { scoreRows: (start: number, end: number) => firstRows.slice(start * 5, end * 5) };

/** A scorer that likes document 'd' for query 'x', and scores the rest by a fixed table. */
const scorer: PairScorer = {
  scorePairs: (first, second) => Float32Array.from(first.map((q, i) => (q === 'x' && second[i] === 'd' ? 10 : second[i]!.charCodeAt(0) / 100))),
};

describe('rerankedScorer', () => {
  it('re-orders only the top k by the pair scores and keeps the rest below in first-stage order', () => {
    const rows = rerankedScorer(split, firstStage, scorer, 4).scoreRows(0, 2);
    const order = (row: Float32Array): number[] => [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    // q0: candidates d0..d3; the scorer puts d3 first, then d2 > d1 > d0 (char codes); d4 stays last.
    expect(order(rows.subarray(0, 5))).toEqual([3, 2, 1, 0, 4]);
    // q1: candidates d4, d3, d2, d1 re-ordered by char code (e > d > c > b); d0 stays last.
    expect(order(rows.subarray(5, 10))).toEqual([4, 3, 2, 1, 0]);
    // Re-ranking lifts q0's answer from rank 4 to 1 (MRR 1/4 → 1); with k = 3 it is not a candidate.
    expect(evaluateRetrieval(split, firstStage, ['mrr']).mrr).toBeCloseTo((1 / 4 + 1) / 2, 10);
    expect(evaluateRetrieval(split, rerankedScorer(split, firstStage, scorer, 4), ['mrr']).mrr).toBeCloseTo(1, 10);
    expect(evaluateRetrieval(split, rerankedScorer(split, firstStage, scorer, 3), ['mrr']).mrr).toBeCloseTo((1 / 4 + 1) / 2, 10);
  });

  it('fusion orders the candidates by w · z(first stage) + (1 − w) · z(cross-encoder), by hand', () => {
    const order = (row: Float32Array): number[] => [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    // q0, candidates d0..d3: first stage 5, 4, 3, 2 → z = ±1.342, ±0.447 (sd √1.25); the scorer
    // 0.97, 0.98, 0.99, 10 → z = −0.580, −0.577, −0.575, 1.732 (mean 3.235, sd 3.906). At w 0.5:
    // d0 0.381, d1 −0.065, d2 −0.511, d3 0.195, so d0 > d3 > d1 > d2, and d4 stays last.
    const rows = rerankedScorer(split, firstStage, scorer, 4, { fusionWeight: 0.5 }).scoreRows(0, 2);
    expect(order(rows.subarray(0, 5))).toEqual([0, 3, 1, 2, 4]);
    const fused = rows[0]! - rows[3]!;
    expect(fused).toBeCloseTo(0.381 - 0.195, 2);
    // q1: both rankers agree (d4 > d3 > d2 > d1).
    expect(order(rows.subarray(5, 10))).toEqual([4, 3, 2, 1, 0]);
    expect(evaluateRetrieval(split, rerankedScorer(split, firstStage, scorer, 4, { fusionWeight: 0.5 }), ['mrr']).mrr).toBeCloseTo((1 / 2 + 1) / 2, 10);
    // w = 1 is the first stage's order, w = 0 the cross-encoder's.
    expect(order(rerankedScorer(split, firstStage, scorer, 4, { fusionWeight: 1 }).scoreRows(0, 1))).toEqual([0, 1, 2, 3, 4]);
    expect(order(rerankedScorer(split, firstStage, scorer, 4, { fusionWeight: 0 }).scoreRows(0, 1))).toEqual([3, 2, 1, 0, 4]);
    expect([...standardize([2, 2, 2])]).toEqual([0, 0, 0]);
  });

  it('a residual cross-encoder orders the candidates by first stage/τ + its logit, by hand', () => {
    const order = (row: Float32Array): number[] => [...row.keys()].sort((a, b) => row[b]! - row[a]! || a - b);
    // q0, candidates d0..d3: first stage 5, 4, 3, 2; logits 0.97, 0.98, 0.99, 10.
    // τ 1: 5.97, 4.98, 3.99, 12 → d3 > d0 > d1 > d2, and d4 stays last.
    const loose = rerankedScorer(split, firstStage, scorer, 4, { residualTemperature: 1 }).scoreRows(0, 1);
    expect(order(loose)).toEqual([3, 0, 1, 2, 4]);
    expect(loose[3]! - loose[0]!).toBeCloseTo(12 - 5.97, 4);
    // τ 0.1: 50.97, 40.98, 30.99, 30 → the first stage's gaps outweigh the logit of 10.
    const tight = rerankedScorer(split, firstStage, scorer, 4, { residualTemperature: 0.1 }).scoreRows(0, 1);
    expect(order(tight)).toEqual([0, 1, 2, 3, 4]);
    expect(tight[2]! - tight[3]!).toBeCloseTo(30.99 - 30, 3);
    // A zero correction re-ranks exactly as the first stage.
    const zero: PairScorer = { scorePairs: (a) => new Float32Array(a.length) };
    expect(evaluateRetrieval(split, rerankedScorer(split, firstStage, zero, 4, { residualTemperature: 0.05 }), ['mrr']).mrr).toBeCloseTo((1 / 4 + 1) / 2, 10);
  });

  it('cachedFirstStage computes a split once', () => {
    let calls = 0;
    const stage = cachedFirstStage(() => {
      calls++;
      return firstStage;
    });
    expect([...stage(split).scoreRows(1, 2)]).toEqual([1, 2, 3, 4, 5]);
    stage(split).scoreRows(0, 2);
    expect(calls).toBe(1);
  });

  it('evaluateSplitsReranked reports the first stage alone on the same queries, caps the queries with a seeded sample, and adds the fused re-ranking from one scoring', () => {
    const spec = { name: 'toy', recipe: 'r', options: {}, metrics: ['mrr'] } as unknown as EvalSpec;
    const entry: EvalSplit = { spec, kind: 'retrieval', split, sampled: split, lexical: {} as never, hybrid: null };
    let firstStageQueries: string[] = [];
    const stage = cachedFirstStage((s) => {
      firstStageQueries = s.queries.map((q) => q.id);
      const offset = split.queries.indexOf(s.queries[0]!);
      return { scoreRows: (start, end) => firstRows.slice((offset + start) * 5, (offset + end) * 5) };
    });
    const all = evaluateSplitsReranked([entry], stage, scorer, { topK: 4, sampled: false, maxQueries: null, seed: 1, fusionWeight: null, residualTemperature: null });
    // By hand: first stage q0 rank 4, q1 rank 1 → (1/4 + 1)/2; re-ranked both rank 1.
    expect(all['toy/first_stage/mrr']).toBeCloseTo(0.625, 10);
    expect(all['toy/mrr']).toBeCloseTo(1, 10);
    expect(Object.keys(all).sort()).toEqual(['toy/first_stage/mrr', 'toy/mrr']);

    // A cap of one query evaluates the query an eval split's max_queries: 1 would (same seed).
    const capped = evaluateSplitsReranked([entry], stage, scorer, { topK: 4, sampled: false, maxQueries: 1, seed: 7, fusionWeight: null, residualTemperature: null });
    const expected = sampleQueries(split, 1, 7).queries.map((q) => q.id);
    expect(firstStageQueries).toEqual(expected);
    expect(capped['toy/first_stage/mrr']).toBeCloseTo(expected[0] === 'q0' ? 0.25 : 1, 10);
    expect(capped['toy/mrr']).toBeCloseTo(1, 10);

    // With fusion: the fused metrics beside the others, from one scoring of each pair.
    let scored = 0;
    const counting: PairScorer = { scorePairs: (a, b) => ((scored += a.length), scorer.scorePairs(a, b)) };
    const withFusion = evaluateSplitsReranked([entry], stage, counting, { topK: 4, sampled: false, maxQueries: null, seed: 1, fusionWeight: 0.5, residualTemperature: null });
    expect(Object.keys(withFusion).sort()).toEqual(['toy/first_stage/mrr', 'toy/fused/mrr', 'toy/mrr']);
    expect(withFusion['toy/fused/mrr']).toBeCloseTo(0.75, 10);
    expect(scored).toBe(2 * 4);
  });
});

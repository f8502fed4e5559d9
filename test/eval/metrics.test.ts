/**
 * Ranking (src/eval/rank.ts) and metrics (src/eval/metrics/): hand-computed cases with the
 * arithmetic written out, then seeded random inputs compared against the references —
 * numpy stable argsort (tie rule, recall/hit/MRR/nDCG/RP), sklearn.metrics.ndcg_score,
 * sklearn.metrics.roc_auc_score, scipy.stats.spearmanr / pearsonr — run by Debian's
 * /usr/bin/python3 (sklearn 1.2, scipy 1.10) in one process for the whole file.
 */
import { beforeAll, describe, expect, it } from 'vitest';

import {
  METRICS,
  METRIC_NAMES_HELP,
  averageRanks,
  hitAtK,
  meanReciprocalRank,
  ndcgAtK,
  parseMetricName,
  pearson,
  rPrecisionAtK,
  recallAtK,
  rocAuc,
  spearman,
} from '../../src/eval/metrics/index.js';
import { ranksBefore, ranksForQueries, ranksOfRelevant, topK } from '../../src/eval/rank.js';
import { runPython } from '../helpers/python.js';
import { Rng } from '../../src/data/rng.js';

const TOLERANCE = 1e-9;

/** mulberry32: small seeded PRNG so the random cases are reproducible. */
function seededRandom(seed: number): () => number {
  const rng = new Rng(seed); // Mulberry32, the data layer's generator
  return () => rng.next();
}

function randomInt(random: () => number, below: number): number {
  return Math.floor(random() * below);
}

/** `count` distinct integers from [0, below). */
function sampleDistinct(random: () => number, below: number, count: number): number[] {
  const chosen = new Set<number>();
  while (chosen.size < count) chosen.add(randomInt(random, below));
  return [...chosen];
}

function expectClose(actual: number, expected: number, tolerance = TOLERANCE): void {
  expect(Math.abs(actual - expected), `actual ${actual} vs expected ${expected}`).toBeLessThanOrEqual(tolerance);
}

// ---------------------------------------------------------------------------------------------
// Ranking
// ---------------------------------------------------------------------------------------------

describe('rank: tie rule (lower corpus index first, NaN last)', () => {
  // index:                 0    1    2    3    4    5    6
  const scores = Float32Array.from([0.5, 0.9, 0.5, 0.1, 0.9, NaN, 0.5]);
  // Stable descending order: 1 (0.9), 4 (0.9), 0 (0.5), 2 (0.5), 6 (0.5), 3 (0.1), 5 (NaN)
  // so the rank of doc  0 1 2 3 4 5 6  is  3 1 4 6 2 7 5.
  const expectedRankByDoc = [3, 1, 4, 6, 2, 7, 5];

  it('ranks a single relevant document by counting', () => {
    // doc 2: 1 + #{s_j > 0.5} (docs 1, 4) + #{j < 2, s_j = 0.5} (doc 0) = 1 + 2 + 1 = 4
    expect(ranksOfRelevant(scores, [2])).toEqual([4]);
    for (let doc = 0; doc < scores.length; doc++) {
      expect(ranksOfRelevant(scores, [doc])).toEqual([expectedRankByDoc[doc]]);
    }
  });

  it('ranks several relevant documents (binary-search path), in the given order', () => {
    expect(ranksOfRelevant(scores, [6, 0, 5])).toEqual([5, 3, 7]);
    expect(ranksOfRelevant(scores, [0, 1, 2, 3, 4, 5, 6])).toEqual(expectedRankByDoc);
    expect(ranksOfRelevant(Float64Array.from(scores), [5, 4, 3, 2, 1, 0])).toEqual([7, 2, 6, 4, 1, 3]);
  });

  it('puts NaN after -Infinity and treats -0 and +0 as a tie', () => {
    expect(ranksOfRelevant(Float64Array.from([NaN, -Infinity]), [0, 1])).toEqual([2, 1]);
    expect(ranksOfRelevant(Float64Array.from([NaN, NaN, 1]), [0, 1])).toEqual([2, 3]);
    expect(ranksOfRelevant(Float64Array.from([-0, 0]), [1])).toEqual([2]);
    expect(ranksBefore(0, 0, -0, 1)).toBe(true);
    expect(ranksBefore(-0, 1, 0, 0)).toBe(false);
  });

  it('topK returns the best k in the same order', () => {
    expect(Array.from(topK(scores, 4))).toEqual([1, 4, 0, 2]);
    expect(Array.from(topK(scores, 100))).toEqual([1, 4, 0, 2, 6, 3, 5]);
    expect(Array.from(topK(scores, 0))).toEqual([]);
    expect(() => topK(scores, 1.5)).toThrow(/non-negative integer/);
  });

  it('rejects bad relevant indices', () => {
    expect(() => ranksOfRelevant(scores, [7])).toThrow(/not an integer in \[0, 7\)/);
    expect(() => ranksOfRelevant(scores, [1, 1])).toThrow(/listed twice/);
    expect(ranksOfRelevant(scores, [])).toEqual([]);
  });

  it('ranksForQueries slices a row-major matrix', () => {
    // Row 0: [0.2, 0.7, 0.7] → doc 2: 1 + #{> 0.7} (none) + #{j < 2, = 0.7} (doc 1) = 2.
    // Row 1: [0.3, 0.3, 0.9] → doc 0: 1 + 1 (doc 2) + 0 = 2; doc 1: 1 + 1 + 1 (doc 0) = 3.
    const matrix = Float32Array.from([0.2, 0.7, 0.7, 0.3, 0.3, 0.9]);
    expect(ranksForQueries(matrix, 3, [[2], [0, 1]])).toEqual([[2], [2, 3]]);
    expect(() => ranksForQueries(matrix, 4, [[0], [1]])).toThrow(/expected 2 queries × 4 documents = 8/);
    expect(() => ranksForQueries(matrix, 3, [[0], [3]])).toThrow(/query 1:/);
  });
});

// ---------------------------------------------------------------------------------------------
// Retrieval metrics, by hand
// ---------------------------------------------------------------------------------------------

describe('retrieval metrics: hand-computed', () => {
  // Three queries: relevant ranks {1, 4}, {3}, {2, 5, 11}.
  const ranks = [[1, 4], [3], [2, 5, 11]];

  it('recall@k', () => {
    // @3: 1/2, 1/1, 1/3 → (1/2 + 1 + 1/3)/3 = 11/18
    expectClose(recallAtK(ranks, 3), 11 / 18);
    // @1: 1/2, 0, 0 → 1/6
    expectClose(recallAtK(ranks, 1), 1 / 6);
    // @5: 2/2, 1/1, 2/3 → (1 + 1 + 2/3)/3 = 8/9
    expectClose(recallAtK(ranks, 5), 8 / 9);
    // @4: 2/2, 1/1, 1/3 → (7/3)/3 = 7/9
    expectClose(recallAtK(ranks, 4), 7 / 9);
    // @11: everything retrieved
    expectClose(recallAtK(ranks, 11), 1);
  });

  it('hit@k', () => {
    // best ranks 1, 3, 2
    expectClose(hitAtK(ranks, 1), 1 / 3);
    expectClose(hitAtK(ranks, 2), 2 / 3);
    expectClose(hitAtK(ranks, 3), 1);
  });

  it('mrr and mrr@k', () => {
    // 1/1, 1/3, 1/2 → (1 + 1/3 + 1/2)/3 = 11/18
    expectClose(meanReciprocalRank(ranks), 11 / 18);
    // @2: 1, 0 (rank 3 > 2), 1/2 → 1.5/3 = 1/2
    expectClose(meanReciprocalRank(ranks, 2), 0.5);
    expectClose(meanReciprocalRank([[1000]]), 0.001);
  });

  it('ndcg@k (binary)', () => {
    const g = (rank: number): number => 1 / Math.log2(rank + 1);
    // @5: q0 DCG = g(1) + g(4) = 1 + 1/log2(5), IDCG = g(1) + g(2) = 1 + 1/log2(3)
    //     q1 DCG = g(3) = 1/2,                  IDCG = g(1) = 1
    //     q2 DCG = g(2) + g(5) = 1/log2(3) + 1/log2(6), IDCG = g(1)+g(2)+g(3) = 1.5 + 1/log2(3)
    const q0 = (1 + 1 / Math.log2(5)) / (1 + 1 / Math.log2(3));
    const q1 = 0.5;
    const q2 = (1 / Math.log2(3) + 1 / Math.log2(6)) / (1.5 + 1 / Math.log2(3));
    expectClose(ndcgAtK(ranks, 5), (q0 + q1 + q2) / 3);
    // Numerically: log2 5 = 2.321928, log2 3 = 1.584963, log2 6 = 2.584963
    //   q0 = 1.430677 / 1.630930 = 0.877215;  q2 = (0.630930 + 0.386853) / 2.130930 = 0.477624
    //   mean = (0.877215 + 0.5 + 0.477624) / 3 = 0.618280
    expectClose((q0 + q1 + q2) / 3, 0.61828, 1e-6); // the number itself, so a formula slip in both shows
    expect(g(3)).toBe(0.5);
    // default k = 10: rank 11 of q2 still excluded, IDCG for q2 is the same 3 terms.
    expectClose(ndcgAtK(ranks), ndcgAtK(ranks, 10));
    expectClose(ndcgAtK([[1, 2, 3]], 2), 1); // R > k: a perfect top-k is still 1
  });

  it('rp@k (Decorte et al. 2023)', () => {
    // @2: q0 1/min(2,2) = 1/2, q1 0/min(2,1) = 0, q2 1/min(2,3) = 1/2 → 1/3
    expectClose(rPrecisionAtK(ranks, 2), 1 / 3);
    // @1: q0 1/1, q1 0, q2 0 → 1/3 (recall@1 is only 1/6: RP does not punish R > K)
    expectClose(rPrecisionAtK(ranks, 1), 1 / 3);
    // @5: q0 2/min(5,2) = 1, q1 1/1, q2 2/min(5,3) = 2/3 → 8/9 (= recall@5 since every R ≤ 5)
    expectClose(rPrecisionAtK(ranks, 5), 8 / 9);
  });

  it('rejects empty queries (naming them), bad ranks and bad cutoffs', () => {
    expect(() => recallAtK([[1], [], [2]], 5)).toThrow(/query 1 has no relevant documents/);
    expect(() => meanReciprocalRank([])).toThrow(/no queries/);
    expect(() => ndcgAtK([[0]], 10)).toThrow(/1-based/);
    expect(() => hitAtK([[2, 2]], 10)).toThrow(/twice/);
    expect(() => rPrecisionAtK([[1]], 0)).toThrow(/positive integer/);
  });
});

// ---------------------------------------------------------------------------------------------
// Pair and correlation metrics, by hand
// ---------------------------------------------------------------------------------------------

describe('roc_auc and correlations: hand-computed', () => {
  it('roc_auc', () => {
    // sklearn docs example: positives 0.35, 0.8; negatives 0.1, 0.4.
    // 0.35 beats 0.1 (1), loses to 0.4 (0); 0.8 beats both (2) → 3/4.
    expectClose(rocAuc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);
    // Ties count half: positives 0.5, 0.9; negatives 0.5, 0.2.
    // 0.5 vs 0.5 → ½, 0.5 vs 0.2 → 1, 0.9 vs both → 2 → 3.5/4.
    expectClose(rocAuc(Float32Array.from([0.5, 0.5, 0.2, 0.9]), [true, false, false, true]), 0.875);
    // All scores equal → every pair ties → ½.
    expectClose(rocAuc([1, 1, 1], [1, 0, 0]), 0.5);
    expectClose(rocAuc([-Infinity, Infinity], [0, 1]), 1);
  });

  it('roc_auc rejects one class, non-binary labels and NaN', () => {
    expect(() => rocAuc([0.1, 0.2], [1, 1])).toThrow(/only one class/);
    expect(() => rocAuc([0.1, 0.2], [0, 2])).toThrow(/not binary/);
    expect(() => rocAuc([NaN, 0.2], [0, 1])).toThrow(/NaN/);
    expect(() => rocAuc([0.1], [0, 1])).toThrow(/1 scores but 2 labels/);
  });

  it('spearman with ties', () => {
    // x = [1, 2, 2, 3] → average ranks [1, 2.5, 2.5, 4];  y = [1, 3, 2, 4] → ranks [1, 3, 2, 4].
    // Both means 2.5. dx = [-1.5, 0, 0, 1.5], dy = [-1.5, 0.5, -0.5, 1.5].
    // cov = 2.25 + 2.25 = 4.5; Σdx² = 4.5; Σdy² = 5 → ρ = 4.5 / sqrt(22.5) = sqrt(0.9).
    expect(Array.from(averageRanks([1, 2, 2, 3]))).toEqual([1, 2.5, 2.5, 4]);
    expectClose(spearman([1, 2, 2, 3], [1, 3, 2, 4]), Math.sqrt(0.9));
    expectClose(spearman([1, 2, 3], [30, 20, 10]), -1);
    expect(spearman([1, 2, 3], [5, 5, 5])).toBeNaN();
    expect(spearman([1, NaN, 3], [1, 2, 3])).toBeNaN();
    expect(spearman([1], [1])).toBeNaN();
  });

  it('pearson', () => {
    // x = [1, 2, 3], y = [2, 4, 7]: dx = [-1, 0, 1], dy = [-7/3, -1/3, 8/3].
    // cov = 7/3 + 8/3 = 5; Σdx² = 2; Σdy² = (49 + 1 + 64)/9 = 114/9 → r = 5/sqrt(228/9) = 15/sqrt(228).
    expectClose(pearson([1, 2, 3], [2, 4, 7]), 15 / Math.sqrt(228));
    expect(pearson([4, 4], [1, 2])).toBeNaN();
    expect(() => pearson([1, 2], [1])).toThrow(/differ in length/);
  });
});

// ---------------------------------------------------------------------------------------------
// Registry
// ---------------------------------------------------------------------------------------------

describe('metric registry', () => {
  it('parses specs into canonical names and kinds', () => {
    const ranks = [[1, 4], [3], [2, 5, 11]];
    const recall = parseMetricName('recall@3');
    expect(recall.name).toBe('recall@3');
    expect(recall.kind).toBe('ranking');
    if (recall.kind !== 'ranking') throw new Error('unreachable');
    expectClose(recall.compute(ranks), 11 / 18);

    expect(parseMetricName('ndcg').name).toBe('ndcg@10');
    expect(parseMetricName(' NDCG@5 ').name).toBe('ndcg@5');
    expect(parseMetricName('mrr').name).toBe('mrr');
    expect(parseMetricName('mrr@10').name).toBe('mrr@10');
    expect(parseMetricName('hit@5').name).toBe('hit@5');
    expect(parseMetricName('rp@5').name).toBe('rp@5');

    const mrr2 = parseMetricName('mrr@2');
    if (mrr2.kind !== 'ranking') throw new Error('mrr should be a ranking metric');
    expectClose(mrr2.compute(ranks), 0.5);

    const auc = parseMetricName('roc_auc');
    expect(auc.kind).toBe('pair');
    if (auc.kind !== 'pair') throw new Error('unreachable');
    expectClose(auc.compute([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]), 0.75);

    const rho = parseMetricName('spearman');
    expect(rho.kind).toBe('correlation');
    if (rho.kind !== 'correlation') throw new Error('unreachable');
    expectClose(rho.compute([1, 2, 2, 3], [1, 3, 2, 4]), Math.sqrt(0.9));
    expect(parseMetricName('pearson').kind).toBe('correlation');
  });

  it('rejects bad names with the list of accepted forms', () => {
    expect(() => parseMetricName('recall')).toThrow(/needs a cutoff, e\.g\. recall@10/);
    expect(() => parseMetricName('precision@5')).toThrow(/no metric called "precision"[\s\S]*recall@K/);
    expect(() => parseMetricName('roc_auc@5')).toThrow(/takes no @k/);
    expect(() => parseMetricName('hit@0')).toThrow(/positive integer/);
    expect(() => parseMetricName('ndcg@ten')).toThrow(/NAME or NAME@K/);
    expect(() => parseMetricName('constructor')).toThrow(/no metric called/);
    for (const base of Object.keys(METRICS)) expect(METRIC_NAMES_HELP).toContain(base);
  });
});

// ---------------------------------------------------------------------------------------------
// Random inputs vs numpy / sklearn / scipy
// ---------------------------------------------------------------------------------------------

const CUTOFFS = [1, 3, 5, 10] as const;

interface RetrievalCase {
  numDocs: number;
  /** Row-major scores; null = NaN (JSON has no NaN). */
  scores: (number | null)[];
  relevant: number[][];
}

interface ReferenceOutput {
  retrieval: {
    ranks: number[][];
    top10: number[][];
    recall: number[];
    hit: number[];
    mrr: number;
    mrr10: number;
    ndcg: number[];
    rp: number[];
  }[];
  sklearnNdcg: number[];
  rocAuc: number[];
  spearman: number[];
  pearson: number[];
}

const REFERENCE_SCRIPT = String.raw`
import json, sys
import numpy as np
from scipy.stats import pearsonr, spearmanr
from sklearn.metrics import ndcg_score, roc_auc_score

cases = json.load(sys.stdin)
cutoffs = cases['cutoffs']
out = {'retrieval': [], 'sklearnNdcg': [], 'rocAuc': [], 'spearman': [], 'pearson': []}

for case in cases['retrieval']:
    d = case['numDocs']
    s = np.array([np.nan if v is None else v for v in case['scores']], dtype=np.float64).reshape(-1, d)
    ranks, top10 = [], []
    per_query = {'recall': [], 'hit': [], 'ndcg': [], 'rp': [], 'mrr': [], 'mrr10': []}
    for q, rel in enumerate(case['relevant']):
        order = np.argsort(-s[q], kind='stable')   # NaN sorts last; ties keep index order
        position = np.empty(d, dtype=np.int64)
        position[order] = np.arange(1, d + 1)
        r = position[rel]
        ranks.append(r.tolist())
        top10.append(order[:10].tolist())
        is_rel = np.zeros(d); is_rel[rel] = 1
        gains = is_rel[order]
        discounts = 1.0 / np.log2(np.arange(2, d + 2))
        R = len(rel)
        per_query['recall'].append([gains[:k].sum() / R for k in cutoffs])
        per_query['hit'].append([float(gains[:k].any()) for k in cutoffs])
        per_query['rp'].append([gains[:k].sum() / min(k, R) for k in cutoffs])
        per_query['ndcg'].append([(gains[:k] * discounts[:k]).sum() / discounts[:min(k, R)].sum() for k in cutoffs])
        first = r.min()
        per_query['mrr'].append(1.0 / first)
        per_query['mrr10'].append(1.0 / first if first <= 10 else 0.0)
    out['retrieval'].append({
        'ranks': ranks, 'top10': top10,
        'recall': np.mean(per_query['recall'], axis=0).tolist(),
        'hit': np.mean(per_query['hit'], axis=0).tolist(),
        'ndcg': np.mean(per_query['ndcg'], axis=0).tolist(),
        'rp': np.mean(per_query['rp'], axis=0).tolist(),
        'mrr': float(np.mean(per_query['mrr'])),
        'mrr10': float(np.mean(per_query['mrr10'])),
    })

for case in cases['sklearnNdcg']:
    d = case['numDocs']
    s = np.array(case['scores']).reshape(-1, d)
    y = np.zeros_like(s)
    for q, rel in enumerate(case['relevant']):
        y[q, rel] = 1
    out['sklearnNdcg'].append(float(ndcg_score(y, s, k=case['k'])))

for case in cases['rocAuc']:
    out['rocAuc'].append(float(roc_auc_score(case['labels'], case['scores'])))

for case in cases['correlation']:
    out['spearman'].append(float(spearmanr(case['x'], case['y']).correlation))
    out['pearson'].append(float(pearsonr(case['x'], case['y'])[0]))

json.dump(out, sys.stdout)
`;

describe('random inputs vs numpy / sklearn / scipy', () => {
  const random = seededRandom(20240607);

  // Retrieval: scores rounded to 1 decimal (heavy ties), ~3% NaN, 1..8 relevant per query; one
  // case with many relevant documents per query to exercise the binary-search path harder.
  const retrievalCases: { numDocs: number; scores: Float32Array; relevant: number[][] }[] = [];
  for (const [numQueries, numDocs, maxRelevant, decimals] of [
    [40, 30, 3, 1],
    [50, 200, 8, 1],
    [30, 120, 40, 2],
    [20, 15, 15, 0],
  ] as const) {
    const scores = new Float32Array(numQueries * numDocs);
    const factor = 10 ** decimals;
    for (let i = 0; i < scores.length; i++) {
      scores[i] = random() < 0.03 ? NaN : Math.round(random() * factor) / factor;
    }
    const relevant = Array.from({ length: numQueries }, () =>
      sampleDistinct(random, numDocs, 1 + randomInt(random, maxRelevant)),
    );
    retrievalCases.push({ numDocs, scores, relevant });
  }

  // sklearn ndcg_score: continuous scores (ties essentially impossible in float64).
  const ndcgCases = [
    { numQueries: 40, numDocs: 60, k: 10 },
    { numQueries: 25, numDocs: 12, k: 5 },
  ].map(({ numQueries, numDocs, k }) => ({
    numDocs,
    k,
    scores: Float64Array.from({ length: numQueries * numDocs }, () => random()),
    relevant: Array.from({ length: numQueries }, () => sampleDistinct(random, numDocs, 1 + randomInt(random, 6))),
  }));

  // ROC-AUC: continuous, rounded to 1 decimal, and near-constant integer scores.
  const aucCases = (
    [
      [500, (x: number) => x],
      [500, (x: number) => Math.round(x * 10) / 10],
      [300, (x: number) => Math.round(x * 3)],
      [7, (x: number) => Math.round(x * 10) / 10],
    ] as const
  ).map(([n, transform]) => {
    const labels = Array.from({ length: n }, (_, i) => (i < 2 ? i : random() < 0.3 ? 1 : 0)); // both classes
    // Positives lean higher so the AUC is not ≈ 0.5 by construction.
    const scores = labels.map((label) => transform(Math.min(1, random() * 0.8 + label * 0.2)));
    return { scores, labels };
  });

  // Correlations: continuous and tied (integer-valued) inputs.
  const correlationCases = (
    [
      [200, (x: number) => x],
      [200, (x: number) => Math.round(x * 5)],
      [9, (x: number) => Math.round(x * 3)],
    ] as const
  ).map(([n, transform]) => {
    const x = Array.from({ length: n }, () => transform(random()));
    const y = x.map((value) => transform(random()) + value); // correlated
    return { x, y };
  });

  let reference: ReferenceOutput;
  beforeAll(() => {
    const input: {
      cutoffs: readonly number[];
      retrieval: RetrievalCase[];
      sklearnNdcg: { numDocs: number; k: number; scores: number[]; relevant: number[][] }[];
      rocAuc: { scores: number[]; labels: number[] }[];
      correlation: { x: number[]; y: number[] }[];
    } = {
      cutoffs: CUTOFFS,
      retrieval: retrievalCases.map(({ numDocs, scores, relevant }) => ({
        numDocs,
        // float32 → number is exact, so Python sees exactly the values TS ranks.
        scores: Array.from(scores, (value) => (Number.isNaN(value) ? null : value)),
        relevant,
      })),
      sklearnNdcg: ndcgCases.map(({ numDocs, k, scores, relevant }) => ({
        numDocs,
        k,
        scores: Array.from(scores),
        relevant,
      })),
      rocAuc: aucCases,
      correlation: correlationCases,
    };
    reference = JSON.parse(runPython(['-c', REFERENCE_SCRIPT], { input: JSON.stringify(input) })) as ReferenceOutput;
  });

  it('ranks and topK match np.argsort(-s, kind="stable") (ties and NaN included)', () => {
    retrievalCases.forEach(({ numDocs, scores, relevant }, caseIndex) => {
      const expected = reference.retrieval[caseIndex]!;
      expect(ranksForQueries(scores, numDocs, relevant)).toEqual(expected.ranks);
      relevant.forEach((_, q) => {
        const row = scores.subarray(q * numDocs, (q + 1) * numDocs);
        expect(Array.from(topK(row, 10))).toEqual(expected.top10[q]);
      });
    });
  });

  it('recall / hit / mrr / ndcg / rp match numpy on stable-argsort rankings', () => {
    retrievalCases.forEach(({ numDocs, scores, relevant }, caseIndex) => {
      const expected = reference.retrieval[caseIndex]!;
      const ranks = ranksForQueries(scores, numDocs, relevant);
      CUTOFFS.forEach((k, i) => {
        expectClose(recallAtK(ranks, k), expected.recall[i]!);
        expectClose(hitAtK(ranks, k), expected.hit[i]!);
        expectClose(ndcgAtK(ranks, k), expected.ndcg[i]!);
        expectClose(rPrecisionAtK(ranks, k), expected.rp[i]!);
      });
      expectClose(meanReciprocalRank(ranks), expected.mrr);
      expectClose(meanReciprocalRank(ranks, 10), expected.mrr10);
    });
    // The cases are not degenerate: some metrics are strictly between 0 and 1.
    expect(reference.retrieval[1]!.recall[2]).toBeGreaterThan(0);
    expect(reference.retrieval[1]!.recall[2]).toBeLessThan(1);
  });

  it('ndcg@k matches sklearn.metrics.ndcg_score on tie-free scores', () => {
    ndcgCases.forEach(({ numDocs, k, scores, relevant }, caseIndex) => {
      const ranks = ranksForQueries(scores, numDocs, relevant);
      expectClose(ndcgAtK(ranks, k), reference.sklearnNdcg[caseIndex]!);
    });
  });

  it('roc_auc matches sklearn.metrics.roc_auc_score (with many ties)', () => {
    aucCases.forEach(({ scores, labels }, caseIndex) => {
      expectClose(rocAuc(scores, labels), reference.rocAuc[caseIndex]!);
    });
    expect(reference.rocAuc[0]).toBeGreaterThan(0.55);
  });

  it('spearman and pearson match scipy.stats (with ties)', () => {
    correlationCases.forEach(({ x, y }, caseIndex) => {
      expectClose(spearman(x, y), reference.spearman[caseIndex]!);
      expectClose(pearson(x, y), reference.pearson[caseIndex]!);
    });
  });
});

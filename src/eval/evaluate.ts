/**
 * Evaluators: a split plus something that scores it → named metrics. The same functions serve
 * the trainer, `kiln eval`, the lexical baselines, the hybrid and (later) `kiln gate` and exported models: all
 * they need is a `RetrievalScorer` (rows of the query × corpus score matrix) or predicted
 * similarities for scored pairs.
 *
 * Retrieval: every query is ranked against the whole corpus (ranks by rank.ts, ties broken by
 * lower corpus index); ranking metrics average over queries; `roc_auc` is computed over the
 * split's labelled (query, doc) pairs, read from the same score rows. Scored pairs (STS-B):
 * `spearman`/`pearson`-style correlation metrics between predicted similarity and gold score.
 */
import { parseMetricName, type Metric } from './metrics/index.js';
import { ranksOfRelevant } from './rank.js';
import type { RetrievalSplit, ScoredTextPair } from '../data/types.js';

/** Scores queries [start, end) against the whole corpus: a row-major (end − start) × corpus matrix. */
export interface RetrievalScorer {
  scoreRows(start: number, end: number): Float32Array;
}

/** A seeded subset of a split's queries (the labelled pairs follow their queries). */
export function sampleQueries(split: RetrievalSplit, maxQueries: number | undefined, seed: number): RetrievalSplit {
  if (maxQueries === undefined || maxQueries >= split.queries.length) return split;
  // Partial Fisher–Yates with a 32-bit LCG: cheap, and a pure function of the seed.
  const order = split.queries.map((_, i) => i);
  let state = seed >>> 0 || 1;
  for (let i = 0; i < maxQueries; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    const j = i + (state % (order.length - i));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const chosen = order.slice(0, maxQueries).sort((a, b) => a - b);
  const newIndex = new Map(chosen.map((old, i) => [old, i]));
  return {
    ...split,
    queries: chosen.map((i) => split.queries[i]!),
    labelledPairs: split.labelledPairs.flatMap((p) => {
      const q = newIndex.get(p.query);
      return q === undefined ? [] : [{ ...p, query: q }];
    }),
  };
}

export function evaluateRetrieval(split: RetrievalSplit, scorer: RetrievalScorer, metricNames: readonly string[], chunk = 512): Record<string, number> {
  const metrics = metricNames.map((name) => [name, parseMetricName(name)] as const);
  for (const [name, metric] of metrics) {
    if (metric.kind === 'correlation') throw new Error(`metric '${name}' needs scored pairs, but split '${split.name}' is a retrieval split`);
  }
  const numDocs = split.corpus.length;
  const ranks: number[][] = [];
  const pairsByQuery = new Map<number, Array<{ doc: number; label: 0 | 1 }>>();
  for (const p of split.labelledPairs) {
    const list = pairsByQuery.get(p.query) ?? [];
    list.push({ doc: p.doc, label: p.label });
    pairsByQuery.set(p.query, list);
  }
  const pairScores: number[] = [];
  const pairLabels: number[] = [];
  for (let start = 0; start < split.queries.length; start += chunk) {
    const end = Math.min(split.queries.length, start + chunk);
    const scores = scorer.scoreRows(start, end);
    if (scores.length !== (end - start) * numDocs) throw new Error(`scorer returned ${scores.length} scores for ${end - start} queries × ${numDocs} documents`);
    for (let q = start; q < end; q++) {
      const row = scores.subarray((q - start) * numDocs, (q - start + 1) * numDocs);
      ranks.push(ranksOfRelevant(row, split.queries[q]!.relevant));
      for (const p of pairsByQuery.get(q) ?? []) {
        pairScores.push(row[p.doc]!);
        pairLabels.push(p.label);
      }
    }
  }
  const out: Record<string, number> = {};
  for (const [name, metric] of metrics) out[name] = computeRetrievalMetric(metric, ranks, pairScores, pairLabels);
  return out;
}

function computeRetrievalMetric(metric: Metric, ranks: number[][], pairScores: number[], pairLabels: number[]): number {
  if (metric.kind === 'ranking') return metric.compute(ranks);
  if (metric.kind === 'pair') return metric.compute(pairScores, pairLabels);
  throw new Error(`metric '${metric.name}' does not apply to a retrieval split`);
}

export function evaluateScoredPairs(name: string, pairs: readonly ScoredTextPair[], predicted: ArrayLike<number>, metricNames: readonly string[]): Record<string, number> {
  const gold = pairs.map((p) => p.score);
  const out: Record<string, number> = {};
  for (const metricName of metricNames) {
    const metric = parseMetricName(metricName);
    if (metric.kind === 'ranking') throw new Error(`metric '${metricName}' needs a retrieval split, but '${name}' is a scored-pairs split`);
    if (metric.kind === 'pair') {
      // ROC-AUC ranks the pairs by predicted score against binary labels: graded gold scores have none.
      const bad = gold.findIndex((g) => g !== 0 && g !== 1);
      if (bad !== -1) throw new Error(`metric '${metricName}' needs 0/1 labels, but pair ${bad + 1} of '${name}' (${pairs[bad]!.source}) scores ${gold[bad]}; use spearman or pearson for graded scores`);
      out[metricName] = metric.compute(Array.from(predicted), gold);
      continue;
    }
    out[metricName] = metric.compute(predicted, gold);
  }
  return out;
}


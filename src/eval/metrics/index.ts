/**
 * Metric registry: parses a metric spec such as `recall@10`, `hit@5`, `mrr`, `mrr@10`,
 * `ndcg@10`, `rp@5`, `roc_auc`, `spearman`, `pearson` into a metric object an evaluator can call.
 *
 * Metrics come in three kinds, because they consume different inputs:
 *   - 'ranking'     — per query, the 1-based ranks of its relevant documents (../rank.ts);
 *   - 'pair'        — one score and one binary label per pair (ROC-AUC);
 *   - 'correlation' — predicted and gold real values (Spearman, Pearson).
 * An evaluator can group the requested metrics by `kind` and compute each input once.
 *
 * Every metric returns a fraction (retrieval metrics and AUC in [0, 1], correlations in
 * [−1, 1]); any ×100 scaling is the summary's business. Formulas and sources are in each
 * metric's own file and in docs/metrics.md.
 */
import { hitAtK } from './hit.js';
import { meanReciprocalRank } from './mrr.js';
import { DEFAULT_NDCG_CUTOFF, ndcgAtK } from './ndcg.js';
import { recallAtK } from './recall.js';
import { rocAuc, type BinaryLabel } from './roc-auc.js';
import { rPrecisionAtK } from './rprecision.js';
import { pearson, spearman } from './spearman.js';
import type { RelevantRanks } from './validate.js';

export { hitAtK, meanReciprocalRank, ndcgAtK, recallAtK, rocAuc, rPrecisionAtK, pearson, spearman };
export { averageRanks } from './spearman.js';
export { DEFAULT_NDCG_CUTOFF };
export type { BinaryLabel, RelevantRanks };

export type MetricKind = 'ranking' | 'pair' | 'correlation';

export interface RankingMetric {
  readonly kind: 'ranking';
  /** Canonical spec, e.g. `ndcg@10` (also for input `ndcg`, which defaults the cutoff). */
  readonly name: string;
  readonly compute: (ranks: RelevantRanks) => number;
}

export interface PairMetric {
  readonly kind: 'pair';
  readonly name: string;
  readonly compute: (scores: ArrayLike<number>, labels: ArrayLike<BinaryLabel>) => number;
}

export interface CorrelationMetric {
  readonly kind: 'correlation';
  readonly name: string;
  readonly compute: (predicted: ArrayLike<number>, gold: ArrayLike<number>) => number;
}

export type Metric = RankingMetric | PairMetric | CorrelationMetric;

/** How a family treats the `@k` suffix. */
export type CutoffRule =
  | { readonly rule: 'required' }
  | { readonly rule: 'optional' } // absent = no cutoff
  | { readonly rule: 'defaulted'; readonly defaultK: number } // absent = defaultK
  | { readonly rule: 'none' };

export interface MetricFamily {
  readonly kind: MetricKind;
  readonly cutoff: CutoffRule;
  readonly description: string;
  /** Builds the metric; `k` is set exactly when the cutoff rule yields one. */
  readonly build: (k: number | undefined) => Metric;
}

function withCutoff(family: string, k: number | undefined): number {
  if (k === undefined) throw new Error(`internal: ${family} built without a cutoff`);
  return k;
}

/** Metric families by base name (the part before `@`). */
export const METRICS: Readonly<Record<string, MetricFamily>> = {
  recall: {
    kind: 'ranking',
    cutoff: { rule: 'required' },
    description: 'fraction of relevant documents in the top k, averaged over queries',
    build: (k) => {
      const cutoff = withCutoff('recall', k);
      return { kind: 'ranking', name: `recall@${cutoff}`, compute: (ranks) => recallAtK(ranks, cutoff) };
    },
  },
  hit: {
    kind: 'ranking',
    cutoff: { rule: 'required' },
    description: '1 if any relevant document is in the top k, averaged over queries',
    build: (k) => {
      const cutoff = withCutoff('hit', k);
      return { kind: 'ranking', name: `hit@${cutoff}`, compute: (ranks) => hitAtK(ranks, cutoff) };
    },
  },
  mrr: {
    kind: 'ranking',
    cutoff: { rule: 'optional' },
    description: 'mean reciprocal rank of the first relevant document (0 beyond k when @k is given)',
    build: (k) => ({
      kind: 'ranking',
      name: k === undefined ? 'mrr' : `mrr@${k}`,
      compute: (ranks) => meanReciprocalRank(ranks, k),
    }),
  },
  ndcg: {
    kind: 'ranking',
    cutoff: { rule: 'defaulted', defaultK: DEFAULT_NDCG_CUTOFF },
    description: `binary-relevance nDCG at k (default ${DEFAULT_NDCG_CUTOFF})`,
    build: (k) => {
      const cutoff = withCutoff('ndcg', k);
      return { kind: 'ranking', name: `ndcg@${cutoff}`, compute: (ranks) => ndcgAtK(ranks, cutoff) };
    },
  },
  rp: {
    kind: 'ranking',
    cutoff: { rule: 'required' },
    description: 'R-Precision at k: relevant in top k / min(k, #relevant), averaged (Decorte et al. 2023)',
    build: (k) => {
      const cutoff = withCutoff('rp', k);
      return { kind: 'ranking', name: `rp@${cutoff}`, compute: (ranks) => rPrecisionAtK(ranks, cutoff) };
    },
  },
  roc_auc: {
    kind: 'pair',
    cutoff: { rule: 'none' },
    description: 'ROC-AUC of pair scores vs binary labels (ties count half, = sklearn roc_auc_score)',
    build: () => ({ kind: 'pair', name: 'roc_auc', compute: rocAuc }),
  },
  spearman: {
    kind: 'correlation',
    cutoff: { rule: 'none' },
    description: 'Spearman rank correlation with average ranks for ties (= scipy.stats.spearmanr)',
    build: () => ({ kind: 'correlation', name: 'spearman', compute: spearman }),
  },
  pearson: {
    kind: 'correlation',
    cutoff: { rule: 'none' },
    description: 'Pearson linear correlation (= scipy.stats.pearsonr)',
    build: () => ({ kind: 'correlation', name: 'pearson', compute: pearson }),
  },
};

function formatFamily(base: string, family: MetricFamily): string {
  switch (family.cutoff.rule) {
    case 'required':
      return `${base}@K`;
    case 'optional':
      return `${base} | ${base}@K`;
    case 'defaulted':
      return `${base}@K (${base} = ${base}@${family.cutoff.defaultK})`;
    case 'none':
      return base;
  }
}

/** Human-readable list of accepted metric specs, for CLI help and error messages. */
export const METRIC_NAMES_HELP: string = Object.entries(METRICS)
  .map(([base, family]) => `  ${formatFamily(base, family).padEnd(34)} [${family.kind}] ${family.description}`)
  .join('\n');

function badName(name: string, why: string): Error {
  return new Error(`unknown metric "${name}": ${why}. Accepted forms (K a positive integer):\n${METRIC_NAMES_HELP}`);
}

/**
 * Parses a metric spec (case-insensitive, surrounding whitespace ignored) into a metric.
 * Throws, listing the accepted forms, on an unknown base name, a missing/forbidden/invalid `@k`.
 */
export function parseMetricName(name: string): Metric {
  const spec = name.trim().toLowerCase();
  const match = /^([a-z_]+)(?:@(\d+))?$/.exec(spec);
  if (match === null) throw badName(name, 'expected NAME or NAME@K');
  const base = match[1] as string;
  const cutoffText = match[2];
  const family = Object.hasOwn(METRICS, base) ? METRICS[base] : undefined;
  if (family === undefined) throw badName(name, `no metric called "${base}"`);
  let k: number | undefined;
  if (cutoffText !== undefined) {
    k = Number(cutoffText);
    if (!Number.isSafeInteger(k) || k < 1) throw badName(name, `cutoff must be a positive integer, got "${cutoffText}"`);
  }
  switch (family.cutoff.rule) {
    case 'required':
      if (k === undefined) throw badName(name, `${base} needs a cutoff, e.g. ${base}@10`);
      break;
    case 'defaulted':
      k ??= family.cutoff.defaultK;
      break;
    case 'none':
      if (k !== undefined) throw badName(name, `${base} takes no @k cutoff`);
      break;
    case 'optional':
      break;
  }
  return family.build(k);
}

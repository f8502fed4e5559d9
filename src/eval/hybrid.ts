/**
 * `kiln eval --hybrid`: the three-way comparison on each retrieval split — the dense model, each
 * lexical ranker, and their fusion (./fusion.ts) — and the fusion weight chosen on the split.
 *
 * The weight is chosen by a grid search over w ∈ {0, 0.05, …, 1} on the split's main metric (the
 * first it lists); ties go to the weight nearest the configured one. It is chosen only on
 * validation splits: a split loaded from a test file is reported with its configured weight and
 * never tuned, so no number that `kiln eval` prints was fitted to a test set. A weight chosen on
 * a split and reported on that same split is optimistic; use it to pick `eval.hybrid.weight`,
 * and confirm on held-out data.
 */
import { CorpusEmbeddings, evaluateDense, evaluateFused, evaluateSplitsWithLexical, lexicalCandidates, type EvalSplit, type HybridOptions, type SplitEmbedder } from './splits.js';
import { LEXICAL_NAMES, type LexicalName } from './lexical.js';

export const DEFAULT_WEIGHT_GRID: readonly number[] = Array.from({ length: 21 }, (_, i) => i / 20);

export interface HybridSplitReport {
  /** The eval name (data.eval[].name). */
  readonly split: string;
  /** The metric the weight is chosen on. */
  readonly mainMetric: string;
  /** The hybrid as configured (or the defaults when the config has none). */
  readonly settings: HybridOptions;
  readonly dense: Record<string, number>;
  readonly lexical: Record<LexicalName, Record<string, number>>;
  readonly hybrid: Record<string, number>;
  /** The weight chosen on this split, with its metrics and the main metric along the grid; null on a test split. */
  readonly tuned: { weight: number; metrics: Record<string, number>; curve: Array<{ weight: number; value: number }> } | null;
  /** Why the weight was not tuned (a test split), else null. */
  readonly untunedReason: string | null;
}

/** True for a split loaded from a test file (`…/test`, as the recipes name them). */
export function isTestSplit(splitName: string): boolean {
  return /(^|\/)test$/.test(splitName);
}

/** The three-way comparison and the tuned weight on every retrieval split (scored-pair splits have no ranking to fuse). */
export function hybridReport(splits: readonly EvalSplit[], embedder: SplitEmbedder, defaults: HybridOptions, grid: readonly number[] = DEFAULT_WEIGHT_GRID): HybridSplitReport[] {
  const reports: HybridSplitReport[] = [];
  const corpora = new CorpusEmbeddings(embedder);
  try {
    for (const entry of splits) {
      if (entry.kind !== 'retrieval') continue;
      const settings = entry.hybrid ?? defaults;
      const { split } = entry;
      const metrics = entry.spec.metrics;
      const mainMetric = metrics[0]!;
      const dense = evaluateDense(split, metrics, corpora, settings.window);
      const lexicalCandidateLists = lexicalCandidates(split, settings.lexical, entry.lexical, settings.window);
      const unprefix = (values: Record<string, number>): Record<string, number> =>
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k.slice(entry.spec.name.length + 1), v]));
      const lexical = Object.fromEntries(LEXICAL_NAMES.map((name) => [name, unprefix(evaluateSplitsWithLexical([entry], name))])) as Record<LexicalName, Record<string, number>>;
      const hybrid = evaluateFused(split, dense.candidates, lexicalCandidateLists, settings, metrics);

      let tuned: HybridSplitReport['tuned'] = null;
      const untunedReason = isTestSplit(split.name) ? `${split.name} is a test split: weights are chosen on validation splits only` : null;
      if (untunedReason === null) {
        const curve = grid.map((weight) => ({ weight, value: evaluateFused(split, dense.candidates, lexicalCandidateLists, { ...settings, weight }, [mainMetric])[mainMetric]! }));
        const best = curve.reduce((a, b) => (b.value > a.value || (b.value === a.value && Math.abs(b.weight - settings.weight) < Math.abs(a.weight - settings.weight)) ? b : a));
        tuned = { weight: best.weight, metrics: evaluateFused(split, dense.candidates, lexicalCandidateLists, { ...settings, weight: best.weight }, metrics), curve };
      }
      reports.push({ split: entry.spec.name, mainMetric, settings, dense: dense.metrics, lexical, hybrid, tuned, untunedReason });
    }
  } finally {
    corpora.dispose();
  }
  return reports;
}

/** The table `kiln eval --hybrid` prints: one row per split and metric, ×100, then how each hybrid was made. */
export function formatHybridReport(runId: string, reports: readonly HybridSplitReport[]): string {
  if (reports.length === 0) return `run ${runId}: no retrieval splits to rank`;
  const header = ['metric', 'kiln', ...LEXICAL_NAMES, 'hybrid', 'hybrid*'];
  const rows: string[][] = [];
  for (const r of reports) {
    for (const metric of Object.keys(r.dense)) {
      const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
      rows.push([`${r.split}/${metric}`, pct(r.dense[metric]), ...LEXICAL_NAMES.map((n) => pct(r.lexical[n][metric])), pct(r.hybrid[metric]), pct(r.tuned?.metrics[metric])]);
    }
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const notes = reports.map((r) => {
    const s = r.settings;
    const how = `${s.method}${s.method === 'rrf' ? ` (k ${s.k})` : ''} of kiln and ${s.lexical}, window ${s.window}, weight ${s.weight}`;
    const tuned = r.tuned === null ? `not tuned: ${r.untunedReason}` : `hybrid* = weight ${r.tuned.weight} chosen on this split for ${r.mainMetric} (${(100 * r.hybrid[r.mainMetric]!).toFixed(2)} → ${(100 * r.tuned.metrics[r.mainMetric]!).toFixed(2)})`;
    return `${r.split}: hybrid = ${how}; ${tuned}`;
  });
  return [`run ${runId} (×100; weight = the dense model's share):`, line(header), ...rows.map(line), '', ...notes].join('\n');
}

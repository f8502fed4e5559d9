/**
 * `kiln eval --hybrid`: the three-way comparison on each retrieval split — the dense model, each
 * lexical ranker, and their fusion (./fusion.ts) — and the fusion weight chosen on the split,
 * for the configured lexical ranker and, beside it, for each other one.
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

/** The hybrid with one lexical ranker: at the configured weight, and at the weight chosen on the split. */
export interface FusionResult {
  readonly metrics: Record<string, number>;
  /** The weight chosen on this split, with its metrics and the main metric along the grid; null on a test split. */
  readonly tuned: { weight: number; metrics: Record<string, number>; curve: Array<{ weight: number; value: number }> } | null;
}

export interface HybridSplitReport {
  /** The eval name (data.eval[].name). */
  readonly split: string;
  /** The metric the weight is chosen on. */
  readonly mainMetric: string;
  /** The hybrid as configured (or the defaults when the config has none); `settings.lexical` is the configured ranker. */
  readonly settings: HybridOptions;
  readonly dense: Record<string, number>;
  readonly lexical: Record<LexicalName, Record<string, number>>;
  /** The configured hybrid: `fused[settings.lexical]`. */
  readonly hybrid: Record<string, number>;
  readonly tuned: FusionResult['tuned'];
  /** The same fusion with each lexical ranker, so the choice of ranker can be read off the table. */
  readonly fused: Record<LexicalName, FusionResult>;
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
      const unprefix = (values: Record<string, number>): Record<string, number> =>
        Object.fromEntries(Object.entries(values).map(([k, v]) => [k.slice(entry.spec.name.length + 1), v]));
      const lexical = Object.fromEntries(LEXICAL_NAMES.map((name) => [name, unprefix(evaluateSplitsWithLexical([entry], name))])) as Record<LexicalName, Record<string, number>>;
      const untunedReason = isTestSplit(split.name) ? `${split.name} is a test split: weights are chosen on validation splits only` : null;
      const fusedWith = (name: LexicalName): FusionResult => {
        const lexicalLists = lexicalCandidates(split, name, entry.lexical, settings.window);
        const at = (weight: number, names: readonly string[]): Record<string, number> => evaluateFused(split, dense.candidates, lexicalLists, { ...settings, weight }, names);
        if (untunedReason !== null) return { metrics: at(settings.weight, metrics), tuned: null };
        const curve = grid.map((weight) => ({ weight, value: at(weight, [mainMetric])[mainMetric]! }));
        const best = curve.reduce((a, b) => (b.value > a.value || (b.value === a.value && Math.abs(b.weight - settings.weight) < Math.abs(a.weight - settings.weight)) ? b : a));
        return { metrics: at(settings.weight, metrics), tuned: { weight: best.weight, metrics: at(best.weight, metrics), curve } };
      };
      const fused = Object.fromEntries(LEXICAL_NAMES.map((name) => [name, fusedWith(name)])) as Record<LexicalName, FusionResult>;
      const configured = fused[settings.lexical];
      reports.push({ split: entry.spec.name, mainMetric, settings, dense: dense.metrics, lexical, hybrid: configured.metrics, tuned: configured.tuned, fused, untunedReason });
    }
  } finally {
    corpora.dispose();
  }
  return reports;
}

/**
 * The table `kiln eval --hybrid` prints: one row per split and metric, ×100: the model, each
 * lexical ranker, the configured hybrid and its tuned weight (hybrid*), and the same fusion with
 * each lexical ranker at its tuned weight; then how each hybrid was made.
 */
export function formatHybridReport(runId: string, reports: readonly HybridSplitReport[]): string {
  if (reports.length === 0) return `run ${runId}: no retrieval splits to rank`;
  const header = ['metric', 'kiln', ...LEXICAL_NAMES, 'hybrid', 'hybrid*', ...LEXICAL_NAMES.map((n) => `+${n}*`)];
  const rows: string[][] = [];
  for (const r of reports) {
    for (const metric of Object.keys(r.dense)) {
      const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
      rows.push([
        `${r.split}/${metric}`,
        pct(r.dense[metric]),
        ...LEXICAL_NAMES.map((n) => pct(r.lexical[n][metric])),
        pct(r.hybrid[metric]),
        pct(r.tuned?.metrics[metric]),
        ...LEXICAL_NAMES.map((n) => pct(r.fused[n].tuned?.metrics[metric])),
      ]);
    }
  }
  const widths = header.map((h, c) => Math.max(h.length, ...rows.map((row) => row[c]!.length)));
  const line = (cells: readonly string[]): string => cells.map((cell, c) => (c === 0 ? cell.padEnd(widths[c]!) : cell.padStart(widths[c]!))).join('  ');
  const notes = reports.map((r) => {
    const s = r.settings;
    const how = `${s.method}${s.method === 'rrf' ? ` (k ${s.k})` : ''} of kiln and ${s.lexical}, window ${s.window}, weight ${s.weight}`;
    const tuned = r.tuned === null ? `not tuned: ${r.untunedReason}` : `hybrid* = weight ${r.tuned.weight} chosen on this split for ${r.mainMetric} (${(100 * r.hybrid[r.mainMetric]!).toFixed(2)} → ${(100 * r.tuned.metrics[r.mainMetric]!).toFixed(2)})`;
    const others = r.tuned === null ? '' : `; ${LEXICAL_NAMES.map((n) => `+${n}* at weight ${r.fused[n].tuned!.weight}`).join(', ')}`;
    return `${r.split}: hybrid = ${how}; ${tuned}${others}`;
  });
  return [`run ${runId} (×100; weight = the dense model's share):`, line(header), ...rows.map(line), '', ...notes].join('\n');
}

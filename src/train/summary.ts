/**
 * The end-of-run table: the model's metrics beside the lexical baselines on the same splits,
 * shared by every task that ranks (two-tower, cross-encoder) and by `kiln eval`.
 */
import { evaluateSplitsWithBm25, evaluateSplitsWithLexical, type EvalSplit } from '../eval/splits.js';

export interface LexicalBaselines {
  bm25: Record<string, number>;
  /** Character TF-IDF on the splits whose hybrid fuses it (BM25 is always beside). */
  tfidf_char: Record<string, number>;
}

/**
 * The lexical columns of a summary: BM25 on every split, and character TF-IDF on the splits
 * whose hybrid fuses it (on the others it would only cost time: about a minute on JobBERT).
 */
export function evaluateLexicalBaselines(splits: readonly EvalSplit[]): LexicalBaselines {
  const tfidfSplits = splits.filter((s) => s.kind === 'retrieval' && s.hybrid?.lexical === 'tfidf_char');
  return { bm25: evaluateSplitsWithBm25(splits), tfidf_char: evaluateSplitsWithLexical(tfidfSplits, 'tfidf_char') };
}

/** The lexical baselines for a run's summary; none after a diverged run (its numbers would stand beside nothing). */
export function lexicalBaselinesAfter(status: string, splits: readonly EvalSplit[]): LexicalBaselines {
  return status === 'diverged' ? { bm25: {}, tfidf_char: {} } : evaluateLexicalBaselines(splits);
}

/**
 * metric | kiln | hybrid | first_stage | bm25 | tfidf_char, as percentages (×100). The hybrid
 * (`<split>/hybrid/<metric>`), first-stage (`<split>/first_stage/<metric>`, a re-ranker's
 * retriever alone) and TF-IDF columns only when some split has them; '-' where a split has not.
 */
export function formatSummaryTable(summary: { runId: string; metrics: Record<string, number>; bm25: Record<string, number>; tfidf_char?: Record<string, number> }): string {
  const variants = ['hybrid', 'first_stage'];
  const variantKey = (variant: string, key: string): string => key.replace(/^([^/]+)\//, `$1/${variant}/`);
  const isVariant = (key: string): boolean => variants.some((v) => key.includes(`/${v}/`));
  const keys = [...new Set([...Object.keys(summary.metrics).filter((k) => !isVariant(k)), ...Object.keys(summary.bm25)])];
  if (keys.length === 0) return `run ${summary.runId}: no evaluation splits configured`;
  const columns: Array<[string, (key: string) => number | undefined]> = [
    ['kiln', (k) => summary.metrics[k]],
    ...variants.map((v): [string, (key: string) => number | undefined] => [v, (k) => summary.metrics[variantKey(v, k)]]),
    ['bm25', (k) => summary.bm25[k]],
    ['tfidf_char', (k) => summary.tfidf_char?.[k]],
  ];
  const shown = columns.filter(([name, value]) => name === 'kiln' || name === 'bm25' || keys.some((k) => value(k) !== undefined));
  const pct = (v: number | undefined): string => (v === undefined ? '-' : (100 * v).toFixed(2));
  const width = Math.max(6, ...keys.map((k) => k.length));
  const lines = [[`${'metric'.padEnd(width)}`, ...shown.map(([name]) => name.padStart(Math.max(7, name.length)))].join('  ')];
  for (const k of keys) lines.push([k.padEnd(width), ...shown.map(([name, value]) => pct(value(k)).padStart(Math.max(7, name.length)))].join('  '));
  return `run ${summary.runId} (×100):\n${lines.join('\n')}`;
}

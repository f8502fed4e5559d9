/**
 * Runs side by side, as `kiln runs compare` prints them and the dashboard shows them: one row
 * per param and per result, one column per run, and whether the row differs between runs. One
 * function for both, so the terminal and the page show the same numbers.
 */
import type { RunRecord, RunStore } from './store.js';

export interface ComparedRow<V> {
  key: string;
  /** One value per run, in the order of `runs`; null where a run has none. */
  values: (V | null)[];
  differs: boolean;
}

export interface RunComparison {
  runs: RunRecord[];
  params: ComparedRow<string>[];
  results: ComparedRow<number>[];
}

function rows<V>(maps: readonly Record<string, V | null>[], onlyDifferences: boolean): ComparedRow<V>[] {
  const keys = [...new Set(maps.flatMap((m) => Object.keys(m)))].sort();
  return keys
    .map((key) => {
      const values = maps.map((m) => m[key] ?? null);
      const differs = values.some((v) => JSON.stringify(v) !== JSON.stringify(values[0]));
      return { key, values, differs };
    })
    .filter((row) => !onlyDifferences || row.differs);
}

export function compareRuns(store: RunStore, ids: readonly string[], options: { onlyDifferences?: boolean } = {}): RunComparison {
  const details = ids.map((id) => store.getRun(store.resolveId(id)));
  return {
    runs: details.map(({ params: _params, tags: _tags, results: _results, artifacts: _artifacts, children: _children, ...record }) => record),
    params: rows(details.map((d) => d.params), options.onlyDifferences ?? false),
    results: rows(details.map((d) => d.results), options.onlyDifferences ?? false),
  };
}

/** A result as both the terminal and the dashboard print it. */
export function formatResult(value: number | null): string {
  if (value === null) return '-';
  return Math.abs(value) >= 1000 || (value !== 0 && Math.abs(value) < 1e-3) ? value.toExponential(3) : value.toFixed(4);
}

/** A param value (JSON text) as shown: strings without their quotes. */
export function formatParam(value: string | null): string {
  if (value === null) return '-';
  try {
    const parsed: unknown = JSON.parse(value);
    return typeof parsed === 'string' ? parsed : value;
  } catch {
    return value;
  }
}

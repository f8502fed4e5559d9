/**
 * Config problems and the small helpers that word them: the error type, key paths as users
 * write them (`data.train[1].options.include_description`), values shown JSON-ish and
 * truncated, and "did you mean" suggestions by edit distance.
 */

/** One or more problems in a config file or its `--set` overrides; `message` lists them, one per line. */
export class ConfigError extends Error {
  readonly problems: string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'ConfigError';
    this.problems = [...problems];
  }
}

/** A key path for messages: dotted keys and `[i]` indices, e.g. `loss[0].temperature`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const segment of path) {
    if (typeof segment === 'number') out += `[${segment}]`;
    else {
      const key = String(segment);
      if (/^[A-Za-z0-9_-]+$/.test(key)) out += out === '' ? key : `.${key}`;
      else out += `[${JSON.stringify(key)}]`;
    }
  }
  return out === '' ? '(top level)' : out;
}

const MAX_VALUE_CHARS = 60;

/** A value for messages: JSON-ish (strings quoted, `undefined` as nothing), truncated to about 60 characters. */
export function formatValue(value: unknown): string {
  let text: string;
  if (value === undefined) return 'nothing';
  if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else {
    try {
      text = JSON.stringify(value) ?? String(value);
    } catch {
      text = String(value);
    }
  }
  return text.length > MAX_VALUE_CHARS ? `${text.slice(0, MAX_VALUE_CHARS - 1)}…` : text;
}

/** Optimal-string-alignment distance (Levenshtein plus adjacent transpositions). */
export function editDistance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[] = new Array<number>(rows * cols).fill(0);
  const at = (i: number, j: number): number => d[i * cols + j] ?? 0;
  for (let i = 0; i < rows; i++) d[i * cols] = i;
  for (let j = 0; j < cols; j++) d[j] = j;
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let best = Math.min(at(i - 1, j) + 1, at(i, j - 1) + 1, at(i - 1, j - 1) + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) best = Math.min(best, at(i - 2, j - 2) + 1);
      d[i * cols + j] = best;
    }
  }
  return at(a.length, b.length);
}

/**
 * The allowed word closest to `word`, if it is close enough to be a plausible typo: within
 * about a third of the word's length in edits (case ignored), or a prefix either way
 * (`warmup` → `warmup_steps`).
 */
export function suggest(word: string, allowed: Iterable<string>): string | undefined {
  const w = word.toLowerCase();
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const candidate of allowed) {
    const c = candidate.toLowerCase();
    if (c === w) return candidate;
    const distance = editDistance(w, c);
    if (distance < bestDistance) {
      best = candidate;
      bestDistance = distance;
    }
  }
  if (best === undefined) return undefined;
  if (bestDistance <= Math.max(1, Math.floor(word.length / 3))) return best;
  // A clear prefix (at least 3 characters) of exactly one candidate also counts.
  if (w.length >= 3) {
    const prefixed = [...allowed].filter((c) => c.toLowerCase().startsWith(w) || (c.length >= 3 && w.startsWith(c.toLowerCase())));
    if (prefixed.length === 1) return prefixed[0];
  }
  return undefined;
}

/** ` (did you mean 'x'?)` or the empty string. */
export function didYouMean(word: string, allowed: Iterable<string>): string {
  const hint = suggest(word, allowed);
  return hint === undefined ? '' : ` (did you mean '${hint}'?)`;
}

/**
 * The end-of-run table: the model's metrics beside the lexical baselines on the same splits,
 * shared by every task that ranks (two-tower, cross-encoder) and by `kiln eval`.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { closeSync, openSync, readSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

import { evaluateSplitsWithBm25, evaluateSplitsWithLexical, type EvalSplit } from '../eval/splits.js';
import { KILN_VERSION } from '../version.js';

/** The Kiln checkout (or installed package) this module runs from: src/train/ and dist/train/ both sit two levels down. */
const KILN_ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The state of a git checkout: its HEAD commit, and whether tracked files differ from it. */
export interface GitState {
  commit: string;
  dirty: boolean;
}

/**
 * Where a run's result came from, recorded in summary.json so that a number can be traced back
 * to the code that produced it.
 */
export interface RunProvenance {
  kilnVersion: string;
  /** The Kiln checkout the CLI ran from; null when Kiln is not a git checkout (an installed package) or git is unavailable. */
  git: GitState | null;
}

/** One data file a run read, with its content hash: the same hash means the same data. */
export interface DataFileHash {
  path: string;
  bytes: number;
  /** Hex SHA-256 of the file's bytes. */
  sha256: string;
}

/** SHA-256 of each file (read in 1 MiB chunks, so a large corpus is not held in memory), in path order, each once. */
export function hashDataFiles(paths: readonly string[]): DataFileHash[] {
  const chunk = Buffer.allocUnsafe(1 << 20);
  return [...new Set(paths)].sort().map((path) => {
    const hash = createHash('sha256');
    const fd = openSync(path, 'r');
    let bytes = 0;
    try {
      for (let n = readSync(fd, chunk, 0, chunk.length, null); n > 0; n = readSync(fd, chunk, 0, chunk.length, null)) {
        hash.update(chunk.subarray(0, n));
        bytes += n;
      }
    } finally {
      closeSync(fd);
    }
    return { path, bytes, sha256: hash.digest('hex') };
  });
}

/**
 * `git rev-parse HEAD` and a dirty flag for the checkout at `root`; null when `root` is not the
 * top of a git checkout (Kiln installed under another project's node_modules must not record
 * that project's commit) or git fails. Never throws: provenance must not fail a run.
 */
export function gitState(root: string = KILN_ROOT): GitState | null {
  const git = (args: string[]): string =>
    // --no-optional-locks: only read; `git status` would otherwise refresh the index of a checkout
    // that other processes may be using.
    execFileSync('git', ['--no-optional-locks', ...args], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'], timeout: 10_000 }).trim();
  try {
    if (realpathSync(git(['rev-parse', '--show-toplevel'])) !== realpathSync(root)) return null;
    const commit = git(['rev-parse', 'HEAD']);
    // Tracked files only: untracked ones (runs/, exports/, scratch files) do not change the code that ran.
    const dirty = git(['status', '--porcelain', '--untracked-files=no']) !== '';
    return { commit, dirty };
  } catch {
    return null;
  }
}

/** The provenance of a run made by this process. */
export function runProvenance(): RunProvenance {
  return { kilnVersion: KILN_VERSION, git: gitState() };
}

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
 * metric | kiln | hybrid | first_stage | fused | bm25 | tfidf_char, as percentages (×100). The
 * hybrid (`<split>/hybrid/<metric>`), first-stage (`<split>/first_stage/<metric>`, a
 * re-ranker's retriever alone), fused (`<split>/fused/<metric>`, a re-ranker fused with its
 * retriever) and TF-IDF columns only when some split has them; '-' where a split has not.
 */
export function formatSummaryTable(summary: { runId: string; metrics: Record<string, number>; bm25: Record<string, number>; tfidf_char?: Record<string, number> }): string {
  const variants = ['hybrid', 'first_stage', 'fused'];
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

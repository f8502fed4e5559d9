/**
 * A run directory, `runs/<run-id>/`, the file-based run store every command reads:
 *
 *   config.yaml          the resolved config (defaults filled), written once at the start
 *   model.json           the model config (architecture, vocab, prompts), enough to rebuild the model
 *   tokenizer.json       the tokenizer, so a run is self-contained
 *   metrics.jsonl        one JSON object per line: {step, time, name, value}
 *   checkpoints/         resumable state (see src/train/checkpoint.ts)
 *   model.safetensors    the final (or best) weights
 *   summary.json         final metrics, BM25 baselines, timings, status
 *
 * metrics.jsonl is append-only; on resume, lines past the checkpoint's step are dropped first
 * (they describe steps the resumed run will redo), so the series never has duplicates. A
 * SQLite run store (roadmap) will watch the same hook events that write these files.
 */
import { appendFileSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';

import { writeFileAtomic } from '../util/atomic-write.js';

export interface MetricRecord {
  step: number;
  /** Seconds since the run started (wall clock, across resumes). */
  time: number;
  name: string;
  value: number;
}

/**
 * The fix to print when `dir`, given where an exported model is expected (`--model DIR` of
 * `kiln embed`, `serve`, `index build` and `skills build`), is a training run; null when it is
 * not one. A run has a model.json too (its model config, not an export's card), so without
 * this check loading it fails on the card's schema, which does not say what to do.
 */
export function trainingRunGivenAsModel(flag: string, dir: string): string | null {
  const path = resolve(dir);
  if (!existsSync(join(path, 'config.yaml'))) return null;
  // An export keeps its ONNX graphs beside its card; a run directory never holds one itself
  // (`kiln export` writes into <run>/onnx/, a directory of its own).
  if (readdirSync(path).some((file) => file.endsWith('.onnx'))) return null;
  return `${flag} ${dir} is a training run; run \`kiln export --run ${dir} --out DIR\` first, then pass ${flag} DIR`;
}

export class RunDirectory {
  readonly path: string;

  constructor(path: string) {
    this.path = resolve(path);
  }

  /** Creates `<root>/<name>-<UTC timestamp>`; a clash (two runs in one second) gets a suffix. */
  static create(root: string, name: string, now = new Date()): RunDirectory {
    const stamp = now.toISOString().replace(/[-:]/g, '').replace(/\..*$/, '').replace('T', '-');
    mkdirSync(root, { recursive: true });
    for (let attempt = 0; ; attempt++) {
      const id = attempt === 0 ? `${name}-${stamp}` : `${name}-${stamp}-${attempt}`;
      const path = join(root, id);
      try {
        mkdirSync(path); // fails if it exists: never reuse another run's directory
        return new RunDirectory(path);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      }
    }
  }

  /**
   * A run a config refers to: an existing directory as is, or `runs/<name>` for the newest
   * completed run of that name (`runs/<name>-<UTC timestamp>` with a completed summary.json),
   * so a config can name the run it starts from before that run exists. Null when neither.
   */
  static resolveReference(reference: string): string | null {
    const path = resolve(reference);
    if (existsSync(path)) return path;
    const parent = dirname(path);
    const name = basename(path);
    if (!existsSync(parent)) return null;
    const pattern = new RegExp(`^${name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}-\\d{8}-\\d{6}(-\\d+)?$`);
    const completed = readdirSync(parent)
      .filter((entry) => pattern.test(entry))
      .filter((entry) => {
        const summary = join(parent, entry, 'summary.json');
        if (!existsSync(summary)) return false;
        try {
          return (JSON.parse(readFileSync(summary, 'utf8')) as { status?: string }).status !== 'diverged';
        } catch {
          return false;
        }
      })
      .sort();
    return completed.length === 0 ? null : join(parent, completed.at(-1)!);
  }

  /** Opens an existing run, with an error naming what is missing. */
  static open(path: string): RunDirectory {
    const run = new RunDirectory(path);
    if (!existsSync(run.file('config.yaml'))) {
      throw new Error(`${run.path} is not a Kiln run: config.yaml is missing`);
    }
    return run;
  }

  get id(): string {
    return this.path.split('/').pop()!;
  }

  file(name: string): string {
    return join(this.path, name);
  }

  writeText(name: string, text: string): void {
    writeFileAtomic(this.file(name), [Buffer.from(text, 'utf8')]);
  }

  writeJson(name: string, value: unknown): void {
    this.writeText(name, `${JSON.stringify(value, null, 2)}\n`);
  }

  readJson<T>(name: string): T {
    return JSON.parse(readFileSync(this.file(name), 'utf8')) as T;
  }

  appendMetrics(records: readonly MetricRecord[]): void {
    if (records.length === 0) return;
    appendFileSync(this.file('metrics.jsonl'), records.map((r) => JSON.stringify(r)).join('\n') + '\n');
  }

  readMetrics(): MetricRecord[] {
    const path = this.file('metrics.jsonl');
    if (!existsSync(path)) return [];
    const lines = readFileSync(path, 'utf8').split('\n');
    const records: MetricRecord[] = [];
    for (const line of lines) {
      if (line.trim() === '') continue;
      try {
        records.push(JSON.parse(line) as MetricRecord);
      } catch {
        // A line torn by a kill mid-append: everything after it is from the same lost tail.
        break;
      }
    }
    return records;
  }

  /** Drops metric lines past `step` (and any torn tail), atomically, before a resumed run appends. */
  truncateMetricsAfter(step: number): void {
    const kept = this.readMetrics().filter((r) => r.step <= step);
    this.writeText('metrics.jsonl', kept.map((r) => JSON.stringify(r) + '\n').join(''));
  }
}

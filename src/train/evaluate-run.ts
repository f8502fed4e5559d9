/**
 * Evaluating a saved run (`kiln eval`): rebuild the model (src/models/run-model.ts), and let
 * its task evaluate it on each configured split in full (a two-tower model ranks by
 * embeddings, a cross-encoder re-ranks its first stage's candidates); BM25 beside it on
 * request, or (`hybrid`) the three-way table of the model, the lexical rankers and their fusion.
 */
import { existsSync } from 'node:fs';

import { loadRunModel } from '../models/index.js';
import { createContext } from '../data/files.js';
import { evaluateSplitsWithBm25, evaluateSplitsWithLexical } from '../eval/splits.js';
import type { LexicalName } from '../eval/lexical.js';
import { formatHybridReport, type HybridSplitReport } from '../eval/hybrid.js';
import { RunDirectory } from '../track/run-dir.js';
import { loadEvalSplits, resolveConfigDataRoot } from './setup.js';
import { TASKS } from './tasks/index.js';
import { formatSummaryTable } from './summary.js';
import { applyThreadPolicy } from './run.js';
import { ConfigError } from '../config/errors.js';
import type { KilnConfig } from '../config/schema.js';

export interface EvaluateRunOptions {
  runPath?: string;
  splits: readonly string[];
  /** Lexical baselines to evaluate beside the model (or alone, without a run). */
  baselines: readonly LexicalName[];
  /** The three-way table: the model, each lexical ranker and the hybrid, with its weight chosen on each validation split. */
  hybrid?: boolean;
  dataRoot?: string;
  save: boolean;
  /** libtorch intra-op threads (--threads); default: the run's train.threads. */
  threads?: number;
}

export interface EvaluateRunResult {
  run: string | null;
  metrics: Record<string, number>;
  bm25: Record<string, number>;
  /** With `--baseline tfidf_char`: character TF-IDF on every split. */
  tfidf_char?: Record<string, number>;
  /** With `hybrid`: per retrieval split, the model, the lexical rankers, the hybrid and the tuned weight. */
  hybrid?: HybridSplitReport[];
  table: string;
}

export async function evaluateRun(config: KilnConfig, options: EvaluateRunOptions): Promise<EvaluateRunResult> {
  const unknown = options.splits.filter((s) => !config.data.eval.some((e) => e.name === s));
  if (unknown.length > 0) throw new ConfigError([`--split ${unknown.join(', ')}: not in data.eval (${config.data.eval.map((e) => e.name).join(', ')})`]);
  const selected: KilnConfig = { ...config, data: { ...config.data, eval: config.data.eval.filter((e) => options.splits.length === 0 || options.splits.includes(e.name)) } };
  const dataRoot = resolveConfigDataRoot(selected, options.dataRoot);
  const ctx = createContext({ dataRoot, onBadRow: config.data.on_bad_row, seed: config.seed });
  const splits = await loadEvalSplits(selected, dataRoot, ctx.report);

  let metrics: Record<string, number> = {};
  let runId: string | null = null;
  let hybrid: HybridSplitReport[] | undefined;
  if (options.runPath !== undefined) {
    const run = RunDirectory.open(options.runPath);
    runId = run.id;
    for (const file of ['model.json', 'model.safetensors']) {
      if (!existsSync(run.file(file))) throw new Error(`${run.path}: ${file} is missing (the run has not saved a model yet)`);
    }
    applyThreadPolicy(options.threads ?? config.train.threads, config.train.precision);
    const loaded = loadRunModel(run.path);
    try {
      const evaluator = TASKS[config.task].evaluator?.(config, loaded);
      if (evaluator === undefined) throw new ConfigError([`--run ${run.path}: a ${loaded.kind} run (task ${config.task}) is not evaluated on retrieval splits; its held-out metrics are in summary.json`]);
      metrics = evaluator.evaluate(splits);
      if (options.hybrid === true) {
        if (evaluator.hybrid === undefined) throw new ConfigError([`--hybrid fuses a two-tower model's ranking with a lexical ranker; ${run.path} is a ${loaded.kind} run`]);
        hybrid = evaluator.hybrid(splits);
      }
      evaluator.dispose();
    } finally {
      loaded.model.dispose();
    }
  }
  const bm25 = options.baselines.includes('bm25') ? evaluateSplitsWithBm25(splits) : {};
  const tfidf = options.baselines.includes('tfidf_char') ? { tfidf_char: evaluateSplitsWithLexical(splits, 'tfidf_char') } : {};
  const extra = { ...tfidf, ...(hybrid === undefined ? {} : { hybrid }) };
  if (options.save && options.runPath !== undefined) RunDirectory.open(options.runPath).writeJson('eval.json', { evaluatedAt: new Date().toISOString(), metrics, bm25, ...extra });
  const table = hybrid !== undefined ? formatHybridReport(runId!, hybrid) : formatSummaryTable({ runId: runId ?? `${options.baselines.join(' and ')} baseline`, metrics, bm25, ...tfidf });
  return { run: runId, metrics, bm25, ...extra, table };
}

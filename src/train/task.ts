/**
 * A training task: what differs between two-tower, MLM and cross-encoder training. The run
 * (run.ts) is the same for all of them: thread policy, run directory, seeding, the one loop,
 * checkpoints, resume, the NaN guard, the summary. A task supplies the model, the strategy
 * that turns micro-batches into a loss, the evaluation, and its part of the summary.
 *
 * Preparing a task loads everything that can fail on bad input (data, the `init_from`
 * source), before the run directory exists; starting it builds the model (after the run's
 * seed) and the strategy.
 */
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import type { KindedModel, LoadedRunModel, RunModelJson } from '../models/index.js';
import type { EvalSplit } from '../eval/splits.js';
import type { HybridSplitReport } from '../eval/hybrid.js';
import type { KilnConfig } from '../config/schema.js';
import type { EndEvent } from '../track/events.js';
import type { TrainStrategy } from './strategy.js';
import type { ProcessGroup } from '../engine/index.js';

export interface TaskContext {
  config: KilnConfig;
  dataRoot: string | undefined;
  write: (line: string) => void;
  /** A resumed run's saved model.json and tokenizer: the model to rebuild, whatever init_from names now. */
  saved?: { modelJson: RunModelJson; tokenizer: WordPieceTokenizer };
}

export interface TaskStartOptions {
  /** A resumed run restores its weights from the checkpoint: `init_from` is not read again. */
  resuming: boolean;
  /** The run directory (a task may keep files there: a distillation's teacher cache). */
  runPath: string;
  /** This process's place in a data-parallel run; absent = one process. */
  parallel?: ParallelPlace;
}

/** Where a process sits in a data-parallel run: its slices of each batch, and the group to gather negatives over. */
export interface ParallelPlace {
  rank: number;
  worldSize: number;
  group: ProcessGroup;
  /** Runs a collective the task makes itself, counting its time with the loop's (`comm_seconds`). */
  timed: <T>(fn: () => T) => T;
}

export interface PreparedTask {
  /** model.json of the run: enough to rebuild the model (src/models/run-model.ts). */
  modelJson: RunModelJson;
  tokenizer: WordPieceTokenizer;
  /** Data lines for the start banner (pairs per recipe, corpus size, dropped rows). */
  describeData(): string[];
  /** Absolute paths of every data file the task read (recipes' files, the vocabulary), for the summary's hashes. */
  readonly dataFiles: readonly string[];
  /** Builds the model, its initial weights, the loss and the strategy. Called after the run's seed is set. */
  start(options: TaskStartOptions): StartedTask;
}

/** What a task adds to the run's summary. */
export interface TaskSummary {
  /** Extra fields for summary.json (e.g. BM25's metrics beside the model's). */
  fields: Record<string, unknown>;
  /** The table printed at the end. */
  table: string;
}

export interface StartedTask {
  /** The model whose weights the run delivers (model.safetensors). */
  model: KindedModel;
  /** Modules whose parameters are trained, and the data stream. */
  strategy: TrainStrategy;
  /** Evaluates the current model; keys are `<split>/<metric>`. Null = no evaluation. */
  evaluate: ((step: number) => Record<string, number>) | null;
  /** After the loop: the task's summary (lexical baselines, the table). */
  summarize(end: EndEvent, metrics: Record<string, number>, runId: string): TaskSummary;
  /** Releases the strategy, loss and anything else the task built (not the model). */
  dispose(): void;
}

/** Evaluates a saved model of the task on full splits (`kiln eval`). */
export interface SavedModelEvaluator {
  evaluate(splits: readonly EvalSplit[]): Record<string, number>;
  /** The model, the lexical rankers and their fusion (two-tower models only). */
  hybrid?(splits: readonly EvalSplit[]): HybridSplitReport[];
  dispose(): void;
}

export interface Task {
  prepare(context: TaskContext): Promise<PreparedTask>;
  /** How `kiln eval --run` evaluates a saved model of this task; absent = not evaluated on splits. */
  evaluator?(config: KilnConfig, model: LoadedRunModel): SavedModelEvaluator;
}


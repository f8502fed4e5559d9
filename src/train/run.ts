/**
 * `kiln train`, for every task: config → task (data, model, strategy) → the one loop, with
 * the run directory and the progress output watching through loop hooks.
 *
 *   prepare    TASKS[config.task] loads data and the init_from source: a bad config or bad
 *              data fails here, before anything is written
 *   create     runs/<name>-<time>/ with config.yaml, model.json, tokenizer.json
 *   start      seed; the task builds its model (init_from applied), loss and strategy
 *   train      runTraining: checkpoints, --resume, the NaN guard, bf16, accumulation
 *   summarize  model.safetensors (best or last), summary.json, the table
 *
 * The run store (`<runs root>/kiln.db`) watches too: the run is registered as `running` when
 * its directory exists, its metrics are mirrored as they are logged, and it ends `finished`,
 * `failed` (diverged, or an error) or, if the process dies, `killed` on the store's next read.
 *
 * Data parallelism: with torchrun's variables set (WORLD_SIZE > 1; `kiln train --nproc N` sets
 * them, src/train/launch.ts), every rank prepares the task, then the ranks form a c10d group,
 * and rank 0 alone creates the run directory, registers the run and writes everything; the
 * others train silently on their slices of each batch.
 */
import { appendFileSync, existsSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { basename, dirname, join } from 'node:path';
import { parse as parseYaml } from 'yaml';

import { distributedEnvironment, getNumThreads, manualSeed, noGrad, ProcessGroup, saveSafetensors, setNumThreads, type DistributedEnvironment } from '../engine/index.js';
import { checkBatchSlicing } from '../data/step-slices.js';
import { DataParallel } from './data-parallel.js';
import type { KilnConfig } from '../config/schema.js';
import { ConfigError } from '../config/errors.js';
import { RunDirectory } from '../track/run-dir.js';
import { RunDirectoryHook } from '../track/run-hook.js';
import { flattenParams, RunStore } from '../track/store.js';
import { RunStoreMirror } from '../track/store-mirror.js';
import { logRunToMlflow, MlflowRestClient } from '../track/mlflow.js';
import type { EndEvent, TrainHooks } from '../track/events.js';
import { KILN_VERSION } from '../version.js';
import { resumeMismatch, runTraining, type LoopState, type TrainOptions } from './loop.js';
import { readLatestCheckpointState } from './checkpoint.js';
import { ProgressHook } from './progress.js';
import { hashDataFiles, runProvenance } from './summary.js';
import { TASKS } from './tasks/index.js';
import type { PreparedTask } from './task.js';
import { readRunModelJson } from '../models/index.js';
import { WordPieceTokenizer } from '../data/tokenizer.js';

export interface LoadedRunConfig {
  config: KilnConfig;
  resolvedYaml: string;
}

export interface TrainRunOptions {
  dataRoot?: string;
  runsRoot: string;
  /** Path of a run directory to resume (its config.yaml was loaded by the caller). */
  resumeRun?: string;
  plainProgress: boolean;
  /** --quiet: per-step, evaluation and checkpoint lines go to train.log only, not the terminal. */
  quiet?: boolean;
  /** Intra-op threads for libtorch (--threads); overrides train.threads, which stays as the config says. */
  threads?: number;
  write?: (line: string) => void;
  /** Extra hooks (tests, a run store). */
  hooks?: TrainHooks[];
  /** Also log the finished run to this MLflow tracking server (REST), under `experiment`. */
  mlflow?: { trackingUri: string; experiment: string };
  /** Where this process sits in a multi-process run; default: torchrun's variables in the environment (none = one process). */
  distributed?: DistributedEnvironment | null;
  /** Bound on forming the process group and on every collective, in seconds (default 1800, torch.distributed's). */
  distTimeoutSeconds?: number;
}

/** A multi-process run stopped because a peer failed or a collective timed out: the message says what to do. */
export class DistributedTrainingError extends Error {}

/** torch.distributed's default timeout for Gloo collectives (30 minutes): rank 0's evaluations run inside it. */
export const DEFAULT_DIST_TIMEOUT_SECONDS = 1800;

export interface RunSummary {
  runId: string;
  runPath: string;
  task: KilnConfig['task'];
  status: EndEvent['status'];
  message: string;
  steps: number;
  /** Training time across resumes (evaluation included, data loading not). */
  wallSeconds: number;
  /** The model's last evaluation (for two-tower runs, the hybrid's too, as `<eval name>/hybrid/<metric>`). */
  metrics: Record<string, number>;
  /** What the task adds: lexical baselines beside the model's metrics (bm25, tfidf_char), … */
  [extra: string]: unknown;
}

/**
 * The thread policy measured fastest here (BENCHMARKS.md): in fp32 the matmuls run in OpenBLAS,
 * which keeps its own threads, so one libtorch thread is fastest; bf16 matmuls run in oneDNN on
 * libtorch's intra-op pool, which wants every core. `localWorkers` processes on this machine
 * share its cores (each gets cores / localWorkers, at least one); the launcher gives OpenBLAS
 * the same share through OPENBLAS_NUM_THREADS (src/train/launch.ts).
 */
export function applyThreadPolicy(threads: 'auto' | number, precision: 'fp32' | 'bf16', localWorkers = 1): number {
  const cores = Math.max(1, Math.floor(availableParallelism() / localWorkers)); // respects CPU affinity (containers, taskset)
  const n = threads === 'auto' ? (precision === 'bf16' ? cores : 1) : threads;
  if (getNumThreads() !== n) setNumThreads(n);
  return n;
}

/** The loop's options from the config's `train:` section. */
export function loopOptions(config: KilnConfig): TrainOptions {
  const t = config.train;
  const stopping = t.early_stopping;
  return {
    steps: t.steps,
    gradAccum: t.grad_accum,
    schedule: { lr: t.lr, warmupSteps: t.warmup_steps, schedule: t.schedule, minLrRatio: t.min_lr_ratio },
    weightDecay: t.weight_decay,
    betas: t.betas,
    eps: t.eps,
    clipGradNorm: t.clip_grad_norm,
    precision: t.precision,
    device: t.device,
    seed: config.seed,
    evalEvery: t.eval_every,
    checkpointEvery: t.checkpoint_every,
    earlyStopping: stopping === null ? null : { metric: stopping.metric, mode: stopping.mode, patience: stopping.patience, minDelta: stopping.min_delta },
    selectionMetric: stopping?.metric ?? null,
  };
}

/**
 * What a run of `worldSize` processes needs of its config and, when resuming, of its checkpoint:
 * the batch cuts into equal micro-batches, and the checkpoint was written by as many processes
 * with the same ZeRO stage. Throws a ConfigError (exit 2) before anything is written or launched.
 */
export function checkParallelRun(config: KilnConfig, worldSize: number, resumeRun?: string): void {
  try {
    checkBatchSlicing(config.train.batch_size, { gradAccum: config.train.grad_accum, rank: 0, worldSize });
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  if (worldSize > 1 && config.train.device === 'cuda') throw new ConfigError(['train.device cuda with several processes needs NCCL, which this build does not have; the collectives run on Gloo over TCP on the CPU']);
  if (resumeRun !== undefined) {
    // A checkpoint of another world size or ZeRO stage cannot resume here.
    const latest = readLatestCheckpointState<LoopState>(resumeRun);
    const mismatch = latest === null ? null : resumeMismatch(latest.path, latest.state, worldSize, worldSize > 1 ? config.train.zero : 0, resumeRun);
    if (mismatch !== null) throw new ConfigError([mismatch]);
  }
}

export async function trainRun(loaded: LoadedRunConfig, options: TrainRunOptions): Promise<RunSummary> {
  const { config } = loaded;
  let env: DistributedEnvironment | null;
  try {
    env = options.distributed === undefined ? distributedEnvironment() : options.distributed;
  } catch (error) {
    throw new ConfigError([(error as Error).message]);
  }
  checkParallelRun(config, env?.worldSize ?? 1, options.resumeRun);
  // Rank 0 writes the run; the other ranks print nothing but their errors.
  const writer = env === null || env.rank === 0;
  const print = !writer ? () => {} : (options.write ?? ((line: string) => process.stderr.write(`${line}\n`)));
  // What the run prints also goes to <run>/train.log (the dashboard shows it); lines from
  // before the run directory exists are kept until it does.
  let logFile: string | null = null;
  const early: string[] = [];
  const writeLogOnly = (line: string): void => {
    if (logFile === null) early.push(line);
    else appendFileSync(logFile, `${line}\n`);
  };
  const write = (line: string): void => {
    print(line);
    writeLogOnly(line);
  };
  const threads = applyThreadPolicy(options.threads ?? config.train.threads, config.train.precision, env?.localWorldSize ?? 1);
  // Taken at the start: the code that trains is the code checked out now.
  const provenance = runProvenance();

  // Everything that can fail on bad input happens before the run directory exists. A resumed
  // run rebuilds the model it saved (model.json, tokenizer.json), not what init_from names now:
  // `runs/<name>` may have come to mean a newer run since.
  const loadStart = performance.now();
  const resuming = options.resumeRun !== undefined;
  const resumed = resuming ? RunDirectory.open(options.resumeRun!) : null;
  if (resumed !== null && !existsSync(resumed.file('model.json'))) throw new Error(`${resumed.path}: model.json is missing; cannot resume`);
  // A finished run is left as it is: resuming it would rewrite its summary with nothing new.
  if (resumed !== null && existsSync(resumed.file('summary.json'))) {
    throw new ConfigError([`${resumed.path}: the run finished (summary.json is written), so there is nothing to resume. To train it again: kiln train --config ${join(resumed.path, 'config.yaml')}`]);
  }
  const saved = resumed === null ? undefined : { modelJson: readRunModelJson(resumed.path), tokenizer: WordPieceTokenizer.fromTokenizerJson(resumed.file('tokenizer.json')) };
  const prepared = await TASKS[config.task].prepare({ config, dataRoot: options.dataRoot, write, saved });
  // Hashed as soon as they are read: the summary says exactly which data this run saw.
  const dataFiles = hashDataFiles(prepared.dataFiles);
  // Every rank has its data; now they meet (a rank that failed above never joins, and the others
  // fail here after the timeout, or at once when the launcher stops them).
  const timeoutMs = (options.distTimeoutSeconds ?? DEFAULT_DIST_TIMEOUT_SECONDS) * 1000;
  let dp: DataParallel | null = null;
  if (env !== null) {
    let group: ProcessGroup;
    try {
      group = ProcessGroup.create({ store: 'tcp', host: env.masterAddr, port: env.masterPort, rank: env.rank, worldSize: env.worldSize, timeoutMs, storeHostedByAgent: env.storeHostedByAgent, attempt: env.restartCount });
    } catch (error) {
      throw new DistributedTrainingError(
        `${(error as Error).message}\nThe ${env.worldSize} processes did not all meet at ${env.masterAddr}:${env.masterPort} within --dist-timeout (${timeoutMs / 1000} s): check that every process started, that rank 0's host and port are reachable, and the other processes' errors. Nothing was written.`,
      );
    }
    dp = new DataParallel({ group, zero: config.train.zero });
  }
  try {
    if (!writer) return await trainFollower(dp!, prepared, options, loaded);
    return await trainWriter(dp);
  } finally {
    dp?.dispose();
  }

  async function trainWriter(dp: DataParallel | null): Promise<RunSummary> {
    // Opened before the run directory exists: a store this Kiln cannot read stops the run here.
    const store = RunStore.open(resumed === null ? options.runsRoot : dirname(resumed.path));

    const run = resumed ?? RunDirectory.create(options.runsRoot, config.name);
    if (!resuming) {
      run.writeText('config.yaml', loaded.resolvedYaml);
      run.writeJson('model.json', { ...prepared.modelJson, kilnVersion: KILN_VERSION });
      run.writeJson('tokenizer.json', prepared.tokenizer.toJSON());
    }
    logFile = run.file('train.log');
    appendFileSync(logFile, early.map((line) => `${line}\n`).join(''));
    store.beginRun({
      id: run.id,
      name: config.name,
      kind: 'train',
      task: config.task,
      path: run.path,
      params: flattenParams(parseYaml(loaded.resolvedYaml)),
      tags: { ...config.tags, 'kiln.version': KILN_VERSION, ...(resuming ? { 'kiln.resumed': 'true' } : {}), ...(dp === null ? {} : { 'kiln.world_size': String(dp.worldSize) }) },
    });

    manualSeed(config.seed);
    let task: ReturnType<typeof prepared.start>;
    try {
      if (dp !== null) dp.broadcastJson(run.path); // the other ranks name the run in their messages
      task = prepared.start({ resuming, runPath: run.path, parallel: dp === null ? undefined : { rank: dp.rank, worldSize: dp.worldSize, group: dp.group, timed: (fn) => dp.timed(fn) } });
    } catch (error) {
      store.endRun(run.id, { status: 'failed', message: (error as Error).message, artifactsFrom: run.path });
      store.close();
      throw error;
    }
    const model = task.model.model;
    write(
      `run ${run.id} (${config.task}): ${prepared.describeData().join('; ')}; ${(model.parameterCount() / 1e6).toFixed(2)}M parameters, ` +
        `${config.train.precision}, ${dp === null ? '' : `${dp.worldSize} processes × `}${threads} thread(s); ready in ${((performance.now() - loadStart) / 1000).toFixed(1)} s`,
    );

    let lastMetrics: Record<string, number> = {};
    const evaluate = task.evaluate === null ? null : (step: number): Record<string, number> => (lastMetrics = task.evaluate!(step));
    const saveModelWeights = (step: number): void => {
      noGrad(() => saveSafetensors(run.file('model.safetensors'), model.stateDict(), { step: String(step), run: run.id }));
    };
    let end: EndEvent;
    try {
      end = runTraining({
        strategy: task.strategy,
        options: loopOptions(config),
        evaluate,
        runPath: run.path,
        saveModelWeights,
        hooks: [
          new ProgressHook({ logEvery: config.train.log_every, plain: options.plainProgress, write, periodicWrite: options.quiet === true ? writeLogOnly : undefined }),
          new RunDirectoryHook(run, config.train.log_every, [new RunStoreMirror(store, run.id)]),
          ...(options.hooks ?? []),
        ],
        resume: resuming,
        ...(dp === null ? {} : { parallel: dp }),
        write,
      });
    } catch (error) {
      const failure = dp === null ? error : peerFailure(error, run.path, dp.worldSize);
      store.endRun(run.id, { status: 'failed', message: (failure as Error).message, artifactsFrom: run.path });
      store.close();
      task.dispose();
      model.dispose();
      throw failure;
    }

    const extra = task.summarize(end, lastMetrics, run.id);
    const summary: RunSummary = {
      runId: run.id,
      runPath: run.path,
      task: config.task,
      status: end.status,
      message: end.message,
      steps: end.lastStep,
      wallSeconds: end.elapsedSeconds,
      metrics: lastMetrics,
      ...extra.fields,
    };
    run.writeJson('summary.json', {
      ...summary,
      ...provenance,
      dataFiles,
      bestStep: end.bestStep,
      bestValue: end.bestValue,
      parameters: model.parameterCount(),
      ...(dp === null ? {} : { worldSize: dp.worldSize, zero: config.train.zero }),
      finishedAt: new Date().toISOString(),
    });
    store.endRun(run.id, { status: end.status === 'diverged' ? 'failed' : 'finished', message: end.message, results: lastMetrics, artifactsFrom: run.path });
    if (options.mlflow !== undefined) {
      // The run is safe on disk and in the store; a tracking server that cannot be reached costs
      // only the copy, which `kiln runs export --tracking-uri` can send again.
      try {
        const client = new MlflowRestClient(options.mlflow.trackingUri);
        const mlflowId = await logRunToMlflow(client, store, run.id, options.mlflow.experiment);
        write(`logged to MLflow at ${client.baseUrl}: experiment ${options.mlflow.experiment}, run ${mlflowId}`);
      } catch (error) {
        write(`warning: the run is saved, but logging it to MLflow failed: ${(error as Error).message} (retry: kiln runs export ${run.id} --tracking-uri ${options.mlflow.trackingUri})`);
      }
    }
    store.close();
    write(extra.table);
    task.dispose();
    model.dispose();
    return summary;
  }
}

/**
 * A rank other than 0: the same task and loop on its own slices, with no run directory, hooks
 * or evaluation of its own; rank 0 tells it the run's path and its decisions.
 */
async function trainFollower(dp: DataParallel, prepared: PreparedTask, options: TrainRunOptions, loaded: LoadedRunConfig): Promise<RunSummary> {
  const { config } = loaded;
  const runPath = dp.broadcastJson<string>('');
  manualSeed(config.seed);
  const task = prepared.start({ resuming: options.resumeRun !== undefined, runPath, parallel: { rank: dp.rank, worldSize: dp.worldSize, group: dp.group, timed: (fn) => dp.timed(fn) } });
  try {
    const end = runTraining({ strategy: task.strategy, options: loopOptions(config), evaluate: task.evaluate, runPath, saveModelWeights: () => {}, hooks: [], resume: options.resumeRun !== undefined, parallel: dp });
    return { runId: basename(runPath), runPath, task: config.task, status: end.status, message: end.message, steps: end.lastStep, wallSeconds: end.elapsedSeconds, metrics: {}, rank: dp.rank };
  } catch (error) {
    throw peerFailure(error, runPath, dp.worldSize);
  } finally {
    task.dispose();
    task.model.model.dispose();
  }
}

/** A collective that failed (a peer died or went silent) as a message that says what was kept and how to go on. */
function peerFailure(error: unknown, runPath: string, worldSize: number): unknown {
  const message = (error as Error).message;
  if (!/^rank \d+: \w+ failed/.test(message)) return error;
  return new DistributedTrainingError(
    `${message}\nA process of this ${worldSize}-process run failed or stopped answering, so training stopped. The last checkpoint in ${runPath}/checkpoints is intact; continue with: kiln train --resume ${runPath} --nproc ${worldSize}`,
  );
}

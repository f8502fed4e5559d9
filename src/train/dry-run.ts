/**
 * `kiln train --dry-run`: everything a run does before its first real step, and a few steps,
 * without a run directory. The config is validated (by the caller), the task loads its data
 * and builds its model and strategy exactly as `trainRun` does (TASKS[task].prepare and
 * start), and the one loop (src/train/loop.ts) runs one warm-up step and a few timed steps on
 * that model, which is then thrown away. Nothing is written under --runs and the run store
 * is not opened; a task that keeps files beside its run (the distillation teacher cache) keeps
 * them in a temporary directory that is removed before returning.
 *
 * @example
 *   kiln train --config configs/tiny.yaml --dry-run
 *   // dry run of tiny (twotower): … 0.99M parameters (989,760); 20 steps of 16 examples;
 *   // timed 3 steps after 1 warm-up step: 0.031 s/step → about 0m01s for 20 steps (…)
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { manualSeed } from '../engine/index.js';
import { formatDuration } from '../util/format.js';
import type { StepEvent } from '../track/events.js';
import { runTraining } from './loop.js';
import { applyThreadPolicy, loopOptions, type LoadedRunConfig } from './run.js';
import { TASKS } from './tasks/index.js';
import type { KilnConfig } from '../config/schema.js';

/** Steps run before timing starts: the first step pays for lazy allocations and kernel selection. */
const WARMUP_STEPS = 1;
/** Steps timed for the estimate: enough to smooth one slow step, few enough to stay quick. */
const TIMED_STEPS = 3;

export interface DryRunReport {
  name: string;
  task: KilnConfig['task'];
  /** The banner lines of a real run: pairs per recipe, dropped rows, … */
  data: string[];
  /** Parameters of the model the run delivers (what summary.json records as `parameters`). */
  parameters: number;
  steps: number;
  /** Examples per optimizer step: batch size × gradient accumulation. */
  examplesPerStep: number;
  threads: number;
  precision: KilnConfig['train']['precision'];
  warmupSteps: number;
  timedSteps: number;
  /** Median seconds of the timed steps (null when none could be timed). */
  secondsPerStep: number | null;
  /** secondsPerStep × steps: training steps only, without evaluation and checkpoints. */
  estimatedSeconds: number | null;
  /** Seconds from the start to a built model (data loading included), as a run's banner says. */
  setupSeconds: number;
}

export interface DryRunOptions {
  dataRoot?: string;
  /** Threads for libtorch (overrides train.threads). */
  threads?: number;
  /** Where the task's notes go (data loading, init_from); default stderr. */
  write?: (line: string) => void;
}

function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}

export async function dryRunTraining(loaded: LoadedRunConfig, options: DryRunOptions = {}): Promise<DryRunReport> {
  const { config } = loaded;
  const write = options.write ?? ((line: string) => process.stderr.write(`${line}\n`));
  const threads = applyThreadPolicy(options.threads ?? config.train.threads, config.train.precision);
  const started = performance.now();
  const prepared = await TASKS[config.task].prepare({ config, dataRoot: options.dataRoot, write });

  // The parent exists only so that a task looking for sibling runs (the teacher cache's reuse)
  // looks in an empty directory, not in the system's temp directory.
  const scratch = mkdtempSync(join(tmpdir(), 'kiln-dry-run-'));
  const runPath = join(scratch, 'run');
  mkdirSync(runPath);
  try {
    manualSeed(config.seed);
    const task = prepared.start({ resuming: false, runPath });
    const model = task.model.model;
    const parameters = model.parameterCount();
    const setupSeconds = (performance.now() - started) / 1000;
    const warmupSteps = config.train.steps > WARMUP_STEPS ? WARMUP_STEPS : 0;
    const timedSteps = Math.min(TIMED_STEPS, config.train.steps - warmupSteps);
    const stepSeconds: number[] = [];
    try {
      runTraining({
        strategy: task.strategy,
        // No evaluation and no checkpoints: only the steps themselves are timed.
        options: { ...loopOptions(config), evalEvery: 0, checkpointEvery: Number.POSITIVE_INFINITY },
        evaluate: null,
        runPath,
        saveModelWeights: () => {},
        hooks: [
          {
            onStep: (e: StepEvent) => {
              if (e.step > warmupSteps) stepSeconds.push(e.stepSeconds);
            },
          },
        ],
        resume: false,
        stopAfterSteps: warmupSteps + timedSteps,
      });
    } finally {
      task.dispose();
      model.dispose();
    }
    const secondsPerStep = median(stepSeconds);
    return {
      name: config.name,
      task: config.task,
      data: prepared.describeData(),
      parameters,
      steps: config.train.steps,
      examplesPerStep: config.train.batch_size * config.train.grad_accum,
      threads,
      precision: config.train.precision,
      warmupSteps,
      timedSteps: stepSeconds.length,
      secondsPerStep,
      estimatedSeconds: secondsPerStep === null ? null : secondsPerStep * config.train.steps,
      setupSeconds,
    };
  } finally {
    rmSync(scratch, { recursive: true, force: true });
  }
}

/** The report for a terminal: what a run would do, and how long its steps would take. */
export function formatDryRun(r: DryRunReport): string {
  const timing =
    r.secondsPerStep === null
      ? 'no step could be timed'
      : `timed ${r.timedSteps} step(s) after ${r.warmupSteps} warm-up step(s): ${r.secondsPerStep.toFixed(3)} s/step → about ${formatDuration(r.estimatedSeconds!)} for ${r.steps} steps (training steps only; evaluation and checkpoints not included)`;
  return [
    `dry run of ${r.name} (${r.task}): config valid, data loaded and batched, model built in ${r.setupSeconds.toFixed(1)} s; nothing written`,
    `data: ${r.data.join('; ')}`,
    `model: ${(r.parameters / 1e6).toFixed(2)}M parameters (${r.parameters.toLocaleString('en-US')})`,
    `train: ${r.steps} steps of ${r.examplesPerStep} examples, ${r.precision}, ${r.threads} thread(s)`,
    timing,
  ].join('\n');
}

/**
 * The training loop: one loop for every task (nanoGPT's train.py is the model of brevity).
 *
 *   for step s = start … T−1:
 *     lr ← schedule(s); reseed libtorch with (seed, s)        (dropout is a pure function of s)
 *     for each of A micro-batches: loss = strategy.step() / A; guard finite; backward
 *     clip ‖g‖ ≤ c (a non-finite norm stops the run too); AdamW step; zero grads
 *     hooks.onStep; every E steps evaluate (hooks.onEval, early stopping, best weights);
 *     every K steps checkpoint atomically (hooks.onCheckpoint)
 *
 * Reseeding per step and checkpointing the strategy's data position make a resumed run take
 * the same steps as an uninterrupted one. A NaN or infinite loss stops the run before the
 * optimizer touches the weights; the last checkpoint on disk is the last good state.
 */
import { AdamW, autocast, clipGradNorm, manualSeed, noGrad, tidy, type Tensor } from '../engine/index.js';
import { learningRateAt, type ScheduleOptions } from './schedule.js';
import { loadLatestCheckpoint, saveCheckpoint, updateCheckpointState } from './checkpoint.js';
import type { TrainStrategy } from './strategy.js';
import type { EndEvent, TrainHooks } from '../track/events.js';

export interface TrainOptions {
  steps: number;
  gradAccum: number;
  schedule: Omit<ScheduleOptions, 'totalSteps'>;
  weightDecay: number;
  betas: [number, number];
  eps: number;
  clipGradNorm: number | null;
  precision: 'fp32' | 'bf16';
  device: 'cpu' | 'cuda';
  seed: number;
  evalEvery: number;
  checkpointEvery: number;
  earlyStopping: { metric: string; mode: 'max' | 'min'; patience: number; minDelta: number } | null;
  /** The metric whose best value selects the saved weights (early stopping's, or null = last weights). */
  selectionMetric: string | null;
}

export type { EndEvent, EvalEvent, StepEvent, TrainHooks } from '../track/events.js';

export interface LoopState {
  strategy: unknown;
  best: { step: number; value: number } | null;
  evalsWithoutImprovement: number;
  elapsedSeconds: number;
  /** The final evaluation and the delivered weights are written (absent in checkpoints from before it was recorded: they were). */
  finalDone?: boolean;
}

export class NonFiniteLossError extends Error {}

/** Parameters that get no weight decay: biases and LayerNorm weights (BERT's AdamW recipe), and loss parameters. */
function decays(name: string): boolean {
  return !(name.endsWith('.bias') || name.includes('LayerNorm') || name.includes('layer_norm'));
}

/** A deterministic per-step libtorch seed from the run seed (splitmix-style mixing). */
export function stepSeed(seed: number, step: number): number {
  let x = (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) + Math.imul(step + 1, 0xc2b2ae35)) >>> 0;
  x = Math.imul(x ^ (x >>> 16), 0x7feb352d) >>> 0;
  x = Math.imul(x ^ (x >>> 15), 0x846ca68b) >>> 0;
  return (x ^ (x >>> 16)) >>> 0;
}

export interface LoopDependencies {
  strategy: TrainStrategy;
  options: TrainOptions;
  /** Evaluates the current model; metric keys are `<eval name>/<metric>`. */
  evaluate: ((step: number) => Record<string, number>) | null;
  /** Where checkpoints live (the run directory). */
  runPath: string;
  /** Saves the weights that the run delivers (best by the selection metric, else the last). */
  saveModelWeights: (step: number) => void;
  hooks: TrainHooks[];
  resume: boolean;
  /**
   * Stop after this many steps and return, without the final checkpoint, evaluation or
   * weights: `kiln train --dry-run` times a few real steps this way. Absent: train to the end.
   */
  stopAfterSteps?: number;
}

export function runTraining(deps: LoopDependencies): EndEvent {
  const { strategy, options, hooks } = deps;
  const emit = <K extends keyof TrainHooks>(name: K, event: Parameters<NonNullable<TrainHooks[K]>>[0]): void => {
    for (const hook of hooks) (hook[name] as ((e: typeof event) => void) | undefined)?.call(hook, event);
  };

  const named = strategy.modules.flatMap(({ name, module }) => module.namedParameters(`${name}.`));
  const trainable = named.filter(([, p]) => p.requiresGrad);
  const optimizer = new AdamW(
    [
      { params: trainable.filter(([n]) => decays(n) && !n.startsWith('loss.')).map(([, p]) => p), lr: options.schedule.lr, weightDecay: options.weightDecay },
      { params: trainable.filter(([n]) => !decays(n) || n.startsWith('loss.')).map(([, p]) => p), lr: options.schedule.lr, weightDecay: 0 },
    ].filter((g) => g.params.length > 0),
    { betas: options.betas, eps: options.eps },
  );
  const allWeights = (): Map<string, Tensor> => new Map(named);

  let startStep = 0;
  let best: LoopState['best'] = null;
  let evalsWithoutImprovement = 0;
  let elapsedBefore = 0;
  let finalDone = false;
  if (deps.resume) {
    const checkpoint = loadLatestCheckpoint<LoopState>(deps.runPath);
    if (checkpoint !== null) {
      const byName = new Map(named);
      for (const [name, value] of checkpoint.weights) {
        const target = byName.get(name);
        if (target === undefined) throw new Error(`${checkpoint.path}: unexpected parameter '${name}' (the config changed since the checkpoint?)`);
        noGrad(() => target.copy_(value));
        value.dispose();
      }
      optimizer.loadStateBytes(checkpoint.optimizerBytes);
      strategy.restore(checkpoint.state.strategy);
      best = checkpoint.state.best;
      evalsWithoutImprovement = checkpoint.state.evalsWithoutImprovement;
      elapsedBefore = checkpoint.state.elapsedSeconds;
      startStep = checkpoint.step;
      finalDone = startStep >= options.steps && checkpoint.state.finalDone !== false;
    }
  }
  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const loopState = (): LoopState => ({ strategy: strategy.state(), best, evalsWithoutImprovement, elapsedSeconds: elapsed(), finalDone });

  emit('onStart', { startStep, totalSteps: options.steps, resumed: startStep > 0 });
  strategy.prepare?.(startStep);

  const schedule: ScheduleOptions = { ...options.schedule, totalSteps: options.steps };
  const forward = <T>(fn: () => T): T => (options.precision === 'bf16' ? autocast(fn, { device: options.device, dtype: 'bfloat16' }) : fn());

  const finish = (partial: Omit<EndEvent, 'elapsedSeconds'>): EndEvent => {
    optimizer.dispose();
    const event: EndEvent = { ...partial, elapsedSeconds: elapsed() };
    emit('onEnd', event);
    return event;
  };

  const stopAt = deps.stopAfterSteps === undefined ? options.steps : Math.min(options.steps, startStep + deps.stopAfterSteps);
  let step = startStep;
  for (; step < stopAt; step++) {
    const stepStart = performance.now();
    const lr = learningRateAt(step, schedule);
    optimizer.setLr(lr);
    manualSeed(stepSeed(options.seed, step));

    let lossSum = 0;
    let examples = 0;
    let tokens = 0;
    const logSums: Record<string, number> = {};
    let nonFinite: string | null = null;
    for (let micro = 0; micro < options.gradAccum && nonFinite === null; micro++) {
      tidy(() => {
        const out = forward(() => strategy.step({ step, microStep: micro }));
        const value = out.loss.item();
        if (!Number.isFinite(value)) {
          nonFinite = `loss is ${value} at step ${step} (micro-batch ${micro})`;
          return;
        }
        out.loss.div(options.gradAccum).backward();
        lossSum += value / options.gradAccum;
        examples += out.examples;
        tokens += out.tokens;
        for (const [k, v] of Object.entries(out.logs)) logSums[k] = (logSums[k] ?? 0) + v / options.gradAccum;
      });
    }
    const params = trainable.map(([, p]) => p);
    let gradNorm = Number.NaN;
    if (nonFinite === null) {
      gradNorm = clipGradNorm(params, options.clipGradNorm ?? Number.POSITIVE_INFINITY);
      if (!Number.isFinite(gradNorm)) nonFinite = `gradient norm is ${gradNorm} at step ${step}`;
    }
    if (nonFinite !== null) {
      optimizer.zeroGrad();
      const kept = loadLatestCheckpointStep(deps.runPath);
      return finish({
        status: 'diverged',
        lastStep: step,
        bestStep: best?.step ?? null,
        bestValue: best?.value ?? null,
        message: `training stopped: ${nonFinite}. The weights were not updated with it; ${kept === null ? 'no checkpoint was written yet' : `the last good checkpoint (step ${kept}) is kept`}. Lower train.lr, enable train.clip_grad_norm or use fp32.`,
      });
    }
    optimizer.step();
    optimizer.zeroGrad();
    strategy.afterOptimizerStep?.(step);
    const done = step + 1;
    emit('onStep', { step: done, totalSteps: options.steps, loss: lossSum, lr, gradNorm, logs: logSums, examples, tokens, stepSeconds: (performance.now() - stepStart) / 1000 });

    let stop = false;
    if (deps.evaluate !== null && options.evalEvery > 0 && done % options.evalEvery === 0 && done < options.steps) {
      stop = evaluateAndSelect(done);
    }
    if (done % options.checkpointEvery === 0 && done < options.steps) {
      const path = saveCheckpoint(deps.runPath, { step: done, weights: allWeights(), optimizer, state: loopState() });
      emit('onCheckpoint', { step: done, path });
    }
    if (stop) {
      return finish({ status: 'early-stopped', lastStep: done, bestStep: best?.step ?? null, bestValue: best?.value ?? null, message: `early stopping: ${options.earlyStopping?.metric} did not improve for ${options.earlyStopping?.patience} evaluations` });
    }
  }
  if (deps.stopAfterSteps !== undefined) {
    return finish({ status: 'completed', lastStep: stopAt, bestStep: best?.step ?? null, bestValue: best?.value ?? null, message: `stopped after ${stopAt - startStep} step(s), as asked` });
  }
  // The end: the last checkpoint first, so a run stopped during its final evaluation (which can
  // take minutes) resumes at that evaluation rather than losing steps; then the evaluation, the
  // delivered weights, and a mark that it is done, so `--resume` on a finished run is a no-op.
  if (startStep < options.steps) saveCheckpoint(deps.runPath, { step: options.steps, weights: allWeights(), optimizer, state: loopState() });
  if (!finalDone) {
    if (deps.evaluate !== null) evaluateAndSelect(options.steps);
    if (options.selectionMetric === null || best === null) deps.saveModelWeights(options.steps);
    finalDone = true;
    updateCheckpointState(deps.runPath, options.steps, loopState());
  }
  return finish({ status: 'completed', lastStep: options.steps, bestStep: best?.step ?? null, bestValue: best?.value ?? null, message: `completed ${options.steps} steps` });

  /** Evaluates, tracks the best value of the selection metric, saves best weights; returns true to stop early. */
  function evaluateAndSelect(atStep: number): boolean {
    const evalStart = performance.now();
    const metrics = deps.evaluate!(atStep);
    let improved = false;
    if (options.selectionMetric !== null) {
      const value = metrics[options.selectionMetric];
      if (value === undefined) throw new Error(`selection metric '${options.selectionMetric}' was not computed; got ${Object.keys(metrics).join(', ')}`);
      const mode = options.earlyStopping?.mode ?? 'max';
      const minDelta = options.earlyStopping?.minDelta ?? 0;
      improved = best === null || (mode === 'max' ? value > best.value + minDelta : value < best.value - minDelta);
      if (improved) {
        best = { step: atStep, value };
        evalsWithoutImprovement = 0;
        deps.saveModelWeights(atStep);
      } else {
        evalsWithoutImprovement++;
      }
    }
    emit('onEval', { step: atStep, metrics, seconds: (performance.now() - evalStart) / 1000, improved });
    return options.earlyStopping !== null && evalsWithoutImprovement >= options.earlyStopping.patience;
  }
}

function loadLatestCheckpointStep(runPath: string): number | null {
  const checkpoint = loadLatestCheckpoint<LoopState>(runPath);
  if (checkpoint === null) return null;
  for (const t of checkpoint.weights.values()) t.dispose();
  return checkpoint.step;
}

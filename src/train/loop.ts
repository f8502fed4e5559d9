/**
 * The training loop: one loop for every task (nanoGPT's train.py is the model of brevity).
 *
 *   for step s = start … T−1:
 *     lr ← schedule(s)
 *     for each of this rank's A micro-batches m (slice k = rank·A + m of the step's batch):
 *       reseed libtorch with (seed, s, k)                    (dropout is a pure function of s, k)
 *       loss = strategy.step() / A; guard finite; backward
 *     with W > 1 ranks: agree on finiteness, average the gradients (data-parallel.ts)
 *     clip ‖g‖ ≤ c (a non-finite norm stops the run too); AdamW step; zero grads
 *     hooks.onStep; every E steps evaluate (hooks.onEval, early stopping, best weights);
 *     every K steps checkpoint atomically (hooks.onCheckpoint)
 *
 * Reseeding per micro-batch slice and checkpointing the strategy's data position make a resumed
 * run take the same steps as an uninterrupted one, and make W processes with grad_accum A take
 * the same steps as one process with grad_accum W·A. A NaN or infinite loss stops the run before
 * the optimizer touches the weights; the last checkpoint on disk is the last good state.
 *
 * Data parallelism: rank 0 broadcasts the initial (or resumed) weights, and alone evaluates,
 * writes checkpoints and runs the hooks; the other ranks learn its decisions (early stopping,
 * the resumed state) by broadcast. Under ZeRO-1 each rank updates the parameters it owns.
 */
import { AdamW, autocast, clipGradNorm, manualSeed, noGrad, tidy, type Tensor } from '../engine/index.js';
import { partitionParameters, zeroMemoryReport, type DataParallel } from './data-parallel.js';
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
  /** Processes that trained (absent in checkpoints from before data parallelism: 1). */
  worldSize?: number;
  /** ZeRO stage of the optimizer state (absent: 0). */
  zero?: 0 | 1;
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

/** The seed of slice k of step s: slice 0 keeps the step's seed, so a one-process run without accumulation seeds as before. */
export function sliceSeed(seed: number, step: number, slice: number): number {
  return slice === 0 ? stepSeed(seed, step) : stepSeed((seed + Math.imul(slice, 0x632be5ab)) >>> 0, step);
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
  /** Training across processes; absent = this process alone. */
  parallel?: DataParallel;
  /** Lines for the run's output (the ZeRO-1 memory report). */
  write?: (line: string) => void;
}

export function runTraining(deps: LoopDependencies): EndEvent {
  const { strategy, options, hooks } = deps;
  const dp = deps.parallel ?? null;
  const writer = dp === null || dp.isWriter;
  const worldSize = dp?.worldSize ?? 1;
  const rank = dp?.rank ?? 0;
  const zero = dp?.zero ?? 0;
  const emit = <K extends keyof TrainHooks>(name: K, event: Parameters<NonNullable<TrainHooks[K]>>[0]): void => {
    for (const hook of hooks) (hook[name] as ((e: typeof event) => void) | undefined)?.call(hook, event);
  };

  const named = strategy.modules.flatMap(({ name, module }) => module.namedParameters(`${name}.`));
  const trainable = named.filter(([, p]) => p.requiresGrad);
  const params = trainable.map(([, p]) => p);
  // ZeRO-1: this rank's optimizer holds state only for the parameters it owns.
  const owners = zero === 1 ? partitionParameters(params.map((p) => p.numel), worldSize) : null;
  const owned = trainable.filter((_, i) => owners === null || owners[i] === rank);
  const groups = [
    { params: owned.filter(([n]) => decays(n) && !n.startsWith('loss.')).map(([, p]) => p), lr: options.schedule.lr, weightDecay: options.weightDecay },
    { params: owned.filter(([n]) => !decays(n) || n.startsWith('loss.')).map(([, p]) => p), lr: options.schedule.lr, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
  const optimizer = groups.length === 0 ? null : new AdamW(groups, { betas: options.betas, eps: options.eps });
  if (owners !== null && writer) {
    const report = zeroMemoryReport(params.map((p) => p.numel), owners, rank);
    deps.write?.(`ZeRO-1: rank 0 keeps AdamW state for ${report.ownedElements} of ${report.totalElements} parameter elements, ${(report.savedBytes / 2 ** 20).toFixed(2)} MiB less than plain data parallelism`);
  }
  const allWeights = (): Map<string, Tensor> => new Map(named);
  const zeroGrads = (): void => {
    optimizer?.zeroGrad();
    // Under ZeRO-1 the optimizer knows only its own parameters.
    if (owners !== null) for (const p of params) p.zeroGrad();
  };
  /** The optimizer state of every rank, gathered to rank 0 under ZeRO-1 (every rank must call it at the same time). */
  const optimizerStates = (): Buffer[] => {
    const own = optimizer?.stateBytes() ?? Buffer.alloc(0);
    return owners !== null && dp !== null ? dp.gatherBytes(own) : [own];
  };
  const checkpoint = (step: number): string | null => {
    const states = optimizerStates();
    return writer ? saveCheckpoint(deps.runPath, { step, weights: allWeights(), optimizerStates: states, state: loopState() }) : null;
  };

  let startStep = 0;
  let best: LoopState['best'] = null;
  let evalsWithoutImprovement = 0;
  let elapsedBefore = 0;
  let finalDone = false;
  if (deps.resume) {
    // Rank 0 reads the checkpoint; the others receive what they need from it.
    let found: { step: number; state: LoopState } | null = null;
    let problem: string | null = null;
    let states: Buffer[] = [];
    if (writer) {
      try {
        const loaded = loadLatestCheckpoint<LoopState>(deps.runPath);
        if (loaded !== null) {
          problem = resumeMismatch(loaded.path, loaded.state, worldSize, zero, deps.runPath);
          const byName = new Map(named);
          for (const [name, value] of loaded.weights) {
            const target = byName.get(name);
            if (problem === null && target === undefined) problem = `${loaded.path}: unexpected parameter '${name}' (the config changed since the checkpoint?)`;
            if (problem === null) noGrad(() => target!.copy_(value));
            value.dispose();
          }
          if (problem === null) {
            found = { step: loaded.step, state: loaded.state };
            states = loaded.optimizerStates;
          }
        }
      } catch (error) {
        problem = (error as Error).message;
      }
    }
    if (dp !== null) ({ found, problem } = dp.broadcastJson({ found, problem }));
    if (problem !== null) throw new Error(problem);
    if (found !== null) {
      // Each rank's optimizer state: rank 0's for all, or under ZeRO-1 each rank its own shard.
      let own: Buffer | null = states[0] ?? null;
      if (dp !== null) {
        if (owners === null) own = dp.broadcastBytes(writer ? states[0]! : null);
        else for (let r = 0; r < worldSize; r++) {
          const bytes = dp.broadcastBytes(writer ? (states[r] ?? Buffer.alloc(0)) : null);
          if (r === rank) own = bytes;
        }
      }
      if (optimizer !== null && own !== null) optimizer.loadStateBytes(own);
      strategy.restore(found.state.strategy);
      best = found.state.best;
      evalsWithoutImprovement = found.state.evalsWithoutImprovement;
      elapsedBefore = found.state.elapsedSeconds;
      startStep = found.step;
      finalDone = startStep >= options.steps && found.state.finalDone !== false;
    }
  }
  // Every rank starts from rank 0's weights, fresh or resumed.
  if (dp !== null) dp.broadcastTensors(named.map(([, p]) => p));
  const started = performance.now();
  const elapsed = (): number => elapsedBefore + (performance.now() - started) / 1000;
  const loopState = (): LoopState => ({ strategy: strategy.state(), best, evalsWithoutImprovement, elapsedSeconds: elapsed(), finalDone, worldSize, zero });

  emit('onStart', { startStep, totalSteps: options.steps, resumed: startStep > 0 });
  strategy.prepare?.(startStep);

  const schedule: ScheduleOptions = { ...options.schedule, totalSteps: options.steps };
  const forward = <T>(fn: () => T): T => (options.precision === 'bf16' ? autocast(fn, { device: options.device, dtype: 'bfloat16' }) : fn());

  const finish = (partial: Omit<EndEvent, 'elapsedSeconds'>): EndEvent => {
    optimizer?.dispose();
    const event: EndEvent = { ...partial, elapsedSeconds: elapsed() };
    emit('onEnd', event);
    return event;
  };

  const stopAt = deps.stopAfterSteps === undefined ? options.steps : Math.min(options.steps, startStep + deps.stopAfterSteps);
  let step = startStep;
  for (; step < stopAt; step++) {
    const stepStart = performance.now();
    const lr = learningRateAt(step, schedule);
    optimizer?.setLr(lr);

    let lossSum = 0;
    let examples = 0;
    let tokens = 0;
    let logSums: Record<string, number> = {};
    let nonFinite: string | null = null;
    for (let micro = 0; micro < options.gradAccum && nonFinite === null; micro++) {
      const slice = rank * options.gradAccum + micro;
      manualSeed(sliceSeed(options.seed, step, slice));
      tidy(() => {
        const out = forward(() => strategy.step({ step, microStep: micro, slice }));
        const value = out.loss.item();
        if (!Number.isFinite(value)) {
          nonFinite = `loss is ${value} at step ${step} (micro-batch ${micro}${dp === null ? '' : ` on rank ${rank}`})`;
          return;
        }
        out.loss.div(options.gradAccum).backward();
        lossSum += value / options.gradAccum;
        examples += out.examples;
        tokens += out.tokens;
        for (const [k, v] of Object.entries(out.logs)) logSums[k] = (logSums[k] ?? 0) + v / options.gradAccum;
      });
    }
    if (dp !== null) {
      // Every rank learns every rank's numbers: a non-finite loss anywhere stops them all.
      const all = dp.gatherJson({ nonFinite, lossSum, examples, tokens, logs: logSums });
      nonFinite = all.find((r) => r.nonFinite !== null)?.nonFinite ?? null;
      lossSum = all.reduce((a, r) => a + r.lossSum, 0) / worldSize;
      examples = all.reduce((a, r) => a + r.examples, 0);
      tokens = all.reduce((a, r) => a + r.tokens, 0);
      logSums = meanOfLogs(all.map((r) => r.logs));
      if (nonFinite === null) dp.averageGradients(params);
    }
    let gradNorm = Number.NaN;
    if (nonFinite === null) {
      gradNorm = clipGradNorm(params, options.clipGradNorm ?? Number.POSITIVE_INFINITY);
      if (!Number.isFinite(gradNorm)) nonFinite = `gradient norm is ${gradNorm} at step ${step}`;
    }
    if (nonFinite !== null) {
      zeroGrads();
      const kept = writer ? loadLatestCheckpointStep(deps.runPath) : null;
      return finish({
        status: 'diverged',
        lastStep: step,
        bestStep: best?.step ?? null,
        bestValue: best?.value ?? null,
        message: `training stopped: ${nonFinite}. The weights were not updated with it; ${!writer ? 'rank 0 keeps the last good checkpoint' : kept === null ? 'no checkpoint was written yet' : `the last good checkpoint (step ${kept}) is kept`}. Lower train.lr, enable train.clip_grad_norm or use fp32.`,
      });
    }
    optimizer?.step();
    // ZeRO-1: each owner's updated parameters reach the other ranks.
    if (owners !== null && dp !== null) for (let r = 0; r < worldSize; r++) dp.broadcastTensors(params.filter((_, i) => owners[i] === r), r);
    zeroGrads();
    strategy.afterOptimizerStep?.(step);
    const done = step + 1;
    if (dp !== null) logSums.comm_seconds = dp.takeCommSeconds();
    emit('onStep', { step: done, totalSteps: options.steps, loss: lossSum, lr, gradNorm, logs: logSums, examples, tokens, stepSeconds: (performance.now() - stepStart) / 1000 });

    let stop = false;
    if (deps.evaluate !== null && options.evalEvery > 0 && done % options.evalEvery === 0 && done < options.steps) {
      if (writer) stop = evaluateAndSelect(done);
      // The other ranks wait here (within the group's timeout) for rank 0's decision.
      if (dp !== null) stop = dp.broadcastJson(stop);
    }
    if (done % options.checkpointEvery === 0 && done < options.steps) {
      const path = checkpoint(done);
      if (path !== null) emit('onCheckpoint', { step: done, path });
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
  // Only rank 0 evaluates and writes; the other ranks are done once the checkpoint is taken.
  if (startStep < options.steps) checkpoint(options.steps);
  if (!finalDone && writer) {
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

/**
 * Why a checkpoint cannot resume in a run of this shape (null: it can): the data slices and the
 * partitioned optimizer state depend on the world size and the ZeRO stage.
 */
export function resumeMismatch(path: string, state: Pick<LoopState, 'worldSize' | 'zero'>, worldSize: number, zero: 0 | 1, runPath: string): string | null {
  const savedWorld = state.worldSize ?? 1;
  const savedZero = state.zero ?? 0;
  if (savedWorld !== worldSize) {
    return `${path} was written by ${savedWorld} process(es); this run has ${worldSize}. Resume with the same number: kiln train --resume ${runPath}${savedWorld > 1 ? ` --nproc ${savedWorld}` : ''}`;
  }
  if (savedZero !== zero) return `${path} was written with train.zero ${savedZero}; this run has ${zero}. The optimizer state is partitioned differently: resume with the run's own config`;
  return null;
}

/** Each log key's mean over the ranks that logged it. */
function meanOfLogs(perRank: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const sums: Record<string, { total: number; count: number }> = {};
  for (const logs of perRank) {
    for (const [k, v] of Object.entries(logs)) {
      const entry = (sums[k] ??= { total: 0, count: 0 });
      entry.total += v;
      entry.count++;
    }
  }
  return Object.fromEntries(Object.entries(sums).map(([k, { total, count }]) => [k, total / count]));
}

function loadLatestCheckpointStep(runPath: string): number | null {
  const checkpoint = loadLatestCheckpoint<LoopState>(runPath);
  if (checkpoint === null) return null;
  for (const t of checkpoint.weights.values()) t.dispose();
  return checkpoint.step;
}

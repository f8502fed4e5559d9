/**
 * The run directory as a loop hook: train metrics every `logEvery` steps and every evaluation
 * go to metrics.jsonl as {step, time, name, value}, and the same records to each mirror (the
 * SQLite run store, src/track/store.ts), so both hold one series with one clock.
 */
import type { EvalEvent, StepEvent, TrainHooks } from './events.js';
import type { MetricRecord, RunDirectory } from './run-dir.js';

/** Another place the run's metrics go, beside metrics.jsonl. */
export interface MetricMirror {
  append(records: readonly MetricRecord[]): void;
  /** A resumed run redoes the steps after `step`. */
  truncateAfter(step: number): void;
  /** Called on every step, logged or not: the mirror throttles it. */
  heartbeat(): void;
}

export class RunDirectoryHook implements TrainHooks {
  #pending: MetricRecord[] = [];
  #started = performance.now();
  #timeOffset = 0;

  constructor(
    private readonly run: RunDirectory,
    private readonly logEvery: number,
    private readonly mirrors: readonly MetricMirror[] = [],
  ) {}

  onStart(event: { startStep: number }): void {
    // A resumed run drops the metric lines of steps it will redo, and continues the clock.
    this.run.truncateMetricsAfter(event.startStep);
    for (const mirror of this.mirrors) mirror.truncateAfter(event.startStep);
    const last = this.run.readMetrics().at(-1);
    this.#timeOffset = last?.time ?? 0;
    this.#started = performance.now();
  }

  #time(): number {
    return Math.round((this.#timeOffset + (performance.now() - this.#started) / 1000) * 1000) / 1000;
  }

  onStep(e: StepEvent): void {
    for (const mirror of this.mirrors) mirror.heartbeat();
    if (e.step % this.logEvery !== 0 && e.step !== e.totalSteps) return;
    const time = this.#time();
    const push = (name: string, value: number): void => void this.#pending.push({ step: e.step, time, name, value });
    push('train/loss', e.loss);
    push('train/lr', e.lr);
    push('train/grad_norm', e.gradNorm);
    push('train/examples_per_second', e.examples / e.stepSeconds);
    for (const [k, v] of Object.entries(e.logs)) push(`train/${k}`, v);
    this.flush();
  }

  onEval(e: EvalEvent): void {
    const time = this.#time();
    for (const [name, value] of Object.entries(e.metrics)) this.#pending.push({ step: e.step, time, name: `eval/${name}`, value });
    this.flush();
  }

  onEnd(): void {
    this.flush();
  }

  flush(): void {
    this.run.appendMetrics(this.#pending);
    for (const mirror of this.mirrors) mirror.append(this.#pending);
    this.#pending = [];
  }
}

/**
 * The run directory as a loop hook: train metrics every `logEvery` steps and every evaluation
 * go to metrics.jsonl as {step, time, name, value}; the SQLite run store will subscribe to the
 * same events.
 */
import type { EvalEvent, StepEvent, TrainHooks } from './events.js';
import type { MetricRecord, RunDirectory } from './run-dir.js';

export class RunDirectoryHook implements TrainHooks {
  #pending: MetricRecord[] = [];
  #started = performance.now();
  #timeOffset = 0;

  constructor(
    private readonly run: RunDirectory,
    private readonly logEvery: number,
  ) {}

  onStart(event: { startStep: number }): void {
    // A resumed run drops the metric lines of steps it will redo, and continues the clock.
    this.run.truncateMetricsAfter(event.startStep);
    const last = this.run.readMetrics().at(-1);
    this.#timeOffset = last?.time ?? 0;
    this.#started = performance.now();
  }

  #time(): number {
    return Math.round((this.#timeOffset + (performance.now() - this.#started) / 1000) * 1000) / 1000;
  }

  onStep(e: StepEvent): void {
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
    this.#pending = [];
  }
}

/**
 * Progress output as a loop hook: a `cli-progress` bar (loss, learning rate, examples/s, time
 * remaining) on a TTY, or plain log lines every `logEvery` steps without one (CI logs and
 * redirected output stay readable). With --quiet those lines go only to the run's train.log;
 * one-off lines (resuming, the end) still reach the terminal. Time remaining is measured from this
 * process's own steps, so a resumed run does not count the earlier session's speed.
 *
 * Because the bar runs on a timer that the synchronous loop starves, it is redrawn from onStep.
 */
import { SingleBar } from 'cli-progress';

import { formatDuration } from '../util/format.js';
import type { EndEvent, EvalEvent, StepEvent, TrainHooks } from '../track/events.js';

export interface ProgressOptions {
  logEvery: number;
  /** Plain lines instead of a bar. */
  plain: boolean;
  write?: (line: string) => void;
  /** Where the per-step, evaluation and checkpoint lines go, if not to `write` (--quiet: the run's log only). */
  periodicWrite?: (line: string) => void;
}

export function formatMetrics(metrics: Record<string, number>): string {
  return Object.entries(metrics)
    .map(([k, v]) => `${k}=${Math.abs(v) <= 1 ? (100 * v).toFixed(2) : v.toFixed(3)}`)
    .join(' ');
}

export class ProgressHook implements TrainHooks {
  #bar: SingleBar | null = null;
  #firstStep = 0;
  #started = 0;
  #window: Array<{ examples: number; seconds: number }> = [];
  #lossAverage: number | null = null;
  readonly #write: (line: string) => void;
  readonly #periodic: (line: string) => void;

  constructor(private readonly options: ProgressOptions) {
    this.#write = options.write ?? ((line) => process.stderr.write(`${line}\n`));
    this.#periodic = options.periodicWrite ?? this.#write;
  }

  onStart(event: { startStep: number; totalSteps: number; resumed: boolean }): void {
    this.#firstStep = event.startStep;
    this.#started = performance.now();
    if (event.resumed) this.#write(`resuming at step ${event.startStep} of ${event.totalSteps}`);
    if (!this.options.plain) {
      this.#bar = new SingleBar({
        format: 'train |{bar}| {value}/{total} | loss {loss} | lr {lr} | {rate} ex/s | eta {remaining}',
        hideCursor: true,
        clearOnComplete: false,
        fps: 5,
      });
      this.#bar.start(event.totalSteps, event.startStep, { loss: '-', lr: '-', rate: '-', remaining: '-' });
    }
  }

  onStep(e: StepEvent): void {
    this.#lossAverage = this.#lossAverage === null ? e.loss : 0.95 * this.#lossAverage + 0.05 * e.loss;
    this.#window.push({ examples: e.examples, seconds: e.stepSeconds });
    if (this.#window.length > 50) this.#window.shift();
    const windowSeconds = this.#window.reduce((s, w) => s + w.seconds, 0);
    const rate = this.#window.reduce((s, w) => s + w.examples, 0) / Math.max(windowSeconds, 1e-9);
    const secondsPerStep = (performance.now() - this.#started) / 1000 / Math.max(1, e.step - this.#firstStep);
    const remaining = formatDuration(secondsPerStep * (e.totalSteps - e.step));
    if (this.#bar !== null) {
      this.#bar.update(e.step, { loss: this.#lossAverage.toFixed(4), lr: e.lr.toExponential(2), rate: rate.toFixed(0), remaining });
    } else if (e.step % this.options.logEvery === 0 || e.step === e.totalSteps) {
      this.#periodic(`step ${e.step}/${e.totalSteps} loss ${e.loss.toFixed(4)} (avg ${this.#lossAverage.toFixed(4)}) lr ${e.lr.toExponential(2)} |g| ${e.gradNorm.toFixed(3)} ${rate.toFixed(0)} ex/s eta ${remaining}`);
    }
  }

  onEval(e: EvalEvent): void {
    this.#interrupt(() => this.#periodic(`eval @ step ${e.step} (${e.seconds.toFixed(1)} s)${e.improved ? ' *' : ''}: ${formatMetrics(e.metrics)}`));
  }

  onCheckpoint(e: { step: number; path: string }): void {
    if (this.#bar === null) this.#periodic(`checkpoint @ step ${e.step}`);
  }

  onEnd(e: EndEvent): void {
    this.#bar?.stop();
    this.#bar = null;
    this.#write(e.message);
  }

  /** Writes a line above the bar without tearing it. */
  #interrupt(fn: () => void): void {
    if (this.#bar === null) return fn();
    process.stderr.write('\n');
    fn();
  }
}

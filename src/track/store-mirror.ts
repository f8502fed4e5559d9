/**
 * A run's metrics mirrored into the run store (src/track/store.ts) as the loop logs them, with a
 * heartbeat at most every `HEARTBEAT_MS`, so a reader can tell a live run from a dead one.
 */
import type { MetricMirror } from './run-hook.js';
import type { MetricRecord } from './run-dir.js';
import type { RunStore } from './store.js';

const HEARTBEAT_MS = 10_000;

export class RunStoreMirror implements MetricMirror {
  #lastBeat = 0;

  constructor(
    private readonly store: RunStore,
    private readonly runId: string,
  ) {}

  append(records: readonly MetricRecord[]): void {
    if (records.length === 0) return;
    this.store.logMetrics(this.runId, records);
    this.#lastBeat = Date.now();
  }

  truncateAfter(step: number): void {
    this.store.truncateMetricsAfter(this.runId, step);
  }

  heartbeat(): void {
    const now = Date.now();
    if (now - this.#lastBeat < HEARTBEAT_MS) return;
    this.store.heartbeat(this.runId, now);
    this.#lastBeat = now;
  }
}

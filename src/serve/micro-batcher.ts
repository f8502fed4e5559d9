/**
 * Micro-batching for `kiln serve`: concurrent requests are queued and merged into one model
 * call, because one onnxruntime run over 32 texts costs far less than 32 runs over one text
 * (onnxruntime already spreads a single run over every core).
 *
 * Rules, in order:
 *   - Requests carry a group (for the server: side and input type). Only items of one group go
 *     into a call; the group is handed to `runBatch`.
 *   - A group is dispatched when it holds `maxBatch` waiting items, or when its oldest waiting
 *     request has waited `maxWaitMs`, or at once while the batcher is closing.
 *   - At most ONE `runBatch` is in flight at any time. Requests arriving meanwhile queue up and
 *     go into the next call (so under load, batches fill while the model is busy).
 *   - Among ready groups the one whose oldest request arrived first goes next; within a group,
 *     items go in arrival order, at most `maxBatch` per call. A request bigger than the room
 *     left in a call is split across calls and resolved once all its items are back.
 *   - A failing call (a throw, or a result of the wrong length) rejects exactly the requests
 *     that had items in it; their items still queued are dropped. Other requests carry on.
 *
 * @example
 * const batcher = new MicroBatcher<string, number, 'len'>(async (texts) => texts.map((t) => t.length), { maxBatch: 64, maxWaitMs: 5 });
 * const [a, b] = await Promise.all([batcher.submit(['one'], 'len'), batcher.submit(['three', 'four'], 'len')]);
 * // a = [3], b = [5, 4], from ONE runBatch call over ['one', 'three', 'four']
 */

/** Runs the model on one batch; must resolve to one result per item, in item order. */
export type RunBatch<Item, Result, Group> = (items: Item[], group: Group) => Promise<Result[]>;

/** What one model call looked like, for metrics and logs. */
export interface BatchReport<Group> {
  group: Group;
  /** Items in the call (≤ maxBatch). */
  size: number;
  /** Requests with items in the call. */
  requests: number;
  /** Wall time of runBatch. */
  durationMs: number;
  /** The call's error, when it failed. */
  error?: Error;
}

export interface MicroBatcherOptions<Group> {
  /** Most items in one runBatch call (≥ 1). */
  maxBatch: number;
  /** Longest a request waits for company before its group is dispatched anyway (≥ 0). */
  maxWaitMs: number;
  /** Groups with equal keys batch together (default: String(group)). */
  groupKey?: (group: Group) => string;
  /** Called after every runBatch call, successful or not. */
  onBatch?: (report: BatchReport<Group>) => void;
}

/** Thrown by submit() once close() has been called. */
export class BatcherClosedError extends Error {
  constructor() {
    super('the batcher is closing and accepts no new requests');
    this.name = 'BatcherClosedError';
  }
}

interface Pending<Item, Result> {
  readonly items: readonly Item[];
  readonly results: Result[];
  readonly enqueuedAt: number;
  /** Next item not yet handed to a call. */
  dispatched: number;
  /** Items whose results are back. */
  done: number;
  failed: boolean;
  resolve(results: Result[]): void;
  reject(error: Error): void;
}

interface Queue<Item, Result, Group> {
  readonly group: Group;
  /** Requests with undispatched items, oldest first. */
  readonly pending: Pending<Item, Result>[];
  /** Undispatched items over all of `pending`. */
  waiting: number;
}

/** A slice of one request inside a call: items [start, start + count) of `request`. */
interface Piece<Item, Result> {
  request: Pending<Item, Result>;
  start: number;
  count: number;
}

export class MicroBatcher<Item, Result, Group = string> {
  readonly #runBatch: RunBatch<Item, Result, Group>;
  readonly #maxBatch: number;
  readonly #maxWaitMs: number;
  readonly #groupKey: (group: Group) => string;
  readonly #onBatch: ((report: BatchReport<Group>) => void) | undefined;
  readonly #queues = new Map<string, Queue<Item, Result, Group>>();
  #running = false;
  #closing = false;
  #timer: NodeJS.Timeout | undefined;
  #timerDue = Infinity;
  #scheduled = false;
  #idleWaiters: (() => void)[] = [];

  constructor(runBatch: RunBatch<Item, Result, Group>, options: MicroBatcherOptions<Group>) {
    if (!Number.isInteger(options.maxBatch) || options.maxBatch < 1) throw new Error(`maxBatch must be an integer ≥ 1, got ${options.maxBatch}`);
    if (!Number.isFinite(options.maxWaitMs) || options.maxWaitMs < 0) throw new Error(`maxWaitMs must be a number ≥ 0, got ${options.maxWaitMs}`);
    this.#runBatch = runBatch;
    this.#maxBatch = options.maxBatch;
    this.#maxWaitMs = options.maxWaitMs;
    this.#groupKey = options.groupKey ?? ((group) => String(group));
    this.#onBatch = options.onBatch;
  }

  /** Items queued and not yet handed to the model (the queue depth). */
  get queuedItems(): number {
    let n = 0;
    for (const queue of this.#queues.values()) n += queue.waiting;
    return n;
  }

  /** Whether a runBatch call is in flight. */
  get busy(): boolean {
    return this.#running;
  }

  /** Queues `items` and resolves to their results in the same order (rejects if a call with any of them fails). */
  submit(items: readonly Item[], group: Group): Promise<Result[]> {
    if (this.#closing) return Promise.reject(new BatcherClosedError());
    if (items.length === 0) return Promise.resolve([]);
    const key = this.#groupKey(group);
    let queue = this.#queues.get(key);
    if (queue === undefined) {
      queue = { group, pending: [], waiting: 0 };
      this.#queues.set(key, queue);
    }
    const promise = new Promise<Result[]>((resolve, reject) => {
      queue.pending.push({
        items: [...items],
        results: new Array<Result>(items.length),
        enqueuedAt: Date.now(),
        dispatched: 0,
        done: 0,
        failed: false,
        resolve,
        reject,
      });
    });
    queue.waiting += items.length;
    this.#scheduleSoon();
    return promise;
  }

  /**
   * Stops accepting requests (submit() rejects with BatcherClosedError), dispatches everything
   * queued without further waiting, and resolves once the last call has finished.
   */
  close(): Promise<void> {
    this.#closing = true;
    this.#scheduleSoon();
    return this.#whenIdle();
  }

  /** Resolves when nothing is queued and no call is in flight. */
  #whenIdle(): Promise<void> {
    if (!this.#running && this.queuedItems === 0) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  /**
   * Runs #schedule on a microtask, so requests submitted in the same tick can share a call even
   * with maxWaitMs 0, and runBatch is never called from inside submit().
   */
  #scheduleSoon(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    queueMicrotask(() => {
      this.#scheduled = false;
      this.#schedule();
    });
  }

  /** Dispatches the next ready group, or arms the timer for the earliest deadline. */
  #schedule(): void {
    if (this.#running) return; // #dispatch calls us again when the call ends
    const now = Date.now();
    let next: Queue<Item, Result, Group> | undefined;
    let earliestDue = Infinity;
    for (const queue of this.#queues.values()) {
      const head = queue.pending[0];
      if (head === undefined) continue;
      const due = head.enqueuedAt + this.#maxWaitMs;
      // 1 ms of slack: timers may fire a hair before Date.now() reaches the deadline.
      const ready = this.#closing || queue.waiting >= this.#maxBatch || due <= now + 1;
      if (ready && (next === undefined || head.enqueuedAt < next.pending[0]!.enqueuedAt)) next = queue;
      earliestDue = Math.min(earliestDue, due);
    }
    if (next !== undefined) {
      this.#clearTimer();
      void this.#dispatch(next);
      return;
    }
    if (earliestDue === Infinity) {
      this.#clearTimer();
      for (const wake of this.#idleWaiters.splice(0)) wake();
      return;
    }
    if (this.#timer !== undefined && this.#timerDue <= earliestDue) return;
    this.#clearTimer();
    this.#timerDue = earliestDue;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#timerDue = Infinity;
      this.#schedule();
    }, Math.max(0, earliestDue - now));
  }

  #clearTimer(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#timerDue = Infinity;
  }

  /** Takes up to maxBatch items from the head of `queue`, runs them, and hands the results back. */
  async #dispatch(queue: Queue<Item, Result, Group>): Promise<void> {
    this.#running = true;
    const pieces: Piece<Item, Result>[] = [];
    const items: Item[] = [];
    while (items.length < this.#maxBatch && queue.pending.length > 0) {
      const request = queue.pending[0]!;
      const count = Math.min(request.items.length - request.dispatched, this.#maxBatch - items.length);
      pieces.push({ request, start: request.dispatched, count });
      for (let i = 0; i < count; i++) items.push(request.items[request.dispatched + i]!);
      request.dispatched += count;
      queue.waiting -= count;
      if (request.dispatched === request.items.length) queue.pending.shift();
    }
    const started = performance.now();
    let error: Error | undefined;
    let results: Result[] = [];
    try {
      results = await this.#runBatch(items, queue.group);
      if (!Array.isArray(results) || results.length !== items.length) {
        throw new Error(`runBatch returned ${Array.isArray(results) ? results.length : typeof results} results for ${items.length} items`);
      }
    } catch (thrown) {
      error = thrown instanceof Error ? thrown : new Error(String(thrown));
    }
    const durationMs = performance.now() - started;
    let offset = 0;
    for (const { request, start, count } of pieces) {
      if (error !== undefined) {
        this.#fail(queue, request, error);
      } else if (!request.failed) {
        for (let i = 0; i < count; i++) request.results[start + i] = results[offset + i]!;
        request.done += count;
        if (request.done === request.items.length) request.resolve(request.results);
      }
      offset += count;
    }
    this.#running = false;
    try {
      this.#onBatch?.({ group: queue.group, size: items.length, requests: pieces.length, durationMs, ...(error !== undefined ? { error } : {}) });
    } finally {
      this.#schedule();
    }
  }

  /** Rejects `request` once and drops any of its items still queued. */
  #fail(queue: Queue<Item, Result, Group>, request: Pending<Item, Result>, error: Error): void {
    if (request.failed) return;
    request.failed = true;
    const index = queue.pending.indexOf(request);
    if (index >= 0) {
      queue.pending.splice(index, 1);
      queue.waiting -= request.items.length - request.dispatched;
    }
    request.reject(error);
  }
}

/**
 * MicroBatcher (src/serve/micro-batcher.ts) against a deterministic fake model: every call is
 * recorded and answered only when the test says so, and time is vitest's fake clock. Covers
 * merging within maxWaitMs, the wait itself, maxBatch splitting (within and across requests),
 * one call in flight, groups kept apart, FIFO order, failures reaching only the affected
 * requests, close(), and the queue depth.
 */
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { BatcherClosedError, MicroBatcher, type BatchReport } from '../../src/serve/micro-batcher.js';

interface Call {
  items: string[];
  group: string;
  /** Answers the call: by default each item's upper-case form. */
  finish(results?: string[]): void;
  fail(error: Error): void;
}

/** A runBatch whose calls wait for the test to finish (or fail) them. */
function fakeModel(): { calls: Call[]; runBatch: (items: string[], group: string) => Promise<string[]> } {
  const calls: Call[] = [];
  const runBatch = (items: string[], group: string): Promise<string[]> =>
    new Promise((resolve, reject) => {
      calls.push({ items, group, finish: (results) => resolve(results ?? items.map((t) => `${group}:${t.toUpperCase()}`)), fail: reject });
    });
  return { calls, runBatch };
}

/** Settles a promise's state without awaiting it forever: 'pending', or its value / error. */
function track<T>(promise: Promise<T>): { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: Error } {
  const box: { state: 'pending' | 'resolved' | 'rejected'; value?: T; error?: Error } = { state: 'pending' };
  promise.then(
    (value) => Object.assign(box, { state: 'resolved', value }),
    (error: Error) => Object.assign(box, { state: 'rejected', error }),
  );
  return box;
}

/** Lets microtasks and due timers run. */
const tick = async (ms = 0): Promise<void> => {
  await vi.advanceTimersByTimeAsync(ms);
};

beforeEach(() => {
  vi.useFakeTimers();
});
afterEach(() => {
  vi.useRealTimers();
});

describe('MicroBatcher', () => {
  it('merges requests that arrive within maxWaitMs into one call and hands each its own slice', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 64, maxWaitMs: 5 });
    const a = track(batcher.submit(['a1', 'a2'], 'g'));
    await tick(2);
    const b = track(batcher.submit(['b1'], 'g'));
    await tick(2);
    const c = track(batcher.submit(['c1', 'c2', 'c3'], 'g'));
    expect(calls).toHaveLength(0); // 4 ms after the first request: still waiting
    expect(batcher.queuedItems).toBe(6);
    await tick(1);
    expect(calls).toHaveLength(1);
    expect(calls[0]!.items).toEqual(['a1', 'a2', 'b1', 'c1', 'c2', 'c3']);
    expect(batcher.queuedItems).toBe(0);
    calls[0]!.finish();
    await tick();
    expect(a.value).toEqual(['g:A1', 'g:A2']);
    expect(b.value).toEqual(['g:B1']);
    expect(c.value).toEqual(['g:C1', 'g:C2', 'g:C3']);
  });

  it('waits maxWaitMs for company, then runs a lone request anyway', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 8, maxWaitMs: 10 });
    const a = track(batcher.submit(['x'], 'g'));
    await tick(9);
    expect(calls).toHaveLength(0);
    await tick(1);
    expect(calls).toHaveLength(1);
    calls[0]!.finish();
    await tick();
    expect(a.value).toEqual(['g:X']);
  });

  it('with maxWaitMs 0 still merges requests submitted in the same tick', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 8, maxWaitMs: 0 });
    const all = [batcher.submit(['a'], 'g'), batcher.submit(['b'], 'g'), batcher.submit(['c'], 'g')].map(track);
    await tick();
    expect(calls.map((c) => c.items)).toEqual([['a', 'b', 'c']]);
    calls[0]!.finish();
    await tick();
    expect(all.map((r) => r.value)).toEqual([['g:A'], ['g:B'], ['g:C']]);
  });

  it('dispatches a full batch without waiting and never puts more than maxBatch items in a call', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 4, maxWaitMs: 1000 });
    const a = track(batcher.submit(['a1', 'a2', 'a3'], 'g'));
    const b = track(batcher.submit(['b1', 'b2', 'b3', 'b4', 'b5', 'b6', 'b7'], 'g')); // spans three calls
    const c = track(batcher.submit(['c1'], 'g'));
    await tick();
    expect(calls).toHaveLength(1); // full: no wait, but only one call in flight
    expect(calls[0]!.items).toEqual(['a1', 'a2', 'a3', 'b1']);
    calls[0]!.finish();
    await tick();
    expect(a.value).toEqual(['g:A1', 'g:A2', 'g:A3']);
    expect(b.state).toBe('pending'); // has items in later calls
    expect(calls[1]!.items).toEqual(['b2', 'b3', 'b4', 'b5']);
    calls[1]!.finish();
    await tick(999);
    expect(calls).toHaveLength(2); // 3 left < maxBatch: they wait out b's maxWaitMs
    await tick(1);
    expect(calls[2]!.items).toEqual(['b6', 'b7', 'c1']);
    calls[2]!.finish();
    await tick();
    expect(b.value).toEqual(['g:B1', 'g:B2', 'g:B3', 'g:B4', 'g:B5', 'g:B6', 'g:B7']);
    expect(c.value).toEqual(['g:C1']);
  });

  it('a partial group left after a full call still waits only its own maxWaitMs', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 2, maxWaitMs: 50 });
    track(batcher.submit(['a', 'b', 'c'], 'g'));
    await tick();
    expect(calls.map((c) => c.items)).toEqual([['a', 'b']]);
    calls[0]!.finish();
    await tick(49);
    expect(calls).toHaveLength(1);
    await tick(1);
    expect(calls[1]!.items).toEqual(['c']);
  });

  it('runs one call at a time; requests arriving meanwhile go into the next call', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 64, maxWaitMs: 2 });
    track(batcher.submit(['a'], 'g'));
    await tick(2);
    expect(calls).toHaveLength(1);
    expect(batcher.busy).toBe(true);
    const later = [batcher.submit(['b'], 'g'), batcher.submit(['c'], 'g')].map(track);
    await tick(100); // well past maxWaitMs, but the first call is still running
    expect(calls).toHaveLength(1);
    expect(batcher.queuedItems).toBe(2);
    calls[0]!.finish();
    await tick();
    expect(calls).toHaveLength(2); // overdue: dispatched as soon as the model is free
    expect(calls[1]!.items).toEqual(['b', 'c']);
    calls[1]!.finish();
    await tick();
    expect(later.map((r) => r.value)).toEqual([['g:B'], ['g:C']]);
    expect(batcher.busy).toBe(false);
  });

  it('never mixes groups in a call and serves ready groups oldest first', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 64, maxWaitMs: 5 });
    const q1 = track(batcher.submit(['q1'], 'query'));
    await tick(1);
    const d1 = track(batcher.submit(['d1'], 'doc'));
    const q2 = track(batcher.submit(['q2'], 'query'));
    await tick(4);
    expect(calls.map((c) => [c.group, c.items])).toEqual([['query', ['q1', 'q2']]]);
    const q3 = track(batcher.submit(['q3'], 'query'));
    await tick(10); // both 'doc' (older) and the new 'query' request are now due
    calls[0]!.finish();
    await tick();
    expect(calls.map((c) => [c.group, c.items])).toEqual([
      ['query', ['q1', 'q2']],
      ['doc', ['d1']],
    ]);
    calls[1]!.finish();
    await tick();
    expect(calls[2]!.group).toBe('query');
    calls[2]!.finish();
    await tick();
    expect([q1.value, q2.value, d1.value, q3.value]).toEqual([['query:Q1'], ['query:Q2'], ['doc:D1'], ['query:Q3']]);
  });

  it('groups by groupKey, and hands runBatch the group object', async () => {
    const seen: { side: string }[] = [];
    const batcher = new MicroBatcher<string, number, { side: string }>(
      async (items, group) => {
        seen.push(group);
        return items.map((t) => t.length);
      },
      { maxBatch: 8, maxWaitMs: 1, groupKey: (g) => g.side },
    );
    const results = Promise.all([batcher.submit(['ab'], { side: 'doc' }), batcher.submit(['abc'], { side: 'doc' })]);
    await tick(1);
    expect(await results).toEqual([[2], [3]]);
    expect(seen).toEqual([{ side: 'doc' }]);
  });

  it('a failed call rejects only the requests with items in it, and drops their queued remainder', async () => {
    const { calls, runBatch } = fakeModel();
    const reports: BatchReport<string>[] = [];
    const batcher = new MicroBatcher(runBatch, { maxBatch: 3, maxWaitMs: 1, onBatch: (r) => reports.push(r) });
    const a = track(batcher.submit(['a1', 'a2'], 'g'));
    const b = track(batcher.submit(['b1', 'b2', 'b3', 'b4'], 'g')); // b1 in call 0, b2..b4 queued
    const other = track(batcher.submit(['o1'], 'h'));
    await tick(1);
    expect(calls[0]!.items).toEqual(['a1', 'a2', 'b1']);
    calls[0]!.fail(new Error('onnxruntime: out of memory'));
    await tick(1);
    expect(a.state).toBe('rejected');
    expect(a.error!.message).toBe('onnxruntime: out of memory');
    expect(b.state).toBe('rejected');
    // b's other items never reach the model; 'h' does.
    expect(calls.map((c) => c.items)).toEqual([['a1', 'a2', 'b1'], ['o1']]);
    expect(batcher.queuedItems).toBe(0);
    calls[1]!.finish();
    await tick();
    expect(other.value).toEqual(['h:O1']);
    expect(reports.map((r) => [r.group, r.size, r.requests, r.error?.message])).toEqual([
      ['g', 3, 2, 'onnxruntime: out of memory'],
      ['h', 1, 1, undefined],
    ]);
  });

  it('a request split across calls fails if a later call fails, and later requests still succeed', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 2, maxWaitMs: 0 });
    const a = track(batcher.submit(['a1', 'a2', 'a3'], 'g'));
    const b = track(batcher.submit(['b1'], 'g'));
    await tick();
    calls[0]!.finish(); // a1, a2
    await tick();
    expect(a.state).toBe('pending');
    calls[1]!.fail(new Error('boom')); // a3, b1
    await tick();
    expect(a.error!.message).toBe('boom');
    expect(b.error!.message).toBe('boom');
    const c = track(batcher.submit(['c1'], 'g'));
    await tick();
    calls[2]!.finish();
    await tick();
    expect(c.value).toEqual(['g:C1']);
  });

  it('a result of the wrong length fails the call', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 8, maxWaitMs: 0 });
    const a = track(batcher.submit(['a', 'b'], 'g'));
    await tick();
    calls[0]!.finish(['only one']);
    await tick();
    expect(a.error!.message).toBe('runBatch returned 1 results for 2 items');
  });

  it('a synchronous throw in runBatch is a failed call, not a crash', async () => {
    const batcher = new MicroBatcher<string, string>(
      () => {
        throw new Error('sync');
      },
      { maxBatch: 8, maxWaitMs: 0 },
    );
    const a = track(batcher.submit(['a'], 'g'));
    await tick();
    expect(a.error!.message).toBe('sync');
  });

  it('resolves an empty request at once without a call', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 8, maxWaitMs: 5 });
    expect(await batcher.submit([], 'g')).toEqual([]);
    await tick(10);
    expect(calls).toHaveLength(0);
  });

  it('close() refuses new requests, flushes the queue without waiting, and resolves after the last call', async () => {
    const { calls, runBatch } = fakeModel();
    const batcher = new MicroBatcher(runBatch, { maxBatch: 2, maxWaitMs: 10_000 });
    const a = track(batcher.submit(['a1', 'a2', 'a3'], 'g'));
    await tick();
    expect(calls).toHaveLength(1); // the full pair; a3 would wait 10 s
    const closed = track(batcher.close());
    await expect(batcher.submit(['late'], 'g')).rejects.toBeInstanceOf(BatcherClosedError);
    calls[0]!.finish();
    await tick();
    expect(calls[1]!.items).toEqual(['a3']); // no 10 s wait while closing
    expect(closed.state).toBe('pending');
    calls[1]!.finish();
    await tick();
    expect(a.value).toEqual(['g:A1', 'g:A2', 'g:A3']);
    expect(closed.state).toBe('resolved');
    await batcher.close(); // idempotent
  });

  it('rejects nonsensical options', () => {
    const run = async (items: string[]): Promise<string[]> => items;
    expect(() => new MicroBatcher(run, { maxBatch: 0, maxWaitMs: 5 })).toThrow('maxBatch must be an integer ≥ 1, got 0');
    expect(() => new MicroBatcher(run, { maxBatch: 4, maxWaitMs: -1 })).toThrow('maxWaitMs must be a number ≥ 0, got -1');
  });
});

/**
 * Seeded batching: the PRNG, padding, and PairBatcher's coverage, determinism, length
 * bucketing (padding waste) and exact resume from a saved state. The batcher yields item
 * indices (`nextItems()`, `epochPlan()`); padding a batch is `padBatch`'s job, as in training.
 */
import { describe, expect, it } from 'vitest';

import { PairBatcher, Rng, groupIndices, padBatch, type TokenizedPair } from '../../src/data/batch.js';

/** n pairs with varied lengths; group = i % groups. */
function makePairs(n: number, groups = 50, seed = 1): TokenizedPair[] {
  const rng = new Rng(seed);
  return Array.from({ length: n }, (_, i) => ({
    query: Int32Array.from({ length: 3 + rng.int(60) }, () => 1000 + i),
    doc: Int32Array.from({ length: 3 + rng.int(10) }, () => 2000 + i),
    group: i % groups,
    queryType: i % 2 === 0 ? 'title' : 'description',
    docType: 'occupation',
  }));
}

/** The next batch as `epoch:items`, so streams compare by epoch as well as content. */
const nextKey = (b: PairBatcher): string => {
  const items = b.nextItems();
  return `${b.epoch}:${Array.from(items).join(',')}`;
};

/** The next `count` batches' item indices. */
const take = (b: PairBatcher, count: number): Int32Array[] => Array.from({ length: count }, () => b.nextItems());

describe('Rng (Mulberry32)', () => {
  it('is a pure function of the seed and resumable from its state', () => {
    const a = new Rng(42);
    const b = new Rng(42);
    const xs = Array.from({ length: 5 }, () => a.nextUint32());
    expect(Array.from({ length: 5 }, () => b.nextUint32())).toEqual(xs);
    expect(new Rng(43).nextUint32()).not.toBe(xs[0]);
    const s = a.state();
    const next = a.next();
    expect(Rng.fromState(s).next()).toBe(next);
    expect(Rng.derive(42, 'x').nextUint32()).not.toBe(Rng.derive(42, 'y').nextUint32());
    expect(() => new Rng(1.5)).toThrow(/seed must be a safe integer/);
  });

  it('draws uniformly enough for shuffling', () => {
    const rng = new Rng(7);
    const counts = new Array<number>(10).fill(0);
    for (let i = 0; i < 100_000; i++) {
      const j = rng.int(10);
      counts[j] = (counts[j] ?? 0) + 1;
    }
    for (const c of counts) expect(Math.abs(c - 10_000)).toBeLessThan(500);
    expect(Array.from(rng.permutation(100)).sort((x, y) => x - y)).toEqual(Array.from({ length: 100 }, (_, i) => i));
  });
});

describe('padBatch', () => {
  const seqs = [Int32Array.of(101, 5, 102), Int32Array.of(101, 102), Int32Array.of(101, 7, 8, 9, 102)];

  it('pads to the longest row, row-major, with an attention mask', () => {
    const b = padBatch(seqs, { padId: 0, padTo: 'longest' });
    expect([b.batchSize, b.seqLen]).toEqual([3, 5]);
    expect(Array.from(b.inputIds)).toEqual([101, 5, 102, 0, 0, 101, 102, 0, 0, 0, 101, 7, 8, 9, 102]);
    expect(Array.from(b.attentionMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 0, 0, 0, 1, 1, 1, 1, 1]);
  });

  it('pads to a fixed length or a multiple, with any pad id; rejects rows longer than padTo and empty input', () => {
    expect(padBatch(seqs, { padId: 0, padTo: 'longest', multipleOf: 8 }).seqLen).toBe(8);
    const fixed = padBatch(seqs.slice(0, 2), { padId: -7, padTo: 4 });
    expect(Array.from(fixed.inputIds)).toEqual([101, 5, 102, -7, 101, 102, -7, -7]);
    expect(() => padBatch(seqs, { padId: 0, padTo: 4 })).toThrow(/sequence 2 has 5 tokens, longer than padTo 4/);
    expect(() => padBatch([], { padId: 0, padTo: 'longest' })).toThrow(/no sequences/);
  });
});

describe('PairBatcher', () => {
  it('without dropLast, one epoch of nextItems() visits every item exactly once', () => {
    const pairs = makePairs(1000);
    const b = new PairBatcher(pairs, { batchSize: 64, seed: 3, dropLast: false });
    expect(b.batchesPerEpoch).toBe(16); // ceil(1000 / 64)
    const batches = take(b, b.batchesPerEpoch);
    expect(batches.map((items) => items.length).sort((x, y) => x - y)[0]).toBe(1000 % 64); // one short batch
    const seen = batches.flatMap((items) => Array.from(items)).sort((x, y) => x - y);
    expect(seen).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(b.epoch).toBe(0);
    b.nextItems();
    expect(b.epoch).toBe(1);
  });

  it('with dropLast (the default), every batch is full and an epoch holds floor(n / batchSize) batches of distinct items', () => {
    const b = new PairBatcher(makePairs(1000), { batchSize: 64, seed: 3 });
    expect(b.batchesPerEpoch).toBe(15);
    const batches = take(b, b.batchesPerEpoch);
    expect(batches.every((items) => items.length === 64)).toBe(true);
    expect(new Set(batches.flatMap((items) => Array.from(items))).size).toBe(15 * 64);
    expect(b.epoch).toBe(0);
  });

  it('epochPlan() is the current epoch in the order nextItems() returns it, and both hand out copies', () => {
    const b = new PairBatcher(makePairs(500), { batchSize: 50, seed: 4 });
    const plan = b.epochPlan();
    expect(plan.length).toBe(b.batchesPerEpoch);
    plan[0]!.fill(-1); // a copy: the batcher's plan is untouched
    const first = b.nextItems();
    expect(Array.from(first)).toEqual(Array.from(b.epochPlan()[0]!));
    first.fill(-1);
    expect(b.epochPlan()[0]!.includes(-1)).toBe(false);
    expect(take(b, b.batchesPerEpoch - 1).map((items) => Array.from(items))).toEqual(b.epochPlan().slice(1).map((items) => Array.from(items)));
    // Past the end of the epoch, the next plan is drawn; epochPlan() then shows the new epoch.
    const next = b.nextItems();
    expect(b.epoch).toBe(1);
    expect(Array.from(next)).toEqual(Array.from(b.epochPlan()[0]!));
  });

  it('padBatch over a batch of nextItems() puts each item\'s ids in its row, padded to a multiple of 8', () => {
    const pairs = makePairs(300);
    const items = new PairBatcher(pairs, { batchSize: 32, seed: 5 }).nextItems();
    const rows = Array.from(items, (i) => pairs[i] as TokenizedPair);
    const query = padBatch(rows.map((p) => p.query), { padId: 0, padTo: 'longest', multipleOf: 8 });
    const doc = padBatch(rows.map((p) => p.doc), { padId: 0, padTo: 'longest' });
    expect(query.batchSize).toBe(32);
    expect(query.seqLen % 8).toBe(0);
    expect(query.seqLen - Math.max(...rows.map((p) => p.query.length))).toBeLessThan(8);
    rows.forEach((p, row) => {
      expect(Array.from(query.inputIds.subarray(row * query.seqLen, row * query.seqLen + p.query.length))).toEqual(Array.from(p.query));
      expect(Array.from(doc.inputIds.subarray(row * doc.seqLen, row * doc.seqLen + p.doc.length))).toEqual(Array.from(p.doc));
      expect(query.attentionMask.subarray(row * query.seqLen, (row + 1) * query.seqLen).reduce((n, m) => n + m, 0)).toBe(p.query.length);
    });
  });

  it('is a pure function of the seed: the same seed gives the same batches, another seed and the next epoch differ', () => {
    const pairs = makePairs(500);
    const run = (seed: number): string[] => {
      const b = new PairBatcher(pairs, { batchSize: 50, seed });
      return Array.from({ length: 25 }, () => nextKey(b)); // 2.5 epochs of 10
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
    const stream = run(11);
    const items = (k: string): string => k.split(':')[1]!;
    expect(stream.slice(0, 10).map(items)).not.toEqual(stream.slice(10, 20).map(items));
    expect(stream.slice(0, 10).every((k) => k.startsWith('0:'))).toBe(true);
    expect(stream.slice(10, 20).every((k) => k.startsWith('1:'))).toBe(true);
  });

  it('length bucketing cuts query padding waste from over 40% (shuffle only) to under 5% (window of 32 batches)', () => {
    const pairs = makePairs(4096);
    const waste = (bucketWindow: number): number => {
      const b = new PairBatcher(pairs, { batchSize: 64, seed: 9, bucketWindow });
      let pad = 0;
      let total = 0;
      for (const items of b.epochPlan()) {
        const batch = padBatch(Array.from(items, (i) => (pairs[i] as TokenizedPair).query), { padId: 0, padTo: 'longest' });
        total += batch.inputIds.length;
        pad += batch.attentionMask.reduce((n, m) => n + (1 - m), 0);
      }
      return pad / total;
    };
    const plain = waste(1);
    const bucketed = waste(32);
    console.log(`query padding waste: ${(plain * 100).toFixed(1)}% shuffled, ${(bucketed * 100).toFixed(1)}% bucketed (window 32 batches)`);
    expect(plain).toBeGreaterThan(0.4);
    expect(bucketed).toBeLessThan(0.05);
  });

  it('restore(state()) continues with exactly the batches of the uninterrupted run, mid-epoch and at an epoch boundary', () => {
    const pairs = makePairs(700);
    const opts = { batchSize: 64, seed: 21 };
    const reference = new PairBatcher(pairs, opts);
    const stream = Array.from({ length: 40 }, () => nextKey(reference)); // 4 epochs of 10
    for (const at of [0, 7, 10, 23]) {
      const a = new PairBatcher(pairs, opts);
      take(a, at);
      const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<PairBatcher['state']>; // as a checkpoint stores it
      const b = new PairBatcher(pairs, opts);
      b.restore(saved);
      expect(b.epoch).toBe(a.epoch);
      expect(b.epochPlan()).toEqual(a.epochPlan());
      expect(Array.from({ length: 40 - at }, () => nextKey(b))).toEqual(stream.slice(at));
    }
  });

  it('refuses a state from a different setup, and a pair set too small for one batch', () => {
    const state = new PairBatcher(makePairs(300), { batchSize: 32, seed: 1 }).state();
    expect(() => new PairBatcher(makePairs(301), { batchSize: 32, seed: 1 }).restore(state)).toThrow(/saved state has items = 300 but this batcher has 301/);
    expect(() => new PairBatcher(makePairs(300), { batchSize: 16, seed: 1 }).restore(state)).toThrow(/batchSize = 32 but this batcher has 16/);
    expect(() => new PairBatcher(makePairs(10), { batchSize: 32, seed: 1 })).toThrow(/10 pairs cannot fill one batch of 32/);
  });
});

describe('groupIndices', () => {
  it('gives dense group ids in first-seen order, and the names by id', () => {
    const { index, names } = groupIndices(['u2', 'u1', 'u2', 'u3']);
    expect(Array.from(index)).toEqual([0, 1, 0, 2]);
    expect(names).toEqual(['u2', 'u1', 'u3']);
  });
});

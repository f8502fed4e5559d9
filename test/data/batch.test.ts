/**
 * Seeded batching: the PRNG, padding, and PairBatcher's coverage, determinism, length
 * bucketing (padding waste) and exact resume from a saved state.
 */
import { describe, expect, it } from 'vitest';

import { PairBatcher, Rng, groupIndices, padBatch, tokenizePairs, type PairBatch, type TokenizedPair } from '../../src/data/batch.js';

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

const key = (b: PairBatch): string => `${b.epoch}/${b.step}:${Array.from(b.items).join(',')}`;

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

  it('pads to a fixed length or a multiple, with any pad id', () => {
    expect(padBatch(seqs, { padId: 0, padTo: 'longest', multipleOf: 8 }).seqLen).toBe(8);
    const fixed = padBatch(seqs.slice(0, 2), { padId: -7, padTo: 4 });
    expect(Array.from(fixed.inputIds)).toEqual([101, 5, 102, -7, 101, 102, -7, -7]);
    expect(() => padBatch(seqs, { padId: 0, padTo: 4 })).toThrow(/sequence 2 has 5 tokens, longer than padTo 4/);
    expect(() => padBatch([], { padId: 0, padTo: 'longest' })).toThrow(/no sequences/);
  });
});

describe('PairBatcher', () => {
  it('every epoch visits each item once (the remainder is dropped with dropLast)', () => {
    const pairs = makePairs(1000);
    const all = new PairBatcher(pairs, { batchSize: 64, seed: 3, padId: 0, dropLast: false });
    expect(all.batchesPerEpoch).toBe(16);
    const seen = [...all.restOfEpoch()].flatMap((b) => Array.from(b.items));
    expect(seen.sort((a, b) => a - b)).toEqual(Array.from({ length: 1000 }, (_, i) => i));

    const dropped = new PairBatcher(pairs, { batchSize: 64, seed: 3, padId: 0 });
    expect(dropped.batchesPerEpoch).toBe(15);
    const batches = [...dropped.restOfEpoch()];
    expect(batches.every((b) => b.items.length === 64)).toBe(true);
    expect(new Set(batches.flatMap((b) => Array.from(b.items))).size).toBe(960);
  });

  it('batches carry padded ids, group indices and input types of their items', () => {
    const pairs = makePairs(300);
    const b = new PairBatcher(pairs, { batchSize: 32, seed: 5, padId: 0, multipleOf: 8 }).next();
    expect(b.query.batchSize).toBe(32);
    expect(b.query.seqLen % 8).toBe(0);
    b.items.forEach((item, row) => {
      const p = pairs[item] as TokenizedPair;
      expect(b.groupIndex[row]).toBe(p.group);
      expect(b.queryTypes[row]).toBe(p.queryType);
      expect(Array.from(b.query.inputIds.subarray(row * b.query.seqLen, row * b.query.seqLen + p.query.length))).toEqual(Array.from(p.query));
      expect(Array.from(b.doc.inputIds.subarray(row * b.doc.seqLen, row * b.doc.seqLen + p.doc.length))).toEqual(Array.from(p.doc));
    });
  });

  it('is a pure function of the seed; epochs differ', () => {
    const pairs = makePairs(500);
    const run = (seed: number): string[] => {
      const b = new PairBatcher(pairs, { batchSize: 50, seed, padId: 0 });
      return Array.from({ length: 25 }, () => key(b.next()));
    };
    expect(run(11)).toEqual(run(11));
    expect(run(11)).not.toEqual(run(12));
    const epochs = run(11);
    expect(epochs.slice(0, 10).map((k) => k.split(':')[1])).not.toEqual(epochs.slice(10, 20).map((k) => k.split(':')[1]));
  });

  it('length bucketing cuts padding waste', () => {
    const pairs = makePairs(4096);
    const waste = (bucketWindow: number): number => {
      const b = new PairBatcher(pairs, { batchSize: 64, seed: 9, padId: 0, bucketWindow });
      let pad = 0;
      let total = 0;
      for (const batch of b.restOfEpoch()) {
        total += batch.query.inputIds.length;
        pad += batch.query.attentionMask.reduce((n, m) => n + (1 - m), 0);
      }
      return pad / total;
    };
    const plain = waste(1);
    const bucketed = waste(32);
    console.log(`query padding waste: ${(plain * 100).toFixed(1)}% shuffled, ${(bucketed * 100).toFixed(1)}% bucketed (window 32 batches)`);
    expect(plain).toBeGreaterThan(0.4);
    expect(bucketed).toBeLessThan(0.05);
  });

  it('resumes exactly from a saved state, mid-epoch and at an epoch boundary', () => {
    const pairs = makePairs(700);
    const opts = { batchSize: 64, seed: 21, padId: 0 };
    const reference = new PairBatcher(pairs, opts);
    const stream = Array.from({ length: 40 }, () => key(reference.next())); // ~3.6 epochs of 10
    for (const at of [0, 7, 10, 23]) {
      const a = new PairBatcher(pairs, opts);
      for (let i = 0; i < at; i++) a.next();
      const saved = JSON.parse(JSON.stringify(a.state())) as ReturnType<PairBatcher['state']>;
      const b = new PairBatcher(pairs, opts);
      b.restore(saved);
      expect(Array.from({ length: 40 - at }, () => key(b.next()))).toEqual(stream.slice(at));
    }
  });

  it('refuses a state from a different setup', () => {
    const state = new PairBatcher(makePairs(300), { batchSize: 32, seed: 1, padId: 0 }).state();
    expect(() => new PairBatcher(makePairs(301), { batchSize: 32, seed: 1, padId: 0 }).restore(state)).toThrow(/saved state has items = 300 but this batcher has 301/);
    expect(() => new PairBatcher(makePairs(300), { batchSize: 16, seed: 1, padId: 0 }).restore(state)).toThrow(/batchSize = 32 but this batcher has 16/);
    expect(() => new PairBatcher(makePairs(10), { batchSize: 32, seed: 1, padId: 0 })).toThrow(/10 pairs cannot fill one batch of 32/);
  });
});

describe('groupIndices / tokenizePairs', () => {
  it('dense group ids in first-seen order', () => {
    const { index, names } = groupIndices(['u2', 'u1', 'u2', 'u3']);
    expect(Array.from(index)).toEqual([0, 1, 0, 2]);
    expect(names).toEqual(['u2', 'u1', 'u3']);
    const fake = { encode: (text: string, max: number) => Int32Array.from(text.slice(0, max), (c) => c.charCodeAt(0)) };
    const out = tokenizePairs(
      [
        { query: 'abc', doc: 'x', group: 'g1', queryType: 'title', docType: 'occupation' },
        { query: 'de', doc: 'yz', group: 'g1', queryType: 'title', docType: 'occupation' },
      ],
      fake,
      { maxQueryLength: 2, maxDocLength: 8 },
    );
    expect(out.groupNames).toEqual(['g1']);
    expect(out.pairs.map((p) => [Array.from(p.query), p.group])).toEqual([[[97, 98], 0], [[100, 101], 0]]);
  });
});

/** The pieces of data-parallel training without processes: batch slicing, the ZeRO-1 partition, the thread policy. */
import { describe, expect, it } from 'vitest';

import { checkBatchSlicing, sliceBatches, type BatchSource } from '../../src/data/step-slices.js';
import { partitionParameters, zeroMemoryReport } from '../../src/train/data-parallel.js';

/** Batches 0..5, 6..11, …: batch n holds 6n … 6n+5; its state is the number of batches drawn. */
function counting(batchSize = 6): BatchSource & { pulls: number } {
  const source = {
    pulls: 0,
    next: () => {
      const batch = source.pulls++;
      return Int32Array.from({ length: batchSize }, (_, i) => batch * batchSize + i);
    },
    state: () => ({ pulls: source.pulls }),
    restore: (state: unknown) => {
      source.pulls = (state as { pulls: number }).pulls;
    },
  };
  return source;
}

const arrays = (xs: Int32Array[]): number[][] => xs.map((x) => [...x]);

describe('sliceBatches', () => {
  it('one process with grad_accum 2 takes exactly the micro-batches that two processes take', () => {
    const one = sliceBatches(counting(), { gradAccum: 2, rank: 0, worldSize: 1 });
    const rank0 = sliceBatches(counting(), { gradAccum: 1, rank: 0, worldSize: 2 });
    const rank1 = sliceBatches(counting(), { gradAccum: 1, rank: 1, worldSize: 2 });
    for (let step = 0; step < 3; step++) {
      const base = 6 * step;
      expect([...one.next()]).toEqual([base, base + 1, base + 2]);
      expect([...one.next()]).toEqual([base + 3, base + 4, base + 5]);
      expect([...rank0.next()]).toEqual([base, base + 1, base + 2]);
      expect([...rank1.next()]).toEqual([base + 3, base + 4, base + 5]);
      expect(arrays(rank1.slicesAcrossRanks())).toEqual([
        [base, base + 1, base + 2],
        [base + 3, base + 4, base + 5],
      ]);
    }
  });

  it('with 2 ranks × grad_accum 3, rank r micro-batch m is slice r·3 + m; every rank sees the same slices of micro-batch m', () => {
    const ranks = [0, 1].map((rank) => sliceBatches(counting(12), { gradAccum: 3, rank, worldSize: 2 }));
    for (let m = 0; m < 3; m++) {
      expect([...ranks[0]!.next()]).toEqual([2 * m, 2 * m + 1]);
      expect([...ranks[1]!.next()]).toEqual([6 + 2 * m, 6 + 2 * m + 1]);
      expect(arrays(ranks[0]!.slicesAcrossRanks())).toEqual(arrays(ranks[1]!.slicesAcrossRanks()));
    }
    expect([...ranks[0]!.next()]).toEqual([12, 13]); // the next step's batch
  });

  it('resumes mid-step at the same slice, and reads the state of an unsliced run', () => {
    const a = sliceBatches(counting(), { gradAccum: 3, rank: 0, worldSize: 1 });
    a.next();
    a.next();
    a.next();
    a.next(); // step 1, micro-batch 0
    const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
    const expected = [...a.next()];
    const b = sliceBatches(counting(), { gradAccum: 3, rank: 0, worldSize: 1 });
    b.restore(saved);
    expect([...b.next()]).toEqual(expected);
    expect(expected).toEqual([8, 9]);
    // One process without accumulation keeps the source's own state (earlier checkpoints resume).
    const plain = sliceBatches(counting(), { gradAccum: 1, rank: 0, worldSize: 1 });
    plain.next();
    expect(plain.state()).toEqual({ pulls: 1 });
    const c = sliceBatches(counting(), { gradAccum: 2, rank: 0, worldSize: 1 });
    c.restore({ pulls: 1 });
    expect([...c.next()]).toEqual([6, 7, 8]);
  });

  it('refuses a batch that does not cut into equal slices, naming what to change', () => {
    expect(() => checkBatchSlicing(16, { gradAccum: 1, rank: 0, worldSize: 3 })).toThrow('train.batch_size 16 does not cut into 3 processes × train.grad_accum 1 = 3 equal micro-batches; use a multiple of 3');
    expect(() => checkBatchSlicing(16, { gradAccum: 2, rank: 0, worldSize: 4 })).not.toThrow();
  });
});

describe('ZeRO-1 partition', () => {
  it('gives the largest tensors first to the least-loaded rank, the same on every rank', () => {
    // 100 → rank 0; 60 → rank 1; 50 → rank 1 (60 < 100); 10 → rank 0 (100 < 110); 5 → rank 0 (110 = 110, lowest rank)
    expect(partitionParameters([10, 100, 50, 60, 5], 2)).toEqual([0, 0, 1, 1, 0]);
    expect(partitionParameters([4, 4, 4], 3)).toEqual([0, 1, 2]);
    expect(partitionParameters([7], 1)).toEqual([0]);
  });

  it('reports the AdamW moments (8 bytes per element) a rank does not keep', () => {
    expect(zeroMemoryReport([10, 100, 50, 60, 5], [0, 0, 1, 1, 0], 1)).toEqual({ ownedElements: 110, totalElements: 225, savedBytes: 115 * 8 });
  });
});

describe('the thread policy among local workers', () => {
  it('gives each of N local workers cores / N threads in bf16 (at least one), and one libtorch thread in fp32', async () => {
    const { availableParallelism } = await import('node:os');
    const { applyThreadPolicy } = await import('../../src/train/run.js');
    const { getNumThreads, setNumThreads } = await import('../../src/engine/index.js');
    const before = getNumThreads();
    try {
      const cores = availableParallelism();
      expect(applyThreadPolicy('auto', 'bf16', 1)).toBe(cores);
      expect(applyThreadPolicy('auto', 'bf16', 2)).toBe(Math.max(1, Math.floor(cores / 2)));
      expect(applyThreadPolicy('auto', 'bf16', cores * 4)).toBe(1);
      expect(applyThreadPolicy('auto', 'fp32', 2)).toBe(1);
      expect(applyThreadPolicy(3, 'bf16', 2)).toBe(3); // an explicit count is kept
      expect(getNumThreads()).toBe(3);
    } finally {
      setNumThreads(before);
    }
  });
});

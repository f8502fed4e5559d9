/** Batching across training recipes: mixed vs per_source (one recipe per batch, proportional). */
import { describe, expect, it } from 'vitest';

import { createPairBatchSource } from '../../src/train/data-adapters.js';
import type { TokenizedPairs } from '../../src/train/strategies/two-tower.js';
import type { KilnConfig } from '../../src/config/schema.js';

/** 300 pairs from recipe a (indices 0..299) and 100 from recipe b (300..399). */
function fixture(): { pairs: TokenizedPairs; ranges: Array<{ recipe: string; start: number; end: number }> } {
  const n = 400;
  const ids = Array.from({ length: n }, (_, i) => Int32Array.from([101, 1000 + (i % 17), 102]));
  return {
    pairs: { queryIds: ids, docIds: ids, group: Int32Array.from({ length: n }, (_, i) => i), negativeIds: ids.map(() => []), label: null, docPoolIndex: Int32Array.from({ length: n }, (_, i) => i) },
    ranges: [
      { recipe: 'a', start: 0, end: 300 },
      { recipe: 'b', start: 300, end: 400 },
    ],
  };
}

function config(batching: 'mixed' | 'per_source'): KilnConfig {
  return { seed: 5, train: { batch_size: 10 }, data: { batching, bucket_window: 4 } } as unknown as KilnConfig;
}

describe('createPairBatchSource', () => {
  it('per_source: every batch comes from one recipe, in proportion to its batches per epoch', () => {
    const { pairs, ranges } = fixture();
    const source = createPairBatchSource(pairs, ranges, config('per_source'));
    let fromA = 0;
    const draws = 2000;
    for (let i = 0; i < draws; i++) {
      const items = [...source.next()];
      expect(items).toHaveLength(10);
      const inA = items.filter((x) => x < 300).length;
      expect(inA === 0 || inA === 10).toBe(true);
      if (inA === 10) fromA++;
    }
    // 30 of 40 batches per epoch are a's: p = 0.75; 2000 draws give sd ≈ 19, so ±5 sd is ±0.05.
    expect(Math.abs(fromA / draws - 0.75)).toBeLessThan(0.05);
  });

  it('mixed: batches draw across recipes', () => {
    const { pairs, ranges } = fixture();
    const source = createPairBatchSource(pairs, ranges, config('mixed'));
    const mixedBatches = Array.from({ length: 40 }, () => [...source.next()]).filter((items) => items.some((x) => x < 300) && items.some((x) => x >= 300));
    expect(mixedBatches.length).toBeGreaterThan(0);
  });

  it('is a pure function of the seed, and its state resumes the exact sequence', () => {
    for (const mode of ['mixed', 'per_source'] as const) {
      const { pairs, ranges } = fixture();
      const a = createPairBatchSource(pairs, ranges, config(mode));
      const b = createPairBatchSource(pairs, ranges, config(mode));
      for (let i = 0; i < 17; i++) expect([...a.next()]).toEqual([...b.next()]);
      const saved = JSON.parse(JSON.stringify(a.state())) as unknown;
      const expected = Array.from({ length: 60 }, () => [...a.next()]);
      const resumed = createPairBatchSource(pairs, ranges, config(mode));
      resumed.restore(saved);
      expect(Array.from({ length: 60 }, () => [...resumed.next()])).toEqual(expected);
    }
  });
});

/**
 * Hard-negative mining on hand-built embeddings whose answer is known: top-k by dot product,
 * same-group documents and excluded documents never returned, -1 when too few are eligible,
 * and no tensor leaked by refresh or mine.
 */
import { describe, expect, it } from 'vitest';

import { liveTensorCount, tensor, tidy, type Tensor } from '../../src/engine/index.js';
import { HardNegativeMiner } from '../../src/data/negatives.js';

// Pool of 6 documents in 2-D; groups: d0,d1 → 0; d2 → 1; d3,d4 → 2; d5 → 3.
const POOL = [
  [1.0, 0.0], // d0
  [0.9, 0.1], // d1
  [0.8, 0.3], // d2
  [0.0, 1.0], // d3
  [0.2, 0.9], // d4
  [-1.0, -0.5], // d5
];
const GROUPS = [0, 0, 1, 2, 2, 3];

function makeMiner(): HardNegativeMiner {
  const miner = new HardNegativeMiner({ texts: POOL.map((_, i) => `d${i}`), groups: GROUPS });
  miner.refresh((idx) => tensor(Array.from(idx, (i) => POOL[i] as number[])));
  return miner;
}

describe('HardNegativeMiner', () => {
  it('returns the top-k by dot product, skipping the query group', () => {
    const miner = makeMiner();
    const q = tensor([
      [1, 0], // group 0: scores d0 1, d1 .9, d2 .8, d4 .2, d3 0, d5 -1 → skip d0,d1
      [0, 1], // group 2: d3 1, d4 .9, d2 .3, d1 .1, d0 0, d5 -.5 → skip d3,d4
    ]);
    expect(Array.from(miner.mine(q, Int32Array.of(0, 2), 3))).toEqual([2, 4, 3, 2, 1, 0]);
    miner.dispose();
  });

  it('never returns excluded documents; pads with -1 when too few are eligible', () => {
    const miner = makeMiner();
    const q = tensor([[1, 0]]);
    expect(Array.from(miner.mine(q, Int32Array.of(0), 2, Int32Array.of(2, -1)))).toEqual([4, 3]);
    // group 2 excluded (d3, d4) and d0, d1, d2, d5 excluded: nothing left
    expect(Array.from(miner.mine(q, Int32Array.of(2), 2, Int32Array.of(0, 1, 2, 5)))).toEqual([-1, -1]);
    expect(Array.from(miner.mine(q, Int32Array.of(2), 3, Int32Array.of(0, 1)))).toEqual([2, 5, -1]);
    miner.dispose();
  });

  it('checks shapes and arguments', () => {
    const miner = new HardNegativeMiner({ texts: ['a', 'b'], groups: [0, 1] });
    const q = tensor([[1, 0]]);
    expect(() => miner.mine(q, Int32Array.of(0), 1)).toThrow(/call refresh\(\) first/);
    expect(() => miner.refresh(() => tensor([[1, 0]]))).toThrow(/embed returned shape \[1, 2\]; expected \[2, D\]/);
    miner.refresh(() => tensor([[1, 0], [0, 1]]));
    expect(() => miner.mine(tensor([[1, 0, 0]]), Int32Array.of(0), 1)).toThrow(/expected \[B, 2\]/);
    expect(() => miner.mine(q, Int32Array.of(0, 1), 1)).toThrow(/2 query groups for 1 queries/);
    expect(() => miner.mine(q, Int32Array.of(0), 3)).toThrow(/k must be an integer in \[1, 2\]/);
    expect(() => miner.mine(q, Int32Array.of(0), 1, Int32Array.of(7))).toThrow(/excludeDocs has 7/);
    expect(() => new HardNegativeMiner({ texts: ['a', 'a'], groups: [0, 0] })).toThrow(/appears twice/);
    miner.dispose();
    q.dispose();
  });

  it('fromDocs keeps unique texts and their first group', () => {
    const miner = HardNegativeMiner.fromDocs([
      { doc: 'chef', group: 3 },
      { doc: 'cook', group: 4 },
      { doc: 'chef', group: 9 },
    ]);
    expect(miner.texts).toEqual(['chef', 'cook']);
    expect(Array.from(miner.groups)).toEqual([3, 4]);
    expect(miner.indexOf('cook')).toBe(1);
    expect(miner.indexOf('baker')).toBe(-1);
  });

  it('leaks no tensors across refreshes and mining', () => {
    const miner = makeMiner();
    const q = tensor([[1, 0], [0, 1]]);
    const before = liveTensorCount();
    for (let i = 0; i < 20; i++) {
      miner.refresh((idx) => tidy(() => tensor(Array.from(idx, (j) => POOL[j] as number[])).mul(1 + i)));
      miner.mine(q, Int32Array.of(0, 2), 2, Int32Array.of(1));
      tidy(() => miner.mine(q.mul(2), Int32Array.of(0, 2), 2)); // inside a caller's scope too
    }
    expect(liveTensorCount()).toBe(before);
    expect((miner.embeddings as Tensor).shape).toEqual([6, 2]);
    const live = liveTensorCount();
    miner.dispose();
    expect(liveTensorCount()).toBe(live - 2); // the embeddings and the group ids
    q.dispose();
  });

  it('keeps its embeddings alive when refreshed inside a caller scope', () => {
    const miner = new HardNegativeMiner({ texts: ['a', 'b'], groups: [0, 1] });
    tidy(() => miner.refresh(() => tensor([[1, 0], [0, 1]])));
    expect(Array.from(miner.mine(tensor([[0, 1]]), Int32Array.of(1), 1))).toEqual([0]);
    miner.dispose();
  });
});

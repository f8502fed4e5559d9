/**
 * Rank fusion (src/eval/fusion.ts) on hand-computed cases: weighted RRF, the weighted sum of
 * min–max normalised scores, documents retrieved by one part only, the tie rule, and the full
 * score row the evaluators read.
 */
import { describe, expect, it } from 'vitest';

import { fuse, fuseParts, fusedRow, checkFusionOptions } from '../../src/eval/fusion.js';
import { ranksOfRelevant } from '../../src/eval/rank.js';
import type { Candidates } from '../../src/eval/lexical.js';

const list = (docs: number[], scores: number[]): Candidates => ({ docs: Int32Array.from(docs), scores: Float32Array.from(scores) });

describe('reciprocal rank fusion', () => {
  // dense ranks: 3, 1, 4; lexical ranks: 1, 5, 2
  const dense = list([3, 1, 4], [0.9, 0.8, 0.7]);
  const lexical = list([1, 5, 2], [12, 7, 1]);

  it('scores w/(k + r_dense) + (1 − w)/(k + r_lex), 0 for a part that did not retrieve the document', () => {
    const hits = fuse(dense, lexical, { method: 'rrf', weight: 0.5, k: 60 });
    const byDoc = new Map(hits.map((h) => [h.doc, h]));
    expect(byDoc.get(1)!.score).toBeCloseTo(0.5 / 62 + 0.5 / 61, 15);
    expect(byDoc.get(3)!.score).toBeCloseTo(0.5 / 61, 15);
    expect(byDoc.get(5)!.score).toBeCloseTo(0.5 / 62, 15);
    expect(byDoc.get(4)!.score).toBeCloseTo(0.5 / 63, 15);
    expect(byDoc.get(2)!.score).toBeCloseTo(0.5 / 63, 15);
    // Doc 1 is in both lists and wins; 3 (dense #1) beats 5 (lexical #2); 2 and 4 tie → lower index first.
    expect(hits.map((h) => h.doc)).toEqual([1, 3, 5, 2, 4]);
    expect(byDoc.get(1)).toMatchObject({ denseRank: 2, denseScore: expect.closeTo(0.8, 6), lexicalRank: 1, lexicalScore: 12 });
    expect(byDoc.get(3)).toMatchObject({ denseRank: 1, lexicalRank: 0, lexicalScore: null });
  });

  it('the weight moves the balance: a large dense weight with a small k puts the dense #1 first', () => {
    const hits = fuse(dense, lexical, { method: 'rrf', weight: 0.9, k: 60 });
    expect(hits[0]!.doc).toBe(1); // 0.9/62 + 0.1/61 = 0.01616 > 0.9/61 = 0.01475
    expect(hits[1]!.doc).toBe(3);
    const heavy = fuse(dense, lexical, { method: 'rrf', weight: 0.99, k: 1 });
    expect(heavy[0]!.doc).toBe(3); // 0.99/2 = 0.495 > 0.99/3 + 0.01/2 = 0.335
  });
});

describe('weighted sum of min–max normalised scores', () => {
  it('normalises each list over its own candidates and adds w·dense + (1 − w)·lexical', () => {
    const dense = list([0, 1, 2], [0.9, 0.5, 0.1]); // → 1, 0.5, 0
    const lexical = list([2, 3], [10, 4]); // → 1, 0
    const hits = fuse(dense, lexical, { method: 'weighted', weight: 0.25, k: 60 });
    const byDoc = new Map(hits.map((h) => [h.doc, h.score]));
    expect(byDoc.get(0)).toBeCloseTo(0.25 * 1, 6);
    expect(byDoc.get(1)).toBeCloseTo(0.25 * 0.5, 6);
    expect(byDoc.get(2)).toBeCloseTo(0.25 * 0 + 0.75 * 1, 6);
    expect(byDoc.get(3)).toBeCloseTo(0, 6);
    expect(hits.map((h) => h.doc)).toEqual([2, 0, 1, 3]);
  });

  it('a flat list normalises to 1, not to a division by zero', () => {
    const hits = fuse(list([4, 2], [0.3, 0.3]), list([], []), { method: 'weighted', weight: 1, k: 60 });
    expect(hits.map((h) => [h.doc, h.score])).toEqual([[2, 1], [4, 1]]);
  });
});

describe('the fused row', () => {
  it('ranks fused documents in fused order and everything else after them, in corpus order', () => {
    const hits = fuse(list([3, 1], [0.9, 0.8]), list([1, 5], [2, 1]), { method: 'rrf', weight: 0.5, k: 60 });
    const row = fusedRow(hits, 7);
    expect(ranksOfRelevant(row, [1])).toEqual([1]);
    expect(ranksOfRelevant(row, [3])).toEqual([2]);
    expect(ranksOfRelevant(row, [5])).toEqual([3]);
    // Not retrieved by either part: after the 3 fused ones, by index.
    expect(ranksOfRelevant(row, [0])).toEqual([4]);
    expect(ranksOfRelevant(row, [6])).toEqual([7]);
  });

  it('rejects a weight outside [0, 1] and a non-positive k', () => {
    expect(() => checkFusionOptions({ method: 'rrf', weight: 1.5, k: 60 })).toThrow(/weight must be in \[0, 1\], got 1.5/);
    expect(() => checkFusionOptions({ method: 'rrf', weight: 0.5, k: 0 })).toThrow(/k must be a finite number > 0, got 0/);
  });
});

describe('fusion of more than two lists', () => {
  const a = list([3, 1, 4], [0.9, 0.8, 0.7]);
  const b = list([1, 5, 2], [12, 7, 1]);
  const c = list([2], [3]);

  it('sums w_p / (k + r_p) over every list, with each list\'s ranks', () => {
    const hits = fuseParts(
      [
        { candidates: a, weight: 1 },
        { candidates: b, weight: 0.5 },
        { candidates: c, weight: 2 },
      ],
      { method: 'rrf', k: 60 },
    );
    const byDoc = new Map(hits.map((h) => [h.doc, h]));
    expect(byDoc.get(2)!.score).toBeCloseTo(0.5 / 63 + 2 / 61, 15);
    expect(byDoc.get(1)!.score).toBeCloseTo(1 / 62 + 0.5 / 61, 15);
    expect(byDoc.get(3)!.score).toBeCloseTo(1 / 61, 15);
    expect(byDoc.get(2)!.ranks).toEqual([0, 3, 1]);
    expect(byDoc.get(1)!.ranks).toEqual([2, 1, 0]);
    // 2: 0.0407; 1: 0.0243; 3: 0.0164; 4: 1/63 = 0.0159; 5: 0.5/62 = 0.0081
    expect(hits.map((h) => h.doc)).toEqual([2, 1, 3, 4, 5]);
  });

  it('is the two-part fusion when given weights w and 1 − w', () => {
    for (const method of ['rrf', 'weighted'] as const) {
      const two = fuse(a, b, { method, weight: 0.3, k: 60 });
      const many = fuseParts(
        [
          { candidates: a, weight: 0.3 },
          { candidates: b, weight: 0.7 },
        ],
        { method, k: 60 },
      );
      expect(many.map((h) => [h.doc, h.score])).toEqual(two.map((h) => [h.doc, h.score]));
    }
  });

  it('rejects a negative weight', () => {
    expect(() => fuseParts([{ candidates: a, weight: -1 }], { method: 'rrf', k: 60 })).toThrow(/weight must be a finite number ≥ 0, got -1/);
  });
});

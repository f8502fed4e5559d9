/**
 * BM25 baseline (src/eval/bm25.ts): a hand-computed three-document corpus, zero scores for
 * documents sharing no term, the analyzer, the inverted index against a naive per-document
 * evaluation of the formula on random text, and a speed check at the sizes the evaluators use.
 */
import { describe, expect, it } from 'vitest';

import { BM25_DEFAULT_B, BM25_DEFAULT_K1, Bm25Index, ENGLISH_STOPWORDS, bm25Analyze } from '../../src/eval/bm25.js';
import { Rng } from '../../src/data/rng.js';

function expectClose(actual: number, expected: number, tolerance: number): void {
  expect(Math.abs(actual - expected), `actual ${actual} vs expected ${expected}`).toBeLessThanOrEqual(tolerance);
}

/** Float32 output: compare with a relative tolerance suited to single precision. */
function expectScores(actual: Float32Array, expected: readonly number[]): void {
  expect(actual.length).toBe(expected.length);
  expected.forEach((value, i) => expectClose(actual[i] as number, value, 1e-6 * Math.max(1, Math.abs(value))));
}

describe('bm25Analyze', () => {
  it('folds accents, case and compatibility forms, splits on non-letters/digits', () => {
    expect(bm25Analyze('Café-Crème, 2x!')).toEqual(['cafe', 'creme', '2x']);
    expect(bm25Analyze('  ÉCOLE   naïve\tRÉSUMÉ\n')).toEqual(['ecole', 'naive', 'resume']);
    expect(bm25Analyze("don't stop_me-now")).toEqual(['don', 't', 'stop', 'me', 'now']);
    expect(bm25Analyze('ﬁnance H₂O ½')).toEqual(['finance', 'h2o', '1', '2']); // NFKD compatibility folds
    expect(bm25Analyze('İstanbul Straße')).toEqual(['istanbul', 'straße']); // ß has no decomposition
    expect(bm25Analyze('C++ / C# (v3.11)')).toEqual(['c', 'c', 'v3', '11']);
    expect(bm25Analyze('...!!!')).toEqual([]);
    expect(bm25Analyze('')).toEqual([]);
  });

  it('drops stopwords only when asked', () => {
    expect(bm25Analyze('The cat and the hat')).toEqual(['the', 'cat', 'and', 'the', 'hat']);
    expect(bm25Analyze('The cat and the hat', { stopwords: true })).toEqual(['cat', 'hat']);
    expect(bm25Analyze('The cat and the hat', { stopwords: new Set(['cat']) })).toEqual(['the', 'and', 'the', 'hat']);
    expect(ENGLISH_STOPWORDS.size).toBe(33);
  });
});

describe('Bm25Index: hand-computed three-document corpus', () => {
  // d0 = "The cat sat."           → [the, cat, sat]            |d0| = 3
  // d1 = "the DOG"                → [the, dog]                 |d1| = 2
  // d2 = "Cat, cat; dog & bird!"  → [cat, cat, dog, bird]      |d2| = 4
  // N = 3, avgdl = (3 + 2 + 4)/3 = 3, k1 = 1.2, b = 0.75.
  // Document frequencies: the 2, cat 2, dog 2, sat 1, bird 1.
  //   idf(n = 2) = ln(1 + (3 − 2 + 0.5)/(2 + 0.5)) = ln(1 + 1.5/2.5) = ln(1.6)
  //   idf(n = 1) = ln(1 + (3 − 1 + 0.5)/(1 + 0.5)) = ln(1 + 2.5/1.5) = ln(8/3)
  // Length norms K_d = k1·(1 − b + b·|d|/avgdl):
  //   K_0 = 1.2·(0.25 + 0.75·3/3) = 1.2;  K_1 = 1.2·(0.25 + 0.5) = 0.9;  K_2 = 1.2·(0.25 + 1) = 1.5
  // Term-frequency part tf·(k1 + 1)/(tf + K_d) = 2.2·tf/(tf + K_d):
  //   tf = 1 in d0: 2.2/2.2 = 1;  tf = 1 in d1: 2.2/1.9;  tf = 1 in d2: 2.2/2.5 = 0.88;
  //   tf = 2 in d2: 4.4/3.5
  const docs = ['The cat sat.', 'the DOG', 'Cat, cat; dog & bird!'];
  const index = new Bm25Index(docs);
  const idf2 = Math.log(1.6);
  const idf1 = Math.log(8 / 3);

  it('has the expected statistics', () => {
    expect(index.numDocs).toBe(3);
    expect(index.averageDocLength).toBe(3);
    expect(index.vocabularySize).toBe(5);
    expect(index.k1).toBe(BM25_DEFAULT_K1);
    expect(index.b).toBe(BM25_DEFAULT_B);
    expect(index.documentFrequency('cat')).toBe(2);
    expect(index.documentFrequency('unicorn')).toBe(0);
    expectClose(index.idf('cat'), idf2, 1e-15);
    expectClose(index.idf('bird'), idf1, 1e-15);
    expectClose(idf2, 0.4700036292, 1e-9);
    expectClose(idf1, 0.9808292530, 1e-9);
  });

  it('scores single-term queries', () => {
    // "cat": d0 = ln(1.6)·1, d1 = 0 (no "cat"), d2 = ln(1.6)·4.4/3.5
    expectScores(index.scores('cat'), [idf2, 0, (idf2 * 4.4) / 3.5]);
    // "bird": only d2, tf = 1: ln(8/3)·0.88
    expectScores(index.scores('BIRD'), [0, 0, idf1 * 0.88]);
  });

  it('sums over query terms, counting repeats', () => {
    // "dog sat": d0 = sat: ln(8/3)·1;  d1 = dog: ln(1.6)·2.2/1.9;  d2 = dog: ln(1.6)·0.88
    const expected = [idf1, (idf2 * 2.2) / 1.9, idf2 * 0.88];
    expectScores(index.scores('Dog? Sat!'), expected);
    // "dog dog sat": the dog contribution doubles.
    expectScores(index.scores('dog dog sat'), [idf1, (2 * idf2 * 2.2) / 1.9, 2 * idf2 * 0.88]);
    // Ranking for "cat bird": d2 (ln1.6·4.4/3.5 + ln(8/3)·0.88 = 0.5909 + 0.8631) ≫ d0 (0.4700) > d1 (0).
    const catBird = index.scores('cat bird');
    expectClose(catBird[2] as number, 0.5908617 + 0.8631297, 1e-6);
  });

  it('gives 0 to documents that share no term, and all zeros for out-of-vocabulary queries', () => {
    const sat = index.scores('sat');
    expect(sat[1]).toBe(0);
    expect(sat[2]).toBe(0);
    expect(sat[0]).toBeGreaterThan(0);
    expect(Array.from(index.scores('unicorn rainbow'))).toEqual([0, 0, 0]);
    expect(Array.from(index.scores(''))).toEqual([0, 0, 0]);
  });

  it('scoreMatrix stacks per-query rows', () => {
    const queries = ['cat', 'dog sat', 'nothing here', 'bird'];
    const matrix = index.scoreMatrix(queries);
    expect(matrix.length).toBe(queries.length * docs.length);
    queries.forEach((query, q) => {
      expect(Array.from(matrix.subarray(q * 3, q * 3 + 3))).toEqual(Array.from(index.scores(query)));
    });
  });

  it('honours k1 and b', () => {
    // b = 0: no length normalisation, K_d = k1 = 1.2 for all; "cat" in d2: tf = 2 → ln1.6·4.4/3.2
    const noLength = new Bm25Index(docs, { b: 0 });
    expectScores(noLength.scores('cat'), [idf2, 0, (idf2 * 4.4) / 3.2]);
    // k1 = 0: tf saturates immediately, tf part = tf·1/tf = 1 → pure idf
    const binary = new Bm25Index(docs, { k1: 0 });
    expectScores(binary.scores('cat'), [idf2, 0, idf2]);
    expect(() => new Bm25Index(docs, { b: 1.5 })).toThrow(/b must be in \[0, 1\]/);
    expect(() => new Bm25Index(docs, { k1: -1 })).toThrow(/k1 must be/);
  });

  it('handles an empty corpus and empty documents', () => {
    expect(new Bm25Index([]).scores('cat').length).toBe(0);
    const withEmpty = new Bm25Index(['', 'cat', '!!!']);
    // N = 3, avgdl = 1/3, n(cat) = 1: idf = ln(1 + 2.5/1.5) = ln(8/3); K_1 = 1.2·(0.25 + 0.75·3) = 3
    // → ln(8/3)·2.2/(1 + 3) = ln(8/3)·0.55
    expectScores(withEmpty.scores('cat'), [0, idf1 * 0.55, 0]);
  });
});

/** mulberry32 */
function seededRandom(seed: number): () => number {
  const rng = new Rng(seed); // Mulberry32, the data layer's generator
  return () => rng.next();
}

/** Random text over a Zipf-ish vocabulary `w0 … w{size-1}` (low ids far more frequent). */
function randomText(random: () => number, vocabularySize: number, minWords: number, maxWords: number): string {
  const length = minWords + Math.floor(random() * (maxWords - minWords + 1));
  const words: string[] = [];
  for (let i = 0; i < length; i++) words.push(`w${Math.floor(vocabularySize * random() ** 3)}`);
  return words.join(' ');
}

describe('Bm25Index: inverted index vs naive formula, and speed', () => {
  it('matches a per-document evaluation of the formula on random text', () => {
    const random = seededRandom(7);
    const docs = Array.from({ length: 80 }, () => randomText(random, 60, 0, 25));
    const queries = Array.from({ length: 30 }, () => randomText(random, 80, 1, 6));
    const k1 = 1.5;
    const b = 0.6;
    const index = new Bm25Index(docs, { k1, b });
    const tokenized = docs.map((doc) => bm25Analyze(doc));
    const avgdl = tokenized.reduce((sum, tokens) => sum + tokens.length, 0) / docs.length;
    const matrix = index.scoreMatrix(queries);
    let nonZero = 0;
    queries.forEach((query, q) => {
      tokenized.forEach((docTokens, d) => {
        let expected = 0;
        for (const term of bm25Analyze(query)) {
          const tf = docTokens.filter((token) => token === term).length;
          if (tf === 0) continue;
          const n = tokenized.filter((tokens) => tokens.includes(term)).length;
          const idf = Math.log(1 + (docs.length - n + 0.5) / (n + 0.5));
          expected += (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + (b * docTokens.length) / avgdl));
        }
        if (expected > 0) nonZero++;
        const actual = matrix[q * docs.length + d] as number;
        expectClose(actual, expected, 1e-6 * Math.max(1, expected));
      });
    });
    expect(nonZero).toBeGreaterThan(100); // the comparison is not vacuous
  });

  it('scores 15,463 queries × 3,007 docs and 200 × 13,896 in a few seconds', () => {
    const random = seededRandom(11);
    const timeScoring = (numDocs: number, numQueries: number): number => {
      const docs = Array.from({ length: numDocs }, () => randomText(random, 20_000, 5, 40));
      const queries = Array.from({ length: numQueries }, () => randomText(random, 20_000, 2, 12));
      const start = performance.now();
      const index = new Bm25Index(docs);
      const matrix = index.scoreMatrix(queries);
      const seconds = (performance.now() - start) / 1000;
      expect(matrix.length).toBe(numDocs * numQueries);
      return seconds;
    };
    const large = timeScoring(3_007, 15_463);
    const wide = timeScoring(13_896, 200);
    // Generous bound for loaded CI machines; typically well under a second each.
    expect(large).toBeLessThan(15);
    expect(wide).toBeLessThan(5);
  });
});

/**
 * HnswIndex, exactNeighbours and annRecall (src/serve/ann.ts). Recall is checked on seeded
 * random unit vectors (2,000 × 32, no cluster structure, so the graph gets no help) against the
 * brute-force reference, which is itself checked on a small hand-computed case with a tie. Also:
 * save → load gives identical results and leaves no temporary file, k beyond numDocs is
 * clipped, and bad dims, bad k, missing, truncated or foreign files give errors that say what
 * was expected and name the path.
 */
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { Rng } from '../../src/data/rng.js';
import { annRecall, exactNeighbours, HnswIndex } from '../../src/serve/ann.js';

/** `count` random unit vectors of length `dim` (Gaussian components, normalised), row-major. */
function unitVectors(count: number, dim: number, seed: number): Float32Array {
  const rng = new Rng(seed);
  const out = new Float32Array(count * dim);
  for (let row = 0; row < count; row++) {
    let norm = 0;
    for (let j = 0; j < dim; j++) {
      // Box–Muller; 1 − next() is in (0, 1], so the log is finite.
      const g = Math.sqrt(-2 * Math.log(1 - rng.next())) * Math.cos(2 * Math.PI * rng.next());
      out[row * dim + j] = g;
      norm += g * g;
    }
    norm = Math.sqrt(norm);
    for (let j = 0; j < dim; j++) out[row * dim + j]! /= norm;
  }
  return out;
}

function rows(matrix: Float32Array, dim: number): Float32Array[] {
  const out: Float32Array[] = [];
  for (let i = 0; i < matrix.length; i += dim) out.push(matrix.slice(i, i + dim));
  return out;
}

const DIM = 32;
const NUM_DOCS = 2000;
const corpus = unitVectors(NUM_DOCS, DIM, 1);
const queries = rows(unitVectors(200, DIM, 2), DIM);

let dir: string;
let index: HnswIndex;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'kiln-ann-'));
  index = HnswIndex.build(corpus, DIM);
});

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('exactNeighbours', () => {
  // dim 2; query (1, 0.5). Dot products: row 0 → 1, row 1 → 0.5, row 2 → 1 (ties row 0),
  // row 3 → 0.75, row 4 → −1. All exactly representable in float32.
  const vectors = Float32Array.from([1, 0, 0, 1, 1, 0, 0.5, 0.5, -1, 0]);
  const query = Float32Array.from([1, 0.5]);

  it('ranks by inner product, lower index first on a tie', () => {
    const top3 = exactNeighbours(vectors, 2, query, 3);
    expect(Array.from(top3.docs)).toEqual([0, 2, 3]);
    expect(Array.from(top3.scores)).toEqual([1, 1, 0.75]);
    const top1 = exactNeighbours(vectors, 2, query, 1);
    expect(Array.from(top1.docs)).toEqual([0]);
  });

  it('clips k to the number of rows', () => {
    const all = exactNeighbours(vectors, 2, query, 10);
    expect(Array.from(all.docs)).toEqual([0, 2, 3, 1, 4]);
    expect(Array.from(all.scores)).toEqual([1, 1, 0.75, 0.5, -1]);
  });

  it('rejects a shape it cannot interpret', () => {
    expect(() => exactNeighbours(vectors.subarray(0, 9), 2, query, 1)).toThrow(/multiple of dim = 2.*got 9/);
    expect(() => exactNeighbours(vectors, 2, Float32Array.from([1, 0, 0]), 1)).toThrow(/query length must equal the index dim = 2, got 3/);
    expect(() => exactNeighbours(vectors, 2, query, 0)).toThrow(/k must be an integer ≥ 1, got 0/);
  });
});

describe('HnswIndex', () => {
  it('reaches recall@10 ≥ 0.95 with default settings on random unit vectors', () => {
    expect(index.dim).toBe(DIM);
    expect(index.numDocs).toBe(NUM_DOCS);
    const recall = annRecall(index, corpus, queries, 10);
    expect(recall).toBeGreaterThanOrEqual(0.95);
  });

  it('returns best first, with scores equal to the inner products', () => {
    const query = queries[0]!;
    const { docs, scores } = index.search(query, 10);
    expect(docs.length).toBe(10);
    for (let i = 0; i < docs.length; i++) {
      const exact = exactNeighbours(corpus.subarray(docs[i]! * DIM, (docs[i]! + 1) * DIM), DIM, query, 1).scores[0]!;
      expect(scores[i]).toBeCloseTo(exact, 5);
      if (i > 0) expect(scores[i]!).toBeLessThanOrEqual(scores[i - 1]!);
    }
  });

  it('is deterministic for the same vectors, parameters and seed', () => {
    const small = corpus.subarray(0, 300 * DIM);
    const a = HnswIndex.build(small, DIM, { seed: 7 });
    const b = HnswIndex.build(small, DIM, { seed: 7 });
    for (const query of queries.slice(0, 20)) expect(b.search(query, 5)).toEqual(a.search(query, 5));
  });

  it('save → load gives identical results and leaves no temporary file', () => {
    const saveDir = join(dir, 'round-trip');
    mkdirSync(saveDir);
    const path = join(saveDir, 'corpus.hnsw');
    index.save(path);
    index.save(path); // over an existing file, too
    expect(readdirSync(saveDir)).toEqual(['corpus.hnsw']);
    const loaded = HnswIndex.load(path, DIM);
    expect(loaded.dim).toBe(DIM);
    expect(loaded.numDocs).toBe(NUM_DOCS);
    for (const query of queries.slice(0, 50)) {
      expect(loaded.search(query, 10)).toEqual(index.search(query, 10));
      expect(loaded.search(query, 100)).toEqual(index.search(query, 100));
    }
    // efSearch applies to a loaded index; build-time options must agree with the file.
    expect(HnswIndex.load(path, DIM, { m: 16, efConstruction: 200, efSearch: 500 }).search(queries[0]!, 10).docs.length).toBe(10);
    expect(() => HnswIndex.load(path, DIM, { m: 32 })).toThrow(/built with m = 16, but options\.m = 32/);
  });

  it('clips k larger than numDocs', () => {
    const small = HnswIndex.build(corpus.subarray(0, 50 * DIM), DIM);
    const { docs, scores } = small.search(queries[0]!, 1000);
    expect(docs.length).toBe(50);
    expect(scores.length).toBe(50);
    expect([...docs].sort((a, b) => a - b)).toEqual(Array.from({ length: 50 }, (_, i) => i));
    expect(docs).toEqual(exactNeighbours(corpus.subarray(0, 50 * DIM), DIM, queries[0]!, 1000).docs);
    expect(annRecall(small, corpus.subarray(0, 50 * DIM), queries.slice(0, 5), 1000)).toBe(1);
  });

  it('rejects a query of the wrong dim, a bad k and malformed vectors', () => {
    expect(() => index.search(new Float32Array(DIM + 1), 10)).toThrow(/query length must equal the index dim = 32, got 33/);
    expect(() => index.search(queries[0]!, 0)).toThrow(/k must be an integer ≥ 1, got 0/);
    expect(() => index.search(queries[0]!, 2.5)).toThrow(/k must be an integer ≥ 1, got 2.5/);
    expect(() => HnswIndex.build(new Float32Array(100), 32)).toThrow(/multiple of dim = 32.*got 100/);
    expect(() => HnswIndex.build(new Float32Array(0), 32)).toThrow(/empty/);
    expect(() => HnswIndex.build(Float32Array.from([0, Number.NaN]), 2)).toThrow(/row 0, component 1 is NaN/);
    expect(() => HnswIndex.build(corpus, DIM, { m: 1 })).toThrow(/m must be an integer in \[2, 10000\], got 1/);
  });

  it('refuses to load an index of another dim, naming the path and both dims', () => {
    const path = join(dir, 'dim32.hnsw');
    HnswIndex.build(corpus.subarray(0, 20 * DIM), DIM).save(path);
    expect(() => HnswIndex.load(path, 64)).toThrow(`cannot load HNSW index ${path}: it holds 32-dimensional vectors, expected dim = 64`);
  });

  it('names the path when the file is missing, truncated or not an index', () => {
    const missing = join(dir, 'nope', 'missing.hnsw');
    expect(() => HnswIndex.load(missing, DIM)).toThrow(`cannot load HNSW index ${missing}: no such file`);

    const good = join(dir, 'good.hnsw');
    HnswIndex.build(corpus.subarray(0, 100 * DIM), DIM).save(good);
    const bytes = readFileSync(good);
    const truncated = join(dir, 'truncated.hnsw');
    writeFileSync(truncated, bytes.subarray(0, bytes.length - 10));
    expect(() => HnswIndex.load(truncated, DIM)).toThrow(`cannot load HNSW index ${truncated}`);

    const garbage = join(dir, 'garbage.hnsw');
    writeFileSync(garbage, Buffer.from('this is not an index, just some text that is long enough to fill a header'.repeat(4)));
    expect(() => HnswIndex.load(garbage, DIM)).toThrow(`cannot load HNSW index ${garbage}`);

    const tiny = join(dir, 'tiny.hnsw');
    writeFileSync(tiny, Buffer.from('hnsw'));
    expect(() => HnswIndex.load(tiny, DIM)).toThrow(`cannot load HNSW index ${tiny}: 4 bytes, shorter than the 96-byte hnswlib header`);
  });
});

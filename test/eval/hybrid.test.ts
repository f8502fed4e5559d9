/**
 * The hybrid in evaluation (src/eval/splits.ts, src/eval/hybrid.ts) on a small retrieval split
 * with a stand-in model whose embeddings are letter counts: the hybrid metrics equal the fusion
 * of the dense and lexical candidate lists computed here independently, the weight search picks
 * the best grid point on the main metric, and a test split is never tuned.
 */
import { describe, expect, it } from 'vitest';

import { fromTypedArray, tidy, type Tensor } from '../../src/engine/index.js';
import { evaluateSplitsWithModel, type EvalSplit, type SplitEmbedder } from '../../src/eval/splits.js';
import { hybridReport, isTestSplit, formatHybridReport } from '../../src/eval/hybrid.js';
import { fuse, fusedRow, DEFAULT_HYBRID, type HybridOptions } from '../../src/eval/fusion.js';
import { LexicalRanker, top } from '../../src/eval/lexical.js';
import { ranksOfRelevant } from '../../src/eval/rank.js';
import { DEFAULT_LEXICAL_SETTINGS } from '../../src/eval/lexical.js';
import type { RetrievalSplit } from '../../src/data/types.js';

/** Letter-count vectors, L2-normalised: a "model" whose ranking we can recompute by hand. */
function letters(text: string): Float32Array {
  const v = new Float32Array(26);
  for (const c of text.toLowerCase()) {
    const i = c.charCodeAt(0) - 97;
    if (i >= 0 && i < 26) v[i]! += 1;
  }
  const norm = Math.hypot(...v) || 1;
  return v.map((x) => x / norm);
}

const embedder: SplitEmbedder = {
  embed: (_side, _type, texts) => {
    const data = new Float32Array(texts.length * 26);
    texts.forEach((t, i) => data.set(letters(t), i * 26));
    return fromTypedArray(data, { shape: [texts.length, 26] });
  },
  scorer: (queries: Tensor, corpus: Tensor) => ({
    scoreRows: (start, end) => tidy(() => queries.narrow(0, start, end - start).matmul(corpus.transpose(0, 1)).contiguous().toTypedArray<'float32'>() as Float32Array),
  }),
  pairScores: () => new Float32Array(0),
};

const CORPUS = [
  { id: 's0', text: 'python programming', labels: ['python', 'program in python'] },
  { id: 's1', text: 'manage a team', labels: ['lead staff', 'supervise team members'] },
  { id: 's2', text: 'use spreadsheets software', labels: ['excel', 'use spreadsheets'] },
  { id: 's3', text: 'SQL', labels: ['structured query language', 'write database queries'] },
  { id: 's4', text: 'customer service', labels: ['assist customers', 'help clients'] },
  { id: 's5', text: 'project management', labels: ['manage projects', 'coordinate projects'] },
];
const QUERIES = [
  ['we need someone who writes python every day', [0]],
  ['you will supervise a small team', [1]],
  ['excel skills are a plus', [2]],
  ['experience with database queries and python', [3, 0]],
  ['friendly and helps clients', [4]],
  ['coordinate projects across teams', [5, 1]],
] as const;

function split(name: string): RetrievalSplit {
  return {
    name,
    queryType: 'sentence',
    docType: 'skill',
    corpus: CORPUS,
    queries: QUERIES.map(([text, relevant], i) => ({ id: `q${i}`, text, relevant: [...relevant], source: `test:${i}` })),
    labelledPairs: [],
  };
}

function entry(name: string, hybrid: HybridOptions | null): EvalSplit {
  const s = split(name);
  return { spec: { name: 'skills', recipe: 'test', options: {}, metrics: ['rp@2', 'mrr'] } as never, kind: 'retrieval', split: s, sampled: s, lexical: DEFAULT_LEXICAL_SETTINGS, hybrid };
}

/** The hybrid's RP@2 and MRR, recomputed from scratch: letter-count dense top, lexical candidates, fuse, rank. */
function expectedHybrid(options: HybridOptions): { 'rp@2': number; mrr: number } {
  const ranker = new LexicalRanker(options.lexical, CORPUS, DEFAULT_LEXICAL_SETTINGS);
  const docVectors = CORPUS.map((d) => letters(d.text));
  let rp = 0;
  let rr = 0;
  for (const [text, relevant] of QUERIES) {
    const q = letters(text);
    const row = Float32Array.from(docVectors, (d) => d.reduce((s, x, i) => s + x * q[i]!, 0));
    const fused = fusedRow(fuse(top(row, options.window), ranker.candidates(text, options.window), options), CORPUS.length);
    const ranks = ranksOfRelevant(fused, [...relevant]);
    rp += ranks.filter((r) => r <= 2).length / Math.min(2, relevant.length);
    rr += 1 / Math.min(...ranks);
  }
  return { 'rp@2': rp / QUERIES.length, mrr: rr / QUERIES.length };
}

describe('the hybrid in evaluation', () => {
  const options: HybridOptions = { ...DEFAULT_HYBRID, lexical: 'bm25', window: 4 };

  it('reports <eval>/hybrid/<metric> equal to fusing the dense and lexical candidates by hand', () => {
    const metrics = evaluateSplitsWithModel([entry('skills/validation', options)], embedder, { sampled: false });
    const expected = expectedHybrid(options);
    expect(metrics['skills/hybrid/rp@2']).toBeCloseTo(expected['rp@2'], 12);
    expect(metrics['skills/hybrid/mrr']).toBeCloseTo(expected.mrr, 12);
    expect(Object.keys(metrics).sort()).toEqual(['skills/hybrid/mrr', 'skills/hybrid/rp@2', 'skills/mrr', 'skills/rp@2']);
    // Without a hybrid configured, only the model's metrics.
    expect(Object.keys(evaluateSplitsWithModel([entry('skills/validation', null)], embedder, { sampled: false })).sort()).toEqual(['skills/mrr', 'skills/rp@2']);
  });

  it('kiln eval --hybrid: the tuned weight is the grid point with the best main metric, and its metrics are that fusion', () => {
    const grid = [0, 0.25, 0.5, 0.75, 1];
    const [report] = hybridReport([entry('skills/validation', options)], embedder, DEFAULT_HYBRID, grid);
    expect(report!.mainMetric).toBe('rp@2');
    expect(report!.hybrid['rp@2']).toBeCloseTo(expectedHybrid(options)['rp@2'], 12);
    const curve = grid.map((weight) => expectedHybrid({ ...options, weight })['rp@2']);
    expect(report!.tuned!.curve.map((p) => p.value)).toEqual(curve.map((v) => expect.closeTo(v, 12)));
    expect(new Set(curve).size, `the grid must discriminate: ${curve.join(", ")}`).toBeGreaterThan(1);
    const best = Math.max(...curve);
    expect(report!.tuned!.metrics['rp@2']).toBeCloseTo(best, 12);
    // Ties go to the weight nearest the configured one (0.5).
    const tied = grid.filter((_, i) => Math.abs(curve[i]! - best) < 1e-12);
    const nearest = tied.reduce((a, b) => (Math.abs(b - 0.5) < Math.abs(a - 0.5) ? b : a));
    expect(report!.tuned!.weight).toBe(nearest);
    // Every lexical ranker beside it, on the same split, and the fusion with each.
    expect(Object.keys(report!.lexical).sort()).toEqual(['bm25', 'tfidf_char']);
    expect(report!.fused.bm25.metrics).toEqual(report!.hybrid);
    expect(report!.fused.tfidf_char.metrics['rp@2']).toBeCloseTo(expectedHybrid({ ...options, lexical: 'tfidf_char' })['rp@2'], 12);
    expect(formatHybridReport('r', [report!])).toMatch(/metric\s+kiln\s+bm25\s+tfidf_char\s+hybrid\s+hybrid\*\s+\+bm25\*\s+\+tfidf_char\*/);
  });

  it('never tunes on a test split', () => {
    expect(isTestSplit('skill-extraction/tech/test')).toBe(true);
    expect(isTestSplit('jobbert-titles/validation')).toBe(false);
    const [report] = hybridReport([entry('skills/test', options)], embedder, DEFAULT_HYBRID, [0, 1]);
    expect(report!.tuned).toBeNull();
    expect(report!.untunedReason).toMatch(/test split/);
    expect(report!.hybrid['rp@2']).toBeCloseTo(expectedHybrid(options)['rp@2'], 12);
  });
});

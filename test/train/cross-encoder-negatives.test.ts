/**
 * Cross-encoder negatives mined by BM25: documents of the positive's type, never of a concept
 * the query is paired with, lexically close first, and topped up to k when BM25 finds too few.
 * Mined by a two-tower run: the run's cosine of each pair, the soft labels of teacher_scores,
 * and positive-aware mining that drops the candidates scored too close to the positive.
 */
import { describe, expect, it } from 'vitest';

import { Rng } from '../../src/data/rng.js';
import { CandidateMiner } from '../../src/train/cross-encoder-negatives.js';
import { tokenizePairs } from '../../src/train/tasks/two-tower.js';
import type { NegativePool, TokenizedPairs } from '../../src/train/strategies/two-tower.js';
import type { RunData } from '../../src/train/setup.js';
import { BadRowReport, type PairExample } from '../../src/data/types.js';
import { WordPieceTokenizer } from '../../src/data/tokenizer.js';
import { join } from 'node:path';
import { DATA_ROOT } from '../data/root.js';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { kiln, onlyRun } from '../helpers/cli.js';
import { loadRunModel, type TwoTowerModel } from '../../src/models/index.js';
import { ModelEmbedder } from '../../src/eval/embedder.js';
import { tidy } from '../../src/engine/index.js';

const pair = (query: string, doc: string, group: string, docType = 'occupation'): PairExample => ({ query, doc, group, queryType: 'title', docType, source: 't:1' });

/** Pair data as a run loads it, tokenised with BERT's vocabulary. */
function pairData(pairs: PairExample[]): { data: RunData; tokenized: TokenizedPairs; pool: NegativePool } {
  const data: RunData = { pairs, evalSplits: [], badRows: new BadRowReport(), pairCounts: {}, filesRead: [], decontaminated: 0, pairRanges: [{ recipe: 'x', start: 0, end: pairs.length, weight: 1 }] };
  const tokenizer = WordPieceTokenizer.fromVocabFile(join(DATA_ROOT, 'bert-vocab', 'vocab.txt'));
  const { pairs: tokenized, pool } = tokenizePairs(data, tokenizer, (_t, text) => text, { query: 16, doc: 16 });
  return { data, tokenized, pool };
}

/** A two-tower run of configs/tiny.yaml, 3 steps: a mining run with real (if untrained) embeddings. */
function trainTinyRun(): string {
  const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
  const tower = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--quiet', '--set', 'train.steps=3', '--set', 'train.warmup_steps=1', '--set', 'train.eval_every=0', '--set', 'data.eval=[]']);
  expect(tower.status, tower.stderr).toBe(0);
  return onlyRun(runs);
}

/** The run's cosine of a title with an occupation, computed by hand from its embeddings of each text alone. */
function runCosine(run: string): { cosine(title: string, occupation: string): number; dispose(): void } {
  const loaded = loadRunModel(run);
  const embedder = new ModelEmbedder(loaded.model as TwoTowerModel, loaded.tokenizer, { maxLength: loaded.json.maxLength as { query: number; doc: number }, batchSize: 8, precision: 'fp32', device: 'cpu' });
  const vector = (side: 'query' | 'doc', type: string, text: string): number[] => tidy(() => [...(embedder.embed(side, type, [text]).toTypedArray<'float32'>() as Float32Array)]);
  return {
    cosine(title, occupation) {
      const a = vector('query', 'title', title);
      const b = vector('doc', 'occupation', occupation);
      return a.reduce((sum, x, j) => sum + x * b[j]!, 0) / Math.hypot(...a) / Math.hypot(...b);
    },
    dispose: () => loaded.model.dispose(),
  };
}

describe('CandidateMiner (bm25)', () => {
  it('keeps the type, excludes every concept the query is paired with, ranks by BM25 and tops up to k', () => {
    const pairs = [
      pair('senior java developer', 'software developer', 'dev'),
      pair('senior java developer', 'java programmer', 'java'), // the same query, a second concept
      pair('registered nurse', 'nurse', 'nurse'),
      pair('night nurse assistant', 'nursing assistant', 'assistant'),
      pair('data analyst', 'data scientist', 'data'),
      pair('java', 'use java', 'java-skill', 'skill'),
    ];
    const { data, tokenized, pool } = pairData(pairs);
    const miner = new CandidateMiner(data, tokenized, pool, { source: 'bm25', poolSize: 10, k: 2, seed: 1 });
    const all = pairs.map((_, i) => i);
    // Mined on first use: any order of asking gives the same lists (top-ups are seeded per pair).
    const reversed = new CandidateMiner(data, tokenized, pool, { source: 'bm25', poolSize: 10, k: 2, seed: 1 }).candidatesOf([...all].reverse()).reverse();
    const candidates = miner.candidatesOf(all);
    expect(candidates.map((c) => [...c])).toEqual(reversed.map((c) => [...c]));
    expect(miner.candidatesOf([2])[0]).toBe(candidates[2]); // memoised
    const texts = candidates.map((list) => [...list].map((d) => pool.texts[d]));
    // "registered nurse" shares no word with another concept's document: it is topped up with random occupations.
    for (const [i, list] of texts.slice(0, 5).entries()) {
      expect(list.length, `pair ${i}`).toBeGreaterThanOrEqual(2);
      // Never the query's own concepts, never a skill for an occupation pair.
      const own = new Set(pairs.filter((p) => p.query === pairs[i]!.query).map((p) => p.doc));
      for (const doc of list) {
        expect(own.has(doc!), `${pairs[i]!.query} → ${doc}`).toBe(false);
        expect(pool.types[pool.texts.indexOf(doc!)]).toBe(pairs[i]!.docType);
      }
    }
    // "night nurse assistant" shares "nurse" with the nurse concept's document: BM25's first negative.
    expect(texts[3]![0]).toBe('nurse');
    // Both pairs of the java query exclude both of its concepts, so neither java document is a negative for it.
    expect(texts[0]).not.toContain('java programmer');
    expect(texts[1]).not.toContain('software developer');
    // The only skill document is the skill pair's own positive: nothing to mine, nothing to top up with.
    expect(texts[5]).toEqual([]);
    // Random negatives: the positive's type, never the query's own concepts, never one already taken.
    const taken = [pool.texts.indexOf('nurse')];
    for (let seed = 1; seed <= 20; seed++) {
      const drawn = miner.drawRandom(0, new Rng(seed), 2, taken).map((d) => pool.texts[d]);
      expect(drawn).toHaveLength(2);
      for (const doc of drawn) expect(['nursing assistant', 'data scientist']).toContain(doc);
    }
    expect(miner.drawRandom(5, new Rng(1), 1, [])).toEqual([]); // no other skill exists
    // BM25's scores are not on a model's scale: no soft labels.
    expect(miner.teacherScores([0], [[pool.texts.indexOf('nurse')]])).toBeNull();
  });
});

describe('CandidateMiner (run:<dir>)', () => {
  it("scores each pair's positive and candidates with the run's cosine: the soft labels of a teacher_scores loss", () => {
    const run = trainTinyRun();
    const pairs = [
      pair('senior java developer', 'software developer', 'dev'),
      pair('registered nurse', 'nurse', 'nurse'),
      pair('night nurse assistant', 'nursing assistant', 'assistant'),
      pair('data analyst', 'data scientist', 'data'),
    ];
    const { data, tokenized, pool } = pairData(pairs);
    const miner = new CandidateMiner(data, tokenized, pool, { source: `run:${run}`, poolSize: 3, k: 2, seed: 1, keepScores: true });
    // Without keepScores the miner holds no query embeddings, so it cannot score.
    const lean = new CandidateMiner(data, tokenized, pool, { source: `run:${run}`, poolSize: 3, k: 2, seed: 1 });
    try {
      lean.candidatesOf([0]);
      expect(() => lean.teacherScores([0], [[tokenized.docPoolIndex[0]!]])).toThrow(/never mined with keepScores/);
    } finally {
      lean.dispose();
    }
    try {
      const items = [0, 2];
      const candidates = miner.candidatesOf(items);
      const docs = items.map((i, row) => [tokenized.docPoolIndex[i]!, ...candidates[row]!.slice(0, 2)]);
      expect(docs.map((d) => d.map((x) => pool.texts[x]))[0]![0]).toBe('software developer');
      const scores = miner.teacherScores(items, docs)!;
      expect(scores).toHaveLength(6);
      // Independently: the run's embeddings of the texts (with their prompts), cosine by hand.
      const byHand = runCosine(run);
      items.forEach((i, row) => {
        docs[row]!.forEach((d, col) => expect(scores[row * 3 + col]).toBeCloseTo(byHand.cosine(pairs[i]!.query, pool.texts[d]!), 5));
      });
      byHand.dispose();
    } finally {
      miner.dispose();
    }
  }, 120_000);

  it("positive-aware mining drops exactly the candidates the run scores at f of the positive's cosine or above", () => {
    const run = trainTinyRun();
    const pairs = [
      pair('senior java developer', 'software developer', 'dev'),
      pair('senior java developer', 'java programmer', 'java'), // two positives: the lower one sets the ceiling
      pair('registered nurse', 'nurse', 'nurse'),
      pair('night nurse assistant', 'nursing assistant', 'assistant'),
      pair('data analyst', 'data scientist', 'data'),
      pair('head chef', 'chef', 'chef'),
    ];
    const { data, tokenized, pool } = pairData(pairs);
    const items = pairs.map((_, i) => i);
    const all = new CandidateMiner(data, tokenized, pool, { source: `run:${run}`, poolSize: 10, k: 1, seed: 1 });
    const unfiltered = all.candidatesOf(items).map((c) => [...c]);
    all.dispose();
    // Independently: the run's cosines by hand.
    const byHand = runCosine(run);
    const score = (i: number, doc: string): number => byHand.cosine(pairs[i]!.query, doc);
    const ceilingOf = (i: number, f: number): number => {
      const positive = Math.min(...pairs.filter((p) => p.query === pairs[i]!.query).map((p) => score(i, p.doc)));
      return positive - (1 - f) * Math.abs(positive);
    };
    const below = (i: number, f: number): number[] => unfiltered[i]!.filter((d) => score(i, pool.texts[d]!) < ceilingOf(i, f));
    let dropped = 0;
    let kept = 0;
    for (const f of [1, 0.5, 0.01]) {
      const miner = new CandidateMiner(data, tokenized, pool, { source: `run:${run}`, poolSize: 10, k: 1, seed: 1, maxRelativeScore: f });
      try {
        const lists = miner.candidatesOf(items);
        items.forEach((i, row) => {
          // Float rounding stays out of the comparison: no candidate sits within 1e-5 of the ceiling.
          for (const d of unfiltered[row]!) expect(Math.abs(score(i, pool.texts[d]!) - ceilingOf(i, f)), `${pairs[i]!.query} → ${pool.texts[d]} at f ${f}`).toBeGreaterThan(1e-5);
          const expected = below(i, f);
          const list = [...lists[row]!];
          // A pair left with fewer than k is topped up with a random document, as without the filter.
          expect(list.slice(0, expected.length), `${pairs[i]!.query} at f ${f}`).toEqual(expected);
          expect(list.length).toBe(Math.max(expected.length, 1));
        });
        // Memoised per (query, type): the two java pairs share one list; count it once.
        const distinct = [0, 2, 3, 4, 5];
        expect(miner.filtered.kept).toBe(distinct.reduce((sum, i) => sum + below(i, f).length, 0));
        expect(miner.filtered.kept + miner.filtered.dropped).toBe(distinct.reduce((sum, row) => sum + unfiltered[row]!.length, 0));
        dropped += miner.filtered.dropped;
        kept += miner.filtered.kept;
      } finally {
        miner.dispose();
      }
    }
    // The three ceilings between them both keep and drop candidates: the comparison above is not vacuous.
    expect(dropped).toBeGreaterThan(0);
    expect(kept).toBeGreaterThan(0);
    byHand.dispose();
    // BM25 has no scores on the model's scale to filter by.
    expect(() => new CandidateMiner(data, tokenized, pool, { source: 'bm25', poolSize: 10, k: 1, seed: 1, maxRelativeScore: 0.95 })).toThrow(/needs a run's scores/);
  }, 120_000);
});

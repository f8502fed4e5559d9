/**
 * Negatives for cross-encoder training, mined once before training by a first-stage retriever
 * (`cross_encoder.negatives.source`):
 *
 *   bm25      BM25 over the distinct training documents: lexically close documents of
 *             another concept, the confusions a re-ranker behind BM25 must undo
 *   run:<dir> a trained two-tower run: the documents its embeddings put nearest each query
 *             (the negatives of a re-ranker behind that bi-encoder; Qu et al. 2021,
 *             RocketQA, arXiv 2010.08191, mine cross-encoder negatives the same way)
 *
 * Each training pair gets up to `pool` candidates: documents of the same input type as its
 * positive, never of the positive's concept (a same-concept document would be a false
 * negative). Each step then draws k of them per pair (strategies/cross-encoder.ts), so the
 * model sees different negatives of the same query over the epochs. A pair with fewer than k
 * candidates is topped up with random documents of its type.
 */
import { tidy } from '../engine/index.js';
import type { Rng } from '../data/rng.js';
import { HardNegativeMiner } from '../data/negatives.js';
import { embedTyped, ModelEmbedder } from '../eval/embedder.js';
import { LexicalRanker } from '../eval/lexical.js';
import { topK } from '../eval/rank.js';
import { loadRunModel } from '../models/index.js';
import type { RunData } from './setup.js';
import { RunDirectory } from '../track/run-dir.js';
import { ConfigError } from '../config/errors.js';
import type { NegativePool, TokenizedPairs } from './strategies/two-tower.js';

export interface MinedCandidates {
  /** Candidate pool indices per training pair, best first. */
  candidates: Int32Array[];
  /** What mined them, for the log. */
  description: string;
}

/** Distinct queries of the pairs: text, type and one group per text (its first pair's). */
function distinctQueries(data: RunData, pairs: TokenizedPairs): { index: Int32Array; texts: string[]; types: string[]; groups: Int32Array } {
  const byKey = new Map<string, number>();
  const texts: string[] = [];
  const types: string[] = [];
  const groups: number[] = [];
  const index = new Int32Array(data.pairs.length);
  data.pairs.forEach((p, i) => {
    const key = `${p.queryType}\u0000${p.query}`;
    let q = byKey.get(key);
    if (q === undefined) {
      byKey.set(key, (q = texts.length));
      texts.push(p.query);
      types.push(p.queryType);
      groups.push(pairs.group[i]!);
    }
    index[i] = q;
  });
  return { index, texts, types, groups: Int32Array.from(groups) };
}

/** Every concept a query text is paired with: none of them is a negative for it. */
function positiveGroups(queryIndex: Int32Array, pairs: TokenizedPairs, queries: number): Array<Set<number>> {
  const out = Array.from({ length: queries }, () => new Set<number>());
  queryIndex.forEach((q, i) => out[q]!.add(pairs.group[i]!));
  return out;
}

export function mineCrossEncoderCandidates(
  data: RunData,
  pairs: TokenizedPairs,
  pool: NegativePool,
  options: { source: string; poolSize: number; k: number; seed: number; key?: string },
): MinedCandidates {
  const sourceKey = options.key ?? 'cross_encoder.negatives.source';
  const queries = distinctQueries(data, pairs);
  const own = positiveGroups(queries.index, pairs, queries.texts.length);
  const docType = data.pairs.map((p) => p.docType);
  // Candidates per distinct (query, doc type): documents of the positive's type only.
  const perQuery = new Map<string, Int32Array>();
  const typeOfPool = pool.types;
  const allowed = (doc: number, q: number, type: string): boolean => typeOfPool[doc] === type && !own[q]!.has(pool.group[doc]!);
  const wanted = new Map<string, { q: number; type: string }>();
  data.pairs.forEach((_, i) => wanted.set(`${queries.index[i]}\u0000${docType[i]}`, { q: queries.index[i]!, type: docType[i]! }));

  let description: string;
  if (options.source === 'bm25') {
    const ranker = new LexicalRanker('bm25', pool.texts.map((text, i) => ({ id: String(i), text })), { fields: ['text'], match: 'best' });
    for (const [key, { q, type }] of wanted) {
      // Documents that share a word with the query, best first; the type and concept filter
      // runs on these few, not on the whole pool.
      const { docs } = ranker.candidates(queries.texts[q]!, options.poolSize * 4);
      perQuery.set(key, docs.filter((d) => allowed(d, q, type)).slice(0, options.poolSize));
    }
    description = `BM25 over ${pool.texts.length} training documents`;
  } else {
    const runPath = resolveRunSource(options.source, sourceKey);
    const teacher = loadRunModel(runPath);
    if (teacher.kind !== 'two-tower') {
      teacher.model.dispose();
      throw new Error(`${sourceKey} ${options.source}: a ${teacher.kind} run cannot retrieve; expected a two-tower run`);
    }
    const embedder = new ModelEmbedder(teacher.model, teacher.tokenizer, { maxLength: teacher.json.maxLength, batchSize: 256, precision: 'fp32', device: 'cpu' });
    const miner = new HardNegativeMiner({ texts: pool.texts.map((t, i) => `${pool.types[i]}\u0000${t}`), groups: pool.group });
    try {
      miner.refresh((docIndices) => {
        const indices = [...docIndices];
        return embedTyped(embedder, 'doc', indices.map((i) => pool.types[i]!), indices.map((i) => pool.texts[i]!));
      });
      const chunk = 512;
      const keys = [...wanted.entries()];
      for (let start = 0; start < keys.length; start += chunk) {
        const slice = keys.slice(start, start + chunk);
        const byType = new Map<string, Array<[string, { q: number; type: string }]>>();
        for (const entry of slice) {
          const type = queries.types[entry[1].q]!;
          byType.set(type, [...(byType.get(type) ?? []), entry]);
        }
        for (const [queryType, entries] of byType) {
          tidy(() => {
            const emb = embedder.embed('query', queryType, entries.map(([, { q }]) => queries.texts[q]!));
            const groups = Int32Array.from(entries, ([, { q }]) => queries.groups[q]!);
            // Mine extra: candidates of another type or another positive concept are filtered after.
            const mined = miner.mine(emb, groups, Math.min(pool.texts.length, options.poolSize * 4));
            const per = mined.length / entries.length;
            entries.forEach(([key, { q, type }], r) => {
              const row = mined.subarray(r * per, (r + 1) * per);
              perQuery.set(key, row.filter((d) => d >= 0 && allowed(d, q, type)).slice(0, options.poolSize));
            });
          });
        }
      }
    } finally {
      miner.dispose();
      teacher.model.dispose();
    }
    description = `the two-tower run ${runPath} over ${pool.texts.length} training documents`;
  }

  // Top up short lists with random documents of the right type (seeded), so every pair has k.
  const byType = new Map<string, number[]>();
  pool.types.forEach((t, d) => byType.set(t, [...(byType.get(t) ?? []), d]));
  let state = options.seed >>> 0 || 1;
  const random = (n: number): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state % n;
  };
  let toppedUp = 0;
  const candidates = data.pairs.map((_, i) => {
    const key = `${queries.index[i]}\u0000${docType[i]}`;
    const list = [...(perQuery.get(key) ?? [])];
    const type = docType[i]!;
    const q = queries.index[i]!;
    const docs = byType.get(type)!;
    if (list.length < options.k) {
      toppedUp++;
      for (let tries = 0; list.length < options.k && tries < 50 * options.k; tries++) {
        const d = docs[random(docs.length)]!;
        if (allowed(d, q, type) && !list.includes(d)) list.push(d);
      }
    }
    return Int32Array.from(list);
  });
  return { candidates, description: `${description}; ${toppedUp} pair(s) topped up with random documents` };
}


/** `run:<dir>` → the run directory (`run:runs/<name>` = the newest completed run of that name); a missing run is a config error. */
export function resolveRunSource(source: string, key: string): string {
  const reference = source.slice('run:'.length);
  const path = RunDirectory.resolveReference(reference);
  if (path === null) throw new ConfigError([`${key}: ${source}: no such run; expected run:runs/<id>, or run:runs/<name> for the newest completed run of that name`]);
  return path;
}

/**
 * k distinct candidates drawn from `pool` (a partial Fisher–Yates shuffle of a copy); a list
 * shorter than k (a tiny corpus) repeats its candidates.
 */
export function drawCandidates(rng: Rng, pool: Int32Array, k: number): number[] {
  const order = Array.from(pool);
  const chosen: number[] = [];
  for (let j = 0; j < k; j++) {
    if (j < order.length) {
      const pick = j + rng.int(order.length - j);
      [order[j], order[pick]] = [order[pick]!, order[j]!];
    }
    chosen.push(order[j % order.length]!);
  }
  return chosen;
}

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
 * candidates is topped up with random documents of its type (seeded per pair).
 *
 * Candidates are mined on first use, a batch at a time, and memoised: a run touches only the
 * queries its steps draw. Mining all 178k distinct training queries up front with the teacher
 * (bert-small) took longer than the 600 training steps that use 19k of them. The pool's
 * embeddings are computed once, at the start. BM25 candidates are exact; a run's candidates
 * depend on float rounding of the batch they were embedded in, so a resumed run can differ
 * from an uninterrupted one where two documents tie to the last bit.
 *
 * With `maxRelativeScore` f (a run source only), mining is positive-aware (Moreira et al. 2024,
 * NV-Retriever, arXiv 2407.15831, "TopK-PercPos"): a candidate d of query q is dropped when
 *
 *   s(q, d) ≥ s⁺ − (1 − f)·|s⁺|      s⁺ = the lowest run score among q's positives of d's type
 *
 * (f·s⁺ for the usual s⁺ > 0). Why: the run's nearest documents of another concept include
 * documents as relevant as the labelled positive (ESCO lists many near-synonymous occupations
 * and skills); as negatives they teach the re-ranker to demote what looks most relevant, and
 * they contradict a `teacher_scores` loss that ranks them beside the positive.
 *
 * `random` of the k negatives are instead drawn each step uniformly from all documents of the
 * positive's type (`drawRandom`). Why: mined negatives alone carry the miner's signature, and
 * a re-ranker learns it as a shortcut. BM25 negatives always share words with the query while
 * many positives (an alternative label → the preferred label) share none, so a BM25-only
 * cross-encoder learnt "overlap means negative" and re-ranked worse than random order
 * (RESULTS.md, "Teachers"). Random negatives keep the easy half of relevance in the data.
 */
import { fromTypedArray, tidy } from '../engine/index.js';
import { Rng } from '../data/rng.js';
import { HardNegativeMiner } from '../data/negatives.js';
import { embedTyped, ModelEmbedder } from '../eval/embedder.js';
import { LexicalRanker } from '../eval/lexical.js';
import { topK } from '../eval/rank.js';
import { loadRunModel } from '../models/index.js';
import type { RunData } from './setup.js';
import { RunDirectory } from '../track/run-dir.js';
import { ConfigError } from '../config/errors.js';
import type { NegativePool, TokenizedPairs } from './strategies/two-tower.js';

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

/** Where a strategy gets each training pair's negatives: mined candidates, and random ones. */
export interface CandidateSource {
  /** What mines them, for the log. */
  readonly description: string;
  /** Candidate pool indices of each of these pairs, best first (mined on first use, then memoised). */
  candidatesOf(items: Iterable<number>): Int32Array[];
  /**
   * `count` distinct random documents of pair i's document type, none of the pair's query's
   * concepts and none in `taken`, drawn from `rng` (fewer only if the type has too few).
   */
  drawRandom(i: number, rng: Rng, count: number, taken: readonly number[]): number[];
  /**
   * The mining bi-encoder's score of pair i's query with each of `docs[row]` (pool indices),
   * row-major [items.length, docs per row]: the soft labels of a `teacher_scores` loss. Null
   * when the source is BM25, which has no scores on the model's scale. Needs `keepScores`, and
   * `candidatesOf` called for the same items first: it embeds their queries.
   */
  teacherScores(items: readonly number[], docs: ReadonlyArray<readonly number[]>): Float32Array | null;
  dispose(): void;
}

interface RunRetriever {
  miner: HardNegativeMiner;
  embedder: ModelEmbedder;
  dispose(): void;
}

export class CandidateMiner implements CandidateSource {
  readonly description: string;
  readonly #queries: ReturnType<typeof distinctQueries>;
  readonly #own: Array<Set<number>>;
  readonly #docType: string[];
  readonly #byType = new Map<string, number[]>();
  readonly #memo = new Map<string, Int32Array>();
  readonly #ranker: LexicalRanker | null = null;
  #retriever: RunRetriever | null = null;
  /**
   * The run's embedding of each distinct query it has mined for, by query index: kept only
   * with `keepScores` (a `teacher_scores` loss), since 1,200 steps of 32 queries hold about
   * 100 MB of them.
   */
  readonly #queryEmbeddings = new Map<number, Float32Array>();
  /** Pool indices of the positives of each (query, document type), for positive-aware mining. */
  readonly #positives = new Map<string, number[]>();
  /** Positive-aware mining so far: candidates kept, and dropped as scoring too close to a positive. */
  readonly filtered = { kept: 0, dropped: 0 };

  constructor(
    data: RunData,
    pairs: TokenizedPairs,
    private readonly pool: NegativePool,
    private readonly options: {
      source: string;
      poolSize: number;
      k: number;
      seed: number;
      /** The config key of `source`, for errors. */
      key?: string;
      /** Keep each mined query's embedding, so `teacherScores` can score it later. */
      keepScores?: boolean;
      /** Positive-aware mining's f (the header); null or absent keeps every candidate. */
      maxRelativeScore?: number | null;
    },
  ) {
    const sourceKey = options.key ?? 'cross_encoder.negatives.source';
    this.#queries = distinctQueries(data, pairs);
    this.#own = positiveGroups(this.#queries.index, pairs, this.#queries.texts.length);
    this.#docType = data.pairs.map((p) => p.docType);
    if ((options.maxRelativeScore ?? null) !== null) {
      data.pairs.forEach((_, i) => {
        const key = this.#key(i);
        const list = this.#positives.get(key);
        if (list === undefined) this.#positives.set(key, [pairs.docPoolIndex[i]!]);
        else list.push(pairs.docPoolIndex[i]!);
      });
    }
    pool.types.forEach((t, d) => {
      const list = this.#byType.get(t);
      if (list === undefined) this.#byType.set(t, [d]);
      else list.push(d);
    });
    if (options.source === 'bm25') {
      if ((options.maxRelativeScore ?? null) !== null) throw new Error("positive-aware mining (maxRelativeScore) needs a run's scores; BM25's are not on a model's scale");
      this.#ranker = new LexicalRanker('bm25', pool.texts.map((text, i) => ({ id: String(i), text })), { fields: ['text'], match: 'best' });
      this.description = `BM25 over ${pool.texts.length} training documents`;
      return;
    }
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
    } catch (error) {
      miner.dispose();
      teacher.model.dispose();
      throw error;
    }
    this.#retriever = { miner, embedder, dispose: () => (miner.dispose(), teacher.model.dispose()) };
    this.description = `the two-tower run ${runPath} over ${pool.texts.length} training documents`;
  }

  #allowed(doc: number, q: number, type: string): boolean {
    return this.pool.types[doc] === type && !this.#own[q]!.has(this.pool.group[doc]!);
  }

  #key(i: number): string {
    return `${this.#queries.index[i]}\u0000${this.#docType[i]}`;
  }

  candidatesOf(pairsOf: Iterable<number>): Int32Array[] {
    const items = [...pairsOf];
    const missing = new Map<string, { q: number; type: string; pair: number }>();
    for (const i of items) {
      const key = this.#key(i);
      if (!this.#memo.has(key)) missing.set(key, { q: this.#queries.index[i]!, type: this.#docType[i]!, pair: i });
    }
    if (missing.size > 0) {
      const mined = this.#ranker !== null ? this.#mineBm25(missing) : this.#mineRun(missing);
      for (const [key, list] of mined) this.#memo.set(key, this.#topUp(missing.get(key)!, list));
    }
    return items.map((i) => this.#memo.get(this.#key(i))!);
  }

  #mineBm25(wanted: Map<string, { q: number; type: string }>): Map<string, number[]> {
    const out = new Map<string, number[]>();
    for (const [key, { q, type }] of wanted) {
      // Documents that share a word with the query, best first; the type and concept filter
      // runs on these few, not on the whole pool.
      const { docs } = this.#ranker!.candidates(this.#queries.texts[q]!, this.options.poolSize * 4);
      out.set(key, [...docs].filter((d) => this.#allowed(d, q, type)).slice(0, this.options.poolSize));
    }
    return out;
  }

  #mineRun(wanted: Map<string, { q: number; type: string }>): Map<string, number[]> {
    const { miner, embedder } = this.#retriever!;
    const out = new Map<string, number[]>();
    const byQueryType = new Map<string, Array<[string, { q: number; type: string }]>>();
    for (const entry of wanted) {
      const type = this.#queries.types[entry[1].q]!;
      const list = byQueryType.get(type);
      if (list === undefined) byQueryType.set(type, [entry]);
      else list.push(entry);
    }
    for (const [queryType, entries] of byQueryType) {
      tidy(() => {
        const emb = embedder.embed('query', queryType, entries.map(([, { q }]) => this.#queries.texts[q]!));
        const dim = emb.size(1);
        // Mining runs inside a bf16 step's autocast, so read every score and embedding as float32.
        const flat = emb.toFloat32Array();
        if (this.options.keepScores === true) entries.forEach(([, { q }], r) => this.#queryEmbeddings.set(q, flat.slice(r * dim, (r + 1) * dim)));
        const groups = Int32Array.from(entries, ([, { q }]) => this.#queries.groups[q]!);
        // Mine extra: candidates of another type or another positive concept are filtered after.
        const mined = miner.mine(emb, groups, Math.min(this.pool.texts.length, this.options.poolSize * 4));
        const per = mined.length / entries.length;
        const f = this.options.maxRelativeScore ?? null;
        // Positive-aware mining reads the run's score of every pool document for these queries.
        const scores = f === null ? null : emb.matmul(miner.embeddings!.transpose(0, 1)).toFloat32Array();
        const poolDocs = this.pool.texts.length;
        entries.forEach(([key, { q, type }], r) => {
          const row = [...mined.subarray(r * per, (r + 1) * per)].filter((d) => d >= 0 && this.#allowed(d, q, type));
          if (scores === null) {
            out.set(key, row.slice(0, this.options.poolSize));
            return;
          }
          const rowScores = scores.subarray(r * poolDocs, (r + 1) * poolDocs);
          const positive = Math.min(...this.#positives.get(key)!.map((d) => rowScores[d]!));
          const ceiling = positive - (1 - f!) * Math.abs(positive);
          const kept: number[] = [];
          for (const d of row) {
            if (kept.length === this.options.poolSize) break;
            if (rowScores[d]! >= ceiling) this.filtered.dropped++;
            else kept.push(d);
          }
          this.filtered.kept += kept.length;
          out.set(key, kept);
        });
      });
    }
    return out;
  }

  /** Tops a short list up to k with random documents of the pair's type, seeded by the pair, so the order of mining does not matter. */
  #topUp(wanted: { q: number; type: string; pair: number }, list: number[]): Int32Array {
    if (list.length < this.options.k) {
      const rng = Rng.derive(this.options.seed, `cross-encoder-top-up:${this.#key(wanted.pair)}`);
      list.push(...this.#random(wanted.q, wanted.type, rng, this.options.k - list.length, list));
    }
    return Int32Array.from(list);
  }

  #random(q: number, type: string, rng: Rng, count: number, taken: readonly number[]): number[] {
    const docs = this.#byType.get(type)!;
    const out: number[] = [];
    for (let tries = 0; out.length < count && tries < 50 * count; tries++) {
      const d = docs[rng.int(docs.length)]!;
      if (this.#allowed(d, q, type) && !taken.includes(d) && !out.includes(d)) out.push(d);
    }
    return out;
  }

  drawRandom(i: number, rng: Rng, count: number, taken: readonly number[]): number[] {
    return this.#random(this.#queries.index[i]!, this.#docType[i]!, rng, count, taken);
  }

  teacherScores(items: readonly number[], docs: ReadonlyArray<readonly number[]>): Float32Array | null {
    if (this.#retriever === null) return null;
    const { miner, embedder } = this.#retriever;
    const pool = miner.embeddings!;
    const dim = pool.size(1);
    const rows = items.flatMap((i, row) => docs[row]!.map(() => i));
    const queries = new Float32Array(rows.length * dim);
    rows.forEach((i, r) => {
      const q = this.#queries.index[i]!;
      const embedding = this.#queryEmbeddings.get(q);
      if (embedding === undefined) throw new Error(`teacherScores: training pair ${i}'s query was never mined with keepScores; call candidatesOf first`);
      queries.set(embedding, r * dim);
    });
    const docIndex = BigInt64Array.from(docs.flat(), (d) => BigInt(d));
    return tidy(() => embedder.pairScores(fromTypedArray(queries, { shape: [rows.length, dim] }), pool.indexSelect(0, fromTypedArray(docIndex, { shape: [docIndex.length] }))));
  }

  dispose(): void {
    this.#retriever?.dispose();
    this.#retriever = null;
    this.#queryEmbeddings.clear();
  }
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

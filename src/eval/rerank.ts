/**
 * Re-ranking evaluation: a first-stage retriever (BM25, or a two-tower model) ranks the whole
 * corpus, a cross-encoder re-scores each query's `topK` candidates, and the metrics are
 * computed on the result, so a cross-encoder's numbers stand beside a bi-encoder's on the same
 * splits and metrics.
 *
 *   row       first-stage scores of every document for query q
 *   C         the topK documents of row (ties: lower index first)
 *   row'[d]   = base + s(q, d) for d ∈ C, where base = max(row) + 1 − min_{d∈C} s(q, d)
 *   row'[d]   = row[d] otherwise
 *
 * so the candidates rank above every other document in the cross-encoder's order, and the rest
 * keep the first stage's order below them (Nogueira & Cho 2019, arXiv 1901.04085, re-rank
 * BM25's top 1000 the same way). Scored pairs (STS) are scored by the cross-encoder directly.
 *
 * Fused re-ranking (`fusion: { weight: w }`) orders the candidates by both rankers instead:
 *
 *   z_f(d) = (row[d] − mean_C row) / sd_C row        the first stage, standardised over C
 *   z_x(d) = (s(q, d) − mean_C s) / sd_C s            the cross-encoder, likewise (sd 0 → z 0)
 *   s'(q, d) = w · z_f(d) + (1 − w) · z_x(d)          in place of s(q, d) above
 *
 * CombSUM over zero-mean, unit-variance scores (Fox & Shaw 1994; Montague & Aslam 2001,
 * "Relevance Score Normalization for Metasearch", CIKM), the interpolation that Birch and
 * monoBERT pipelines use to keep the first stage's evidence (Yilmaz et al. 2019, EMNLP demo):
 * a re-ranker trained on few pairs can be worse than its first stage alone and still carry
 * evidence the first stage lacks. Standardising per query puts a cosine and a logit on one scale.
 *
 * A residual cross-encoder (`residualTemperature` τ; config `cross_encoder.residual`) was
 * trained as a correction to the first stage's scores, so its logit alone is not a relevance
 * score; the candidates are ordered by the sum it was trained on,
 *
 *   s(q, d) ← row[d] / τ + s(q, d)
 *
 * before any fusion (Gao et al. 2021, "Complement Lexical Retrieval Model with Semantic
 * Residual Embeddings", arXiv 2004.13969, train the second model on the first one's residual).
 */
import { autocast, noGrad, tidy, type Tensor } from '../engine/index.js';
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import type { RetrievalSplit } from '../data/types.js';
import { padPairsToTensors, type CrossEncoderModel } from '../models/index.js';
import { evaluateRetrieval, evaluateScoredPairs, sampleQueries, type RetrievalScorer } from './evaluate.js';
import { topK } from './rank.js';
import type { EvalSplit } from './splits.js';

/** Scores (query, document) pairs with one joint encoding each. */
export interface PairScorer {
  /** Logits of `first[i]` with `second[i]`. */
  scorePairs(first: readonly string[], second: readonly string[]): Float32Array;
}

export class CrossEncoderScorer implements PairScorer {
  constructor(
    readonly model: CrossEncoderModel,
    readonly tokenizer: WordPieceTokenizer,
    readonly options: { maxLength: number; batchSize: number; precision: 'fp32' | 'bf16'; device: 'cpu' | 'cuda' },
  ) {}

  scorePairs(first: readonly string[], second: readonly string[]): Float32Array {
    const encoded = first.map((a, i) => this.tokenizer.encodePair(a, second[i]!, this.options.maxLength));
    // Sorted by length, so each batch pads little; written back in input order.
    const order = encoded.map((_, i) => i).sort((a, b) => encoded[a]!.ids.length - encoded[b]!.ids.length || a - b);
    const out = new Float32Array(first.length);
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      for (let start = 0; start < order.length; start += this.options.batchSize) {
        const rows = order.slice(start, start + this.options.batchSize);
        const logits = tidy(() =>
          noGrad(() => {
            const batch = padPairsToTensors(rows.map((r) => encoded[r]!), this.tokenizer.padId, this.options.device);
            const run = (): Tensor => this.model.score(batch).float();
            const scores = this.options.precision === 'bf16' ? autocast(run, { device: this.options.device, dtype: 'bfloat16' }) : run();
            return scores.toTypedArray<'float32'>() as Float32Array;
          }),
        );
        rows.forEach((r, j) => (out[r] = logits[j]!));
      }
    } finally {
      this.model.train(wasTraining);
    }
    return out;
  }
}

/** A first stage: the full score rows of a split's queries, computed once per split (it does not train). */
export type FirstStage = (split: RetrievalSplit) => RetrievalScorer;

/** Caches a first stage's rows per split object: re-ranking evaluates the same candidates at every evaluation. */
export function cachedFirstStage(stage: FirstStage): FirstStage {
  const cache = new WeakMap<RetrievalSplit, Float32Array>();
  return (split) => {
    let rows = cache.get(split);
    if (rows === undefined) {
      rows = stage(split).scoreRows(0, split.queries.length);
      cache.set(split, rows);
    }
    const all = rows;
    const n = split.corpus.length;
    return { scoreRows: (start, end) => all.slice(start * n, end * n) };
  };
}

/** Scores standardised to mean 0 and standard deviation 1 (all 0 when they are all equal). */
export function standardize(scores: ArrayLike<number>): Float64Array {
  const n = scores.length;
  let mean = 0;
  for (let i = 0; i < n; i++) mean += scores[i]! / n;
  let variance = 0;
  for (let i = 0; i < n; i++) variance += (scores[i]! - mean) ** 2 / n;
  const sd = Math.sqrt(variance);
  return Float64Array.from({ length: n }, (_, i) => (sd > 0 ? (scores[i]! - mean) / sd : 0));
}

/**
 * A scorer that remembers every pair it has scored, so one split's re-ranking and its fused
 * re-ranking encode each (query, document) pair once.
 */
export function memoizedPairScorer(scorer: PairScorer): PairScorer {
  const memo = new Map<string, number>();
  const key = (a: string, b: string): string => `${a}\u0000${b}`;
  return {
    scorePairs(first, second) {
      const missing = first.map((_, i) => i).filter((i) => !memo.has(key(first[i]!, second[i]!)));
      if (missing.length > 0) {
        const logits = scorer.scorePairs(missing.map((i) => first[i]!), missing.map((i) => second[i]!));
        missing.forEach((i, j) => memo.set(key(first[i]!, second[i]!), logits[j]!));
      }
      return Float32Array.from(first, (a, i) => memo.get(key(a, second[i]!))!);
    },
  };
}

/** How a candidate's first-stage score and cross-encoder logit combine (the header). */
export interface CandidateScoring {
  /** Order by w · z(first stage) + (1 − w) · z(cross-encoder); null = the cross-encoder's score alone. */
  fusionWeight?: number | null;
  /** The cross-encoder is a residual over the first stage: its score is row[d]/τ + logit; null = the logit. */
  residualTemperature?: number | null;
}

/**
 * The first stage's rows with each query's top `topK` re-scored by the cross-encoder (plus the
 * first stage's score/τ for a residual one), or, with `fusionWeight` w, by w · its standardised
 * first-stage score + (1 − w) · its standardised cross-encoder score (the header).
 */
export function rerankedScorer(split: RetrievalSplit, firstStage: RetrievalScorer, scorer: PairScorer, k: number, scoring: CandidateScoring = {}): RetrievalScorer {
  const fusionWeight = scoring.fusionWeight ?? null;
  const residualTemperature = scoring.residualTemperature ?? null;
  const n = split.corpus.length;
  return {
    scoreRows(start, end) {
      const rows = firstStage.scoreRows(start, end);
      const firstTexts: string[] = [];
      const secondTexts: string[] = [];
      const chosen: Int32Array[] = [];
      for (let q = start; q < end; q++) {
        const row = rows.subarray((q - start) * n, (q - start + 1) * n);
        const candidates = topK(row, Math.min(k, n));
        chosen.push(candidates);
        for (const d of candidates) {
          firstTexts.push(split.queries[q]!.text);
          secondTexts.push(split.corpus[d]!.text);
        }
      }
      const logits = scorer.scorePairs(firstTexts, secondTexts);
      let offset = 0;
      chosen.forEach((candidates, i) => {
        const row = rows.subarray(i * n, (i + 1) * n);
        let max = -Infinity;
        for (let d = 0; d < n; d++) if (row[d]! > max) max = row[d]!;
        let scores: ArrayLike<number> = logits.subarray(offset, offset + candidates.length);
        if (residualTemperature !== null) {
          const logit = scores;
          scores = Float64Array.from(candidates, (d, j) => row[d]! / residualTemperature + logit[j]!);
        }
        if (fusionWeight !== null) {
          const first = standardize(Array.from(candidates, (d) => row[d]!));
          const cross = standardize(scores);
          scores = first.map((f, j) => fusionWeight * f + (1 - fusionWeight) * cross[j]!);
        }
        let minScore = Infinity;
        for (let j = 0; j < candidates.length; j++) minScore = Math.min(minScore, scores[j]!);
        const base = max + 1 - minScore;
        candidates.forEach((d, j) => (row[d] = base + scores[j]!));
        offset += candidates.length;
      });
      return rows;
    },
  };
}

/** Each split's re-ranked queries under a cap, memoised so the first stage's cache sees one object per split. */
const cappedSplits = new WeakMap<RetrievalSplit, Map<string, RetrievalSplit>>();
function capQueries(split: RetrievalSplit, maxQueries: number | null, seed: number): RetrievalSplit {
  if (maxQueries === null || maxQueries >= split.queries.length) return split;
  const key = `${maxQueries}:${seed}`;
  let bySetting = cappedSplits.get(split);
  if (bySetting === undefined) cappedSplits.set(split, (bySetting = new Map()));
  let capped = bySetting.get(key);
  if (capped === undefined) bySetting.set(key, (capped = sampleQueries(split, maxQueries, seed)));
  return capped;
}

export interface RerankOptions {
  topK: number;
  /** Each split's `max_queries` sample (evaluation during training); else the full split. */
  sampled: boolean;
  /**
   * At most this many queries per split in every evaluation, the final one included: a seeded
   * sample, the same as an eval split's `max_queries` sample of that size. Re-ranking costs
   * topK joint encodings per query (15,463 JobBERT queries × 10 is 26 minutes on 2 cores).
   */
  maxQueries: number | null;
  seed: number;
  /** Also report the fused re-ranking with this first-stage weight (`<eval name>/fused/<metric>`); null = not. */
  fusionWeight: number | null;
  /** A residual cross-encoder's τ: it re-ranks by first stage/τ + its logit (the header); null = its logit alone. */
  residualTemperature: number | null;
}

/**
 * The re-ranking pipeline on every split (keys `<eval name>/<metric>`), and the first stage
 * alone on the same queries (`<eval name>/first_stage/<metric>`), so the gain from re-ranking
 * is measured on identical queries; with `fusionWeight`, the fused re-ranking too
 * (`<eval name>/fused/<metric>`), from the same cross-encoder scores.
 */
export function evaluateSplitsReranked(splits: readonly EvalSplit[], firstStage: FirstStage, scorer: PairScorer, options: RerankOptions): Record<string, number> {
  const out: Record<string, number> = {};
  for (const entry of splits) {
    const name = entry.spec.name;
    if (entry.kind === 'retrieval') {
      const split = capQueries(options.sampled ? entry.sampled : entry.split, options.maxQueries, options.seed);
      const first = firstStage(split);
      for (const [metric, value] of Object.entries(evaluateRetrieval(split, first, entry.spec.metrics))) out[`${name}/first_stage/${metric}`] = value;
      const memo = options.fusionWeight === null ? scorer : memoizedPairScorer(scorer);
      // The chunk size bounds how many pairs are scored at once: 64 queries × topK.
      const residualTemperature = options.residualTemperature;
      for (const [metric, value] of Object.entries(evaluateRetrieval(split, rerankedScorer(split, first, memo, options.topK, { residualTemperature }), entry.spec.metrics, 64))) out[`${name}/${metric}`] = value;
      if (options.fusionWeight !== null) {
        const fused = rerankedScorer(split, first, memo, options.topK, { fusionWeight: options.fusionWeight, residualTemperature });
        for (const [metric, value] of Object.entries(evaluateRetrieval(split, fused, entry.spec.metrics, 64))) out[`${name}/fused/${metric}`] = value;
      }
    } else {
      const predicted = scorer.scorePairs(entry.pairs.map((p) => p.a), entry.pairs.map((p) => p.b));
      for (const [metric, value] of Object.entries(evaluateScoredPairs(name, entry.pairs, predicted, entry.spec.metrics))) out[`${name}/${metric}`] = value;
    }
  }
  return out;
}

/**
 * Hybrid ranking: a dense candidate list and a lexical one fused into one ranking.
 *
 * Each part contributes its best `window` documents (./lexical.ts: `top` for the dense model,
 * `positiveTop` for a lexical ranker, which does not retrieve documents it scores 0). With
 * w ∈ [0, 1] the dense model's weight:
 *
 * Reciprocal rank fusion (Cormack, Clarke & Büttcher, "Reciprocal Rank Fusion outperforms
 * Condorcet and individual Rank Learning Methods", SIGIR 2009), weighted:
 *
 *     rrf(d) = w / (k + r_dense(d)) + (1 − w) / (k + r_lex(d))
 *
 * r = the 1-based rank of d in that part's list; a part that did not retrieve d adds 0. k = 60 is
 * the paper's value ("k = 60 was fixed during a pilot investigation and not altered"); w = 0.5
 * is plain, unweighted RRF (halved, which ranks the same). Ranks only: no score calibration.
 *
 * Weighted sum of normalised scores (the "linear combination" of Fox & Shaw, CombSUM, with
 * min–max normalisation as in Lee, "Analyses of multiple evidence combination", SIGIR 1997):
 *
 *     ŝ_p(d)  = (s_p(d) − min_p) / (max_p − min_p)       min, max over part p's list (ŝ = 1 when max = min)
 *     lin(d)  = w · ŝ_dense(d) + (1 − w) · ŝ_lex(d)
 *
 * a part that did not retrieve d contributes ŝ = 0 (d scored at or below that part's last
 * candidate). Normalising over the candidate lists, not the whole corpus, keeps serving and
 * evaluation identical when the dense list comes from an ANN index that never sees the corpus.
 *
 * The fused list holds every document either part retrieved, best first; ties go to the lower
 * corpus index (the evaluation tie rule, ./rank.ts). Documents neither part retrieved are not
 * in it: in evaluation they rank after it, in corpus order.
 */
import { ranksBefore } from './rank.js';
import type { Candidates, LexicalName } from './lexical.js';

export type FusionMethod = 'rrf' | 'weighted';
export const FUSION_METHODS = ['rrf', 'weighted'] as const satisfies readonly FusionMethod[];

export interface FusionOptions {
  readonly method: FusionMethod;
  /** The dense model's weight w ∈ [0, 1]; the lexical ranker gets 1 − w. */
  readonly weight: number;
  /** RRF's rank offset k (> 0). */
  readonly k: number;
}

export const RRF_DEFAULT_K = 60;

/** A split's (or a search index's) hybrid: which lexical ranker, how it is fused, and how many candidates each part gives. */
export interface HybridOptions extends FusionOptions {
  readonly lexical: LexicalName;
  readonly window: number;
}

/** Plain RRF (k = 60, equal weights) of the dense model and character TF-IDF, over each one's top 100. */
export const DEFAULT_HYBRID: HybridOptions = Object.freeze({ lexical: 'tfidf_char', method: 'rrf', weight: 0.5, k: RRF_DEFAULT_K, window: 100 });

/** One fused result: the document, its fused score, and where each part ranked it (0 = not retrieved). */
export interface FusedHit {
  readonly doc: number;
  readonly score: number;
  readonly denseRank: number;
  readonly denseScore: number | null;
  readonly lexicalRank: number;
  readonly lexicalScore: number | null;
}

export function checkFusionOptions(options: FusionOptions): void {
  if (!(options.weight >= 0 && options.weight <= 1)) throw new RangeError(`fusion weight must be in [0, 1], got ${options.weight}`);
  if (!(options.k > 0) || !Number.isFinite(options.k)) throw new RangeError(`rrf k must be a finite number > 0, got ${options.k}`);
}

/** Min–max normalised scores of one list (all 1 when the list is flat). */
function normalised(scores: Float32Array): Float64Array {
  let min = Infinity;
  let max = -Infinity;
  for (const s of scores) {
    if (s < min) min = s;
    if (s > max) max = s;
  }
  const range = max - min;
  return Float64Array.from(scores, (s) => (range > 0 ? (s - min) / range : 1));
}

/** The contribution of each entry of one part's list, in list order. */
function contributions(part: Candidates, options: Pick<FusionOptions, 'method' | 'k'>, weight: number): Float64Array {
  if (options.method === 'rrf') return Float64Array.from(part.docs, (_, i) => weight / (options.k + i + 1));
  const norm = normalised(part.scores);
  return norm.map((v) => weight * v);
}

/** One ranked list of a multi-part fusion and its weight (the weights need not sum to 1). */
export interface FusionPart {
  readonly candidates: Candidates;
  readonly weight: number;
}

/** One document of a multi-part fusion: its fused score, and its 1-based rank in each part (0 = not retrieved). */
export interface MultiFusedHit {
  readonly doc: number;
  readonly score: number;
  readonly ranks: readonly number[];
}

/**
 * Any number of ranked lists fused alike: Σ_p w_p · contribution_p(d), the contribution being
 * RRF's 1 / (k + r_p(d)) or the min–max normalised score (see the header). The two-part `fuse`
 * is this with weights w and 1 − w. Used where more than one lexical signal joins the dense
 * model (the skills pipeline: BM25, character TF-IDF and the taxonomy trie).
 */
export function fuseParts(parts: readonly FusionPart[], options: Pick<FusionOptions, 'method' | 'k'>): MultiFusedHit[] {
  checkFusionOptions({ ...options, weight: 0.5 });
  for (const part of parts) if (!(part.weight >= 0) || !Number.isFinite(part.weight)) throw new RangeError(`fusion part weight must be a finite number ≥ 0, got ${part.weight}`);
  const scores = new Map<number, number>();
  const ranks = new Map<number, number[]>();
  parts.forEach((part, p) => {
    const values = contributions(part.candidates, options, part.weight);
    part.candidates.docs.forEach((doc, i) => {
      let r = ranks.get(doc);
      if (r === undefined) {
        r = new Array<number>(parts.length).fill(0);
        ranks.set(doc, r);
      }
      if (r[p] !== 0) return; // a list names a document once; a repeat adds nothing
      r[p] = i + 1;
      scores.set(doc, (scores.get(doc) ?? 0) + values[i]!);
    });
  });
  const hits = [...scores].map(([doc, score]) => ({ doc, score, ranks: ranks.get(doc)! }));
  return hits.sort((a, b) => (ranksBefore(a.score, a.doc, b.score, b.doc) ? -1 : 1));
}

/** Fuses the two candidate lists (each best first) into one list, best first. */
export function fuse(dense: Candidates, lexical: Candidates, options: FusionOptions): FusedHit[] {
  checkFusionOptions(options);
  const fused = fuseParts(
    [
      { candidates: dense, weight: options.weight },
      { candidates: lexical, weight: 1 - options.weight },
    ],
    options,
  );
  return fused.map(({ doc, score, ranks: [d, l] }) => ({
    doc,
    score,
    denseRank: d!,
    denseScore: d === 0 ? null : dense.scores[d! - 1]!,
    lexicalRank: l!,
    lexicalScore: l === 0 ? null : lexical.scores[l! - 1]!,
  }));
}

/**
 * The fused ranking as a full score row for the evaluators (./evaluate.ts): fused documents get
 * descending scores in fused order; the rest −∞, so they rank after, in corpus order.
 */
export function fusedRow(hits: readonly FusedHit[], numDocs: number, out = new Float32Array(numDocs)): Float32Array {
  out.fill(-Infinity);
  // Ranks, not the fused scores themselves: float32 could merge two close fused scores into a tie
  // that the fused order had already broken.
  hits.forEach((hit, i) => (out[hit.doc] = hits.length - i));
  return out;
}

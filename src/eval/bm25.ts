/**
 * Okapi BM25 lexical baseline (Robertson & Zaragoza, "The Probabilistic Relevance Framework:
 * BM25 and Beyond", Foundations and Trends in IR 3(4), 2009, eq. 3.15 with the idf below):
 *
 *     score(q, d) = Σ_{t ∈ q} idf(t) · tf(t,d)·(k1 + 1) / ( tf(t,d) + k1·(1 − b + b·|d|/avgdl) )
 *     idf(t)      = ln( 1 + (N − n(t) + 0.5) / (n(t) + 0.5) )
 *
 * N = number of documents, n(t) = documents containing t, tf(t,d) = occurrences of t in d,
 * |d| = d's length in tokens, avgdl = mean |d|. Defaults k1 = 1.2, b = 0.75.
 *
 * The idf is Lucene's form (BM25Similarity, https://lucene.apache.org/core/9_0_0/core/org/apache/
 * lucene/search/similarities/BM25Similarity.html): the "1 +" keeps it positive, whereas the
 * classic RSJ idf ln((N − n + 0.5)/(n + 0.5)) turns negative for terms in over half the corpus
 * and would make matching such a term LOWER a document's score. We keep the classic (k1 + 1)
 * numerator factor that Lucene ≥ 8 drops; it scales every score by the same constant and
 * does not change rankings. Lengths are exact (Lucene stores them lossily in one byte).
 *
 * The sum runs over query TOKENS, so a term repeated in the query counts once per repeat (as a
 * Lucene BooleanQuery of per-token TermQuery clauses, and rank_bm25, do).
 *
 * Analyzer (`bm25Analyze`): Unicode NFKD, drop combining marks (\p{M}), lowercase, split on
 * runs of characters that are neither letters nor digits, drop empty tokens. So "Café-Crème,
 * 2x!" → ["cafe", "creme", "2x"]. An English stopword list (Lucene's EnglishAnalyzer default
 * set) can be switched on; it is OFF by default to keep the baseline transparent.
 *
 * Speed: an inverted index maps each term to its postings — document ids, each with its whole
 * precomputed contribution idf(t)·tf·(k1+1)/(…) (nothing in it depends on the query) — so
 * scoring a query is one addition per posting of its terms, not D × |vocabulary| work.
 */
import { scoreMatrix, scoreRow } from './score-rows.js';

/** Lucene's EnglishAnalyzer.ENGLISH_STOP_WORDS_SET (33 words). */
export const ENGLISH_STOPWORDS: ReadonlySet<string> = new Set([
  'a', 'an', 'and', 'are', 'as', 'at', 'be', 'but', 'by', 'for', 'if', 'in', 'into', 'is', 'it',
  'no', 'not', 'of', 'on', 'or', 'such', 'that', 'the', 'their', 'then', 'there', 'these',
  'they', 'this', 'to', 'was', 'will', 'with',
]);

const COMBINING_MARKS = /\p{M}+/gu;
const TOKEN_SEPARATORS = /[^\p{L}\p{N}]+/u;

export interface Bm25AnalyzeOptions {
  /** Drop stopwords: `true` = ENGLISH_STOPWORDS, or a custom set of (analyzed) words. Default off. */
  readonly stopwords?: boolean | ReadonlySet<string>;
}

function stopwordSet(option: Bm25AnalyzeOptions['stopwords']): ReadonlySet<string> | undefined {
  if (option === undefined || option === false) return undefined;
  return option === true ? ENGLISH_STOPWORDS : option;
}

/** The documented lexical analyzer (see header). */
export function bm25Analyze(text: string, options: Bm25AnalyzeOptions = {}): string[] {
  // NFKD first splits "é" into "e" + U+0301 and folds compatibility forms ("ﬁ" → "fi", "²" → "2");
  // marks are stripped before lowercasing so that case mapping sees bare letters.
  const folded = text.normalize('NFKD').replace(COMBINING_MARKS, '').toLowerCase();
  const tokens = folded.split(TOKEN_SEPARATORS).filter((token) => token.length > 0);
  const stopwords = stopwordSet(options.stopwords);
  return stopwords === undefined ? tokens : tokens.filter((token) => !stopwords.has(token));
}

export interface Bm25Options extends Bm25AnalyzeOptions {
  /** Term-frequency saturation; ≥ 0. Default 1.2. */
  readonly k1?: number;
  /** Length normalisation strength in [0, 1]. Default 0.75. */
  readonly b?: number;
}

export const BM25_DEFAULT_K1 = 1.2;
export const BM25_DEFAULT_B = 0.75;

/** One term's postings: parallel arrays of document ids and their full BM25 contribution. */
interface Postings {
  readonly docIds: Int32Array;
  /** idf(t) · tf·(k1+1) / (tf + k1·(1 − b + b·|d|/avgdl)), in float64. */
  readonly weights: Float64Array;
}

export class Bm25Index {
  readonly numDocs: number;
  readonly k1: number;
  readonly b: number;
  /** Mean document length in tokens (0 for an empty corpus). */
  readonly averageDocLength: number;
  private readonly stopwords: Bm25AnalyzeOptions['stopwords'];
  private readonly postings = new Map<string, Postings>();
  /** Reused accumulator (float64 so sums are not rounded per term); all zero between calls. */
  private readonly accumulator: Float64Array;
  /** scoreSparse's buffers: the documents touched, and their sums. */
  private readonly touched: Int32Array;
  private readonly touchedScores: Float64Array;

  constructor(docs: readonly string[], options: Bm25Options = {}) {
    const k1 = options.k1 ?? BM25_DEFAULT_K1;
    const b = options.b ?? BM25_DEFAULT_B;
    if (!Number.isFinite(k1) || k1 < 0) throw new RangeError(`Bm25Index: k1 must be a finite number ≥ 0, got ${k1}`);
    if (!Number.isFinite(b) || b < 0 || b > 1) throw new RangeError(`Bm25Index: b must be in [0, 1], got ${b}`);
    this.k1 = k1;
    this.b = b;
    this.stopwords = options.stopwords;
    this.numDocs = docs.length;
    this.accumulator = new Float64Array(docs.length);
    this.touched = new Int32Array(docs.length);
    this.touchedScores = new Float64Array(docs.length);

    // Pass 1: term frequencies per document, gathered per term (postings in doc-id order).
    const docLengths = new Float64Array(docs.length);
    const rawPostings = new Map<string, { docIds: number[]; termFrequencies: number[] }>();
    let totalLength = 0;
    docs.forEach((doc, docId) => {
      const tokens = bm25Analyze(doc, { stopwords: this.stopwords });
      docLengths[docId] = tokens.length;
      totalLength += tokens.length;
      const counts = new Map<string, number>();
      for (const token of tokens) counts.set(token, (counts.get(token) ?? 0) + 1);
      for (const [term, count] of counts) {
        let entry = rawPostings.get(term);
        if (entry === undefined) {
          entry = { docIds: [], termFrequencies: [] };
          rawPostings.set(term, entry);
        }
        entry.docIds.push(docId);
        entry.termFrequencies.push(count);
      }
    });
    this.averageDocLength = docs.length === 0 ? 0 : totalLength / docs.length;

    // Pass 2: fold everything query-independent into one weight per posting. A term only has
    // postings in documents with ≥1 token, so avgdl > 0 whenever this divides by it.
    for (const [term, { docIds, termFrequencies }] of rawPostings) {
      const idf = this.idfForDocumentFrequency(docIds.length);
      const weights = new Float64Array(docIds.length);
      for (let p = 0; p < docIds.length; p++) {
        const tf = termFrequencies[p] as number;
        const lengthRatio = (docLengths[docIds[p] as number] as number) / this.averageDocLength;
        weights[p] = (idf * tf * (k1 + 1)) / (tf + k1 * (1 - b + b * lengthRatio));
      }
      this.postings.set(term, { docIds: Int32Array.from(docIds), weights });
    }
  }

  /** Number of distinct indexed terms. */
  get vocabularySize(): number {
    return this.postings.size;
  }

  /** n(t): documents containing the (already analyzed) term. */
  documentFrequency(term: string): number {
    return this.postings.get(term)?.docIds.length ?? 0;
  }

  /** idf(t) = ln(1 + (N − n + 0.5)/(n + 0.5)) for an (already analyzed) term. */
  idf(term: string): number {
    return this.idfForDocumentFrequency(this.documentFrequency(term));
  }

  private idfForDocumentFrequency(documentFrequency: number): number {
    return Math.log(1 + (this.numDocs - documentFrequency + 0.5) / (documentFrequency + 0.5));
  }

  /** BM25 score of every document for `query` (0 for documents sharing no term with it). */
  scores(query: string): Float32Array {
    return scoreRow(this, query);
  }

  /** Row-major [queries.length × numDocs] score matrix. */
  scoreMatrix(queries: readonly string[]): Float32Array {
    return scoreMatrix(this, queries);
  }

  /** Writes the score of every document for `query` into out[offset, offset + numDocs). */
  scoreInto(query: string, out: Float32Array, offset: number): void {
    const accumulator = this.accumulator;
    for (const term of bm25Analyze(query, { stopwords: this.stopwords })) {
      const termPostings = this.postings.get(term);
      if (termPostings === undefined) continue;
      const { docIds, weights } = termPostings;
      for (let p = 0; p < docIds.length; p++) accumulator[docIds[p] as number]! += weights[p] as number;
    }
    out.set(accumulator, offset);
    accumulator.fill(0);
  }

  /**
   * The documents sharing a term with `query` and their scores: the same sums as `scoreInto`, in
   * the order first touched. Every posting weight is > 0 (idf > 0 and tf ≥ 1), so a zero
   * accumulator slot means "not touched yet".
   */
  scoreSparse(query: string): { count: number; ids: Int32Array; scores: Float64Array } {
    const accumulator = this.accumulator;
    const touched = this.touched;
    let count = 0;
    for (const term of bm25Analyze(query, { stopwords: this.stopwords })) {
      const termPostings = this.postings.get(term);
      if (termPostings === undefined) continue;
      const { docIds, weights } = termPostings;
      for (let p = 0; p < docIds.length; p++) {
        const doc = docIds[p] as number;
        if (accumulator[doc] === 0) touched[count++] = doc;
        accumulator[doc]! += weights[p] as number;
      }
    }
    const scores = this.touchedScores;
    for (let i = 0; i < count; i++) {
      const doc = touched[i] as number;
      scores[i] = accumulator[doc] as number;
      accumulator[doc] = 0;
    }
    return { count, ids: touched, scores };
  }
}

/**
 * Character n-gram TF-IDF lexical baseline: a reimplementation of scikit-learn's
 *
 *     TfidfVectorizer(analyzer='char_wb', ngram_range=(3, 5), sublinear_tf=True)
 *
 * (all else default: lowercase=True, strip_accents=None, norm='l2', use_idf=True,
 * smooth_idf=True, min_df=1, max_df=1.0, dtype=float64) fitted on the corpus, scoring a query
 * against every document by cosine similarity:
 *
 *     w(t, x)     = (1 + ln tf(t, x)) · idf(t)                 for tf(t, x) ≥ 1, else 0
 *     idf(t)      = ln( (1 + N) / (1 + df(t)) ) + 1
 *     v(x)        = w(·, x) / ‖w(·, x)‖₂                        (a zero vector stays zero)
 *     score(q, d) = v(q) · v(d)
 *
 * N = number of documents, df(t) = documents containing n-gram t, tf(t, x) = occurrences of t in
 * text x. The query vector uses the FITTED vocabulary and idf: n-grams that occur in no document
 * are dropped before the query is L2-normalised (what `vectorizer.transform(queries)` does), so
 * they do not dilute the score; a query sharing nothing with the corpus scores 0 everywhere.
 *
 * Sources: scikit-learn 1.2 `sklearn/feature_extraction/text.py` — `_char_wb_ngrams`,
 * `_white_spaces`, `TfidfTransformer.fit` (the smoothed idf) and `.transform` (`np.log(X.data)
 * + 1`, then `normalize(norm='l2')`); user guide "Tf–idf term weighting",
 * https://scikit-learn.org/1.2/modules/feature_extraction.html#tfidf-term-weighting.
 *
 * Analyzer (`charWbNgrams`), following `_char_wb_ngrams` exactly:
 *   - lowercase (`str.lower()`; JS `toLowerCase()` applies the same full Unicode mapping,
 *     including "İ" → "i̇" and the final-sigma rule);
 *   - split into words on runs of PYTHON's whitespace (`str.split()`, see PYTHON_WHITESPACE_RUNS:
 *     it differs from JS `\s`), dropping empty words;
 *   - pad each word with one space on each side and emit, for n = minN … maxN, every window of
 *     n CODE POINTS (Python indexes code points; JS strings index UTF-16 units, so "𝄞" must be
 *     one character here, not two);
 *   - a padded word of at most n code points is emitted once, whole, and the larger n are
 *     skipped (sklearn's `if offset == 0: break`), so "ab" gives " ab", "ab ", " ab " for 3–5.
 * So n-grams never span two words, and word edges are marked by the padding space.
 *
 * Speed: an inverted index maps each n-gram to its postings — document ids with the document's
 * final normalised weight v_t(d) (nothing in it depends on the query) — so scoring a query is one
 * multiply-add per posting of its n-grams into a reused float64 accumulator, then one scale by
 * 1/‖w(·, q)‖ per document, rather than D × |vocabulary| work.
 */
import { scoreMatrix, scoreRow } from './score-rows.js';

/** sklearn's `ngram_range=(3, 5)` for this baseline. */
export const TFIDF_CHAR_DEFAULT_NGRAM_RANGE: readonly [number, number] = [3, 5];

/**
 * Runs of the characters for which Python's `str.isspace()` is true (CPython 3.11, Unicode 14),
 * i.e. what `str.split()` and sklearn's `re.compile(r"\s\s+")` split on. JS `\s` is a different
 * set: it lacks U+001C–U+001F (file/group/record/unit separators) and U+0085 (NEL), which Python
 * splits on, and it includes U+FEFF (BOM), which Python keeps inside words.
 */
const PYTHON_WHITESPACE_RUNS = /[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Any UTF-16 surrogate: the word has characters outside the BMP (or lone surrogates). */
const SURROGATE = /[\uD800-\uDFFF]/;

function checkNgramRange(minN: number, maxN: number, where: string): void {
  if (!Number.isInteger(minN) || !Number.isInteger(maxN) || minN < 1 || minN > maxN) {
    throw new RangeError(`${where}: ngramRange must be two integers with 1 ≤ min ≤ max, got [${minN}, ${maxN}]`);
  }
}

/**
 * UTF-16 offset of each code point of `text`, plus `text.length` at the end; undefined when every
 * code point is one unit (the common case), where code point i simply starts at offset i.
 */
function codePointOffsets(text: string): number[] | undefined {
  if (!SURROGATE.test(text)) return undefined;
  const offsets: number[] = [];
  for (let unit = 0; unit < text.length; ) {
    offsets.push(unit);
    // codePointAt reads a whole surrogate pair (> 0xFFFF); a lone surrogate counts as one code
    // point, as it does in Python (JSON carries it across as "\udXXX").
    unit += (text.codePointAt(unit) as number) > 0xffff ? 2 : 1;
  }
  offsets.push(text.length);
  return offsets;
}

/**
 * Calls `visit` with every char_wb n-gram of `text`, in sklearn's order. A visitor instead of an
 * array so that the index can count n-grams without building an intermediate list.
 */
function forEachCharWbNgram(text: string, minN: number, maxN: number, visit: (ngram: string) => void): void {
  for (const word of text.toLowerCase().split(PYTHON_WHITESPACE_RUNS)) {
    if (word.length === 0) continue; // leading/trailing whitespace gives empty pieces; str.split() has none
    const padded = ` ${word} `;
    const offsets = codePointOffsets(padded);
    const paddedLength = offsets === undefined ? padded.length : offsets.length - 1;
    for (let n = minN; n <= maxN; n++) {
      if (paddedLength <= n) {
        // sklearn emits w[0:n] (the whole padded word), finds no further window (offset stays 0)
        // and breaks out of the n loop: a short word counts once, not once per n.
        visit(padded);
        break;
      }
      for (let start = 0; start + n <= paddedLength; start++) {
        visit(
          offsets === undefined
            ? padded.slice(start, start + n)
            : padded.slice(offsets[start] as number, offsets[start + n] as number),
        );
      }
    }
  }
}

/** sklearn's char_wb analyzer: lowercase, split on whitespace, pad each word with one space on each side, n-grams of code points for n in [minN, maxN]; a padded word shorter than n yields itself once and stops (sklearn's `if offset == 0: break`). */
export function charWbNgrams(
  text: string,
  minN: number = TFIDF_CHAR_DEFAULT_NGRAM_RANGE[0],
  maxN: number = TFIDF_CHAR_DEFAULT_NGRAM_RANGE[1],
): string[] {
  checkNgramRange(minN, maxN, 'charWbNgrams');
  const ngrams: string[] = [];
  forEachCharWbNgram(text, minN, maxN, (ngram) => ngrams.push(ngram));
  return ngrams;
}

export interface CharTfidfOptions {
  /** [min, max] n-gram lengths in code points, both inclusive (sklearn's `ngram_range`). Default [3, 5]. */
  readonly ngramRange?: readonly [number, number];
}

/** One n-gram's idf and postings: parallel arrays of document ids and normalised weights. */
interface NgramPostings {
  readonly idf: number;
  readonly docIds: Int32Array;
  /** v_t(d) = (1 + ln tf)·idf / ‖w(·, d)‖₂, computed in float64 and stored in float32 (half the memory traffic of scoring). */
  readonly weights: Float32Array;
}

export class CharTfidfIndex {
  readonly numDocs: number;
  readonly ngramRange: readonly [number, number];
  private readonly postings = new Map<string, NgramPostings>();
  /** Reused accumulator (float64 so the dot product is not rounded per n-gram). */
  private readonly accumulator: Float64Array;
  /** Reused n-gram → count map for the query being scored. */
  private readonly queryCounts = new Map<string, number>();

  constructor(docs: readonly string[], options: CharTfidfOptions = {}) {
    const range = options.ngramRange ?? TFIDF_CHAR_DEFAULT_NGRAM_RANGE;
    const [minN, maxN] = range;
    if (range.length !== 2) {
      throw new RangeError(`CharTfidfIndex: ngramRange must be [min, max], got [${range.join(', ')}]`);
    }
    checkNgramRange(minN, maxN, 'CharTfidfIndex');
    this.ngramRange = Object.freeze([minN, maxN] as const);
    this.numDocs = docs.length;
    this.accumulator = new Float64Array(docs.length);

    // Pass 1: n-gram counts per document, gathered per n-gram (postings in doc-id order).
    const rawPostings = new Map<string, { docIds: number[]; counts: number[] }>();
    const docCounts = new Map<string, number>();
    docs.forEach((doc, docId) => {
      docCounts.clear();
      forEachCharWbNgram(doc, minN, maxN, (ngram) => docCounts.set(ngram, (docCounts.get(ngram) ?? 0) + 1));
      for (const [ngram, count] of docCounts) {
        let entry = rawPostings.get(ngram);
        if (entry === undefined) {
          entry = { docIds: [], counts: [] };
          rawPostings.set(ngram, entry);
        }
        entry.docIds.push(docId);
        entry.counts.push(count);
      }
    });

    // Pass 2: unnormalised weights (1 + ln tf)·idf, and each document's squared L2 norm.
    const squaredNorms = new Float64Array(docs.length);
    const unnormalised: { ngram: string; idf: number; docIds: Int32Array; weights: Float64Array }[] = [];
    for (const [ngram, { docIds, counts }] of rawPostings) {
      const idf = this.idfForDocumentFrequency(docIds.length);
      const weights = new Float64Array(docIds.length);
      for (let p = 0; p < docIds.length; p++) {
        const weight = (1 + Math.log(counts[p] as number)) * idf;
        weights[p] = weight;
        squaredNorms[docIds[p] as number]! += weight * weight;
      }
      unnormalised.push({ ngram, idf, docIds: Int32Array.from(docIds), weights });
    }
    rawPostings.clear();

    // Pass 3: L2-normalise in place. A document with postings has a norm > 0 (every weight is
    // ≥ idf ≥ 1), so this never divides by zero; empty documents simply have no postings.
    const norms = squaredNorms.map(Math.sqrt);
    for (const { ngram, idf, docIds, weights } of unnormalised) {
      // Divide rather than multiply by a reciprocal: it is what sklearn's normalize() does.
      for (let p = 0; p < docIds.length; p++) weights[p]! /= norms[docIds[p] as number] as number;
      this.postings.set(ngram, { idf, docIds, weights: Float32Array.from(weights) });
    }
  }

  /** Number of distinct n-grams in the fitted corpus (sklearn's `len(vocabulary_)`). */
  get vocabularySize(): number {
    return this.postings.size;
  }

  /** ln((1 + N) / (1 + df)) + 1 for an n-gram of the fitted vocabulary, undefined otherwise. */
  idf(ngram: string): number | undefined {
    return this.postings.get(ngram)?.idf;
  }

  private idfForDocumentFrequency(documentFrequency: number): number {
    // Same operation order as sklearn: np.log(n_samples / df) + 1 with both smoothed by +1.
    return Math.log((1 + this.numDocs) / (1 + documentFrequency)) + 1;
  }

  /** Cosine similarity of `query` with every document (0 for documents sharing no n-gram). */
  scores(query: string): Float32Array {
    return scoreRow(this, query);
  }

  /** Row-major [queries.length × numDocs] score matrix. */
  scoreMatrix(queries: readonly string[]): Float32Array {
    return scoreMatrix(this, queries);
  }

  /** Writes the `numDocs` scores of `query` to out[offset], …, out[offset + numDocs − 1]. */
  scoreInto(query: string, out: Float32Array, offset: number): void {
    const numDocs = this.numDocs;
    if (!Number.isInteger(offset) || offset < 0 || offset + numDocs > out.length) {
      // A typed array silently ignores out-of-range writes; fail loudly instead.
      throw new RangeError(`CharTfidfIndex.scoreInto: offset ${offset} + ${numDocs} scores does not fit in an array of ${out.length}`);
    }
    const counts = this.queryCounts;
    counts.clear();
    const [minN, maxN] = this.ngramRange;
    forEachCharWbNgram(query, minN, maxN, (ngram) => counts.set(ngram, (counts.get(ngram) ?? 0) + 1));

    // Accumulate with the query's UNnormalised weights and divide once per document at the end:
    // the query norm is only known after the out-of-vocabulary n-grams have been dropped, and
    // this saves a second pass over the query's n-grams.
    const accumulator = this.accumulator;
    accumulator.fill(0);
    let querySquaredNorm = 0;
    for (const [ngram, count] of counts) {
      const ngramPostings = this.postings.get(ngram);
      if (ngramPostings === undefined) continue; // not in the fitted vocabulary: transform() drops it
      const queryWeight = (1 + Math.log(count)) * ngramPostings.idf;
      querySquaredNorm += queryWeight * queryWeight;
      const { docIds, weights } = ngramPostings;
      for (let p = 0; p < docIds.length; p++) accumulator[docIds[p] as number]! += queryWeight * (weights[p] as number);
    }
    if (querySquaredNorm === 0) {
      out.fill(0, offset, offset + numDocs); // sklearn leaves an all-zero query vector at zero
      return;
    }
    const queryNorm = Math.sqrt(querySquaredNorm);
    for (let d = 0; d < numDocs; d++) out[offset + d] = (accumulator[d] as number) / queryNorm;
  }
}

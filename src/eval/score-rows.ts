/**
 * Whole score rows from a ranker that writes one query's scores into a buffer: the shape shared
 * by BM25 (./bm25.ts), character TF-IDF (./tfidf-char.ts) and the label-aware ranker over both
 * (./lexical.ts), and what the evaluators read (`RetrievalScorer.scoreRows`).
 */

/** A ranker over a fixed corpus that writes the score of each of its `numDocs` documents. */
export interface RowScorer {
  readonly numDocs: number;
  scoreInto(query: string, out: Float32Array, offset: number): void;
  /**
   * Optional: only the documents with a positive score, with the float64 sums `scoreInto` rounds
   * into its row, for a ranker whose scores are ≥ 0 and positive exactly where a query term
   * matches. Over ~100k short labels, the passes over every label and document cost more than
   * the postings themselves. The arrays are the scorer's own buffers, valid until its next call.
   */
  scoreSparse?(query: string): { count: number; ids: Int32Array; scores: Float64Array };
}

/** The score of every document for `query`. */
export function scoreRow(scorer: RowScorer, query: string): Float32Array {
  const out = new Float32Array(scorer.numDocs);
  scorer.scoreInto(query, out, 0);
  return out;
}

/** Row-major [queries.length × numDocs] score matrix. */
export function scoreMatrix(scorer: RowScorer, queries: readonly string[]): Float32Array {
  const out = new Float32Array(queries.length * scorer.numDocs);
  queries.forEach((query, row) => scorer.scoreInto(query, out, row * scorer.numDocs));
  return out;
}

/**
 * Whole score rows from a ranker that writes one query's scores into a buffer: the shape shared
 * by BM25 (./bm25.ts), character TF-IDF (./tfidf-char.ts) and the label-aware ranker over both
 * (./lexical.ts), and what the evaluators read (`RetrievalScorer.scoreRows`).
 */

/** A ranker over a fixed corpus that writes the score of each of its `numDocs` documents. */
export interface RowScorer {
  readonly numDocs: number;
  scoreInto(query: string, out: Float32Array, offset: number): void;
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

/**
 * Input checks shared by the retrieval metrics (recall, hit, mrr, ndcg, rp).
 *
 * Their input is, per query, the 1-based ranks of that query's relevant documents (see
 * ../rank.ts). A query with no relevant document has no defined recall/nDCG/RP (0/0), and
 * silently scoring it 0 or dropping it would shift the mean, so it is an error that names the
 * query. Ranks must be positive integers, each at most once per query (two relevant documents
 * cannot share a rank under the tie rule).
 */

/** Per query, the 1-based ranks of its relevant documents. */
export type RelevantRanks = readonly (readonly number[])[];

/** Throws unless `k` is a positive integer cutoff. */
export function checkCutoff(metric: string, k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`${metric}: cutoff k must be a positive integer, got ${k}`);
}

/** Throws unless every query has ≥1 relevant document with valid, distinct ranks. */
export function checkRanks(metric: string, ranks: RelevantRanks): void {
  if (ranks.length === 0) throw new Error(`${metric}: no queries to average over`);
  ranks.forEach((queryRanks, queryIndex) => {
    if (queryRanks.length === 0) {
      throw new Error(`${metric}: query ${queryIndex} has no relevant documents (the metric is undefined for it)`);
    }
    const seen = new Set<number>();
    for (const rank of queryRanks) {
      if (!Number.isInteger(rank) || rank < 1) {
        throw new RangeError(`${metric}: query ${queryIndex} has rank ${rank}; ranks are 1-based integers`);
      }
      if (seen.has(rank)) throw new Error(`${metric}: query ${queryIndex} lists rank ${rank} twice`);
      seen.add(rank);
    }
  });
}

/** Smallest rank of a (validated, non-empty) query. */
export function bestRank(queryRanks: readonly number[]): number {
  let best = Infinity;
  for (const rank of queryRanks) if (rank < best) best = rank;
  return best;
}

/** Mean of per-query values, summed in float64. */
export function meanOver(ranks: RelevantRanks, perQuery: (queryRanks: readonly number[]) => number): number {
  let total = 0;
  for (const queryRanks of ranks) total += perQuery(queryRanks);
  return total / ranks.length;
}

/**
 * MRR — mean reciprocal rank of the FIRST relevant document:
 *
 *     MRR    = (1/N) Σ_i 1 / min(ranks_i)
 *     MRR@k  = (1/N) Σ_i [ min(ranks_i) ≤ k ] / min(ranks_i)     (0 when nothing in the top k)
 *
 * Without a cutoff the whole ranking counts (every query contributes > 0).
 *
 * Source: Voorhees, "The TREC-8 Question Answering Track Report" (1999); Craswell, "Mean
 * Reciprocal Rank", Encyclopedia of Database Systems (2009). MRR@k matches
 * sentence-transformers InformationRetrievalEvaluator `mrr@k`.
 */
import { bestRank, checkCutoff, checkRanks, meanOver, type RelevantRanks } from './validate.js';

/** MRR, or MRR@k when `k` is given. */
export function meanReciprocalRank(ranks: RelevantRanks, k?: number): number {
  const name = k === undefined ? 'mrr' : 'mrr@k';
  if (k !== undefined) checkCutoff(name, k);
  checkRanks(name, ranks);
  const cutoff = k ?? Infinity;
  return meanOver(ranks, (queryRanks) => {
    const first = bestRank(queryRanks);
    return first <= cutoff ? 1 / first : 0;
  });
}

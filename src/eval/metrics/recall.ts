/**
 * recall@k — fraction of a query's relevant documents retrieved in the top k, averaged over
 * queries (macro average):
 *
 *     recall@k = (1/N) Σ_i |{ r ∈ ranks_i : r ≤ k }| / R_i
 *
 * where ranks_i are the 1-based ranks of query i's R_i relevant documents (../rank.ts, ties
 * broken by lower corpus index). Note the denominator is R_i even when R_i > k, so recall@k can
 * stay below 1 for a perfect ranking; rp@k (rprecision.ts) is the variant that caps it at k.
 *
 * Source: Manning, Raghavan & Schütze, "Introduction to Information Retrieval" (2008), §8.3,
 * https://nlp.stanford.edu/IR-book/html/htmledition/evaluation-of-ranked-retrieval-results-1.html
 * (same as BEIR / pytrec_eval `recall_k`).
 */
import { checkCutoff, checkRanks, meanOver, type RelevantRanks } from './validate.js';

export function recallAtK(ranks: RelevantRanks, k: number): number {
  checkCutoff('recall@k', k);
  checkRanks('recall@k', ranks);
  return meanOver(ranks, (queryRanks) => {
    let found = 0;
    for (const rank of queryRanks) if (rank <= k) found++;
    return found / queryRanks.length;
  });
}

/**
 * nDCG@k with BINARY relevance (every listed relevant document has gain 1, all others 0):
 *
 *     DCG@k_i  = Σ_{r ∈ ranks_i, r ≤ k} 1 / log2(r + 1)
 *     IDCG@k_i = Σ_{j=1}^{min(R_i, k)}  1 / log2(j + 1)      (all R_i relevant ranked first)
 *     nDCG@k   = (1/N) Σ_i DCG@k_i / IDCG@k_i                  (default k = 10)
 *
 * Graded relevance is deliberately not supported: the ranks input carries no grades, and with
 * binary gains the exponential (2^rel − 1) and linear (rel) gain forms coincide, so there is no
 * ambiguity about which variant is meant. Ranks come from ../rank.ts (ties broken by lower corpus
 * index), so with tied scores this differs from sklearn.metrics.ndcg_score, which averages the
 * gain over a tied group; on tie-free scores the two agree.
 *
 * Source: Järvelin & Kekäläinen, "Cumulated gain-based evaluation of IR techniques", ACM TOIS
 * 20(4), 2002; sklearn.metrics.ndcg_score,
 * https://scikit-learn.org/stable/modules/generated/sklearn.metrics.ndcg_score.html
 */
import { checkCutoff, checkRanks, meanOver, type RelevantRanks } from './validate.js';

export const DEFAULT_NDCG_CUTOFF = 10;

export function ndcgAtK(ranks: RelevantRanks, k: number = DEFAULT_NDCG_CUTOFF): number {
  checkCutoff('ndcg@k', k);
  checkRanks('ndcg@k', ranks);
  return meanOver(ranks, (queryRanks) => {
    let dcg = 0;
    for (const rank of queryRanks) if (rank <= k) dcg += 1 / Math.log2(rank + 1);
    let idcg = 0;
    const ideal = Math.min(queryRanks.length, k);
    for (let position = 1; position <= ideal; position++) idcg += 1 / Math.log2(position + 1);
    return dcg / idcg;
  });
}

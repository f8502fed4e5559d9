/**
 * RP@K — R-Precision at K, as used for extreme multi-label skill extraction by Decorte et al.,
 * "Extreme Multi-Label Skill Extraction Training using Large Language Models" (2023),
 * arXiv:2307.10778, https://arxiv.org/abs/2307.10778 :
 *
 *     RP@K = (1/N) Σ_i ( Σ_{k=1}^{K} rel(i, k) ) / min(K, R_i)
 *
 * rel(i, k) = 1 when the document at rank k is relevant to query i, and R_i = number of relevant
 * documents of query i. Unlike precision@K it does not punish queries with fewer than K
 * relevant documents, and unlike recall@K it does not punish queries with more than K: a
 * perfect ranking scores 1 for every query. Σ_{k≤K} rel(i,k) is the count of ranks_i that are
 * ≤ K (ranks from ../rank.ts, ties broken by lower corpus index).
 */
import { checkCutoff, checkRanks, meanOver, type RelevantRanks } from './validate.js';

export function rPrecisionAtK(ranks: RelevantRanks, k: number): number {
  checkCutoff('rp@k', k);
  checkRanks('rp@k', ranks);
  return meanOver(ranks, (queryRanks) => {
    let found = 0;
    for (const rank of queryRanks) if (rank <= k) found++;
    return found / Math.min(k, queryRanks.length);
  });
}

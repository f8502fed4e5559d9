/**
 * hit@k (a.k.a. success@k, top-k accuracy) — 1 if at least one relevant document is ranked in
 * the top k, else 0, averaged over queries:
 *
 *     hit@k = (1/N) Σ_i [ min(ranks_i) ≤ k ]
 *
 * With one relevant document per query it equals recall@k.
 *
 * Source: "success@k" in TREC-style evaluation (e.g. Craswell & Hawking, TREC-2004 Web Track
 * overview); identical to sentence-transformers InformationRetrievalEvaluator `accuracy@k`,
 * https://sbert.net/docs/package_reference/sentence_transformer/evaluation.html
 */
import { bestRank, checkCutoff, checkRanks, meanOver, type RelevantRanks } from './validate.js';

export function hitAtK(ranks: RelevantRanks, k: number): number {
  checkCutoff('hit@k', k);
  checkRanks('hit@k', ranks);
  return meanOver(ranks, (queryRanks) => (bestRank(queryRanks) <= k ? 1 : 0));
}

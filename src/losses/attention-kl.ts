/**
 * `attention_kl`: the student's self-attention distributions match the teacher's, layer pair by
 * layer pair, over real query tokens (MiniLM's self-attention distribution transfer).
 *
 *   ā_k      = (1/heads) Σ_h a_{k,h}                              [N, L, L], per model
 *   KL_k,nq  = Σ_j ā^t_{k,nqj} (log max(ā^t_{k,nqj}, ε) − log max(ā^s_{k,nqj}, ε))
 *   L        = (1/K) Σ_k (1/T) Σ_{(n,q): mask_nq = 1} KL_k,nq
 *
 * over the K mapped pairs (pair k: the student's attention probabilities [N, Hs_heads, L, L] and
 * the teacher's [N, Ht_heads, L, L], rows summing to 1 over the keys j), T = the number of real
 * query tokens. Head counts may differ (a 2-head student under an 8-head teacher), so each
 * model's heads are averaged first. ε = 1e-12 keeps the logs finite where a weight is 0 (a padded
 * key carries ~0 probability in both models, and 0 · log ε = 0). Padded query rows add nothing
 * and get no gradient. The teacher's maps are constants.
 *
 * With `average_heads: false` the head counts must be equal, and the KL is taken per head and
 * averaged over heads: L = (1/K) Σ_k (1/(T · H)) Σ_{(n,q) real} Σ_h KL_k,nhq.
 *
 * Inputs (`layers`, a `LayerDistillBatch`; the hidden states are not read):
 *
 *   | field             | shape                 | meaning                                  |
 *   |-------------------|-----------------------|------------------------------------------|
 *   | studentAttentions | K × [N, heads_s, L, L] | the student's attention probabilities (differentiated) |
 *   | teacherAttentions | K × [N, heads_t, L, L] | the teacher's, same tokens (constants)  |
 *   | mask              | [N, L]                | 1 = token, 0 = padding (query positions kept) |
 *
 * Relations: `hidden_mse` distils the hidden states of the same layer pairs.
 *
 * Sources: W. Wang et al., "MiniLM: Deep Self-Attention Distillation for Task-Agnostic
 * Compression of Pre-Trained Transformers", NeurIPS 2020, arXiv:2002.10957 (KL of the
 * self-attention distributions); X. Jiao et al., "TinyBERT", arXiv:1909.10351 (attention-based
 * distillation through a layer map).
 *
 * @example
 * const loss = createLoss({ name: 'attention_kl' });
 * const value = tidy(() => loss.forward(layers)); // K pairs of [N, 2, L, L] ↔ [N, 8, L, L], mask [N, L]
 */
import { z } from 'zod';

import { isFloatingDType } from '../engine/dtype.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, computeDType } from './batch.js';
import { constant, tokenMask } from './distill.js';
import { LayerLoss, type LayerDistillBatch, type LossFactoryOptions } from './types.js';

/** Floor inside the logs: a zero attention weight (a padded key) gives a finite log. */
export const ATTENTION_KL_EPS = 1e-12;

export const attentionKlOptionsSchema = z
  .object({
    average_heads: z
      .boolean()
      .default(true)
      .describe("Average each model's heads before the KL (head counts may differ); false: KL per head, averaged over heads (head counts must be equal)."),
  })
  .strict();

export type AttentionKlOptions = z.output<typeof attentionKlOptionsSchema>;

export class AttentionKlLoss extends LayerLoss {
  static readonly lossName = 'attention_kl';
  static readonly citation =
    'Wang et al. MiniLM: Deep Self-Attention Distillation for Task-Agnostic Compression of Pre-Trained Transformers. NeurIPS 2020, arXiv:2002.10957; layer map: Jiao et al. TinyBERT, arXiv:1909.10351.';

  constructor(
    readonly options: AttentionKlOptions,
    _factory: LossFactoryOptions = {},
  ) {
    super();
  }

  forward(batch: LayerDistillBatch): Tensor {
    const name = AttentionKlLoss.lossName;
    const { studentAttentions, teacherAttentions } = batch;
    const K = studentAttentions.length;
    if (K === 0 || teacherAttentions.length !== K) {
      throw new Error(`${name}: expected the same number (≥ 1) of student and teacher attention maps, got ${K} and ${teacherAttentions.length}`);
    }
    const [N, , L] = studentAttentions[0]!.shape as [number, number, number];
    const heads = (t: Tensor): number => t.size(1);
    for (let k = 0; k < K; k++) {
      const s = studentAttentions[k]!;
      const t = teacherAttentions[k]!;
      if (s.ndim !== 4 || s.size(0) !== N || s.size(2) !== L || s.size(3) !== L) throw new Error(`${name}: studentAttentions[${k}] must be [${N}, heads, ${L}, ${L}], got [${s.shape.join(', ')}]`);
      if (t.ndim !== 4 || t.size(0) !== N || t.size(2) !== L || t.size(3) !== L) throw new Error(`${name}: teacherAttentions[${k}] must be [${N}, heads, ${L}, ${L}] like the student's, got [${t.shape.join(', ')}]`);
      if (!isFloatingDType(s.dtype)) throw new Error(`${name}: studentAttentions[${k}] must be floating point, got ${s.dtype}`);
      if (!this.options.average_heads && heads(s) !== heads(t)) {
        throw new Error(
          `${name}: with average_heads false the head counts must be equal, but pair ${k} has ${heads(s)} student heads and ${heads(t)} teacher heads; set average_heads: true to compare head-averaged maps`,
        );
      }
    }
    return tidy(() => {
      const like = studentAttentions[0]!;
      const dtype = computeDType(like);
      const padding = tokenMask(name, batch.mask, N, L, like).logicalNot(); // (N, L) query positions
      const queries = padding.logicalNot().sum().to(dtype).clamp(1); // T
      let total: Tensor | null = null;
      for (let k = 0; k < K; k++) {
        let s = cast(studentAttentions[k]!, dtype, like); // (N, Hs, L, L)
        let t = constant(teacherAttentions[k]!, dtype, like); // (N, Ht, L, L)
        let denominator = queries;
        let queryPadding = padding.unsqueeze(1); // (N, 1, L): broadcasts over heads
        if (this.options.average_heads) {
          s = s.mean(1); // (N, L, L)
          t = t.mean(1); // (N, L, L)
          queryPadding = padding; // (N, L)
        } else {
          denominator = queries.mul(heads(s)); // T · H
        }
        const logRatio = t.clamp(ATTENTION_KL_EPS).log().sub(s.clamp(ATTENTION_KL_EPS).log());
        const kl = t.mul(logRatio).sum(-1).maskedFill(queryPadding, 0); // (N, L) or (N, H, L)
        const term = kl.sum().div(denominator);
        total = total === null ? term : total.add(term);
      }
      return total!.div(K);
    });
  }

  override extraRepr(): string {
    return `average_heads=${this.options.average_heads}`;
  }
}

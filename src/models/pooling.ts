/**
 * Pooling: hidden states [B, L, H] and the attention mask [B, L] → one vector per text [B, H].
 *
 *   mean: Σ_t m_t h_t / max(Σ_t m_t, 1)   (Sentence-BERT's default; Reimers & Gurevych 2019, arXiv 1908.10084)
 *   cls:  h_0, the [CLS] position (Devlin et al. 2019)
 *   last: h_{n−1} with n = Σ_t m_t, the last real token ([SEP] for BERT inputs; the pooling of
 *         decoder embedders such as E5-Mistral, Wang et al. 2023, arXiv 2401.00368)
 */
import { type Tensor } from '../engine/index.js';
import type { PoolingMode } from './config.js';

type Pool = (hidden: Tensor, attentionMask: Tensor) => Tensor;

export const POOLING: Record<PoolingMode, Pool> = {
  mean(hidden, attentionMask) {
    const mask = attentionMask.to(hidden.dtype).unsqueeze(-1); // [B, L, 1]
    const counts = mask.sum([1]).clamp(1); // [B, 1]
    return hidden.mul(mask).sum([1]).div(counts);
  },
  cls(hidden) {
    return hidden.select(1, 0);
  },
  last(hidden, attentionMask) {
    const [batch, , width] = hidden.shape as [number, number, number];
    const lastIndex = attentionMask.sum([1]).sub(1).clamp(0).to('int64'); // [B]
    const index = lastIndex.view(batch, 1, 1).expand(batch, 1, width);
    return hidden.gather(1, index).squeeze(1);
  },
};

export function pool(mode: PoolingMode, hidden: Tensor, attentionMask: Tensor): Tensor {
  return POOLING[mode](hidden, attentionMask);
}

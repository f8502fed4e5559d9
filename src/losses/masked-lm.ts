/**
 * `masked_lm`: BERT's masked-language-model objective.
 *
 *   L = −(1 / N) Σ_{i=1..N} log softmax(z_i)[y_i]
 *
 * over the N positions chosen for prediction (15% of the tokens, src/data/mlm.ts), where z_i
 * are the vocabulary logits the MLM head predicts there and y_i the original token. With label
 * smoothing ε the target is (1 − ε)·onehot(y) + ε/V (Szegedy et al. 2016), off by default as in
 * BERT. Positions labelled −100 are ignored (PyTorch's `ignore_index`).
 *
 * Source: J. Devlin, M.-W. Chang, K. Lee, K. Toutanova, "BERT: Pre-training of Deep
 * Bidirectional Transformers for Language Understanding", NAACL 2019, arXiv:1810.04805, §3.1
 * "Task #1: Masked LM"; torch.nn.functional.cross_entropy.
 *
 * Input used: tokens.
 */
import { z } from 'zod';

import { crossEntropy } from '../engine/functional.js';
import { isFloatingDType } from '../engine/dtype.js';
import type { Tensor } from '../engine/tensor.js';
import { TokenLoss, type LossFactoryOptions, type TokenPredictionBatch } from './types.js';

export const maskedLmOptionsSchema = z
  .object({
    label_smoothing: z.number().min(0).lt(1).default(0).describe('Label smoothing ε of the vocabulary cross-entropy (BERT uses 0).'),
  })
  .strict();

export type MaskedLmOptions = z.output<typeof maskedLmOptionsSchema>;

export class MaskedLmLoss extends TokenLoss {
  static readonly lossName = 'masked_lm';
  static readonly citation = 'Devlin et al. 2019, BERT, arXiv:1810.04805 §3.1 (masked LM cross-entropy)';

  constructor(
    readonly options: MaskedLmOptions,
    _factory: LossFactoryOptions = {},
  ) {
    super();
  }

  forward(batch: TokenPredictionBatch): Tensor {
    const { logits, labels } = batch;
    const name = MaskedLmLoss.lossName;
    if (logits.ndim !== 2) throw new Error(`${name}: logits must be [N, V], got [${logits.shape.join(', ')}]`);
    if (!isFloatingDType(logits.dtype)) throw new Error(`${name}: logits must be floating point, got ${logits.dtype}`);
    if (labels.ndim !== 1 || labels.size(0) !== logits.size(0)) throw new Error(`${name}: labels must be [${logits.size(0)}], got [${labels.shape.join(', ')}]`);
    if (logits.size(0) === 0) throw new Error(`${name}: no positions to predict`);
    // 16-bit logits are computed in float32: log-sum-exp over 30k classes loses too much in bf16.
    const z = logits.dtype === 'float64' ? logits : logits.float();
    return crossEntropy(z, labels.dtype === 'int64' ? labels : labels.to('int64'), { ignoreIndex: -100, labelSmoothing: this.options.label_smoothing });
  }

  override extraRepr(): string {
    return `label_smoothing=${this.options.label_smoothing}`;
  }
}

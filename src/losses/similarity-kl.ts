/**
 * `similarity_kl`: the student's score distribution over each row's candidates matches the
 * teacher's (soft-label distillation of a similarity matrix).
 *
 *   p_i = softmax(t_i / τ_t),  q_i = softmax(s_i / τ_s)     over row i's kept columns
 *   L   = (γ / B) Σ_i Σ_j p_ij (log p_ij − log q_ij)        KL(p_i ‖ q_i), batch mean
 *   γ   = τ_s² with `scale_by_temperature`, else 1
 *
 * An excluded column (a false negative) is removed from both distributions: its logits are set
 * to −∞ before both softmaxes, so it takes no mass, adds no term and gets no gradient. A flag on
 * a row's own positive (`positiveIndex`, default column 0) is ignored, as for `ScoredBatch`.
 * The teacher's scores are constants. Hinton et al. multiply by T² so that the soft-target
 * gradients keep their size as T changes (`scale_by_temperature`).
 *
 * It serves two teachers: a bi-encoder's in-batch similarity matrix [B, B(+k)] (τ_t like the
 * student's, e.g. 0.05 on cosines), and a cross-encoder's logits on each query's positive and k
 * mined candidates [B, 1 + k] (τ_t ≈ 1 on logits).
 *
 * Inputs (`teacher_scores`, a `DistillScoreBatch`):
 *
 *   | field         | shape       | meaning                                   |
 *   |---------------|-------------|-------------------------------------------|
 *   | student       | [B, C]      | the student's scores (differentiated)     |
 *   | teacher       | [B, C]      | the teacher's scores of the same pairs    |
 *   | positiveIndex | [B], opt.   | row i's positive column (default 0): never excluded |
 *   | exclude       | [B, C], opt.| columns removed from row i's distributions |
 *
 * Relations: `margin_mse` matches score margins instead of distributions; `infonce` is the
 * hard-label limit (p_i one-hot on the positive).
 *
 * Sources: G. Hinton, O. Vinyals, J. Dean, "Distilling the Knowledge in a Neural Network",
 * arXiv:1503.02531, 2015 (soft targets at temperature T, the T² factor); in-batch similarity
 * distributions as in R. Ren et al., "RocketQAv2", EMNLP 2021, arXiv:2110.07367, and S.
 * Hofstätter et al., "Efficiently Teaching an Effective Dense Retriever with Balanced Topic
 * Aware Sampling" (TAS-B), SIGIR 2021, arXiv:2104.06967.
 *
 * @example
 * const loss = createLoss({ name: 'similarity_kl', teacher_temperature: 1 });
 * const value = tidy(() => loss.forward({ student, teacher })); // both [B, 1 + k]
 */
import { z } from 'zod';

import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, computeDType } from './batch.js';
import { checkDistillScores, constant, distillMasks } from './distill.js';
import { DistillScoreLoss, type DistillScoreBatch, type LossFactoryOptions } from './types.js';

export const similarityKlOptionsSchema = z
  .object({
    student_temperature: z.number().gt(0).default(0.05).describe('τ_s: the student distribution is softmax(s/τ_s). 0.05 suits cosine scores.'),
    teacher_temperature: z.number().gt(0).default(0.05).describe('τ_t: the teacher distribution is softmax(t/τ_t). 0.05 for a bi-encoder teacher\'s cosines, about 1 for a cross-encoder\'s logits.'),
    scale_by_temperature: z.boolean().default(false).describe('Multiply the KL by τ_s² (Hinton et al.), so gradient sizes do not change with the temperature.'),
  })
  .strict();

export type SimilarityKlOptions = z.output<typeof similarityKlOptionsSchema>;

export class SimilarityKlLoss extends DistillScoreLoss {
  static readonly lossName = 'similarity_kl';
  static readonly citation =
    'Hinton, Vinyals, Dean. Distilling the Knowledge in a Neural Network. arXiv:1503.02531, 2015; in-batch similarity distributions: Ren et al. RocketQAv2, arXiv:2110.07367; Hofstätter et al. TAS-B, arXiv:2104.06967.';

  constructor(
    readonly options: SimilarityKlOptions,
    _factory: LossFactoryOptions = {},
  ) {
    super();
  }

  forward(batch: DistillScoreBatch): Tensor {
    const shape = checkDistillScores(SimilarityKlLoss.lossName, batch);
    const { student_temperature: tauS, teacher_temperature: tauT, scale_by_temperature: scale } = this.options;
    return tidy(() => {
      const dtype = computeDType(batch.student);
      const s = cast(batch.student, dtype, batch.student).div(tauS); // (B, C)
      const t = constant(batch.teacher, dtype, batch.student).div(tauT); // (B, C)
      const { excluded } = distillMasks(batch, shape);
      // −∞ logits leave both softmaxes exactly; masked_fill sends no gradient to them.
      let logQ = (excluded === null ? s : s.maskedFill(excluded, -Infinity)).logSoftmax(1);
      let logP = (excluded === null ? t : t.maskedFill(excluded, -Infinity)).logSoftmax(1);
      const p = logP.exp(); // 0 at excluded columns
      // log p − log q would be −∞ − (−∞) = NaN there: zero both logs first, so the term is 0 · 0.
      if (excluded !== null) {
        logQ = logQ.maskedFill(excluded, 0);
        logP = logP.maskedFill(excluded, 0);
      }
      const kl = p.mul(logP.sub(logQ)).sum().div(shape.B);
      return scale ? kl.mul(tauS * tauS) : kl;
    });
  }

  override extraRepr(): string {
    const o = this.options;
    return `student_temperature=${o.student_temperature}, teacher_temperature=${o.teacher_temperature}, scale_by_temperature=${o.scale_by_temperature}`;
  }
}

/**
 * `margin_mse`: the student's score margins between each row's positive and its other
 * candidates regress onto the teacher's (Margin-MSE).
 *
 *   L = (1/|K|) Σ_{(i,j) ∈ K} ((s_{i,p_i} − s_ij) − m · (t_{i,p_i} − t_ij))²
 *
 * K holds every pair (i, j) with j ≠ p_i (row i's positive, `positiveIndex`, default column 0)
 * and j not excluded; m is `margin_scale` (1 by default; set it when the teacher's scores live on
 * another scale than the student's, e.g. a cross-encoder's logits against cosine × 20). Only
 * margins are matched, so the student is free to shift its scores by a constant per row. A
 * flag on a row's own positive is ignored. The teacher's scores are constants.
 *
 * Inputs (`teacher_scores`, a `DistillScoreBatch`):
 *
 *   | field         | shape       | meaning                                   |
 *   |---------------|-------------|-------------------------------------------|
 *   | student       | [B, C]      | the student's scores (differentiated)     |
 *   | teacher       | [B, C]      | the teacher's scores of the same pairs    |
 *   | positiveIndex | [B], opt.   | row i's positive column (default 0)       |
 *   | exclude       | [B, C], opt.| pairs left out of K                       |
 *
 * With C = 2 (a positive and one negative per query) this is sentence-transformers'
 * MarginMSELoss; with C = 1 + k it averages over the k margins of each query, as its
 * multi-negative form does.
 *
 * Relations: `similarity_kl` matches the teacher's whole distribution over a row instead.
 *
 * Source: S. Hofstätter, S. Althammer, M. Schröder, M. Sertkan, A. Hanbury, "Improving
 * Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation",
 * arXiv:2010.02666, 2020.
 *
 * @example
 * const loss = createLoss({ name: 'margin_mse', margin_scale: 2 });
 * const value = tidy(() => loss.forward({ student, teacher })); // both [B, 1 + k], positive in column 0
 */
import { z } from 'zod';

import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, computeDType } from './batch.js';
import { checkDistillScores, constant, distillMasks } from './distill.js';
import { DistillScoreLoss, type DistillScoreBatch, type LossFactoryOptions } from './types.js';

export const marginMseOptionsSchema = z
  .object({
    margin_scale: z.number().gt(0).default(1).describe("m: the teacher's margins are multiplied by m (for a teacher whose scores live on another scale than the student's)."),
  })
  .strict();

export type MarginMseOptions = z.output<typeof marginMseOptionsSchema>;

export class MarginMseLoss extends DistillScoreLoss {
  static readonly lossName = 'margin_mse';
  static readonly citation =
    'Hofstätter, Althammer, Schröder, Sertkan, Hanbury. Improving Efficient Neural Ranking Models with Cross-Architecture Knowledge Distillation. arXiv:2010.02666, 2020.';

  constructor(
    readonly options: MarginMseOptions,
    _factory: LossFactoryOptions = {},
  ) {
    super();
  }

  forward(batch: DistillScoreBatch): Tensor {
    const shape = checkDistillScores(MarginMseLoss.lossName, batch);
    const m = this.options.margin_scale;
    return tidy(() => {
      const dtype = computeDType(batch.student);
      const s = cast(batch.student, dtype, batch.student); // (B, C)
      const t = constant(batch.teacher, dtype, batch.student); // (B, C)
      const { index, positive, excluded } = distillMasks(batch, shape);
      const dropped = excluded === null ? positive : positive.logicalOr(excluded); // (B, C): not in K
      const column = index.unsqueeze(1); // (B, 1)
      const sPositive = s.gather(1, column); // (B, 1): s_{i,p_i}
      const tPositive = t.gather(1, column); // (B, 1)
      const studentMargin = sPositive.sub(s); // (B, C)
      const teacherMargin = tPositive.sub(t); // (B, C)
      const error = studentMargin.sub(m === 1 ? teacherMargin : teacherMargin.mul(m)).square().maskedFill(dropped, 0);
      const count = dropped.logicalNot().sum().to(dtype).clamp(1); // |K|, 1 when empty (loss 0)
      return error.sum().div(count);
    });
  }

  override extraRepr(): string {
    return `margin_scale=${this.options.margin_scale}`;
  }
}

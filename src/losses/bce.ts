/**
 * `bce`: binary cross-entropy on every (query, candidate) pair, SigLIP style.
 *
 *   z_ij = t · s_ij + b                    (t = exp(t'), the affine of SigLIP, eq. 1)
 *   ℓ_ij = −[ p · y_ij · log σ(z_ij) + (1 − y_ij) · log(1 − σ(z_ij)) ]
 *   L    = (1 / |K|) Σ_{(i,j) ∈ K} ℓ_ij
 *
 * y_ij = 1 at query i's positive column and 0 elsewhere (in-batch and hard negatives alike),
 * p is `pos_weight`, and K is the set of pairs not excluded as false negatives. With scored
 * pairs, y at the positive column is the pair's graded target in [0, 1] (`positiveTarget`),
 * as in binary_cross_entropy_with_logits with soft targets.
 *
 * Why the affine: a cosine score lives in [−1, 1], so σ(s) can never approach 0 or 1; the
 * learnable scale t stretches it into a usable logit range, and the bias b starts the model
 * near the heavy prior of a batch with one positive per B·C pairs (SigLIP initialises t = 10,
 * b = −10 for exactly this reason, §3.3). As in SigLIP the scale is learnt in log space
 * (always positive, scale-free updates); as in CLIP it is bounded (`max_scale`, 100).
 *
 * Sources: X. Zhai, B. Mustafa, A. Kolesnikov, L. Beyer, "Sigmoid Loss for Language Image
 * Pre-Training", ICCV 2023, arXiv:2303.15343 (the affine and pairwise sigmoid loss); the
 * weighted BCE is torch.nn.functional.binary_cross_entropy_with_logits with `pos_weight`.
 *
 * Inputs used: scores, positiveIndex, positiveTarget, exclude. Teacher and groups are ignored.
 */
import { z } from 'zod';

import { binaryCrossEntropyWithLogits } from '../engine/functional.js';
import { full } from '../engine/create.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, checkBatch, computeDType, exclusionMask, positiveIndexOf, positiveMask, project, scalar } from './batch.js';
import { ScoredLoss, type LossFactoryOptions, type ScoredBatch } from './types.js';

export const bceOptionsSchema = z
  .object({
    scale: z.number().gt(0).default(10).describe('Initial (or fixed) logit scale t in z = t·s + b; SigLIP initialises t = 10.'),
    bias: z.number().finite().default(-10).describe('Initial (or fixed) logit bias b in z = t·s + b; SigLIP initialises b = −10, the log-odds prior of a batch that is almost all negatives.'),
    learnable_scale: z.boolean().default(true).describe('Learn the scale (as log t, a registered parameter `log_scale`).'),
    learnable_bias: z.boolean().default(true).describe('Learn the bias (a registered parameter `bias`).'),
    max_scale: z.number().gt(0).default(100).describe('Upper bound on a learnt scale (CLIP bounds its logit scale at 100); the parameter is projected back after it crosses it.'),
    pos_weight: z.number().gt(0).default(1).describe('Weight p of the positive term, −p·y·log σ(z); >1 counters the one-positive-per-row imbalance.'),
  })
  .strict()
  .refine((o) => o.scale <= o.max_scale, { message: 'scale must not exceed max_scale', path: ['scale'] });

export type BceOptions = z.output<typeof bceOptionsSchema>;

export class BceLoss extends ScoredLoss {
  static readonly lossName = 'bce';
  static readonly citation = 'Zhai, Mustafa, Kolesnikov, Beyer. Sigmoid Loss for Language Image Pre-Training (SigLIP). ICCV 2023, arXiv:2303.15343.';
  static readonly gradedTargets = true;

  /** log t when the scale is learnt, else null. */
  readonly logScale: Tensor | null;
  /** b when the bias is learnt, else null. */
  readonly bias: Tensor | null;

  constructor(
    readonly options: BceOptions,
    factory: LossFactoryOptions = {},
  ) {
    super();
    this.logScale = options.learnable_scale ? this.registerParameter('log_scale', scalar(Math.log(options.scale), factory)) : null;
    this.bias = options.learnable_bias ? this.registerParameter('bias', scalar(options.bias, factory)) : null;
  }

  forward(batch: ScoredBatch): Tensor {
    const shape = checkBatch(BceLoss.lossName, batch);
    if (this.logScale !== null) project(this.logScale, undefined, Math.log(this.options.max_scale));
    return tidy(() => {
      const dtype = computeDType(batch.scores);
      const s = cast(batch.scores, dtype, batch.scores);
      const scale = this.logScale === null ? this.options.scale : cast(this.logScale, dtype, s).exp();
      const bias = this.bias === null ? this.options.bias : cast(this.bias, dtype, s);
      const logits = s.mul(scale).add(bias); // [B, C]

      const positive = positiveMask(positiveIndexOf(batch, shape), shape);
      const labels = batch.positiveTarget === undefined ? positive.to(dtype) : positive.to(dtype).mul(cast(batch.positiveTarget, dtype, s).unsqueeze(1));
      const excluded = exclusionMask(batch, positive);
      const posWeight = full([], this.options.pos_weight, { dtype, device: s.device });
      if (excluded === null) return binaryCrossEntropyWithLogits(logits, labels, { posWeight, reduction: 'mean' });
      // Excluded pairs get weight 0 and the sum is divided by the number of pairs kept, so the
      // mean is over K exactly (the positive is never excluded, so |K| ≥ B > 0).
      const kept = excluded.logicalNot().to(dtype);
      return binaryCrossEntropyWithLogits(logits, labels, { weight: kept, posWeight, reduction: 'sum' }).div(kept.sum());
    });
  }

  override extraRepr(): string {
    const o = this.options;
    return `scale=${o.scale}${o.learnable_scale ? ' (learnable)' : ''}, bias=${o.bias}${o.learnable_bias ? ' (learnable)' : ''}, pos_weight=${o.pos_weight}`;
  }
}

/**
 * `infonce`: softmax contrastive loss over all candidates (in-batch positives of the other
 * queries and mined hard negatives).
 *
 *   L_q→d = −(1/B) Σ_i log [ exp(s_{i,p(i)} / τ) / Σ_{j ∉ X_i} exp(s_ij / τ) ]
 *
 * p(i) is query i's positive column and X_i its excluded (false-negative) columns; the positive
 * is always in the denominator. With `symmetric`, the document→query direction is added over
 * the [B, B] in-batch block (hard negatives have no query of their own), each positive document
 * p(i) classifying its query i among the B queries, with the exclusion mask transposed:
 *
 *   L_d→q = −(1/B) Σ_i log [ exp(s_{i,p(i)} / τ) / Σ_{k ∉ Xᵀ_{p(i)}} exp(s_{k,p(i)} / τ) ]
 *   L     = (L_q→d + L_d→q) / 2
 *
 * The temperature τ is fixed, or learnt as log τ (positive, scale-free updates, as CLIP learns
 * its logit scale). A learnt τ is floored at `min_temperature`: τ → 0 turns the softmax into a
 * hard max whose loss can always be lowered by sharpening further, so without a floor τ
 * collapses and gradients explode (CLIP bounds its logit scale 1/τ at 100 for this reason). The
 * floor is applied by projecting log τ back in place at the start of each forward, as CLIP
 * clips its parameter after each step, so the gradient seen is always the true one.
 *
 * Sources: A. van den Oord, Y. Li, O. Vinyals, "Representation Learning with Contrastive
 * Predictive Coding", arXiv:1807.03748, 2018 (InfoNCE); A. Radford et al., "Learning
 * Transferable Visual Models From Natural Language Supervision" (CLIP), ICML 2021,
 * arXiv:2103.00020 (the symmetric form and the learnt, bounded temperature).
 *
 * Inputs used: scores, positiveIndex, exclude. Teacher and groups are ignored. With
 * `symmetric`, the positives must be the first B columns, each the positive of exactly one
 * query (a permutation; the default arange(B) is one); a custom `positiveIndex` is read back
 * to check this (one small device sync).
 */
import { z } from 'zod';

import { tensor } from '../engine/create.js';
import { crossEntropy } from '../engine/functional.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, checkBatch, computeDType, exclusionMask, positiveIndexOf, positiveMask, project, scalar, type BatchShape } from './batch.js';
import { ScoredLoss, type LossFactoryOptions, type ScoredBatch } from './types.js';

export const infonceOptionsSchema = z
  .object({
    temperature: z.number().gt(0).default(0.05).describe('Softmax temperature τ (logits are s/τ); the initial value when learnable. 0.05 suits cosine scores.'),
    learnable_temperature: z.boolean().default(false).describe('Learn τ (as log τ, a registered parameter `log_temperature`).'),
    min_temperature: z.number().gt(0).default(0.01).describe('Floor on a learnt τ, so it cannot collapse towards 0 (1/τ ≤ 100, as CLIP).'),
    symmetric: z.boolean().default(false).describe('Also add the document→query direction over the in-batch [B, B] block and average the two (CLIP).'),
  })
  .strict()
  .refine((o) => !o.learnable_temperature || o.temperature >= o.min_temperature, {
    message: 'a learnable temperature must start at or above min_temperature',
    path: ['temperature'],
  });

export type InfonceOptions = z.output<typeof infonceOptionsSchema>;

export class InfonceLoss extends ScoredLoss {
  static readonly lossName = 'infonce';
  static readonly citation =
    'van den Oord, Li, Vinyals. Representation Learning with Contrastive Predictive Coding. arXiv:1807.03748, 2018; symmetric form: Radford et al. Learning Transferable Visual Models From Natural Language Supervision (CLIP). ICML 2021, arXiv:2103.00020.';

  /** log τ when the temperature is learnt, else null. */
  readonly logTemperature: Tensor | null;

  constructor(
    readonly options: InfonceOptions,
    factory: LossFactoryOptions = {},
  ) {
    super();
    this.logTemperature = options.learnable_temperature ? this.registerParameter('log_temperature', scalar(Math.log(options.temperature), factory)) : null;
  }

  /** The temperature now in use (a learnt one read back: a device sync). */
  get temperature(): number {
    return this.logTemperature === null ? this.options.temperature : Math.exp(this.logTemperature.item());
  }

  forward(batch: ScoredBatch): Tensor {
    const shape = checkBatch(InfonceLoss.lossName, batch);
    if (this.logTemperature !== null) project(this.logTemperature, Math.log(this.options.min_temperature), undefined);
    return tidy(() => {
      const docTargets = this.options.symmetric ? documentTargets(batch, shape) : null;
      const dtype = computeDType(batch.scores);
      const s = cast(batch.scores, dtype, batch.scores);
      const logits = this.logTemperature === null ? s.div(this.options.temperature) : s.div(cast(this.logTemperature, dtype, s).exp());

      const positiveIndex = positiveIndexOf(batch, shape);
      const excluded = exclusionMask(batch, positiveMask(positiveIndex, shape));
      // −∞ logits drop out of the softmax exactly: exp(−∞) = 0 in the denominator, and their
      // gradient is exactly 0 (masked_fill routes none back to the masked scores).
      const masked = excluded === null ? logits : logits.maskedFill(excluded, -Infinity);
      const queryToDoc = crossEntropy(masked, positiveIndex);
      if (docTargets === null) return queryToDoc;

      // Document j = column j < B against the B queries: the transposed in-batch block.
      const block = masked.narrow(1, 0, shape.B).transpose(0, 1); // [B docs, B queries]
      const docToQuery = crossEntropy(block, docTargets);
      return queryToDoc.add(docToQuery).div(2);
    });
  }

  override extraRepr(): string {
    const o = this.options;
    return `temperature=${o.temperature}${o.learnable_temperature ? ` (learnable, min ${o.min_temperature})` : ''}, symmetric=${o.symmetric}`;
  }
}

/**
 * [B] int64: for document column j < B, the query whose positive it is (the inverse of the
 * positive permutation). Identity for the default positives, without a device sync.
 */
function documentTargets(batch: ScoredBatch, { B, C }: BatchShape): Tensor {
  const device = batch.scores.device;
  if (C < B) throw new Error(`infonce: symmetric needs the B = ${B} in-batch positives as columns 0..${B - 1}, but scores are [${B}, ${C}]`);
  if (batch.positiveIndex === undefined) return positiveIndexOf(batch, { B, C });
  const columns = batch.positiveIndex.toArray();
  const inverse = new Array<number>(B).fill(-1);
  columns.forEach((column, query) => {
    if (!Number.isInteger(column) || column < 0 || column >= B || inverse[column] !== -1) {
      throw new Error(`infonce: symmetric needs positiveIndex to be a permutation of 0..${B - 1} (each in-batch document the positive of exactly one query); query ${query} has column ${column}`);
    }
    inverse[column] = query;
  });
  return tensor(inverse, { dtype: 'int64', device });
}

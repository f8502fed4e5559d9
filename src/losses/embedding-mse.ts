/**
 * `embedding_mse`: the student's embeddings regress onto the teacher's (embedding distillation).
 *
 *   L = (1 / (N · Ht)) Σ_{n=1..N} Σ_{d=1..Ht} (proj(s_n) − t_n)_d²
 *   proj(s) = s Wᵀ + b      a learned Linear(Hs, Ht) when the hidden sizes differ
 *                           (or `projection: linear`); the identity when they are equal
 *
 * With `normalize`, proj(s_n) and t_n are first scaled to unit L2 norm (for a teacher whose
 * embeddings are compared by cosine): the loss is then (2 − 2 cos(proj(s_n), t_n)) / Ht averaged
 * over texts, so only directions are matched.
 *
 * The sizes Hs and Ht come from `LossFactoryOptions.distillDims` (required). The projection is a
 * registered child module `projection` (`projection.weight` [Ht, Hs], `projection.bias` [Ht]),
 * so it reaches the optimizer and the checkpoint; it is thrown away after training (the student
 * alone is the product).
 *
 * Inputs (`embeddings`, an `EmbeddingDistillBatch`):
 *
 *   | field   | shape   | meaning                                         |
 *   |---------|---------|-------------------------------------------------|
 *   | student | [N, Hs] | the student's pooled embeddings (differentiated) |
 *   | teacher | [N, Ht] | the teacher's embeddings of the same texts (constant) |
 *
 * Relations: `similarity_kl` matches the teacher's similarity distributions rather than the
 * vectors themselves; `hidden_mse` is the same regression per token and per layer.
 *
 * Sources: N. Reimers, I. Gurevych, "Making Monolingual Sentence Embeddings Multilingual using
 * Knowledge Distillation", EMNLP 2020, arXiv:2004.09813 (the MSE of student to teacher
 * embeddings; sentence-transformers' MSELoss); X. Jiao et al., "TinyBERT: Distilling BERT for
 * Natural Language Understanding", Findings of EMNLP 2020, arXiv:1909.10351 (the learned
 * projection W_h between hidden sizes, eq. 8).
 *
 * @example
 * const loss = createLoss({ name: 'embedding_mse' }, { distillDims: { student: 128, teacher: 384 } });
 * const value = tidy(() => loss.forward({ student, teacher })); // student [N, 128], teacher [N, 384]
 */
import { z } from 'zod';

import { mseLoss } from '../engine/functional.js';
import { Linear } from '../engine/nn/index.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { isFloatingDType } from '../engine/dtype.js';
import { cast, computeDType } from './batch.js';
import { applyProjection, constant, distillDimsOf, needsProjection, projectionSchema } from './distill.js';
import { EmbeddingLoss, type EmbeddingDistillBatch, type LossFactoryOptions } from './types.js';

export const embeddingMseOptionsSchema = z
  .object({
    projection: projectionSchema,
    normalize: z.boolean().default(false).describe('L2-normalise proj(s) and t along the hidden dim before the squared error (for a teacher compared by cosine).'),
  })
  .strict();

export type EmbeddingMseOptions = z.output<typeof embeddingMseOptionsSchema>;

export class EmbeddingMseLoss extends EmbeddingLoss {
  static readonly lossName = 'embedding_mse';
  static readonly citation =
    'Reimers, Gurevych. Making Monolingual Sentence Embeddings Multilingual using Knowledge Distillation. EMNLP 2020, arXiv:2004.09813; learned projection: Jiao et al. TinyBERT. Findings of EMNLP 2020, arXiv:1909.10351.';

  /** The student's (Hs) and the teacher's (Ht) hidden sizes. */
  readonly dims: { student: number; teacher: number };
  /** The learned Linear(Hs, Ht), or null for the identity. */
  readonly projection: Linear | null;

  constructor(
    readonly options: EmbeddingMseOptions,
    factory: LossFactoryOptions = {},
  ) {
    super();
    const name = EmbeddingMseLoss.lossName;
    this.dims = distillDimsOf(name, factory);
    this.projection = needsProjection(name, options.projection, this.dims)
      ? this.registerModule('projection', new Linear(this.dims.student, this.dims.teacher, { dtype: factory.dtype, device: factory.device }))
      : null;
  }

  forward(batch: EmbeddingDistillBatch): Tensor {
    const { student, teacher } = batch;
    const name = EmbeddingMseLoss.lossName;
    const { student: Hs, teacher: Ht } = this.dims;
    if (student.ndim !== 2 || student.size(1) !== Hs) throw new Error(`${name}: student embeddings must be [N, ${Hs}] (distillDims.student), got [${student.shape.join(', ')}]`);
    if (!isFloatingDType(student.dtype)) throw new Error(`${name}: student embeddings must be floating point, got ${student.dtype}`);
    const N = student.size(0);
    if (N === 0) throw new Error(`${name}: the batch is empty`);
    if (teacher.shape.join() !== `${N},${Ht}`) throw new Error(`${name}: teacher embeddings must be [${N}, ${Ht}] (N like the student's, distillDims.teacher), got [${teacher.shape.join(', ')}]`);
    return tidy(() => {
      const dtype = computeDType(student);
      const s = cast(student, dtype, student); // (N, Hs)
      const t = constant(teacher, dtype, student); // (N, Ht)
      const p = this.projection === null ? s : applyProjection(this.projection, s); // (N, Ht)
      if (!this.options.normalize) return mseLoss(p, t);
      return mseLoss(p.normalize({ dim: -1 }), t.normalize({ dim: -1 }));
    });
  }

  override extraRepr(): string {
    return `student=${this.dims.student}, teacher=${this.dims.teacher}, projection=${this.projection === null ? 'identity' : 'linear'}, normalize=${this.options.normalize}`;
  }
}

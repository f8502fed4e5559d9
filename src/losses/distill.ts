/**
 * Shared plumbing for the distillation losses: the student → teacher projection option and its
 * sizes, checking a `DistillScoreBatch` and building its masks, the token mask of a
 * `LayerDistillBatch`, and teacher tensors as constants.
 *
 * Nothing here reads tensor values back to JavaScript, so none of it forces a device sync.
 */
import { z } from 'zod';

import { full } from '../engine/create.js';
import { isFloatingDType, type DType } from '../engine/dtype.js';
import { linear } from '../engine/functional.js';
import type { Linear } from '../engine/nn/index.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, exclusionMask, positiveMask, type BatchShape } from './batch.js';
import type { DistillScoreBatch, LossFactoryOptions } from './types.js';

function shapeText(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/** The `projection` option of `embedding_mse` and `hidden_mse`. */
export const projectionSchema = z
  .enum(['auto', 'linear', 'none'])
  .default('auto')
  .describe(
    'Student → teacher map before the squared error: auto = a learned Linear(Hs, Ht) when the hidden sizes differ, the identity when they are equal; linear = always learned; none = identity (the sizes must be equal).',
  );

export type ProjectionMode = z.output<typeof projectionSchema>;

/** The student's and the teacher's hidden sizes from the factory options; throws when absent or not positive integers. */
export function distillDimsOf(loss: string, factory: LossFactoryOptions): { student: number; teacher: number } {
  const dims = factory.distillDims;
  if (dims === undefined) {
    throw new Error(
      `${loss} needs the student's and the teacher's hidden sizes: pass distillDims = { student: Hs, teacher: Ht } when creating the loss (createWeightedLoss(entries, { distillDims }))`,
    );
  }
  for (const side of ['student', 'teacher'] as const) {
    if (!Number.isInteger(dims[side]) || dims[side] <= 0) throw new Error(`${loss}: distillDims.${side} must be a positive integer, got ${dims[side]}`);
  }
  return { student: dims.student, teacher: dims.teacher };
}

/** Whether a learned projection is needed: `linear` always, `auto` when the sizes differ; `none` with different sizes is an error. */
export function needsProjection(loss: string, mode: ProjectionMode, dims: { student: number; teacher: number }): boolean {
  if (mode === 'none' && dims.student !== dims.teacher) {
    throw new Error(
      `${loss}: projection 'none' needs equal hidden sizes, but the student's is ${dims.student} and the teacher's ${dims.teacher}; use projection 'auto' or 'linear' to learn a Linear(${dims.student}, ${dims.teacher})`,
    );
  }
  return mode === 'linear' || (mode === 'auto' && dims.student !== dims.teacher);
}

/** `x Wᵀ + b` with the projection's parameters cast to x's dtype and device inside the graph. */
export function applyProjection(projection: Linear, x: Tensor): Tensor {
  const bias = projection.bias === null ? null : cast(projection.bias, x.dtype, x);
  return linear(x, cast(projection.weight, x.dtype, x), bias);
}

/** A teacher tensor as a constant in `dtype` on `like`'s device: detached, so no gradient is ever recorded for it. */
export function constant(t: Tensor, dtype: DType, like: Tensor): Tensor {
  return cast(t.detach(), dtype, like);
}

/** Checks a `DistillScoreBatch` (student and teacher [B, C], positiveIndex [B], exclude [B, C]); throws naming the loss and field. */
export function checkDistillScores(loss: string, batch: DistillScoreBatch): BatchShape {
  const { student, teacher, positiveIndex, exclude } = batch;
  if (student.ndim !== 2) throw new Error(`${loss}: student scores must be [B, C], got ${shapeText(student)}`);
  if (!isFloatingDType(student.dtype)) throw new Error(`${loss}: student scores must be floating point, got ${student.dtype}`);
  const B = student.size(0);
  const C = student.size(1);
  if (B === 0 || C === 0) throw new Error(`${loss}: the batch is empty (student scores ${shapeText(student)})`);
  if (teacher.shape.join() !== `${B},${C}`) throw new Error(`${loss}: teacher scores must be [${B}, ${C}] like the student's, got ${shapeText(teacher)}`);
  if (!isFloatingDType(teacher.dtype)) throw new Error(`${loss}: teacher scores must be floating point, got ${teacher.dtype}`);
  if (positiveIndex !== undefined) {
    if (positiveIndex.ndim !== 1 || positiveIndex.size(0) !== B) throw new Error(`${loss}: positiveIndex must be [${B}], got ${shapeText(positiveIndex)}`);
    if (positiveIndex.dtype !== 'int64' && positiveIndex.dtype !== 'int32') throw new Error(`${loss}: positiveIndex must be int64, got ${positiveIndex.dtype}`);
  }
  if (exclude !== undefined) {
    if (exclude.shape.join() !== `${B},${C}`) throw new Error(`${loss}: exclude must be [${B}, ${C}], got ${shapeText(exclude)}`);
    if (exclude.dtype !== 'bool') throw new Error(`${loss}: exclude must be bool, got ${exclude.dtype}`);
  }
  return { B, C };
}

/**
 * The positives and masks of a `DistillScoreBatch`: `index` [B] int64, row i's positive column
 * p_i (default 0); `positive` [B, C] bool at (i, p_i); `excluded` [B, C] bool (the batch's
 * flags with each row's positive cleared), or null when nothing is excluded.
 */
export function distillMasks(batch: DistillScoreBatch, shape: BatchShape): { index: Tensor; positive: Tensor; excluded: Tensor | null } {
  return tidy(() => {
    const { student } = batch;
    const index = batch.positiveIndex === undefined ? full([shape.B], 0, { dtype: 'int64', device: student.device }) : cast(batch.positiveIndex, 'int64', student);
    const positive = positiveMask(index, shape); // (B, C)
    const excluded = batch.exclude === undefined ? null : exclusionMask({ scores: student, exclude: batch.exclude }, positive);
    return { index, positive, excluded };
  });
}

/** [N, L] bool, true at real tokens, from a 0/1 mask of any dtype; throws unless the mask is [N, L]. */
export function tokenMask(loss: string, mask: Tensor, N: number, L: number, like: Tensor): Tensor {
  if (mask.shape.join() !== `${N},${L}`) throw new Error(`${loss}: mask must be [${N}, ${L}] (texts, tokens), got ${shapeText(mask)}`);
  return tidy(() => (mask.dtype === 'bool' ? cast(mask, 'bool', like) : cast(mask, mask.dtype, like).ne(0)));
}

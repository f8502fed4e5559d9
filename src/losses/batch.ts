/**
 * Shared plumbing for the losses: checking a `ScoredBatch`, building the positive and
 * exclusion masks, and handling scalar parameters (a temperature, a logit scale).
 *
 * Nothing here reads tensor values back to JavaScript, so none of it forces a device sync.
 */
import { arange, full } from '../engine/create.js';
import { isFloatingDType, type DType } from '../engine/dtype.js';
import { noGrad } from '../engine/grad.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import type { LossFactoryOptions, ScoredBatch } from './types.js';

export interface BatchShape {
  /** Queries (rows). */
  B: number;
  /** Candidates (columns): B in-batch positives, then C − B hard negatives. */
  C: number;
}

function shapeText(t: Tensor): string {
  return `[${t.shape.join(', ')}]`;
}

/** Checks shapes and dtypes of every field a loss may use; throws naming the loss and field. */
export function checkBatch(loss: string, batch: ScoredBatch): BatchShape {
  const { scores } = batch;
  if (scores.ndim !== 2) throw new Error(`${loss}: scores must be [B, C], got ${shapeText(scores)}`);
  if (!isFloatingDType(scores.dtype)) throw new Error(`${loss}: scores must be floating point, got ${scores.dtype}`);
  const B = scores.size(0);
  const C = scores.size(1);
  if (B === 0) throw new Error(`${loss}: the batch is empty`);
  const { positiveIndex, exclude, teacher, groups } = batch;
  if (positiveIndex !== undefined) {
    if (positiveIndex.ndim !== 1 || positiveIndex.size(0) !== B) throw new Error(`${loss}: positiveIndex must be [${B}], got ${shapeText(positiveIndex)}`);
    if (positiveIndex.dtype !== 'int64' && positiveIndex.dtype !== 'int32') throw new Error(`${loss}: positiveIndex must be int64, got ${positiveIndex.dtype}`);
  } else if (C < B) {
    throw new Error(`${loss}: scores are [${B}, ${C}] but the default positives are columns 0..${B - 1}; pass positiveIndex`);
  }
  if (exclude !== undefined) {
    if (exclude.shape.join() !== `${B},${C}`) throw new Error(`${loss}: exclude must be [${B}, ${C}], got ${shapeText(exclude)}`);
    if (exclude.dtype !== 'bool') throw new Error(`${loss}: exclude must be bool, got ${exclude.dtype}`);
  }
  if (teacher !== undefined) {
    if (teacher.shape.join() !== `${B},${C}`) throw new Error(`${loss}: teacher must be [${B}, ${C}], got ${shapeText(teacher)}`);
    if (!isFloatingDType(teacher.dtype)) throw new Error(`${loss}: teacher must be floating point, got ${teacher.dtype}`);
  }
  if (groups !== undefined && groups.length !== B) throw new Error(`${loss}: groups must have one id per query (${B}), got ${groups.length}`);
  return { B, C };
}

/**
 * The dtype a loss computes in: float64 scores stay float64 (exact reference tests); everything
 * else, 16-bit scores included, is computed in float32, because log-sum-exp and long cumulative
 * sums lose too much in 16 bits.
 */
export function computeDType(scores: Tensor): DType {
  return scores.dtype === 'float64' ? 'float64' : 'float32';
}

/** `t` in the given dtype on `like`'s device; the same tensor when nothing changes (differentiable). */
export function cast(t: Tensor, dtype: DType, like: Tensor): Tensor {
  const device = like.device;
  return t.dtype === dtype && t.device === device ? t : t.to({ dtype, device });
}

/** [B] int64 column of each query's positive on the scores' device. */
export function positiveIndexOf(batch: ScoredBatch, { B }: BatchShape): Tensor {
  const device = batch.scores.device;
  if (batch.positiveIndex === undefined) return arange(0, B, 1, { device });
  return cast(batch.positiveIndex, 'int64', batch.scores);
}

/** [B, C] bool, true at (i, positiveIndex[i]). Built by comparison, so no scatter is needed. */
export function positiveMask(positiveIndex: Tensor, { C }: BatchShape): Tensor {
  return tidy(() => arange(0, C, 1, { device: positiveIndex.device }).unsqueeze(0).eq(positiveIndex.unsqueeze(1)));
}

/**
 * [B, C] bool, true where a pair is dropped from the loss: `batch.exclude` with every query's
 * own positive cleared (a positive flagged as its own false negative would leave the row with
 * nothing to learn from). Null when the batch excludes nothing.
 */
export function exclusionMask(batch: ScoredBatch, positive: Tensor): Tensor | null {
  const { exclude } = batch;
  if (exclude === undefined) return null;
  return tidy(() => cast(exclude, 'bool', batch.scores).logicalAnd(positive.logicalNot()));
}

/** A 0-d parameter tensor holding `value` (the caller registers it). */
export function scalar(value: number, factory: LossFactoryOptions): Tensor {
  return full([], value, { dtype: factory.dtype ?? 'float32', device: factory.device ?? 'cpu' });
}

/**
 * Projects a scalar parameter back into [min, max] in place, without recording a gradient —
 * CLIP's treatment of its learnable logit scale (open_clip clamps it after every step). Done at
 * the start of each forward, so the loss always sees a value inside the bounds and the gradient
 * is the true one there; a clamp inside the graph instead would give a zero gradient once the
 * parameter crossed the bound, and it could then never come back.
 */
export function project(p: Tensor, min: number | undefined, max: number | undefined): void {
  noGrad(() => tidy(() => void p.copy_(p.clamp(min, max))));
}

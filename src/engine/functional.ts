/**
 * Functions over several tensors, and the fused ATen kernels for layers and losses, named as
 * in `torch.nn.functional`. Losses return the reduced loss (default 'mean').
 */
import { native } from './native.js';
import { Tensor, type Operand, type Reduction } from './tensor.js';
import { full } from './create.js';
import { isFloatingDType, type DType } from './dtype.js';

/** `x Wᵀ + b`; x (…, in), weight (out, in), bias (out) → (…, out). */
export function linear(x: Tensor, weight: Tensor, bias: Tensor | null = null): Tensor {
  return new Tensor(native.kt_linear(x.handle, weight.handle, bias?.handle));
}

/**
 * Layer normalisation over the trailing `normalizedShape` dims, with optional affine weight and
 * bias. An input in another dtype than the weight (a bf16 activation under autocast, with
 * float32 LayerNorm weights) is normalised in the weight's dtype, as PyTorch's autocast runs
 * layer_norm in float32: its mean and variance need the precision.
 */
export function layerNorm(x: Tensor, normalizedShape: number[], weight: Tensor | null = null, bias: Tensor | null = null, eps = 1e-5): Tensor {
  const input = weight !== null && x.dtype !== weight.dtype ? x.to(weight.dtype) : x;
  return new Tensor(native.kt_layer_norm(input.handle, normalizedShape, weight?.handle, bias?.handle, eps));
}

/**
 * Rows of `weight` (num, dim) at int64 `indices` (…) → (…, dim). `paddingIdx` rows get no
 * gradient; a negative `paddingIdx` counts from the end, as in torch.nn.functional.embedding.
 */
export function embedding(indices: Tensor, weight: Tensor, paddingIdx: number | null = null): Tensor {
  let padding = -1; // ATen's "no padding row"
  if (paddingIdx !== null) {
    const num = weight.size(0);
    if (!Number.isInteger(paddingIdx) || paddingIdx < -num || paddingIdx >= num) {
      throw new Error(`embedding: paddingIdx ${paddingIdx} is out of range for ${num} embeddings`);
    }
    padding = paddingIdx < 0 ? paddingIdx + num : paddingIdx;
  }
  return new Tensor(native.kt_embedding(weight.handle, indices.handle, padding));
}

/** Inverted dropout: zeroes with probability p and scales survivors by 1/(1-p) when training. */
export function dropout(x: Tensor, p: number, training: boolean): Tensor {
  if (!(p >= 0 && p <= 1)) throw new Error(`dropout: p must be in [0, 1], got ${p}`);
  return new Tensor(native.kt_dropout(x.handle, p, training));
}

export function cat(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.kt_cat(tensors.map((t) => t.handle), dim));
}

export function stack(tensors: Tensor[], dim = 0): Tensor {
  return new Tensor(native.kt_stack(tensors.map((t) => t.handle), dim));
}

/**
 * Element-wise `condition ? a : b`, broadcasting. A number branch becomes a 0-d tensor that
 * promotes with the other branch as a Python scalar would: the tensor branch's dtype, except a
 * fractional number beside an integer or bool tensor gives float32 (and an integer beside a bool
 * tensor int64). Two number branches give float32 (JavaScript cannot tell 1 from 1.0), two
 * booleans give bool.
 */
export function where(condition: Tensor, a: Operand, b: Operand): Tensor {
  const like = a instanceof Tensor ? a : b instanceof Tensor ? b : null;
  const scalarDtype = (v: number | boolean): DType => {
    if (typeof v === 'boolean') return like?.dtype ?? 'bool';
    if (like === null || isFloatingDType(like.dtype)) return like?.dtype ?? 'float32';
    if (!Number.isInteger(v)) return 'float32';
    return like.dtype === 'bool' ? 'int64' : like.dtype;
  };
  const asTensor = (v: Operand): Tensor =>
    v instanceof Tensor ? v : full([], v, { dtype: scalarDtype(v), device: like?.device ?? condition.device });
  const ta = asTensor(a);
  const tb = asTensor(b);
  try {
    return new Tensor(native.kt_where(condition.handle, ta.handle, tb.handle));
  } finally {
    if (ta !== a) ta.dispose();
    if (tb !== b) tb.dispose();
  }
}

/**
 * Cross entropy of logits (N, C) against class indices (N) int64 or class probabilities (N, C):
 * `-Σ_c y_c log softmax(x)_c`, averaged over non-ignored rows for 'mean'.
 */
export function crossEntropy(
  logits: Tensor,
  target: Tensor,
  options: { weight?: Tensor; reduction?: Reduction; ignoreIndex?: number; labelSmoothing?: number } = {},
): Tensor {
  return new Tensor(
    native.kt_cross_entropy(logits.handle, target.handle, options.weight?.handle, options.reduction ?? 'mean', options.ignoreIndex ?? -100, options.labelSmoothing ?? 0),
  );
}

/** `-w [p·y·log σ(x) + (1-y)·log(1-σ(x))]` computed stably from logits. */
export function binaryCrossEntropyWithLogits(
  logits: Tensor,
  target: Tensor,
  options: { weight?: Tensor; posWeight?: Tensor; reduction?: Reduction } = {},
): Tensor {
  return new Tensor(native.kt_bce_with_logits(logits.handle, target.handle, options.weight?.handle, options.posWeight?.handle, options.reduction ?? 'mean'));
}

/** `(input - target)²`, reduced. */
export function mseLoss(input: Tensor, target: Tensor, options: { reduction?: Reduction } = {}): Tensor {
  return new Tensor(native.kt_mse_loss(input.handle, target.handle, options.reduction ?? 'mean'));
}

/**
 * `Σ target · (log target − input)` with `input` in log space (torch.nn.functional.kl_div).
 * 'batchmean' divides the sum by the batch size (dim 0), which is the true KL divergence per row.
 */
export function klDiv(input: Tensor, target: Tensor, options: { reduction?: Reduction | 'batchmean'; logTarget?: boolean } = {}): Tensor {
  const reduction = options.reduction ?? 'mean';
  if (reduction === 'batchmean') {
    const summed = new Tensor(native.kt_kl_div(input.handle, target.handle, 'sum', options.logTarget === true));
    try {
      return summed.div(input.ndim === 0 ? 1 : input.size(0));
    } finally {
      summed.dispose();
    }
  }
  return new Tensor(native.kt_kl_div(input.handle, target.handle, reduction, options.logTarget === true));
}

/**
 * Grad-mode and autocast scopes. Each sets libtorch's thread-local mode and restores the
 * previous one in `finally`, so scopes nest and survive exceptions (tch-rs's `no_grad`).
 */
import { native } from './native.js';
import { dtypeCode, type DType } from './dtype.js';

/** Runs `fn` with gradient recording off (evaluation, optimizer-like updates, init). */
export function noGrad<T>(fn: () => T): T {
  const previous = native.kg_set_grad_enabled(false);
  try {
    return fn();
  } finally {
    native.kg_set_grad_enabled(previous);
  }
}

/** Runs `fn` with gradient recording on, even inside `noGrad`. */
export function enableGrad<T>(fn: () => T): T {
  const previous = native.kg_set_grad_enabled(true);
  try {
    return fn();
  } finally {
    native.kg_set_grad_enabled(previous);
  }
}

export function isGradEnabled(): boolean {
  return native.kg_is_grad_enabled();
}

/**
 * Mixed precision: inside `fn`, libtorch's autocast runs matmul-like ops in `dtype`
 * (bfloat16 by default) and keeps reductions and losses in float32, as `torch.autocast` does.
 * The cast cache is cleared when the outermost autocast region exits.
 */
export function autocast<T>(fn: () => T, options: { device?: 'cpu' | 'cuda'; dtype?: DType } = {}): T {
  const device = options.device ?? 'cpu';
  const dtype = options.dtype ?? 'bfloat16';
  if (dtype !== 'bfloat16' && dtype !== 'float16') throw new Error(`autocast: dtype must be 'bfloat16' or 'float16', got '${dtype}'`);
  const [wasEnabled, previousDtype] = native.kg_autocast_enter(device, dtypeCode(dtype));
  try {
    return fn();
  } finally {
    native.kg_autocast_exit(device, wasEnabled, previousDtype);
  }
}

/**
 * Loads the libtorch addon built by `npm ci` (binding.gyp → build/Release/kiln_native.node)
 * and types its flat functions. Nothing outside src/engine imports this file.
 */
import { createRequire } from 'node:module';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

import { decideMallocTuning } from './allocator.js';

/**
 * A handle to a `torch::Tensor` in the shim's slot table: a number (slot index plus a
 * generation, so a stale handle is refused rather than dereferenced).
 */
export type TensorHandle = number & { readonly __brand: 'TensorHandle' };
/** An opaque handle to a `torch::optim::Optimizer`. */
export type OptimizerHandle = { readonly __brand: 'OptimizerHandle' };

type H = TensorHandle;
type Scalar = number | boolean;
type Reduction = 'none' | 'mean' | 'sum';

export interface BuildInfo {
  torchVersion: string;
  cudaCompiled: boolean;
  cudaAvailable: boolean;
  cudaDeviceCount: number;
  mkldnn: boolean;
  parallelInfo: string;
}

export interface NativeGroup {
  params: H[];
  lr: number;
  weightDecay: number;
}

export interface NativeBinding {
  kt_free(t: H): void;
  kt_manual_seed(seed: number): void;
  kt_zeros(shape: number[], dtype: number, device: string): H;
  kt_ones(shape: number[], dtype: number, device: string): H;
  kt_empty(shape: number[], dtype: number, device: string): H;
  kt_full(shape: number[], value: number | boolean, dtype: number, device: string): H;
  kt_arange(start: number, end: number, step: number, dtype: number, device: string): H;
  kt_randn(shape: number[], dtype: number, device: string): H;
  kt_rand(shape: number[], dtype: number, device: string): H;
  kt_randint(low: number, high: number, shape: number[], dtype: number, device: string): H;
  kt_randperm(n: number, device: string): H;
  kt_from_buffer(data: ArrayBufferView | ArrayBuffer, dtype: number, shape: number[], device: string, share: boolean): H;
  kt_to_buffer(t: H, share: boolean): ArrayBuffer;
  kt_shape(t: H): number[];
  kt_dtype(t: H): number;
  kt_device(t: H): string;
  kt_numel(t: H): number;
  kt_is_contiguous(t: H): boolean;
  kt_item(t: H): number;
  kt_to_string(t: H): string;
  kt_to(t: H, dtype: number, device: string): H;
  kt_clone(t: H): H;
  kt_contiguous(t: H): H;
  kt_set_requires_grad(t: H, on: boolean): void;
  kt_requires_grad(t: H): boolean;
  kt_backward(t: H, grad: H | undefined, retainGraph: boolean): void;
  kt_grad(t: H): H | undefined;
  kt_zero_grad(t: H, setToNone: boolean): void;
  kt_detach(t: H): H;
  kt_clip_grad_norm(params: H[], maxNorm: number, normType: number): number;

  kt_add(a: H, b: H): H;
  kt_add_scalar(a: H, b: Scalar): H;
  kt_sub(a: H, b: H): H;
  kt_sub_scalar(a: H, b: Scalar): H;
  kt_mul(a: H, b: H): H;
  kt_mul_scalar(a: H, b: Scalar): H;
  kt_div(a: H, b: H): H;
  kt_div_scalar(a: H, b: Scalar): H;
  kt_pow(a: H, b: H): H;
  kt_pow_scalar(a: H, b: Scalar): H;
  kt_eq(a: H, b: H): H;
  kt_eq_scalar(a: H, b: Scalar): H;
  kt_ne(a: H, b: H): H;
  kt_ne_scalar(a: H, b: Scalar): H;
  kt_lt(a: H, b: H): H;
  kt_lt_scalar(a: H, b: Scalar): H;
  kt_le(a: H, b: H): H;
  kt_le_scalar(a: H, b: Scalar): H;
  kt_gt(a: H, b: H): H;
  kt_gt_scalar(a: H, b: Scalar): H;
  kt_ge(a: H, b: H): H;
  kt_ge_scalar(a: H, b: Scalar): H;
  kt_remainder(a: H, b: H): H;
  kt_remainder_scalar(a: H, b: Scalar): H;
  kt_rsub(a: H, b: number): H;
  kt_maximum(a: H, b: H): H;
  kt_minimum(a: H, b: H): H;
  kt_logical_and(a: H, b: H): H;
  kt_logical_or(a: H, b: H): H;
  kt_logical_not(a: H): H;
  kt_neg(a: H): H;
  kt_abs(a: H): H;
  kt_exp(a: H): H;
  kt_log(a: H): H;
  kt_log1p(a: H): H;
  kt_sqrt(a: H): H;
  kt_rsqrt(a: H): H;
  kt_square(a: H): H;
  kt_tanh(a: H): H;
  kt_erf(a: H): H;
  kt_relu(a: H): H;
  kt_sigmoid(a: H): H;
  kt_sin(a: H): H;
  kt_cos(a: H): H;
  kt_sign(a: H): H;
  kt_isnan(a: H): H;
  kt_isfinite(a: H): H;
  kt_gelu(a: H, approximate: 'none' | 'tanh'): H;
  kt_clamp(a: H, min: number | undefined, max: number | undefined): H;
  kt_matmul(a: H, b: H): H;
  kt_bmm(a: H, b: H): H;
  kt_linear(x: H, weight: H, bias: H | undefined): H;
  kt_softmax(a: H, dim: number): H;
  kt_log_softmax(a: H, dim: number): H;
  kt_layer_norm(x: H, shape: number[], weight: H | undefined, bias: H | undefined, eps: number): H;
  kt_normalize(x: H, p: number, dim: number, eps: number): H;
  kt_embedding(weight: H, indices: H, paddingIdx: number): H;
  kt_dropout(x: H, p: number, train: boolean): H;
  kt_reshape(a: H, shape: number[]): H;
  kt_view(a: H, shape: number[]): H;
  kt_transpose(a: H, d0: number, d1: number): H;
  kt_permute(a: H, dims: number[]): H;
  kt_unsqueeze(a: H, dim: number): H;
  kt_squeeze(a: H, dim: number | undefined): H;
  kt_expand(a: H, shape: number[]): H;
  kt_flatten(a: H, start: number, end: number): H;
  kt_cat(list: H[], dim: number): H;
  kt_stack(list: H[], dim: number): H;
  kt_slice(a: H, dim: number, start: number, end: number, step: number): H;
  kt_narrow(a: H, dim: number, start: number, length: number): H;
  kt_select(a: H, dim: number, index: number): H;
  kt_index_select(a: H, dim: number, index: H): H;
  kt_gather(a: H, dim: number, index: H): H;
  kt_masked_fill(a: H, mask: H, value: number | boolean): H;
  kt_where(condition: H, a: H, b: H): H;
  kt_tril(a: H, diagonal: number): H;
  kt_triu(a: H, diagonal: number): H;
  kt_sum(a: H, dims: number[] | undefined, keepdim: boolean): H;
  kt_mean(a: H, dims: number[] | undefined, keepdim: boolean): H;
  kt_max(a: H, dim?: number, keepdim?: boolean): H | [H, H];
  kt_min(a: H, dim?: number, keepdim?: boolean): H | [H, H];
  kt_argmax(a: H, dim: number | undefined, keepdim: boolean): H;
  kt_logsumexp(a: H, dims: number[], keepdim: boolean): H;
  kt_norm(a: H, p: number, dims: number[], keepdim: boolean): H;
  kt_any(a: H): H;
  kt_all(a: H): H;
  kt_topk(a: H, k: number, dim: number, largest: boolean, sorted: boolean): [H, H];
  kt_sort(a: H, dim: number, descending: boolean, stable: boolean): [H, H];
  kt_cumsum(a: H, dim: number): H;
  kt_cross_entropy(logits: H, target: H, weight: H | undefined, reduction: Reduction, ignoreIndex: number, labelSmoothing: number): H;
  kt_bce_with_logits(logits: H, target: H, weight: H | undefined, posWeight: H | undefined, reduction: Reduction): H;
  kt_mse_loss(input: H, target: H, reduction: Reduction): H;
  kt_kl_div(input: H, target: H, reduction: Reduction, logTarget: boolean): H;
  kt_zero_(a: H): void;
  kt_fill_(a: H, value: number | boolean): void;
  kt_copy_(dst: H, src: H): void;
  kt_normal_(a: H, mean: number, std: number): void;
  kt_uniform_(a: H, from: number, to: number): void;
  kt_add_(a: H, other: H, alpha: number): void;
  kt_mul_(a: H, other: H): void;
  kt_mul_scalar_(a: H, other: number): void;

  kg_set_grad_enabled(on: boolean): boolean;
  kg_is_grad_enabled(): boolean;
  kg_autocast_enter(device: 'cpu' | 'cuda', dtype: number): [boolean, number];
  kg_autocast_exit(device: 'cpu' | 'cuda', wasEnabled: boolean, previousDtype: number): void;
  kg_set_num_threads(n: number): void;
  kg_get_num_threads(): number;
  kg_set_num_interop_threads(n: number): void;
  kg_get_num_interop_threads(): number;
  kg_build_info(): BuildInfo;
  kg_live_tensors(): number;
  kg_tune_malloc(mmapThreshold: number, trimThreshold: number): boolean;

  ko_adamw(groups: NativeGroup[], beta1: number, beta2: number, eps: number, amsgrad: boolean): OptimizerHandle;
  ko_sgd(groups: NativeGroup[], momentum: number, dampening: number, nesterov: boolean): OptimizerHandle;
  ko_step(o: OptimizerHandle): void;
  ko_zero_grad(o: OptimizerHandle, setToNone: boolean): void;
  ko_set_lr(o: OptimizerHandle, group: number, lr: number): void;
  ko_get_lr(o: OptimizerHandle, group: number): number;
  ko_group_count(o: OptimizerHandle): number;
  ko_save(o: OptimizerHandle): Buffer;
  ko_load(o: OptimizerHandle, state: Buffer): void;
  ko_free(o: OptimizerHandle): void;
}

function findAddon(): string {
  // Works from src/engine (tsx, vitest) and from dist/engine (the compiled package).
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'build', 'Release', 'kiln_native.node');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new Error(
    'Kiln native addon not found (build/Release/kiln_native.node). Run `npm ci` (or `npm run build`) ' +
      "with Debian's libtorch-dev installed, or set LIBTORCH to an unpacked pytorch.org libtorch.",
  );
}

export const native: NativeBinding = createRequire(import.meta.url)(findAddon()) as NativeBinding;

/**
 * What this process's malloc runs with (`kiln info` prints it). Applied here, as the addon
 * loads, so that every process that can allocate a tensor gets it before its first one.
 */
export const mallocSetting: string = (() => {
  const decision = decideMallocTuning(process.env);
  if (decision.tuning === null) return decision.reason;
  return native.kg_tune_malloc(decision.tuning.mmapThreshold, decision.tuning.trimThreshold)
    ? decision.reason
    : 'system default (this C library does not take glibc mallopt settings)';
})();

/**
 * `Tensor`: a typed, owned handle to a libtorch tensor.
 *
 * Methods mirror PyTorch's names in camelCase and return new tensors; in-place methods end in
 * an underscore and return `this`. Each result is tracked by the innermost `tidy` scope.
 * Shapes in comments read `(batch, seq, hidden)`.
 */
import { native, type TensorHandle } from './native.js';
import { track, type Owned } from './scope.js';
import {
  BYTES_PER_ELEMENT,
  DTYPES,
  DTYPE_CODES,
  TYPED_ARRAY_FOR,
  dtypeCode,
  dtypeFromCode,
  type AnyTypedArray,
  type DType,
  type Device,
  type TypedArrayFor,
} from './dtype.js';

export type Operand = Tensor | number | boolean;
export type Reduction = 'none' | 'mean' | 'sum';

// The GC backstop. Tensors that no scope owns (made outside `tidy`, returned from the
// outermost `tidy`, or `keep()`-ed) are registered here, so a forgotten one is freed when V8
// collects it. Registration is batched: a tensor disposed soon after it is made (the common
// case in a loop) never pays for it.
const backstop = new FinalizationRegistry<TensorHandle>((handle) => native.kt_free(handle));
const BACKSTOP_BATCH = 256;
let awaitingBackstop: Tensor[] = [];
let flushScheduled = false;

function flushBackstop(): void {
  const batch = awaitingBackstop;
  awaitingBackstop = [];
  flushScheduled = false;
  for (const t of batch) t.registerBackstop();
}

const enum GcState {
  ScopeOwned,
  Awaiting,
  Registered,
}

export class Tensor implements Owned {
  #handle: TensorHandle | null;
  #gc = GcState.ScopeOwned;

  /** Wraps a handle the shim just returned; the new Tensor owns it. */
  constructor(handle: TensorHandle) {
    this.#handle = handle;
    track(this);
  }

  /** Hands this tensor to the GC backstop (called by scopes when no scope owns it any more). */
  adoptByGc(): void {
    if (this.#gc !== GcState.ScopeOwned || this.#handle === null) return;
    this.#gc = GcState.Awaiting;
    awaitingBackstop.push(this);
    if (awaitingBackstop.length >= BACKSTOP_BATCH) {
      flushBackstop();
    } else if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushBackstop).unref();
    }
  }

  /** @internal */
  registerBackstop(): void {
    if (this.#handle === null || this.#gc !== GcState.Awaiting) return;
    this.#gc = GcState.Registered;
    backstop.register(this, this.#handle, this);
  }

  /** The native handle; throws once the tensor has been disposed. */
  get handle(): TensorHandle {
    if (this.#handle === null) throw new Error('this tensor was disposed; keep() it or return it from tidy() to use it later');
    return this.#handle;
  }

  get isDisposed(): boolean {
    return this.#handle === null;
  }

  /** Releases this handle's reference to the native tensor now. Safe to call twice. */
  dispose(): void {
    if (this.#handle === null) return;
    if (this.#gc === GcState.Registered) backstop.unregister(this);
    native.kt_free(this.#handle);
    this.#handle = null;
  }

  // ---- metadata ----
  get shape(): number[] {
    return native.kt_shape(this.handle);
  }
  get ndim(): number {
    return this.shape.length;
  }
  get dtype(): DType {
    return dtypeFromCode(native.kt_dtype(this.handle));
  }
  get device(): Device {
    return native.kt_device(this.handle) as Device;
  }
  get numel(): number {
    return native.kt_numel(this.handle);
  }
  size(dim: number): number {
    const shape = this.shape;
    const d = dim < 0 ? dim + shape.length : dim;
    const n = shape[d];
    if (n === undefined) throw new Error(`size(${dim}): dimension out of range for a tensor of shape [${shape.join(', ')}]`);
    return n;
  }
  isContiguous(): boolean {
    return native.kt_is_contiguous(this.handle);
  }
  toString(): string {
    return native.kt_to_string(this.handle);
  }

  // ---- reading values ----
  /** The single value of a one-element tensor (a device sync on CUDA). */
  item(): number {
    return native.kt_item(this.handle);
  }
  /**
   * The elements in row-major order. By default a copy. With `{ share: true }`, a contiguous
   * CPU tensor is returned without copying: the array aliases the tensor's memory (it sees
   * later in-place updates, and keeps the storage alive after `dispose`).
   */
  toTypedArray<D extends DType = DType>(options: { share?: boolean } = {}): TypedArrayFor[D] {
    const buffer = native.kt_to_buffer(this.handle, options.share === true);
    const Ctor = TYPED_ARRAY_FOR[this.dtype];
    return new Ctor(buffer) as TypedArrayFor[D];
  }
  /**
   * The elements as float32, in row-major order, whatever the dtype (a copy). Where a value may
   * come from autocast (a matmul in a bf16 step returns bfloat16), read it with this rather than
   * `toTypedArray<'float32'>()`, whose type parameter does not convert: it would return the
   * bfloat16 bit patterns as a Uint16Array.
   */
  toFloat32Array(): Float32Array {
    if (this.dtype === 'float32') return this.toTypedArray<'float32'>() as Float32Array;
    const converted = this.to('float32');
    try {
      return converted.toTypedArray<'float32'>() as Float32Array;
    } finally {
      converted.dispose();
    }
  }
  /** The elements as plain numbers (16-bit floats are widened through float32). */
  toArray(): number[] {
    const dtype = this.dtype;
    if (dtype === 'float16' || dtype === 'bfloat16') {
      const wide = this.to('float32');
      try {
        return wide.toArray();
      } finally {
        wide.dispose();
      }
    }
    const values = this.toTypedArray() as AnyTypedArray;
    return Array.from(values as ArrayLike<number | bigint>, Number);
  }

  // ---- conversion ----
  /** A tensor of another dtype and/or device (`to('bfloat16')`, `to('cuda')`, `to({dtype, device})`). */
  to(target: DType | Device | { dtype?: DType; device?: Device }): Tensor {
    let dtype = this.dtype;
    let device = this.device;
    if (typeof target === 'string') {
      if (target === 'cpu' || target.startsWith('cuda')) device = target as Device;
      else if (target in DTYPE_CODES) dtype = target as DType;
      else throw new Error(`to('${target}'): expected a dtype (${DTYPES.join(', ')}) or a device ('cpu', 'cuda', 'cuda:N')`);
    } else {
      dtype = target.dtype ?? dtype;
      device = target.device ?? device;
    }
    return new Tensor(native.kt_to(this.handle, dtypeCode(dtype), device));
  }
  float(): Tensor {
    return this.to('float32');
  }
  clone(): Tensor {
    return new Tensor(native.kt_clone(this.handle));
  }
  contiguous(): Tensor {
    return new Tensor(native.kt_contiguous(this.handle));
  }

  // ---- autograd ----
  get requiresGrad(): boolean {
    return native.kt_requires_grad(this.handle);
  }
  set requiresGrad(on: boolean) {
    native.kt_set_requires_grad(this.handle, on);
  }
  /** Marks this leaf as requiring gradients; returns `this` for chaining. */
  requiresGrad_(on = true): this {
    native.kt_set_requires_grad(this.handle, on);
    return this;
  }
  /** Back-propagates from this tensor; `gradient` is required unless it has one element. */
  backward(gradient?: Tensor, options: { retainGraph?: boolean } = {}): void {
    native.kt_backward(this.handle, gradient?.handle, options.retainGraph === true);
  }
  /** The accumulated gradient as a new handle, or null before any backward pass reached it. */
  get grad(): Tensor | null {
    const g = native.kt_grad(this.handle);
    return g === undefined ? null : new Tensor(g);
  }
  /** Zeroes the accumulated gradient (or drops it with `setToNone`). */
  zeroGrad(setToNone = false): void {
    native.kt_zero_grad(this.handle, setToNone);
  }
  detach(): Tensor {
    return new Tensor(native.kt_detach(this.handle));
  }

  // ---- element-wise arithmetic (broadcasting; `other` may be a number) ----
  add(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_add(this.handle, other.handle) : native.kt_add_scalar(this.handle, other));
  }
  sub(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_sub(this.handle, other.handle) : native.kt_sub_scalar(this.handle, other));
  }
  /** `value - this` */
  rsub(value: number): Tensor {
    return new Tensor(native.kt_rsub(this.handle, value));
  }
  mul(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_mul(this.handle, other.handle) : native.kt_mul_scalar(this.handle, other));
  }
  div(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_div(this.handle, other.handle) : native.kt_div_scalar(this.handle, other));
  }
  pow(exponent: Operand): Tensor {
    return new Tensor(exponent instanceof Tensor ? native.kt_pow(this.handle, exponent.handle) : native.kt_pow_scalar(this.handle, exponent));
  }
  remainder(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_remainder(this.handle, other.handle) : native.kt_remainder_scalar(this.handle, other));
  }
  maximum(other: Tensor): Tensor {
    return new Tensor(native.kt_maximum(this.handle, other.handle));
  }
  minimum(other: Tensor): Tensor {
    return new Tensor(native.kt_minimum(this.handle, other.handle));
  }
  neg(): Tensor {
    return new Tensor(native.kt_neg(this.handle));
  }
  abs(): Tensor {
    return new Tensor(native.kt_abs(this.handle));
  }
  exp(): Tensor {
    return new Tensor(native.kt_exp(this.handle));
  }
  log(): Tensor {
    return new Tensor(native.kt_log(this.handle));
  }
  log1p(): Tensor {
    return new Tensor(native.kt_log1p(this.handle));
  }
  sqrt(): Tensor {
    return new Tensor(native.kt_sqrt(this.handle));
  }
  rsqrt(): Tensor {
    return new Tensor(native.kt_rsqrt(this.handle));
  }
  square(): Tensor {
    return new Tensor(native.kt_square(this.handle));
  }
  tanh(): Tensor {
    return new Tensor(native.kt_tanh(this.handle));
  }
  erf(): Tensor {
    return new Tensor(native.kt_erf(this.handle));
  }
  /** GELU; `approximate: 'tanh'` is the GPT-2 form, the default is the exact erf form (BERT). */
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return new Tensor(native.kt_gelu(this.handle, approximate));
  }
  relu(): Tensor {
    return new Tensor(native.kt_relu(this.handle));
  }
  sigmoid(): Tensor {
    return new Tensor(native.kt_sigmoid(this.handle));
  }
  sin(): Tensor {
    return new Tensor(native.kt_sin(this.handle));
  }
  cos(): Tensor {
    return new Tensor(native.kt_cos(this.handle));
  }
  sign(): Tensor {
    return new Tensor(native.kt_sign(this.handle));
  }
  clamp(min?: number, max?: number): Tensor {
    return new Tensor(native.kt_clamp(this.handle, min, max));
  }

  // ---- comparisons and logic (bool results) ----
  eq(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_eq(this.handle, other.handle) : native.kt_eq_scalar(this.handle, other));
  }
  ne(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_ne(this.handle, other.handle) : native.kt_ne_scalar(this.handle, other));
  }
  lt(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_lt(this.handle, other.handle) : native.kt_lt_scalar(this.handle, other));
  }
  le(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_le(this.handle, other.handle) : native.kt_le_scalar(this.handle, other));
  }
  gt(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_gt(this.handle, other.handle) : native.kt_gt_scalar(this.handle, other));
  }
  ge(other: Operand): Tensor {
    return new Tensor(other instanceof Tensor ? native.kt_ge(this.handle, other.handle) : native.kt_ge_scalar(this.handle, other));
  }
  logicalAnd(other: Tensor): Tensor {
    return new Tensor(native.kt_logical_and(this.handle, other.handle));
  }
  logicalOr(other: Tensor): Tensor {
    return new Tensor(native.kt_logical_or(this.handle, other.handle));
  }
  logicalNot(): Tensor {
    return new Tensor(native.kt_logical_not(this.handle));
  }
  isnan(): Tensor {
    return new Tensor(native.kt_isnan(this.handle));
  }
  isfinite(): Tensor {
    return new Tensor(native.kt_isfinite(this.handle));
  }

  // ---- linear algebra ----
  matmul(other: Tensor): Tensor {
    return new Tensor(native.kt_matmul(this.handle, other.handle));
  }
  /** Batched matmul: (b, n, m) @ (b, m, p) → (b, n, p). */
  bmm(other: Tensor): Tensor {
    return new Tensor(native.kt_bmm(this.handle, other.handle));
  }

  // ---- along a dimension ----
  softmax(dim: number): Tensor {
    return new Tensor(native.kt_softmax(this.handle, dim));
  }
  logSoftmax(dim: number): Tensor {
    return new Tensor(native.kt_log_softmax(this.handle, dim));
  }
  /** `x / max(‖x‖_p, eps)` along `dim` (torch.nn.functional.normalize). */
  normalize(options: { p?: number; dim?: number; eps?: number } = {}): Tensor {
    return new Tensor(native.kt_normalize(this.handle, options.p ?? 2, options.dim ?? -1, options.eps ?? 1e-12));
  }

  // ---- shape ----
  reshape(...shape: number[]): Tensor {
    return new Tensor(native.kt_reshape(this.handle, shape));
  }
  view(...shape: number[]): Tensor {
    return new Tensor(native.kt_view(this.handle, shape));
  }
  transpose(dim0: number, dim1: number): Tensor {
    return new Tensor(native.kt_transpose(this.handle, dim0, dim1));
  }
  permute(...dims: number[]): Tensor {
    return new Tensor(native.kt_permute(this.handle, dims));
  }
  unsqueeze(dim: number): Tensor {
    return new Tensor(native.kt_unsqueeze(this.handle, dim));
  }
  squeeze(dim?: number): Tensor {
    return new Tensor(native.kt_squeeze(this.handle, dim));
  }
  expand(...shape: number[]): Tensor {
    return new Tensor(native.kt_expand(this.handle, shape));
  }
  flatten(startDim = 0, endDim = -1): Tensor {
    return new Tensor(native.kt_flatten(this.handle, startDim, endDim));
  }
  /** Python-style `t[start:end:step]` along `dim` (end is clipped to the size). */
  slice(dim: number, start: number, end: number, step = 1): Tensor {
    return new Tensor(native.kt_slice(this.handle, dim, start, end, step));
  }
  narrow(dim: number, start: number, length: number): Tensor {
    return new Tensor(native.kt_narrow(this.handle, dim, start, length));
  }
  select(dim: number, index: number): Tensor {
    return new Tensor(native.kt_select(this.handle, dim, index));
  }
  indexSelect(dim: number, index: Tensor): Tensor {
    return new Tensor(native.kt_index_select(this.handle, dim, index.handle));
  }
  gather(dim: number, index: Tensor): Tensor {
    return new Tensor(native.kt_gather(this.handle, dim, index.handle));
  }
  maskedFill(mask: Tensor, value: number | boolean): Tensor {
    return new Tensor(native.kt_masked_fill(this.handle, mask.handle, value));
  }
  tril(diagonal = 0): Tensor {
    return new Tensor(native.kt_tril(this.handle, diagonal));
  }
  triu(diagonal = 0): Tensor {
    return new Tensor(native.kt_triu(this.handle, diagonal));
  }

  // ---- reductions ----
  sum(dims?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.kt_sum(this.handle, dims === undefined ? undefined : [dims].flat(), options.keepdim === true));
  }
  mean(dims?: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.kt_mean(this.handle, dims === undefined ? undefined : [dims].flat(), options.keepdim === true));
  }
  /** The largest element (no `dim`), or `{values, indices}` along `dim`. */
  max(): Tensor;
  max(dim: number, options?: { keepdim?: boolean }): { values: Tensor; indices: Tensor };
  max(dim?: number, options: { keepdim?: boolean } = {}): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return new Tensor(native.kt_max(this.handle) as TensorHandle);
    const [values, indices] = native.kt_max(this.handle, dim, options.keepdim === true) as [TensorHandle, TensorHandle];
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  min(): Tensor;
  min(dim: number, options?: { keepdim?: boolean }): { values: Tensor; indices: Tensor };
  min(dim?: number, options: { keepdim?: boolean } = {}): Tensor | { values: Tensor; indices: Tensor } {
    if (dim === undefined) return new Tensor(native.kt_min(this.handle) as TensorHandle);
    const [values, indices] = native.kt_min(this.handle, dim, options.keepdim === true) as [TensorHandle, TensorHandle];
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  argmax(dim?: number, options: { keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.kt_argmax(this.handle, dim, options.keepdim === true));
  }
  logsumexp(dims: number | number[], options: { keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.kt_logsumexp(this.handle, [dims].flat(), options.keepdim === true));
  }
  norm(p = 2, dims: number | number[] = -1, options: { keepdim?: boolean } = {}): Tensor {
    return new Tensor(native.kt_norm(this.handle, p, [dims].flat(), options.keepdim === true));
  }
  any(): Tensor {
    return new Tensor(native.kt_any(this.handle));
  }
  all(): Tensor {
    return new Tensor(native.kt_all(this.handle));
  }
  /** The k largest (or smallest) entries along `dim`. Ties keep libtorch's order. */
  topk(k: number, options: { dim?: number; largest?: boolean; sorted?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = native.kt_topk(this.handle, k, options.dim ?? -1, options.largest ?? true, options.sorted ?? true);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  /** Sorted along `dim`; `stable` keeps equal elements in their original order. */
  sort(options: { dim?: number; descending?: boolean; stable?: boolean } = {}): { values: Tensor; indices: Tensor } {
    const [values, indices] = native.kt_sort(this.handle, options.dim ?? -1, options.descending ?? false, options.stable ?? false);
    return { values: new Tensor(values), indices: new Tensor(indices) };
  }
  cumsum(dim: number): Tensor {
    return new Tensor(native.kt_cumsum(this.handle, dim));
  }

  // ---- in place (use under noGrad for parameters) ----
  zero_(): this {
    native.kt_zero_(this.handle);
    return this;
  }
  fill_(value: number | boolean): this {
    native.kt_fill_(this.handle, value);
    return this;
  }
  copy_(source: Tensor): this {
    native.kt_copy_(this.handle, source.handle);
    return this;
  }
  normal_(mean = 0, std = 1): this {
    native.kt_normal_(this.handle, mean, std);
    return this;
  }
  uniform_(from = 0, to = 1): this {
    native.kt_uniform_(this.handle, from, to);
    return this;
  }
  /** `this += alpha * other` */
  add_(other: Tensor, alpha = 1): this {
    native.kt_add_(this.handle, other.handle, alpha);
    return this;
  }
  mul_(other: Tensor | number): this {
    if (other instanceof Tensor) native.kt_mul_(this.handle, other.handle);
    else native.kt_mul_scalar_(this.handle, other);
    return this;
  }

  /** Bytes of element data (numel × element size); views report their own extent. */
  get nbytes(): number {
    return this.numel * BYTES_PER_ELEMENT[this.dtype];
  }
}

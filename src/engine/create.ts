/**
 * Tensor factories. Every factory takes `{ dtype, device }`; the default is float32 on the CPU.
 * Random factories draw from the global generator that `manualSeed` seeds.
 *
 * @example
 * const x = tensor([[1, 2], [3, 4]]);           // float32 (2, 2)
 * const ids = tensor([101, 2054, 102], { dtype: 'int64' });
 * const w = randn([768, 768], { device: 'cuda' });
 */
import { native } from './native.js';
import { Tensor } from './tensor.js';
import { BYTES_PER_ELEMENT, dtypeCode, dtypeOfTypedArray, type DType, type Device } from './dtype.js';

export interface TensorOptions {
  dtype?: DType;
  device?: Device;
  /** Leaf tensors only: mark for gradient tracking after creation. */
  requiresGrad?: boolean;
}

type Nested = number | boolean | readonly Nested[];

function finish(t: Tensor, options: TensorOptions): Tensor {
  if (options.requiresGrad === true) t.requiresGrad = true;
  return t;
}

function inferShape(data: Nested): number[] {
  const shape: number[] = [];
  let level: Nested = data;
  while (Array.isArray(level)) {
    shape.push(level.length);
    level = (level as readonly Nested[])[0] as Nested;
    if (level === undefined) break;
  }
  return shape;
}

function flattenChecked(data: Nested, shape: number[], depth: number, out: number[], path: string): void {
  if (depth === shape.length) {
    if (Array.isArray(data)) throw new Error(`tensor(): ragged nested array at ${path}: expected a number, got an array`);
    out.push(typeof data === 'boolean' ? Number(data) : (data as number));
    return;
  }
  if (!Array.isArray(data) || data.length !== shape[depth]) {
    throw new Error(`tensor(): ragged nested array at ${path}: expected ${shape[depth]} elements, got ${Array.isArray(data) ? data.length : 'a number'}`);
  }
  (data as readonly Nested[]).forEach((item, i) => flattenChecked(item, shape, depth + 1, out, `${path}[${i}]`));
}

/**
 * A tensor from nested arrays or a typed array (copied). A typed array is 1-D unless `shape`
 * is given; 16-bit float arrays need an explicit `dtype`.
 */
export function tensor(data: Nested | ArrayBufferView, options: TensorOptions & { shape?: number[] } = {}): Tensor {
  if (ArrayBuffer.isView(data)) {
    return fromTypedArray(data, { ...options, shape: options.shape ?? [data.byteLength / BYTES_PER_ELEMENT[options.dtype ?? dtypeOfTypedArray(data)]] });
  }
  const nestedShape = inferShape(data);
  const flat: number[] = [];
  flattenChecked(data, nestedShape, 0, flat, 'data');
  const shape = options.shape ?? nestedShape;
  const dtype = options.dtype ?? (typeof (Array.isArray(data) ? data.flat(Infinity)[0] : data) === 'boolean' ? 'bool' : 'float32');
  // Build the bytes in a wide type libtorch converts from exactly, then cast on the native side.
  const staging = native.kt_from_buffer(new Float64Array(flat), dtypeCode('float64'), shape, 'cpu', false);
  try {
    return finish(new Tensor(native.kt_to(staging, dtypeCode(dtype), options.device ?? 'cpu')), options);
  } finally {
    native.kt_free(staging);
  }
}

/**
 * A tensor over a typed array's elements. Copies by default; with `share: true` a CPU tensor
 * borrows the array's memory (no copy): writes on either side are seen by the other, and the
 * array must not be transferred or detached while the tensor lives.
 */
export function fromTypedArray(
  data: ArrayBufferView,
  options: TensorOptions & { shape: number[]; share?: boolean },
): Tensor {
  const dtype = options.dtype ?? dtypeOfTypedArray(data);
  const t = new Tensor(native.kt_from_buffer(data, dtypeCode(dtype), options.shape, options.device ?? 'cpu', options.share === true));
  return finish(t, options);
}

/** A tensor over raw little-endian bytes (used by safetensors I/O); always copies. */
export function fromBytes(bytes: Uint8Array, dtype: DType, shape: number[], device: Device = 'cpu'): Tensor {
  return new Tensor(native.kt_from_buffer(bytes, dtypeCode(dtype), shape, device, false));
}

function dt(options: TensorOptions): [number, string] {
  return [dtypeCode(options.dtype ?? 'float32'), options.device ?? 'cpu'];
}

export function zeros(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_zeros(shape, ...dt(options))), options);
}
export function ones(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_ones(shape, ...dt(options))), options);
}
export function empty(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_empty(shape, ...dt(options))), options);
}
export function full(shape: number[], value: number | boolean, options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_full(shape, value, ...dt(options))), options);
}
/** Values from `start` up to (not including) `end`; int64 unless a dtype is given. */
export function arange(start: number, end: number, step = 1, options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_arange(start, end, step, dtypeCode(options.dtype ?? 'int64'), options.device ?? 'cpu')), options);
}
/** Standard normal samples from the seeded generator. */
export function randn(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_randn(shape, ...dt(options))), options);
}
/** Uniform samples in [0, 1) from the seeded generator. */
export function rand(shape: number[], options: TensorOptions = {}): Tensor {
  return finish(new Tensor(native.kt_rand(shape, ...dt(options))), options);
}
/** Integers uniform in [low, high); int64 unless a dtype is given. */
export function randint(low: number, high: number, shape: number[], options: TensorOptions = {}): Tensor {
  return new Tensor(native.kt_randint(low, high, shape, dtypeCode(options.dtype ?? 'int64'), options.device ?? 'cpu'));
}
/** A random permutation of 0..n-1 (int64). */
export function randperm(n: number, options: { device?: Device } = {}): Tensor {
  return new Tensor(native.kt_randperm(n, options.device ?? 'cpu'));
}
export function zerosLike(t: Tensor): Tensor {
  return zeros(t.shape, { dtype: t.dtype, device: t.device });
}
export function onesLike(t: Tensor): Tensor {
  return ones(t.shape, { dtype: t.dtype, device: t.device });
}

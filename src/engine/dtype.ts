/**
 * Element types and devices.
 *
 * The numeric codes are libtorch's `c10::ScalarType` values; the shim checks them against the
 * list it supports, so a wrong code is an error rather than undefined behaviour.
 */
export const DTYPE_CODES = {
  uint8: 0,
  int32: 3,
  int64: 4,
  float16: 5,
  float32: 6,
  float64: 7,
  bool: 11,
  bfloat16: 15,
} as const;

export type DType = keyof typeof DTYPE_CODES;
export const DTYPES = Object.keys(DTYPE_CODES) as DType[];

const NAME_BY_CODE = new Map<number, DType>(DTYPES.map((name) => [DTYPE_CODES[name], name]));

/** `cpu`, `cuda` or `cuda:N`. */
export type Device = 'cpu' | 'cuda' | `cuda:${number}`;

export const BYTES_PER_ELEMENT: Record<DType, number> = {
  uint8: 1,
  int32: 4,
  int64: 8,
  float16: 2,
  float32: 4,
  float64: 8,
  bool: 1,
  bfloat16: 2,
};

/** The JavaScript view over a tensor's bytes; 16-bit floats are exposed as their raw bits. */
export interface TypedArrayFor {
  uint8: Uint8Array;
  int32: Int32Array;
  int64: BigInt64Array;
  float16: Uint16Array;
  float32: Float32Array;
  float64: Float64Array;
  bool: Uint8Array;
  bfloat16: Uint16Array;
}
export type AnyTypedArray = TypedArrayFor[DType];

type TypedArrayConstructor = new (buffer: ArrayBufferLike, byteOffset?: number, length?: number) => AnyTypedArray;
export const TYPED_ARRAY_FOR: Record<DType, TypedArrayConstructor> = {
  uint8: Uint8Array,
  int32: Int32Array,
  int64: BigInt64Array,
  float16: Uint16Array,
  float32: Float32Array,
  float64: Float64Array,
  bool: Uint8Array,
  bfloat16: Uint16Array,
};

export function dtypeCode(dtype: DType): number {
  const code = DTYPE_CODES[dtype];
  if (code === undefined) throw new Error(`unknown dtype '${String(dtype)}': expected one of ${DTYPES.join(', ')}`);
  return code;
}

export function dtypeFromCode(code: number): DType {
  const name = NAME_BY_CODE.get(code);
  if (name === undefined) throw new Error(`libtorch returned dtype code ${code}, which Kiln does not map`);
  return name;
}

export function isFloatingDType(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** The dtype a typed array holds when no dtype is given; 16-bit arrays are ambiguous. */
export function dtypeOfTypedArray(array: ArrayBufferView): DType {
  if (array instanceof Float32Array) return 'float32';
  if (array instanceof Float64Array) return 'float64';
  if (array instanceof Int32Array) return 'int32';
  if (array instanceof BigInt64Array) return 'int64';
  if (array instanceof Uint8Array) return 'uint8';
  throw new Error(`cannot infer a dtype from ${array.constructor.name}: pass { dtype } (for example 'bfloat16' for a Uint16Array of raw bits)`);
}

/**
 * safetensors I/O: named tensors in Hugging Face's safetensors format, readable by Python's
 * `safetensors` package and by `transformers`.
 *
 * Layout (https://github.com/huggingface/safetensors, "Format"):
 *   8 bytes   N, the header length, unsigned little-endian
 *   N bytes   UTF-8 JSON: { name: { dtype, shape, data_offsets: [begin, end] }, "__metadata__": { str: str } }
 *             padded with spaces so the data starts 8-byte aligned
 *   rest      the tensors' bytes, row-major little-endian, at their offsets (no gaps, no overlaps)
 */
import { readFileSync } from 'node:fs';
import { native } from './native.js';
import { fromBytes } from './create.js';
import { Tensor } from './tensor.js';
import type { DType, Device } from './dtype.js';
import { writeFileAtomic } from '../util/atomic-write.js';

const TO_SAFETENSORS: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  uint8: 'U8',
  bool: 'BOOL',
};
const FROM_SAFETENSORS = new Map<string, DType>(Object.entries(TO_SAFETENSORS).map(([k, v]) => [v, k as DType]));

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

/**
 * Writes `tensors` to `path` atomically (temporary file, then rename). Names are stored in
 * sorted order so the same tensors always give the same bytes.
 */
export function saveSafetensors(path: string, tensors: Record<string, Tensor> | Map<string, Tensor>, metadata: Record<string, string> = {}): void {
  const entries = [...(tensors instanceof Map ? tensors.entries() : Object.entries(tensors))].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
  const header: Record<string, HeaderEntry | Record<string, string>> = {};
  if (Object.keys(metadata).length > 0) header.__metadata__ = metadata;
  const blobs: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of entries) {
    if (name === '__metadata__') throw new Error(`saveSafetensors(${path}): '__metadata__' is reserved and cannot name a tensor`);
    const bytes = new Uint8Array(native.kt_to_buffer(t.handle, false));
    header[name] = { dtype: TO_SAFETENSORS[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.byteLength] };
    blobs.push(bytes);
    offset += bytes.byteLength;
  }
  let json = JSON.stringify(header);
  const unpadded = Buffer.byteLength(json, 'utf8');
  json += ' '.repeat((8 - ((8 + unpadded) % 8)) % 8);
  const jsonBytes = Buffer.from(json, 'utf8');
  const prefix = Buffer.alloc(8);
  prefix.writeBigUInt64LE(BigInt(jsonBytes.byteLength));
  writeFileAtomic(path, [prefix, jsonBytes, ...blobs]);
}

export interface LoadedSafetensors {
  tensors: Map<string, Tensor>;
  metadata: Record<string, string>;
}

/** Reads every tensor in `path` (copied into libtorch memory, on `device`). */
export function loadSafetensors(path: string, options: { device?: Device } = {}): LoadedSafetensors {
  const file = readFileSync(path);
  const fail = (why: string): never => {
    throw new Error(`${path}: not a valid safetensors file: ${why}`);
  };
  if (file.byteLength < 8) fail(`the file has ${file.byteLength} bytes, fewer than the 8-byte header length`);
  const headerLength = Number(file.readBigUInt64LE(0));
  if (8 + headerLength > file.byteLength) fail(`the header length ${headerLength} runs past the end of the file (${file.byteLength} bytes)`);
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(file.subarray(8, 8 + headerLength).toString('utf8')) as Record<string, unknown>;
  } catch (error) {
    return fail(`the header is not JSON (${(error as Error).message})`);
  }
  const dataStart = 8 + headerLength;
  const dataLength = file.byteLength - dataStart;
  const metadata = (header.__metadata__ ?? {}) as Record<string, string>;
  checkLayout(header, dataLength, fail);
  const tensors = new Map<string, Tensor>();
  try {
    for (const [name, raw] of Object.entries(header)) {
      if (name === '__metadata__') continue;
      const entry = raw as HeaderEntry;
      const dtype = FROM_SAFETENSORS.get(entry.dtype);
      if (dtype === undefined) fail(`tensor '${name}' has dtype '${entry.dtype}'; Kiln reads ${[...FROM_SAFETENSORS.keys()].join(', ')}`);
      const [begin, end] = entry.data_offsets ?? [];
      if (!Number.isInteger(begin) || !Number.isInteger(end) || begin! < 0 || end! < begin! || end! > dataLength) {
        fail(`tensor '${name}' has data_offsets ${JSON.stringify(entry.data_offsets)} outside the ${dataLength}-byte data section`);
      }
      const bytes = file.subarray(dataStart + begin!, dataStart + end!);
      tensors.set(name, fromBytes(bytes, dtype!, entry.shape, options.device ?? 'cpu'));
    }
  } catch (error) {
    for (const t of tensors.values()) t.dispose();
    if (error instanceof Error && !error.message.startsWith(path)) error.message = `${path}: ${error.message}`;
    throw error;
  }
  return { tensors, metadata };
}

/** The spec requires the tensors' byte ranges to tile the data section: no gaps, no overlaps. */
function checkLayout(header: Record<string, unknown>, dataLength: number, fail: (why: string) => never): void {
  const ranges = Object.entries(header)
    .filter(([name]) => name !== '__metadata__')
    .map(([name, raw]) => ({ name, offsets: (raw as Partial<HeaderEntry>).data_offsets }))
    .filter((r): r is { name: string; offsets: [number, number] } => Array.isArray(r.offsets) && r.offsets.length === 2)
    .sort((a, b) => a.offsets[0] - b.offsets[0] || a.offsets[1] - b.offsets[1]);
  let covered = 0;
  for (const { name, offsets } of ranges) {
    if (offsets[1] > dataLength) fail(`tensor '${name}' has data_offsets ${JSON.stringify(offsets)} outside the ${dataLength}-byte data section`);
    if (offsets[0] !== covered) {
      fail(`tensor '${name}' starts at byte ${offsets[0]} of the data section, expected ${covered} (${offsets[0] < covered ? 'it overlaps the previous tensor' : 'the data has a gap'})`);
    }
    covered = offsets[1];
  }
  if (ranges.length > 0 && covered !== dataLength) fail(`the tensors cover ${covered} bytes of a ${dataLength}-byte data section`);
}

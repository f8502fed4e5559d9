/**
 * safetensors interchange with Hugging Face's own implementation, both ways, bit for bit.
 *
 * The reference is the `safetensors` package on the reference Python (/usr/bin/python3 with
 * torch 1.13; the wheel is unpacked into .cache/pylib by test/reference/ensure.mjs, which
 * `npm test` runs first). Python reports each tensor's dtype, shape, raw bytes (hex) and
 * values (repr strings, so NaN, ±inf and -0.0 survive), and both sides must agree exactly.
 *
 * Also: malformed files fail with an error naming the path, and saving is atomic.
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  Tensor,
  arange,
  fromTypedArray,
  loadSafetensors,
  ones,
  saveSafetensors,
  tensor,
  tidy,
  zeros,
  type DType,
} from '../src/engine/index.js';
import { writeFileAtomic } from '../src/util/atomic-write.js';
import { REPO_ROOT, runPython } from './helpers/python.js';

let dir = '';
beforeAll(() => {
  if (!existsSync(join(REPO_ROOT, '.cache', 'pylib', 'safetensors', '__init__.py'))) {
    throw new Error('Python safetensors is missing from .cache/pylib: run `npm run refs` (node test/reference/ensure.mjs)');
  }
  dir = mkdtempSync(join(tmpdir(), 'kiln-safetensors-'));
});
afterAll(() => {
  if (dir !== '') rmSync(dir, { recursive: true, force: true });
});

/** What the Python side reports for one tensor. */
interface Described {
  dtype: string;
  shape: number[];
  hex: string;
  values: string[];
}
interface DescribedFile {
  keys: string[];
  metadata: Record<string, string> | null;
  tensors: Record<string, Described>;
}

const TORCH_DTYPE: Record<DType, string> = {
  float32: 'torch.float32',
  float64: 'torch.float64',
  float16: 'torch.float16',
  bfloat16: 'torch.bfloat16',
  int64: 'torch.int64',
  int32: 'torch.int32',
  uint8: 'torch.uint8',
  bool: 'torch.bool',
};

/** Python helper: describes a {name: tensor} dict as JSON on stdout. */
const DESCRIBE = String.raw`
import json
import torch
def describe(tensors, metadata, keys):
    def value(v):
        return repr(v) if isinstance(v, (float, bool)) else str(v)
    out = {}
    for name, t in tensors.items():
        flat = t.contiguous().reshape(-1)
        values = flat.double().tolist() if t.is_floating_point() else flat.tolist()
        out[name] = {
            'dtype': str(t.dtype),
            'shape': list(t.shape),
            'hex': flat.view(torch.uint8).numpy().tobytes().hex(),
            'values': [value(v) for v in values],
        }
    print(json.dumps({'keys': sorted(keys), 'metadata': metadata, 'tensors': out}))
`;

/** Kiln's view of a tensor in the same form as DESCRIBE's. */
function describeTensor(t: Tensor): Described {
  const dtype = t.dtype;
  const bytes = new Uint8Array(t.toTypedArray().buffer);
  let values: string[];
  if (dtype === 'int64') values = Array.from(t.toTypedArray<'int64'>(), (v) => v.toString());
  else if (dtype === 'bool') values = t.toArray().map((v) => (v !== 0 ? 'True' : 'False'));
  else values = t.toArray().map((v) => pythonRepr(v, dtype));
  return { dtype: TORCH_DTYPE[dtype], shape: t.shape, hex: Buffer.from(bytes).toString('hex'), values };
}

/** Integers as Python's str(int); floats as a value Python's repr would parse to the same double. */
function pythonRepr(v: number, dtype: DType): string {
  if (dtype === 'int32' || dtype === 'uint8') return String(v);
  if (Number.isNaN(v)) return 'nan';
  if (v === Infinity) return 'inf';
  if (v === -Infinity) return '-inf';
  return Object.is(v, -0) ? '-0.0' : String(v);
}

/** Compares float reprs numerically (Python and JavaScript print some doubles differently). */
function expectSameValues(actual: string[], expected: string[], what: string): void {
  expect(actual.length, `${what}: length`).toBe(expected.length);
  const parse = (s: string) => (s === 'nan' ? NaN : s === 'inf' ? Infinity : s === '-inf' ? -Infinity : s === 'True' ? 1 : s === 'False' ? 0 : Number(s));
  actual.forEach((a, i) => {
    const e = expected[i]!;
    if (/^-?\d+$/.test(e) && /^-?\d+$/.test(a)) expect(BigInt(a), `${what}[${i}]`).toBe(BigInt(e));
    else expect(Object.is(parse(a), parse(e)) || parse(a) === parse(e), `${what}[${i}]: ${a} vs ${e}`).toBe(true);
  });
}

/** A tensor over the given little-endian elements (copied), with an explicit dtype. */
function typed(data: ArrayBufferView, dtype: DType, shape: number[]): Tensor {
  return fromTypedArray(data, { dtype, shape });
}

describe('Kiln writes, Python safetensors reads', () => {
  it('every dtype, a 0-d scalar, an empty tensor, a transposed view and metadata round-trip exactly', () => {
    const path = join(dir, 'from-kiln.safetensors');
    const metadata = { format: 'pt', note: 'written by Kiln ✓', steps: '1200' };
    const tensors = tidy(() => {
      const specials = new Float32Array([0, -0, 1.5, -2.25, 3.4028234663852886e38, 1.401298464324817e-45, Infinity, -Infinity, NaN, 1 / 3]);
      return {
        'embeddings.word_embeddings.weight': fromTypedArray(specials, { shape: [2, 5] }),
        'f64.values': fromTypedArray(new Float64Array([Math.PI, -Math.E, 1e-300, -1e300, 5e-324, 0.1]), { shape: [3, 2] }),
        // float16 raw bits: 1, -2, 65504 (max), 2^-24 (smallest subnormal), -0, inf, NaN
        f16: typed(new Uint16Array([0x3c00, 0xc000, 0x7bff, 0x0001, 0x8000, 0x7c00, 0x7e00]), 'float16', [7]),
        // bfloat16 raw bits: 1, -2, 3.3895e38 (max), smallest subnormal, -0, -inf, 0.1 (rounded)
        bf16: typed(new Uint16Array([0x3f80, 0xc000, 0x7f7f, 0x0001, 0x8000, 0xff80, 0x3dcd]), 'bfloat16', [7]),
        i64: fromTypedArray(new BigInt64Array([0n, -1n, 2n ** 62n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 123456789012345678n]), { shape: [2, 3] }),
        i32: fromTypedArray(new Int32Array([-(2 ** 31), 2 ** 31 - 1, 0, -7]), { shape: [4] }),
        u8: fromTypedArray(Uint8Array.from({ length: 256 }, (_, i) => i), { shape: [16, 16] }),
        mask: tensor([[true, false, true], [false, false, true]]),
        scalar: tensor(2.5),
        'scalar.int': tensor(42, { dtype: 'int64' }),
        empty: zeros([0, 3]),
        'empty.bool': zeros([4, 0], { dtype: 'bool' }),
        transposed: arange(0, 6, 1, { dtype: 'float32' }).reshape(2, 3).transpose(0, 1),
      };
    });
    try {
      expect(tensors.transposed.isContiguous()).toBe(false);
      saveSafetensors(path, tensors, metadata);
      const script = `${DESCRIBE}
import sys
from safetensors import safe_open
from safetensors.torch import load_file
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework='pt') as f:
    metadata = f.metadata()
    keys = list(f.keys())
describe(tensors, metadata, keys)
`;
      const python = JSON.parse(runPython(['-c', script, path])) as DescribedFile;
      expect(python.metadata).toEqual(metadata);
      expect(python.keys).toEqual(Object.keys(tensors).sort());
      for (const [name, t] of Object.entries(tensors)) {
        const ours = describeTensor(t);
        const theirs = python.tensors[name]!;
        expect(theirs.dtype, `${name}: dtype`).toBe(ours.dtype);
        expect(theirs.shape, `${name}: shape`).toEqual(ours.shape);
        expect(theirs.hex, `${name}: bytes`).toBe(ours.hex);
        expectSameValues(ours.values, theirs.values, name);
      }
      // Spot checks that do not go through Kiln's own reading.
      expect(python.tensors.transposed!.values).toEqual(['0.0', '3.0', '1.0', '4.0', '2.0', '5.0']);
      expect(python.tensors.i64!.values).toEqual(['0', '-1', '4611686018427387905', '-9223372036854775808', '9223372036854775807', '123456789012345678']);
      expect(python.tensors.f16!.values.slice(0, 4)).toEqual(['1.0', '-2.0', '65504.0', '5.960464477539063e-08']);
      expect(python.tensors.bf16!.values.slice(0, 3)).toEqual(['1.0', '-2.0', '3.3895313892515355e+38']);
      expect(python.tensors['scalar.int']!).toEqual({ dtype: 'torch.int64', shape: [], hex: '2a00000000000000', values: ['42'] });
      expect(python.tensors.empty!.shape).toEqual([0, 3]);
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
  });

  it('the file Kiln writes is byte-identical to what Python safetensors writes for the same tensors (no metadata)', () => {
    const path = join(dir, 'kiln-bytes.safetensors');
    const tensors = tidy(() => ({ b: arange(0, 6, 1, { dtype: 'float32' }).reshape(2, 3), a: ones([2], { dtype: 'int64' }) }));
    try {
      saveSafetensors(path, tensors);
      const script = `
import sys, torch
from safetensors.torch import save
print(save({'b': torch.arange(6, dtype=torch.float32).reshape(2, 3), 'a': torch.ones(2, dtype=torch.int64)}).hex())
`;
      const theirs = runPython(['-c', script]).trim();
      // Both sort by name (safetensors orders by dtype alignment, then name; these share none of
      // that), so the header JSON and the data section line up byte for byte.
      expect(readFileSync(path).toString('hex')).toBe(theirs);
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
  });
});

describe('Python safetensors writes, Kiln reads', () => {
  it('every dtype, a 0-d scalar, an empty tensor and metadata load exactly', () => {
    const path = join(dir, 'from-python.safetensors');
    const script = `${DESCRIBE}
import sys
from safetensors.torch import save_file
base = torch.linspace(-3, 3, 12).reshape(3, 4)
tensors = {
    'f32': torch.cat([base.reshape(-1), torch.tensor([float('nan'), float('inf'), float('-inf'), -0.0])]).reshape(4, 4),
    'f64': (base.double() / 7).t().contiguous(),
    'f16': (base / 3).half(),
    'bf16': (base * 1000).bfloat16(),
    'i64': torch.tensor([0, -1, 2**62 + 1, -2**63, 2**63 - 1], dtype=torch.int64),
    'i32': torch.tensor([[-2**31, 2**31 - 1], [5, -5]], dtype=torch.int32),
    'u8': torch.arange(256, dtype=torch.uint8).reshape(2, 8, 16),
    'bool': torch.tensor([[True, False, False], [True, True, False]]),
    'scalar': torch.tensor(-1.25, dtype=torch.float64),
    'empty': torch.zeros(0, 5, dtype=torch.bfloat16),
    'encoder.layer.0.attention.self.query.weight': torch.full((2, 2), 0.5),
}
metadata = {'format': 'pt', 'source': 'python ✓'}
save_file(tensors, sys.argv[1], metadata=metadata)
describe(tensors, metadata, list(tensors))
`;
    const python = JSON.parse(runPython(['-c', script, path])) as DescribedFile;
    const loaded = loadSafetensors(path);
    try {
      expect(loaded.metadata).toEqual(python.metadata);
      expect([...loaded.tensors.keys()].sort()).toEqual(python.keys);
      for (const [name, theirs] of Object.entries(python.tensors)) {
        const t = loaded.tensors.get(name)!;
        const ours = describeTensor(t);
        expect(ours.dtype, `${name}: dtype`).toBe(theirs.dtype);
        expect(ours.shape, `${name}: shape`).toEqual(theirs.shape);
        expect(ours.hex, `${name}: bytes`).toBe(theirs.hex);
        expectSameValues(ours.values, theirs.values, name);
      }
      expect(loaded.tensors.get('i64')!.toTypedArray<'int64'>()[3]).toBe(-(2n ** 63n));
      expect(loaded.tensors.get('scalar')!.item()).toBe(-1.25);
      expect(loaded.tensors.get('empty')!.shape).toEqual([0, 5]);
    } finally {
      for (const t of loaded.tensors.values()) t.dispose();
    }
  });
});

describe('malformed files', () => {
  /** A small valid file to corrupt; returns its bytes. */
  function validFile(path: string): Buffer {
    const tensors = tidy(() => ({ w: arange(0, 12, 1, { dtype: 'float32' }).reshape(3, 4), b: ones([4]) }));
    try {
      saveSafetensors(path, tensors, { k: 'v' });
    } finally {
      for (const t of Object.values(tensors)) t.dispose();
    }
    return readFileSync(path);
  }

  function expectLoadError(path: string, pattern: RegExp): void {
    let caught: unknown;
    try {
      const loaded = loadSafetensors(path);
      for (const t of loaded.tensors.values()) t.dispose();
    } catch (error) {
      caught = error;
    }
    expect(caught, `${path} should not load`).toBeInstanceOf(Error);
    const message = (caught as Error).message;
    expect(message).toContain(path);
    expect(message).toMatch(pattern);
  }

  it('a valid file loads (the baseline for the corruptions below)', () => {
    const path = join(dir, 'valid.safetensors');
    validFile(path);
    const loaded = loadSafetensors(path);
    expect(loaded.tensors.get('w')!.toArray()).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
    for (const t of loaded.tensors.values()) t.dispose();
  });

  it('a file truncated inside the data section', () => {
    const path = join(dir, 'truncated.safetensors');
    const bytes = validFile(path);
    truncateSync(path, bytes.byteLength - 5);
    expectLoadError(path, /not a valid safetensors file: tensor '\w' has data_offsets \[\d+,\d+\] outside the \d+-byte data section/);
  });

  it('byte ranges that overlap or leave a gap', () => {
    const write = (name: string, offsets: Array<[number, number]>, dataBytes: number): string => {
      const header: Record<string, unknown> = {};
      offsets.forEach((o, i) => (header[`t${i}`] = { dtype: 'F32', shape: [(o[1] - o[0]) / 4], data_offsets: o }));
      const json = Buffer.from(JSON.stringify(header));
      const prefix = Buffer.alloc(8);
      prefix.writeBigUInt64LE(BigInt(json.byteLength));
      const path = join(dir, name);
      writeFileSync(path, Buffer.concat([prefix, json, Buffer.alloc(dataBytes)]));
      return path;
    };
    expectLoadError(write('overlap.safetensors', [[0, 8], [4, 12]], 12), /tensor 't1' starts at byte 4 of the data section, expected 8 \(it overlaps the previous tensor\)/);
    expectLoadError(write('gap.safetensors', [[0, 8], [12, 16]], 16), /tensor 't1' starts at byte 12 of the data section, expected 8 \(the data has a gap\)/);
    expectLoadError(write('trailing.safetensors', [[0, 8]], 16), /the tensors cover 8 bytes of a 16-byte data section/);
  });

  it('a file truncated inside the header', () => {
    const path = join(dir, 'truncated-header.safetensors');
    validFile(path);
    truncateSync(path, 20);
    expectLoadError(path, /the header length \d+ runs past the end of the file \(20 bytes\)/);
  });

  it('a file shorter than the length prefix, and an empty file', () => {
    const path = join(dir, 'tiny.safetensors');
    writeFileSync(path, Buffer.from([1, 2, 3]));
    expectLoadError(path, /the file has 3 bytes, fewer than the 8-byte header length/);
    writeFileSync(path, Buffer.alloc(0));
    expectLoadError(path, /the file has 0 bytes/);
  });

  it('a header that is not JSON', () => {
    const path = join(dir, 'garbage.safetensors');
    const bytes = validFile(path);
    bytes.write('#', 8); // the opening brace
    writeFileSync(path, bytes);
    expectLoadError(path, /the header is not JSON/);
  });

  it('a dtype Kiln does not read', () => {
    const path = join(dir, 'dtype.safetensors');
    writeFileSync(path, rawFile({ x: { dtype: 'F8_E4M3', shape: [2], data_offsets: [0, 2] } }, 2));
    expectLoadError(path, /tensor 'x' has dtype 'F8_E4M3'/);
  });

  it('a shape that does not match the byte range', () => {
    const path = join(dir, 'shape.safetensors');
    writeFileSync(path, rawFile({ x: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, 8));
    expectLoadError(path, /needs 12 bytes, the buffer has 8/);
  });

  it('a file that does not exist', () => {
    expectLoadError(join(dir, 'missing.safetensors'), /ENOENT/);
  });

  /** A file with the given header (padded to 8 bytes) and `dataBytes` zero bytes of data. */
  function rawFile(header: object, dataBytes: number): Buffer {
    let json = JSON.stringify(header);
    json += ' '.repeat((8 - (json.length % 8)) % 8);
    const prefix = Buffer.alloc(8);
    prefix.writeBigUInt64LE(BigInt(json.length));
    return Buffer.concat([prefix, Buffer.from(json), Buffer.alloc(dataBytes)]);
  }
});

describe('atomic saving', () => {
  it('a save that fails midway leaves the existing file untouched and no temporary files', () => {
    const sub = join(dir, 'atomic');
    mkdirSync(sub);
    const path = join(sub, 'model.safetensors');
    const first = tidy(() => ({ a: ones([3]), b: zeros([2, 2]) }));
    saveSafetensors(path, first);
    const before = readFileSync(path);
    const good = ones([1000]);
    const disposed = ones([4]);
    disposed.dispose();
    try {
      // Names are written in sorted order: 'a' succeeds, 'm' fails, 'z' is never reached.
      expect(() => saveSafetensors(path, { a: good, m: disposed, z: good })).toThrow(/disposed/);
      expect(readFileSync(path).equals(before)).toBe(true);
      expect(readdirSync(sub)).toEqual(['model.safetensors']);
      const reloaded = loadSafetensors(path);
      expect(reloaded.tensors.get('a')!.toArray()).toEqual([1, 1, 1]);
      for (const t of reloaded.tensors.values()) t.dispose();
    } finally {
      good.dispose();
      for (const t of Object.values(first)) t.dispose();
    }
  });

  it('writeFileAtomic: an error while writing chunks removes the temporary file and keeps the old one', () => {
    const sub = join(dir, 'atomic-chunks');
    mkdirSync(sub);
    const path = join(sub, 'data.bin');
    writeFileSync(path, 'old contents');
    function* chunks(): Generator<Uint8Array> {
      yield new Uint8Array(1 << 16).fill(7); // written to the temporary file
      throw new Error('the producer failed');
    }
    expect(() => writeFileAtomic(path, chunks())).toThrow('the producer failed');
    expect(readFileSync(path, 'utf8')).toBe('old contents');
    expect(readdirSync(sub)).toEqual(['data.bin']);
  });

  it('a failing rename (the target is a non-empty directory) leaves no temporary file', () => {
    const sub = join(dir, 'atomic-rename');
    const target = join(sub, 'model.safetensors');
    mkdirSync(join(target, 'inside'), { recursive: true });
    const t = ones([2]);
    try {
      expect(() => saveSafetensors(target, { t })).toThrow(/EISDIR|ENOTEMPTY|EEXIST|ENOTDIR/);
      expect(readdirSync(sub)).toEqual(['model.safetensors']);
      expect(readdirSync(target)).toEqual(['inside']);
    } finally {
      t.dispose();
    }
  });

  it('a successful save replaces the file in one step', () => {
    const sub = join(dir, 'atomic-replace');
    mkdirSync(sub);
    const path = join(sub, 'model.safetensors');
    const a = tidy(() => ({ x: ones([2]) }));
    const b = tidy(() => ({ x: zeros([3]), y: ones([1]) }));
    try {
      saveSafetensors(path, a);
      saveSafetensors(path, b, { v: '2' });
      expect(readdirSync(sub)).toEqual(['model.safetensors']);
      const loaded = loadSafetensors(path);
      expect(loaded.metadata).toEqual({ v: '2' });
      expect(loaded.tensors.get('x')!.toArray()).toEqual([0, 0, 0]);
      for (const t of loaded.tensors.values()) t.dispose();
    } finally {
      for (const t of [...Object.values(a), ...Object.values(b)]) t.dispose();
    }
  });
});

/**
 * How POST /embed writes its vectors: JSON (the default) or raw float32 (Accept:
 * application/octet-stream).
 *
 * Why not `JSON.stringify({vectors: vectors.map(Array.from)})`: it first copies every float32
 * into a JS array of doubles, then walks that object graph. Joining each typed array directly
 * gives the same text (a float32 widened to a double prints exactly as JSON.stringify prints it,
 * so a client that parses it and rounds to float32 gets the model's bits back) with neither the
 * copies nor the walk. Numbers are still the main cost: 256 of them per vector, each printed in
 * up to 20 characters; the binary body skips printing them at all, and is 4 bytes per value.
 *
 * Binary body: n × dimension float32 values, little-endian, row after row, in request order;
 * the response's headers say how to cut it (X-Kiln-Count rows of X-Kiln-Dimension values) and
 * which model made it (X-Kiln-Model). In Python: `np.frombuffer(body, '<f4').reshape(n, d)`.
 */
import { endianness } from 'node:os';

/** The media type of the binary body. */
export const FLOAT32_MEDIA_TYPE = 'application/octet-stream';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/**
 * `{"model": …, "dimension": …, "vectors": [[…], …]}`, text equal to JSON.stringify of the same
 * object with each vector as an array of numbers (a NaN or infinite value becomes null, as
 * JSON.stringify writes it).
 */
export function embeddingsJson(model: string, dimension: number, vectors: readonly Float32Array[]): string {
  const rows = new Array<string>(vectors.length);
  for (let i = 0; i < vectors.length; i++) rows[i] = vectorJson(vectors[i]!);
  return `{"model":${JSON.stringify(model)},"dimension":${dimension},"vectors":[${rows.join(',')}]}`;
}

/** One vector as a JSON array. */
export function vectorJson(vector: Float32Array): string {
  const text = `[${vector.join(',')}]`;
  // Finite numbers print with digits, '.', '-', 'e' and '+' only; NaN and ±Infinity (a broken
  // model) have letters JSON has no place for, and JSON.stringify writes them as null.
  return text.includes('N') || text.includes('I') ? JSON.stringify(Array.from(vector)) : text;
}

/** The vectors as one little-endian float32 buffer, row after row (each must have `dimension` values). */
export function embeddingsFloat32(dimension: number, vectors: readonly Float32Array[]): Buffer {
  const body = Buffer.allocUnsafe(vectors.length * dimension * 4);
  for (let row = 0; row < vectors.length; row++) {
    const vector = vectors[row]!;
    if (vector.length !== dimension) throw new Error(`vector ${row} has ${vector.length} values, expected ${dimension}`);
    if (LITTLE_ENDIAN_HOST) {
      body.set(new Uint8Array(vector.buffer, vector.byteOffset, vector.byteLength), row * dimension * 4);
    } else {
      for (let i = 0; i < dimension; i++) body.writeFloatLE(vector[i]!, (row * dimension + i) * 4);
    }
  }
  return body;
}

/**
 * How POST /embed writes its vectors: JSON (the default) or raw float32 (Accept:
 * application/octet-stream).
 *
 * Why not `JSON.stringify({vectors: vectors.map(Array.from)})`: it copies every float32 into a
 * JS array of doubles, walks that object graph, and prints each float32 widened to a double with
 * the shortest digits that identify the *double* (up to 17 significant digits: 0.1f prints as
 * 0.10000000149011612). Printing was the HTTP thread's largest cost per request under load
 * (about 125 µs per 256-value vector; BENCHMARKS.md, "Serving"). Each value is written instead
 * with 9 significant digits (`toPrecision(9)`, about 40 µs per vector, a third fewer bytes):
 * 9 digits are enough to identify every float32 (FLT_DECIMAL_DIG, C11 §5.2.4.2.2), so a client
 * that parses the text and rounds to float32 gets the model's bits back, as before. The binary
 * body skips printing altogether, and is 4 bytes per value.
 *
 * Binary body: n × dimension float32 values, little-endian, row after row, in request order;
 * the response's headers say how to cut it (X-Kiln-Count rows of X-Kiln-Dimension values) and
 * which model made it (X-Kiln-Model). In Python: `np.frombuffer(body, '<f4').reshape(n, d)`.
 */
import { endianness } from 'node:os';

/** The media type of the binary body. */
export const FLOAT32_MEDIA_TYPE = 'application/octet-stream';

const LITTLE_ENDIAN_HOST = endianness() === 'LE';

/** Significant decimal digits that identify any float32 (FLT_DECIMAL_DIG). */
const FLOAT32_DIGITS = 9;

/**
 * `{"model": …, "dimension": …, "vectors": [[…], …]}`: each value with 9 significant digits (a
 * NaN or infinite value, from a broken model, as null, as JSON.stringify writes it).
 */
export function embeddingsJson(model: string, dimension: number, vectors: readonly Float32Array[]): string {
  const rows = new Array<string>(vectors.length);
  for (let i = 0; i < vectors.length; i++) rows[i] = vectorJson(vectors[i]!);
  return `{"model":${JSON.stringify(model)},"dimension":${dimension},"vectors":[${rows.join(',')}]}`;
}

/** One vector as a JSON array whose numbers, rounded to float32, are the vector's values. */
export function vectorJson(vector: Float32Array): string {
  let text = '[';
  for (let i = 0; i < vector.length; i++) {
    const value = vector[i]!;
    if (i > 0) text += ',';
    text += Number.isFinite(value) ? value.toPrecision(FLOAT32_DIGITS) : 'null';
  }
  return `${text}]`;
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

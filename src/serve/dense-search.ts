/**
 * Exact dense search: the inner product of each query with every corpus vector, and the k best,
 * as one small ONNX graph run by onnxruntime (the serving engine; no libtorch):
 *
 *     scores  = query · corpusᵀ            query [batch, D] float32, corpusᵀ [D, N] an initializer
 *     values, indices = TopK(scores, k)     largest first; equal values: lower index first
 *
 * ONNX's TopK (opset ≥ 11) breaks ties by the lower index, which is the evaluators' tie rule
 * (src/eval/rank.ts), so the service and `kiln eval` rank identically. Why a graph rather than a
 * JavaScript loop: 13,896 × 256 multiply-adds per query take about 4 ms in scalar JavaScript
 * and a few hundredths of that in onnxruntime's SIMD matrix product, and a micro-batch of
 * queries becomes one matrix product.
 *
 * For the cosine head the vectors are unit-norm, so the inner product is the cosine; for the
 * dot head it is the model's own score.
 */
import * as ort from 'onnxruntime-node';

import { OnnxGraphBuilder } from '../export/onnx-graph.js';
import { KILN_VERSION } from '../version.js';
import type { Candidates } from '../eval/lexical.js';

export interface DenseSearchOptions {
  /** onnxruntime intra-op threads (default: its own choice). */
  readonly threads?: number;
}

/** The corpus matrix transposed into [D, N], as MatMul wants its right operand. */
function transposed(vectors: readonly Float32Array[], dim: number): Float32Array {
  const n = vectors.length;
  const out = new Float32Array(dim * n);
  vectors.forEach((v, j) => {
    if (v.length !== dim) throw new Error(`corpus vector ${j} has ${v.length} values; expected ${dim}`);
    for (let i = 0; i < dim; i++) out[i * n + j] = v[i]!;
  });
  return out;
}

/** The search graph over a fixed corpus. */
export function denseSearchGraph(vectors: readonly Float32Array[], dim: number): Uint8Array {
  const g = new OnnxGraphBuilder(17);
  const query = g.input('query', 'float32', ['batch', dim]);
  const k = g.input('k', 'int64', [1]);
  const corpus = g.initializer('corpus_t', transposed(vectors, dim), [dim, vectors.length]);
  const scores = g.op('MatMul', [query, corpus]);
  const [values, indices] = g.node('TopK', [scores, k], { axis: -1, largest: 1, sorted: 1 }, 2);
  g.output(values!, 'scores', 'float32', ['batch', 'k']);
  g.output(indices!, 'indices', 'int64', ['batch', 'k']);
  return g.build({ producerVersion: KILN_VERSION, docString: 'kiln exact dense search: TopK(query · corpusᵀ)', metadata: {}, graphName: 'dense_search' });
}

export class ExactDenseSearch {
  private constructor(
    readonly numDocs: number,
    readonly dim: number,
    readonly session: ort.InferenceSession,
  ) {}

  static async create(vectors: readonly Float32Array[], dim: number, options: DenseSearchOptions = {}): Promise<ExactDenseSearch> {
    const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', interOpNumThreads: 1, executionMode: 'sequential' };
    if (options.threads !== undefined) sessionOptions.intraOpNumThreads = options.threads;
    const session = await ort.InferenceSession.create(denseSearchGraph(vectors, dim), sessionOptions);
    return new ExactDenseSearch(vectors.length, dim, session);
  }

  /** The k best documents of each query, best first (k is clipped to the corpus size). */
  async search(queries: readonly Float32Array[], k: number): Promise<Candidates[]> {
    if (queries.length === 0) return [];
    const size = Math.min(k, this.numDocs);
    if (size === 0) return queries.map(() => ({ docs: new Int32Array(0), scores: new Float32Array(0) }));
    const batch = new Float32Array(queries.length * this.dim);
    queries.forEach((q, i) => {
      if (q.length !== this.dim) throw new Error(`query vector ${i} has ${q.length} values; expected ${this.dim}`);
      batch.set(q, i * this.dim);
    });
    const result = await this.session.run({
      query: new ort.Tensor('float32', batch, [queries.length, this.dim]),
      k: new ort.Tensor('int64', BigInt64Array.of(BigInt(size)), [1]),
    });
    const values = result['scores']!.data as Float32Array;
    const indices = result['indices']!.data as BigInt64Array;
    const out = queries.map((_, i) => ({
      docs: Int32Array.from(indices.subarray(i * size, (i + 1) * size), Number),
      scores: values.slice(i * size, (i + 1) * size),
    }));
    for (const t of Object.values(result)) t.dispose();
    return out;
  }

  async release(): Promise<void> {
    await this.session.release();
  }
}

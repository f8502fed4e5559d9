/**
 * Hard-negative mining over a pool of candidate documents (ANCE-style, Xiong et al. 2021):
 * the pool's embeddings are computed by the current model every N steps (`refresh`, the
 * caller picks N) and kept between refreshes; for each query of a batch, `mine` returns the
 * k pool documents scoring highest by dot product that are NOT of the query's group (its
 * concept) and not excluded (the batch's own positives). Same-group documents are synonyms of
 * the positive, i.e. false negatives, so they are masked to -inf before top-k.
 *
 * Memory: the pool embeddings are one kept float32 tensor [P, D]; a refresh disposes the old
 * one only after the new one was made, and every temporary of `refresh`/`mine` is released in
 * `tidy`, so the live tensor count is unchanged by a call (tested).
 */
import { fromTypedArray, keep, noGrad, tidy, type Tensor } from '../engine/index.js';

export class HardNegativeMiner {
  /** Pool document texts (unique). */
  readonly texts: readonly string[];
  /** Group id of each pool document (same numbering as the batcher's `groupIndex`). */
  readonly groups: Int32Array;
  readonly #indexOf: Map<string, number>;
  #embeddings: Tensor | null = null;
  #groupTensor: Tensor | null = null;

  constructor(pool: { texts: readonly string[]; groups: ArrayLike<number> }) {
    if (pool.texts.length !== pool.groups.length) {
      throw new Error(`HardNegativeMiner: ${pool.texts.length} texts but ${pool.groups.length} groups; expected one group per text`);
    }
    if (pool.texts.length === 0) throw new Error('HardNegativeMiner: the pool is empty');
    this.texts = [...pool.texts];
    this.groups = Int32Array.from(pool.groups);
    this.#indexOf = new Map();
    this.texts.forEach((t, i) => {
      if (this.#indexOf.has(t)) throw new Error(`HardNegativeMiner: pool text ${JSON.stringify(t)} appears twice (indices ${this.#indexOf.get(t)} and ${i}); expected unique texts`);
      this.#indexOf.set(t, i);
    });
  }

  /**
   * A pool of the unique document texts of `docs`; a text keeps the group it first appears
   * with (its other groups are still excluded through `excludeDocs`, which is by text).
   */
  static fromDocs(docs: readonly { doc: string; group: number }[]): HardNegativeMiner {
    const seen = new Map<string, number>();
    for (const d of docs) if (!seen.has(d.doc)) seen.set(d.doc, d.group);
    return new HardNegativeMiner({ texts: [...seen.keys()], groups: [...seen.values()] });
  }

  get size(): number {
    return this.texts.length;
  }

  /** Pool index of a document text, or -1. */
  indexOf(text: string): number {
    return this.#indexOf.get(text) ?? -1;
  }

  /** The current pool embeddings [P, D] (owned by the miner; do not dispose), or null before the first refresh. */
  get embeddings(): Tensor | null {
    return this.#embeddings;
  }

  /**
   * Re-embeds the whole pool: `embed(docIndices)` receives all pool indices 0..P-1 and returns
   * their embeddings [P, D] (it batches internally). Runs without gradient recording; the
   * result is detached and kept as float32, and the previous embeddings are disposed.
   */
  refresh(embed: (docIndices: Int32Array) => Tensor): void {
    const all = new Int32Array(this.size);
    for (let i = 0; i < all.length; i++) all[i] = i;
    const fresh = noGrad(() =>
      tidy(() => {
        const e = embed(all);
        const shape = e.shape;
        if (shape.length !== 2 || shape[0] !== this.size) {
          throw new Error(`HardNegativeMiner.refresh: embed returned shape [${shape.join(', ')}]; expected [${this.size}, D] (one row per pool document)`);
        }
        return e.detach().to('float32').contiguous();
      }),
    );
    keep(fresh);
    const previous = this.#embeddings;
    this.#embeddings = fresh;
    previous?.dispose();
    if (this.#groupTensor === null || this.#groupTensor.device !== fresh.device) {
      const groups = keep(fromTypedArray(this.groups, { shape: [this.size], device: fresh.device }));
      this.#groupTensor?.dispose();
      this.#groupTensor = groups;
    }
  }

  /**
   * For each query row, the pool indices of its k highest-scoring documents (dot product),
   * best first, as a B×k row-major array. Documents of the query's group and documents in
   * `excludeDocs` (pool indices, e.g. the batch's positives; -1 entries are ignored) are never
   * returned; a row with fewer than k eligible documents is padded with -1.
   */
  mine(queryEmbeddings: Tensor, queryGroups: Int32Array, k: number, excludeDocs?: Int32Array): Int32Array {
    const pool = this.#embeddings;
    const poolGroups = this.#groupTensor;
    if (pool === null || poolGroups === null) throw new Error('HardNegativeMiner.mine: call refresh() first: the pool has no embeddings yet');
    const [b, d] = queryEmbeddings.shape;
    const poolDim = pool.shape[1];
    if (queryEmbeddings.ndim !== 2 || d !== poolDim) {
      throw new Error(`HardNegativeMiner.mine: queryEmbeddings has shape [${queryEmbeddings.shape.join(', ')}]; expected [B, ${poolDim}]`);
    }
    if (queryGroups.length !== b) throw new Error(`HardNegativeMiner.mine: ${queryGroups.length} query groups for ${b} queries; expected one per query`);
    if (!Number.isInteger(k) || k < 1 || k > this.size) throw new Error(`HardNegativeMiner.mine: k must be an integer in [1, ${this.size}] (the pool size), got ${k}`);
    let excluded: Uint8Array | undefined;
    if (excludeDocs !== undefined) {
      excluded = new Uint8Array(this.size);
      for (const i of excludeDocs) {
        if (i === -1) continue;
        if (!Number.isInteger(i) || i < 0 || i >= this.size) throw new Error(`HardNegativeMiner.mine: excludeDocs has ${i}; expected pool indices in [0, ${this.size}) or -1`);
        excluded[i] = 1;
      }
    }
    return noGrad(() =>
      tidy(() => {
        const device = pool.device;
        const q = queryEmbeddings.detach().to({ dtype: 'float32', device });
        const scores = q.matmul(pool.transpose(0, 1)); // (B, P)
        const qg = fromTypedArray(queryGroups, { shape: [queryGroups.length], device });
        let mask = qg.unsqueeze(1).eq(poolGroups.unsqueeze(0)); // (B, P): same group
        if (excluded !== undefined) mask = mask.logicalOr(fromTypedArray(excluded, { dtype: 'bool', shape: [1, this.size], device }));
        const { values, indices } = scores.maskedFill(mask, -Infinity).topk(k, { dim: 1 });
        const idx = indices.to({ dtype: 'int32', device: 'cpu' }).toTypedArray<'int32'>();
        const ok = values.isfinite().to('cpu').toTypedArray<'bool'>();
        const out = new Int32Array(idx.length);
        for (let i = 0; i < idx.length; i++) out[i] = ok[i] === 1 ? (idx[i] as number) : -1;
        return out;
      }),
    );
  }

  /** Releases the pool embeddings. */
  dispose(): void {
    this.#embeddings?.dispose();
    this.#groupTensor?.dispose();
    this.#embeddings = null;
    this.#groupTensor = null;
  }
}

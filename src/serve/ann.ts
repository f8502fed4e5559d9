/**
 * Approximate nearest-neighbour search over corpus embeddings, for corpora too large to scan
 * exactly on every query.
 *
 * HNSW (Hierarchical Navigable Small World graphs; Malkov & Yashunin 2018, arXiv:1603.09320)
 * links every vector to a few near neighbours on several layers: the upper layers are sparse
 * random subsets that get a query close quickly, layer 0 holds every vector and is searched
 * with a beam. A query costs roughly O(log n) distance computations instead of n, at the price
 * of sometimes missing a true neighbour. The implementation is hnswlib (the authors' C++
 * library) through the `hnswlib-node` addon, compiled from source at install time.
 *
 * The parameters trade build time, memory and query time against recall:
 * - `m` (16): links per vector per layer (2m on layer 0). More links = better recall, especially
 *   in high dimensions, but more memory (4·2m bytes per vector on layer 0) and slower builds and
 *   queries.
 * - `efConstruction` (200): the beam width while inserting. Wider = a better graph (higher recall
 *   at the same query cost), slower builds; query time is unaffected.
 * - `efSearch` (max(64, 2k) unless set): the beam width while querying; the one knob that can
 *   be turned after the index is built. Wider = higher recall, slower queries. hnswlib never
 *   uses less than k.
 * - `seed` (100): the level generator's seed. Insertion is single-threaded and in row order, so
 *   the same vectors, parameters and seed give the same graph.
 *
 * The space is hnswlib's inner product ('ip'): distance = 1 − ⟨a, b⟩, reported here as the score
 * ⟨a, b⟩ = 1 − distance, larger is better. For unit vectors (Kiln's normalised embeddings) this
 * is cosine similarity. The vectors are not normalised here: inner product on unnormalised
 * vectors is not a metric, and HNSW's recall on it is noticeably worse.
 *
 * Recall is measured, not assumed: `annRecall` compares the index with `exactNeighbours` (a
 * brute-force scan) on real queries, and the test suite holds the defaults to recall@10 ≥ 0.95
 * on random unit vectors (a hard case: no cluster structure to exploit). A corpus or setting
 * that matters should be checked the same way before relying on it.
 *
 * Labels are row indices, so `docs` index straight into the caller's arrays of ids and texts.
 *
 * @example
 *   const index = HnswIndex.build(vectors, 256);
 *   index.save('corpus.hnsw');
 *   const { docs, scores } = HnswIndex.load('corpus.hnsw', 256).search(query, 100);
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, rmSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { basename, dirname, join } from 'node:path';

// hnswlib-node is CommonJS whose exports are a native addon object, which Node's ESM loader
// cannot enumerate for named imports: take the default export and destructure.
import hnswlib from 'hnswlib-node';

const { HierarchicalNSW } = hnswlib;
type NativeIndex = InstanceType<typeof HierarchicalNSW>;

export interface AnnOptions {
  /** Links per vector per layer (2m on layer 0); default 16. Build-time. */
  readonly m?: number;
  /** Beam width while inserting; default 200. Build-time. */
  readonly efConstruction?: number;
  /** Beam width while querying; default max(64, 2k) at query time unless set. */
  readonly efSearch?: number;
  /** Seed of the level generator; default 100. Build-time. */
  readonly seed?: number;
}

/** Search results, best first; `scores` are inner products. */
export interface Neighbours {
  readonly docs: Int32Array;
  readonly scores: Float32Array;
}

const DEFAULT_M = 16;
const DEFAULT_EF_CONSTRUCTION = 200;
const DEFAULT_SEED = 100;
const MIN_EF_SEARCH = 64;
/** hnswlib silently caps M at 10000; refuse instead of building something other than asked. */
const MAX_M = 10_000;
/** The addon passes counts and dims through uint32. */
const MAX_UINT32 = 0xffffffff;

// ---------------------------------------------------------------------------------------------
// Validation

function checkDim(dim: number): void {
  if (!Number.isInteger(dim) || dim < 1 || dim > MAX_UINT32) throw new Error(`dim must be a positive integer, got ${dim}`);
}

function checkInt(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) throw new Error(`${name} must be an integer in [${min}, ${max}], got ${value}`);
}

function checkOptions(options: AnnOptions): void {
  if (options.m !== undefined) checkInt('m', options.m, 2, MAX_M); // m = 1 makes hnswlib's level multiplier 1/ln(1) = ∞
  if (options.efConstruction !== undefined) checkInt('efConstruction', options.efConstruction, 1, MAX_UINT32);
  if (options.efSearch !== undefined) checkInt('efSearch', options.efSearch, 1, MAX_UINT32);
  if (options.seed !== undefined) checkInt('seed', options.seed, 0, MAX_UINT32);
}

/** Checks a row-major matrix and returns its row count. */
function checkMatrix(vectors: Float32Array, dim: number): number {
  checkDim(dim);
  if (!(vectors instanceof Float32Array)) throw new Error('vectors must be a Float32Array (numDocs × dim, row-major)');
  if (vectors.length % dim !== 0) {
    throw new Error(`vectors.length must be a multiple of dim = ${dim} (numDocs × dim, row-major), got ${vectors.length}`);
  }
  return vectors.length / dim;
}

function checkQuery(query: Float32Array, dim: number): void {
  if (!(query instanceof Float32Array)) throw new Error(`query must be a Float32Array of length dim = ${dim}`);
  if (query.length !== dim) throw new Error(`query length must equal the index dim = ${dim}, got ${query.length}`);
  // A NaN would compare false with everything and silently return garbage neighbours.
  for (let i = 0; i < dim; i++) {
    if (!Number.isFinite(query[i]!)) throw new Error(`query[${i}] is ${query[i]}; every component must be finite`);
  }
}

function checkK(k: number): void {
  if (!Number.isInteger(k) || k < 1) throw new Error(`k must be an integer ≥ 1, got ${k}`);
}

// ---------------------------------------------------------------------------------------------
// hnswlib's file format (hnswalg.h saveIndex/loadIndex, 64-bit build). hnswlib checks only that
// the link lists add up to the file size; it never checks the vector size against the space it
// is loaded into, so a file built for another dim would load and then read vectors at the wrong
// stride (wrong results, or reads past the end). The header is checked here first.

const HEADER_BYTES = 96;
/** tableint and linklistsizeint are unsigned int. */
const LINK_BYTES = 4;
/** labeltype is size_t. */
const LABEL_BYTES = 8;

interface IndexHeader {
  readonly maxElements: number;
  readonly count: number;
  readonly m: number;
  readonly efConstruction: number;
  /** Bytes per vector on layer 0: its link list, the vector, the label. */
  readonly bytesPerElement: number;
  /** Bytes of one upper-layer link list. */
  readonly bytesPerUpperLinks: number;
  readonly maxLevel: number;
}

/** Reads and checks the header and the link-list directory of an hnswlib file; throws a reason. */
function inspectIndexFile(fd: number, dim: number): IndexHeader {
  const fileSize = fstatSync(fd).size;
  if (fileSize < HEADER_BYTES) throw new Error(`${fileSize} bytes, shorter than the ${HEADER_BYTES}-byte hnswlib header`);
  const header = Buffer.alloc(HEADER_BYTES);
  readSync(fd, header, 0, HEADER_BYTES, 0);
  const u64 = (offset: number): number => {
    const value = header.readBigUInt64LE(offset);
    if (value > BigInt(Number.MAX_SAFE_INTEGER)) throw new Error(`header field at byte ${offset} is implausibly large (${value})`);
    return Number(value);
  };
  const offsetLevel0 = u64(0);
  const maxElements = u64(8);
  const count = u64(16);
  const bytesPerElement = u64(24);
  const labelOffset = u64(32);
  const offsetData = u64(40);
  const maxLevel = header.readInt32LE(48);
  const entryPoint = header.readUInt32LE(52);
  const maxM = u64(56);
  const maxM0 = u64(64);
  const m = u64(72);
  const mult = header.readDoubleLE(80);
  const efConstruction = u64(88);

  // The layout hnswlib's constructor derives from dim and M; anything else is another dim,
  // another build of hnswlib, or damage.
  const level0Links = maxM0 * LINK_BYTES + LINK_BYTES;
  const storedDim = (labelOffset - offsetData) / 4;
  if (offsetLevel0 !== 0 || m < 2 || maxM !== m || maxM0 !== 2 * m || offsetData !== level0Links) {
    throw new Error('not an hnswlib index (inconsistent header)');
  }
  if (Number.isInteger(storedDim) && storedDim >= 1 && storedDim !== dim && bytesPerElement === labelOffset + LABEL_BYTES) {
    throw new Error(`it holds ${storedDim}-dimensional vectors, expected dim = ${dim}`);
  }
  if (labelOffset !== offsetData + dim * 4 || bytesPerElement !== labelOffset + LABEL_BYTES) {
    throw new Error(`not an hnswlib index of ${dim}-dimensional vectors (inconsistent header)`);
  }
  if (count < 1 || count > maxElements || count > MAX_UINT32) throw new Error(`implausible element count ${count} (capacity ${maxElements})`);
  if (entryPoint >= count || maxLevel < 0 || maxLevel > 10_000 || !(mult > 0) || !Number.isFinite(mult)) {
    throw new Error('not an hnswlib index (inconsistent header)');
  }

  // The link-list directory after layer 0: per element a uint32 byte count, then that many bytes.
  // Walked here (buffered) so truncation and bad sizes are reported before hnswlib allocates.
  const bytesPerUpperLinks = maxM * LINK_BYTES + LINK_BYTES;
  let position = HEADER_BYTES + count * bytesPerElement;
  const chunk = Buffer.alloc(1 << 16);
  let chunkStart = -1;
  let chunkLength = 0;
  const readU32 = (at: number): number => {
    if (at + 4 > fileSize) throw new Error(`truncated: ${fileSize} bytes, the link lists run past the end`);
    if (chunkStart < 0 || at < chunkStart || at + 4 > chunkStart + chunkLength) {
      chunkLength = readSync(fd, chunk, 0, chunk.length, at);
      chunkStart = at;
    }
    return chunk.readUInt32LE(at - chunkStart);
  };
  for (let i = 0; i < count; i++) {
    const size = readU32(position);
    if (size % bytesPerUpperLinks !== 0 || size / bytesPerUpperLinks > maxLevel) {
      throw new Error(`element ${i}'s upper-layer link list has an invalid size (${size} bytes)`);
    }
    position += 4 + size;
  }
  if (position !== fileSize) throw new Error(`${fileSize} bytes, but the header and link lists account for ${position}`);
  return { maxElements, count, m, efConstruction, bytesPerElement, bytesPerUpperLinks, maxLevel };
}

// ---------------------------------------------------------------------------------------------
// The index

export class HnswIndex {
  readonly dim: number;
  readonly numDocs: number;
  readonly #native: NativeIndex;
  #efSearch: number | undefined;

  private constructor(native: NativeIndex, dim: number, numDocs: number, efSearch: number | undefined) {
    this.#native = native;
    this.dim = dim;
    this.numDocs = numDocs;
    this.#efSearch = efSearch;
  }

  /** The query beam width from now on (undefined: max(64, 2k) per query); the knob recall is tuned with after a build. */
  setEfSearch(efSearch: number | undefined): void {
    if (efSearch !== undefined) checkInt('efSearch', efSearch, 1, MAX_UINT32);
    this.#efSearch = efSearch;
  }

  get efSearch(): number | undefined {
    return this.#efSearch;
  }

  /** Builds an index over `vectors` (numDocs × dim, row-major); row i gets label i. */
  static build(vectors: Float32Array, dim: number, options: AnnOptions = {}): HnswIndex {
    const numDocs = checkMatrix(vectors, dim);
    checkOptions(options);
    if (numDocs === 0) throw new Error('vectors is empty: an index needs at least one row');
    if (numDocs > MAX_UINT32) throw new Error(`at most ${MAX_UINT32} rows fit in an index, got ${numDocs}`);
    // One pass up front: a NaN inserted into the graph would corrupt its links for every later query.
    for (let i = 0; i < vectors.length; i++) {
      if (!Number.isFinite(vectors[i]!)) throw new Error(`row ${Math.floor(i / dim)}, component ${i % dim} is ${vectors[i]}; every component must be finite`);
    }
    const native = new HierarchicalNSW('ip', dim);
    native.initIndex({
      maxElements: numDocs,
      m: options.m ?? DEFAULT_M,
      efConstruction: options.efConstruction ?? DEFAULT_EF_CONSTRUCTION,
      randomSeed: options.seed ?? DEFAULT_SEED,
    });
    // The addon only takes plain arrays (it checks IsArray), hence the copy per row.
    for (let row = 0; row < numDocs; row++) {
      native.addPoint(Array.from(vectors.subarray(row * dim, (row + 1) * dim)), row);
    }
    return new HnswIndex(native, dim, numDocs, options.efSearch);
  }

  /**
   * Loads an index written by `save`. Build-time parameters come from the file; `options.m` and
   * `options.efConstruction`, when given, must match it (a mismatch means the caller expects a
   * different index). Throws an Error naming `path` when the file is missing, is not an hnswlib
   * index of `dim`-dimensional vectors, is truncated, or its labels are not 0..numDocs−1.
   */
  static load(path: string, dim: number, options: AnnOptions = {}): HnswIndex {
    checkDim(dim);
    checkOptions(options);
    let header: IndexHeader;
    try {
      const fd = openSync(path, 'r');
      try {
        header = inspectIndexFile(fd, dim);
      } finally {
        closeSync(fd);
      }
    } catch (error) {
      const reason = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (error as Error).message;
      throw new Error(`cannot load HNSW index ${path}: ${reason}`, { cause: error });
    }
    if (options.m !== undefined && options.m !== header.m) {
      throw new Error(`HNSW index ${path} was built with m = ${header.m}, but options.m = ${options.m}`);
    }
    // hnswlib stores max(efConstruction, M).
    if (options.efConstruction !== undefined && Math.max(options.efConstruction, header.m) !== header.efConstruction) {
      throw new Error(`HNSW index ${path} was built with efConstruction = ${header.efConstruction}, but options.efConstruction = ${options.efConstruction}`);
    }
    const native = new HierarchicalNSW('ip', dim);
    try {
      native.readIndexSync(path);
    } catch (error) {
      throw new Error(`cannot load HNSW index ${path}: ${(error as Error).message}`, { cause: error });
    }
    // Labels are row indices into the caller's arrays; anything else would index the wrong rows.
    const ids = native.getIdsList();
    const seen = new Uint8Array(header.count);
    for (const id of ids) {
      if (!Number.isInteger(id) || id < 0 || id >= header.count || seen[id] === 1) {
        throw new Error(`cannot load HNSW index ${path}: its labels are not the row indices 0..${header.count - 1} (found ${id})`);
      }
      seen[id] = 1;
    }
    if (ids.length !== header.count) throw new Error(`cannot load HNSW index ${path}: ${ids.length} labels for ${header.count} elements`);
    return new HnswIndex(native, dim, header.count, options.efSearch);
  }

  /**
   * Writes the index to `path` atomically: hnswlib writes a temporary file in the same directory
   * (same filesystem, so the rename is atomic), which is checked, fsynced and renamed over
   * `path`. A reader sees the old index or the new one, never a torn one. The check matters
   * because hnswlib does not report write errors (a full disk leaves a short file).
   */
  save(path: string): void {
    const dir = dirname(path);
    const temp = join(dir, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
    try {
      this.#native.writeIndexSync(temp);
      const fd = openSync(temp, 'r');
      try {
        const header = inspectIndexFile(fd, this.dim);
        if (header.count !== this.numDocs) throw new Error(`${header.count} elements written, expected ${this.numDocs}`);
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      renameSync(temp, path);
    } catch (error) {
      rmSync(temp, { force: true });
      throw new Error(`cannot save HNSW index to ${path}: ${(error as Error).message}`, { cause: error });
    }
    // Persist the rename itself.
    const dirFd = openSync(dir, 'r');
    try {
      fsyncSync(dirFd);
    } finally {
      closeSync(dirFd);
    }
  }

  /**
   * The (approximately) k best rows by inner product, best first; k is clipped to numDocs. Ties
   * are ordered by lower row first. hnswlib can return fewer than k only if the graph is
   * disconnected, which its construction avoids; the arrays' length is what it found.
   */
  search(query: Float32Array, k: number): Neighbours {
    checkQuery(query, this.dim);
    checkK(k);
    const kk = Math.min(k, this.numDocs);
    // Set on every call: ef is state on the native index and the default depends on k.
    this.#native.setEf(this.#efSearch ?? Math.max(MIN_EF_SEARCH, 2 * kk));
    const { distances, neighbors } = this.#native.searchKnn(Array.from(query), kk);
    const order = neighbors.map((_, i) => i);
    // The addon already returns best first; sorting pins down the order of ties.
    order.sort((a, b) => distances[a]! - distances[b]! || neighbors[a]! - neighbors[b]!);
    const docs = new Int32Array(order.length);
    const scores = new Float32Array(order.length);
    order.forEach((from, to) => {
      docs[to] = neighbors[from]!;
      scores[to] = 1 - distances[from]!;
    });
    return { docs, scores };
  }
}

// ---------------------------------------------------------------------------------------------
// Exact search and recall

/** Exact top-k by inner product (ties: lower index first), the reference for recall. */
export function exactNeighbours(vectors: Float32Array, dim: number, query: Float32Array, k: number): Neighbours {
  const numDocs = checkMatrix(vectors, dim);
  checkQuery(query, dim);
  checkK(k);
  const kk = Math.min(k, numDocs);
  // The kk best so far, best first. Rows are visited in index order and a row must beat the
  // current worst strictly to enter, and is inserted after equal scores, so ties keep the lower
  // index first. O(numDocs·dim) for the dot products plus O(kk) per insertion.
  const best = new Float64Array(kk);
  const rows = new Int32Array(kk);
  let filled = 0;
  for (let row = 0; row < numDocs; row++) {
    const base = row * dim;
    let dot = 0;
    for (let j = 0; j < dim; j++) dot += vectors[base + j]! * query[j]!;
    if (filled === kk && !(dot > best[kk - 1]!)) continue;
    let at = filled === kk ? kk - 1 : filled++;
    while (at > 0 && best[at - 1]! < dot) {
      best[at] = best[at - 1]!;
      rows[at] = rows[at - 1]!;
      at--;
    }
    best[at] = dot;
    rows[at] = row;
  }
  return { docs: rows, scores: Float32Array.from(best) };
}

/** Mean recall@k of the index against exact search over the given queries (|ann ∩ exact| / k per query). */
export function annRecall(index: HnswIndex, vectors: Float32Array, queries: readonly Float32Array[], k: number): number {
  const numDocs = checkMatrix(vectors, index.dim);
  if (numDocs !== index.numDocs) throw new Error(`vectors has ${numDocs} rows but the index holds ${index.numDocs}`);
  checkK(k);
  if (queries.length === 0) throw new Error('annRecall needs at least one query');
  // k is clipped like search clips it, so a small corpus is not charged for rows it does not have.
  const kk = Math.min(k, numDocs);
  let total = 0;
  for (const query of queries) {
    const exact = new Set(exactNeighbours(vectors, index.dim, query, kk).docs);
    let hits = 0;
    for (const doc of index.search(query, kk).docs) if (exact.has(doc)) hits++;
    total += hits / kk;
  }
  return total / queries.length;
}

/**
 * Batching for contrastive training: padding token-id sequences into row-major B×L arrays, and
 * `PairBatcher`, which turns tokenised (query, doc) pairs into epochs of batches of item indices.
 *
 * Order is a pure function of the seed: each epoch's plan is drawn from one seeded Mulberry32
 * stream (src/data/rng.ts) — shuffle all pairs, then bucket by length (sort each window of
 * `bucketWindow` batches by query length, cut it into batches, shuffle the order of all
 * batches), so a batch holds pairs of similar length and padding waste stays small while
 * every epoch still sees a fresh random order. `state()`/`restore()` save and restore the
 * position (epoch, batch, and the RNG state the current epoch's plan was drawn from), so a
 * resumed run sees exactly the batches the uninterrupted run would have seen.
 *
 * A batch is the indices of its items (`nextItems()`); the caller pads the items' ids with
 * `padBatch` and reads their groups (dense concept ids from `groupIndices`: two items of one
 * group in a batch are not negatives of each other, and the trainer masks them).
 */
import { Rng } from './rng.js';

export { Rng } from './rng.js';

export interface PaddedBatch {
  /** B×L token ids, row-major, padded with padId. */
  inputIds: Int32Array;
  /** B×L, 1 for tokens, 0 for padding. */
  attentionMask: Int32Array;
  batchSize: number;
  seqLen: number;
}

export interface PadOptions {
  padId: number;
  /** 'longest' pads to the longest sequence; a number pads every row to that length (longer rows are an error). */
  padTo: 'longest' | number;
  /** Round the padded length up to a multiple of this (e.g. 8 for tensor cores). */
  multipleOf?: number;
}

/** Pads sequences to one length: row-major ids and attention mask. */
export function padBatch(seqs: readonly Int32Array[], options: PadOptions): PaddedBatch {
  if (seqs.length === 0) throw new Error('padBatch: no sequences');
  let longest = 0;
  for (const s of seqs) longest = Math.max(longest, s.length);
  let seqLen = options.padTo === 'longest' ? longest : options.padTo;
  if (!Number.isInteger(seqLen) || seqLen < 1) throw new Error(`padBatch: padTo must be 'longest' or a positive integer, got ${options.padTo}`);
  if (seqLen < longest) {
    const i = seqs.findIndex((s) => s.length > seqLen);
    throw new Error(`padBatch: sequence ${i} has ${seqs[i]?.length} tokens, longer than padTo ${seqLen}; truncate when encoding (tokenizer.encode(text, maxLength))`);
  }
  const multiple = options.multipleOf ?? 1;
  if (!Number.isInteger(multiple) || multiple < 1) throw new Error(`padBatch: multipleOf must be a positive integer, got ${multiple}`);
  seqLen = Math.ceil(seqLen / multiple) * multiple;
  const batchSize = seqs.length;
  const inputIds = new Int32Array(batchSize * seqLen);
  const attentionMask = new Int32Array(batchSize * seqLen);
  if (options.padId !== 0) inputIds.fill(options.padId);
  seqs.forEach((s, i) => {
    inputIds.set(s, i * seqLen);
    attentionMask.fill(1, i * seqLen, i * seqLen + s.length);
  });
  return { inputIds, attentionMask, batchSize, seqLen };
}

/** A tokenised training pair. */
export interface TokenizedPair {
  query: Int32Array;
  doc: Int32Array;
  /** Dense concept id (see `groupIndices`); same group ⇒ not a negative. */
  group: number;
  queryType: string;
  docType: string;
}

export interface BatcherState {
  epoch: number;
  /** Batches of the current epoch already returned. */
  position: number;
  /** RNG state at the start of the current epoch (its plan is redrawn from it). */
  epochRngState: number;
  /** Shape of what the state belongs to; `restore` refuses a state from a different setup. */
  fingerprint: { items: number; batchSize: number; bucketWindow: number; dropLast: boolean; seed: number };
}

export interface PairBatcherOptions {
  batchSize: number;
  seed: number;
  /** Batches per sorting window; 1 = no bucketing beyond the shuffle. Default 32. */
  bucketWindow?: number;
  /** Drop the last, smaller batch of each epoch (default true: every batch has batchSize items). */
  dropLast?: boolean;
}

/** Dense ids (0, 1, …, in order of first appearance) for group keys such as concept URIs. */
export function groupIndices(groups: readonly string[]): { index: Int32Array; names: string[] } {
  const ids = new Map<string, number>();
  const index = new Int32Array(groups.length);
  groups.forEach((g, i) => {
    let id = ids.get(g);
    if (id === undefined) {
      id = ids.size;
      ids.set(g, id);
    }
    index[i] = id;
  });
  return { index, names: [...ids.keys()] };
}

export class PairBatcher {
  readonly batchSize: number;
  readonly bucketWindow: number;
  readonly dropLast: boolean;
  readonly #pairs: readonly TokenizedPair[];
  readonly #seed: number;
  /** The stream every epoch plan is drawn from, positioned after the current epoch's plan. */
  #rng: Rng;
  #epoch = 0;
  #position = 0;
  #epochRngState: number;
  #plan: Int32Array[];

  constructor(pairs: readonly TokenizedPair[], options: PairBatcherOptions) {
    const { batchSize, bucketWindow = 32, dropLast = true } = options;
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new Error(`PairBatcher: batchSize must be a positive integer, got ${batchSize}`);
    if (!Number.isInteger(bucketWindow) || bucketWindow < 1) throw new Error(`PairBatcher: bucketWindow must be a positive integer, got ${bucketWindow}`);
    if (pairs.length < (dropLast ? batchSize : 1)) {
      throw new Error(`PairBatcher: ${pairs.length} pairs cannot fill one batch of ${batchSize}${dropLast ? ' (dropLast is on)' : ''}`);
    }
    this.batchSize = batchSize;
    this.bucketWindow = bucketWindow;
    this.dropLast = dropLast;
    this.#pairs = pairs;
    this.#seed = options.seed;
    this.#rng = Rng.derive(options.seed, 'pair-batcher');
    this.#epochRngState = this.#rng.state();
    this.#plan = this.#drawPlan();
  }

  /** Batches in each epoch. */
  get batchesPerEpoch(): number {
    return this.dropLast ? Math.floor(this.#pairs.length / this.batchSize) : Math.ceil(this.#pairs.length / this.batchSize);
  }

  get epoch(): number {
    return this.#epoch;
  }

  /** The item indices of each batch of the current epoch, in order (a copy). */
  epochPlan(): Int32Array[] {
    return this.#plan.map((b) => b.slice());
  }

  /** One epoch's plan from the stream: shuffle, sort windows by query length, cut, shuffle batches. */
  #drawPlan(): Int32Array[] {
    const rng = this.#rng;
    const order = rng.permutation(this.#pairs.length);
    const keep = this.dropLast ? order.length - (order.length % this.batchSize) : order.length;
    const window = this.bucketWindow * this.batchSize;
    const batches: Int32Array[] = [];
    for (let start = 0; start < keep; start += window) {
      const chunk = Array.from(order.subarray(start, Math.min(start + window, keep)));
      if (this.bucketWindow > 1) {
        // Stable sort: equal lengths keep their shuffled order.
        chunk.sort((a, b) => {
          const pa = this.#pairs[a] as TokenizedPair;
          const pb = this.#pairs[b] as TokenizedPair;
          return pa.query.length - pb.query.length || pa.doc.length - pb.doc.length;
        });
      }
      for (let i = 0; i < chunk.length; i += this.batchSize) batches.push(Int32Array.from(chunk.slice(i, i + this.batchSize)));
    }
    return rng.shuffle(batches);
  }

  /**
   * The next batch: indices into the pairs given to the constructor (a copy). After the last
   * batch of an epoch, the next epoch's plan is drawn and its first batch returned.
   */
  nextItems(): Int32Array {
    if (this.#position >= this.#plan.length) {
      this.#epoch++;
      this.#position = 0;
      this.#epochRngState = this.#rng.state();
      this.#plan = this.#drawPlan();
    }
    return (this.#plan[this.#position++] as Int32Array).slice();
  }

  /** Where the batcher is: save it with a checkpoint (plain JSON). */
  state(): BatcherState {
    return {
      epoch: this.#epoch,
      position: this.#position,
      epochRngState: this.#epochRngState,
      fingerprint: { items: this.#pairs.length, batchSize: this.batchSize, bucketWindow: this.bucketWindow, dropLast: this.dropLast, seed: this.#seed },
    };
  }

  /** Continues from a saved state: the following batches are those the saved run would have produced next. */
  restore(state: BatcherState): void {
    const want = this.state().fingerprint;
    for (const key of Object.keys(want) as (keyof BatcherState['fingerprint'])[]) {
      if (state.fingerprint[key] !== want[key]) {
        throw new Error(`PairBatcher.restore: the saved state has ${key} = ${String(state.fingerprint[key])} but this batcher has ${String(want[key])}; resume with the same data and batching options`);
      }
    }
    if (!Number.isInteger(state.epoch) || state.epoch < 0) throw new Error(`PairBatcher.restore: epoch must be a non-negative integer, got ${state.epoch}`);
    this.#rng = Rng.fromState(state.epochRngState);
    this.#epoch = state.epoch;
    this.#epochRngState = state.epochRngState;
    this.#plan = this.#drawPlan();
    if (!Number.isInteger(state.position) || state.position < 0 || state.position > this.#plan.length) {
      throw new Error(`PairBatcher.restore: position must be an integer in [0, ${this.#plan.length}], got ${state.position}`);
    }
    this.#position = state.position;
  }
}

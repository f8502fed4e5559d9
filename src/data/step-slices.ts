/**
 * One batch per optimizer step, cut into equal slices for gradient accumulation and for data
 * parallelism, so that the data a run sees does not depend on how it is split.
 *
 *   batch of step s (train.batch_size items, from the task's seeded source)
 *   slices      k = 0 … A·W−1, contiguous, equal: items [k·B/(A·W), (k+1)·B/(A·W))
 *   rank r, micro-batch m of s  →  slice r·A + m
 *
 * A = train.grad_accum, W = the world size. Every rank draws the same batch from the same seeded
 * source and keeps its own slices, as DeepSpeed's `train_batch_size = micro-batch × accumulation
 * × world size`; one process with grad_accum 2 therefore takes exactly the micro-batches that
 * two processes take (the equivalence test/train/data-parallel.test.ts checks).
 */

/** A seeded stream of batches of item indices whose position can be checkpointed. */
export interface BatchSource {
  next(): Int32Array;
  state(): unknown;
  restore(state: unknown): void;
}

/** A batch source that yields this rank's slices; it also knows every rank's slice of the current micro-batch. */
export interface SlicedBatchSource extends BatchSource {
  /** The slices of the micro-batch last returned by `next`, one per rank, in rank order (this rank's included). */
  slicesAcrossRanks(): Int32Array[];
}

export interface BatchSlicing {
  gradAccum: number;
  rank: number;
  worldSize: number;
}

/** The state of a sliced source between micro-batches of one step (at a step boundary the cursor is 0). */
interface SlicedState {
  slicedBatches: { inner: unknown; cursor: number };
}

/** Checks that `batchSize` cuts into A·W equal slices; the message says what to change. */
export function checkBatchSlicing(batchSize: number, slicing: BatchSlicing): void {
  const parts = slicing.gradAccum * slicing.worldSize;
  if (batchSize % parts !== 0) {
    const split = slicing.worldSize > 1 ? `${slicing.worldSize} processes × train.grad_accum ${slicing.gradAccum}` : `train.grad_accum ${slicing.gradAccum}`;
    throw new Error(`train.batch_size ${batchSize} does not cut into ${split} = ${parts} equal micro-batches; use a multiple of ${parts}`);
  }
}

/** Wraps `source` so that each `next()` returns this rank's next slice of the step's batch. */
export function sliceBatches(source: BatchSource, slicing: BatchSlicing): SlicedBatchSource {
  const { gradAccum, rank, worldSize } = slicing;
  const parts = gradAccum * worldSize;
  let batch: Int32Array | null = null;
  let innerBefore: unknown = null;
  let cursor = 0;
  let lastMicro = 0;

  const slice = (items: Int32Array, index: number): Int32Array => {
    if (items.length % parts !== 0) throw new Error(`a batch of ${items.length} items does not cut into ${parts} equal micro-batches`);
    const size = items.length / parts;
    return items.slice(index * size, (index + 1) * size);
  };

  if (parts === 1) {
    // Unsliced: the source's own state, so checkpoints of earlier versions still resume.
    let last: Int32Array = new Int32Array(0);
    return {
      next: () => (last = source.next()),
      slicesAcrossRanks: () => [last],
      state: () => source.state(),
      restore: (state) => source.restore(state),
    };
  }
  return {
    next() {
      if (cursor === 0) {
        innerBefore = source.state();
        batch = source.next();
      }
      lastMicro = cursor;
      cursor = (cursor + 1) % gradAccum;
      return slice(batch!, rank * gradAccum + lastMicro);
    },
    slicesAcrossRanks() {
      if (batch === null) throw new Error('slicesAcrossRanks() before the first next()');
      return Array.from({ length: worldSize }, (_, r) => slice(batch!, r * gradAccum + lastMicro));
    },
    state(): SlicedState {
      return { slicedBatches: { inner: cursor === 0 ? source.state() : innerBefore, cursor } };
    },
    restore(state) {
      const sliced = (state as Partial<SlicedState> | null)?.slicedBatches;
      // A checkpoint of an unsliced run (grad_accum 1, one process) holds the source's own state.
      source.restore(sliced === undefined ? state : sliced.inner);
      cursor = 0;
      batch = null;
      const resumeAt = sliced?.cursor ?? 0;
      for (let m = 0; m < resumeAt; m++) this.next();
    },
  };
}

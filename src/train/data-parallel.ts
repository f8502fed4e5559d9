/**
 * Data parallelism for the one training loop: what the loop asks of a process group.
 *
 *   start      every parameter broadcast from rank 0 (so every rank starts from the same weights,
 *              whatever each one initialised or loaded)
 *   each step  gradients averaged across ranks in buckets of about 25 MiB (DDP's default
 *              `bucket_cap_mb`; one allreduce per bucket instead of one per tensor), so clipping
 *              and the optimizer see the global gradient on every rank
 *   ZeRO-1     each rank keeps AdamW state only for the parameters it owns (whole tensors,
 *              balanced by size) and updates only those, then each owner broadcasts its
 *              parameters (Rajbhandari et al., "ZeRO: Memory Optimizations Toward Training
 *              Trillion Parameter Models", SC 2020, stage 1: optimizer-state partitioning)
 *   bookkeeping  per-step numbers and checkpoint bytes exchanged as small JSON or byte buffers
 *
 * Sources: PyTorch's DistributedDataParallel (torch/nn/parallel/distributed.py: broadcast of
 * the module state from rank 0 at construction, gradient buckets of bucket_cap_mb = 25, the
 * average as a sum divided by the world size); torch.distributed.optim.ZeroRedundancyOptimizer
 * (parameters partitioned across ranks, each rank steps its shard, then broadcasts it).
 */
import { cat, empty, fromBytes, keep, noGrad, tensor, tidy, type ProcessGroup, type Tensor } from '../engine/index.js';

/** DDP's default bucket size (bucket_cap_mb = 25). */
export const DEFAULT_BUCKET_BYTES = 25 * 1024 * 1024;

/** AdamW keeps two fp32 moments per parameter element (exp_avg, exp_avg_sq). */
const ADAMW_STATE_BYTES_PER_ELEMENT = 8;

export interface DataParallelOptions {
  group: ProcessGroup;
  /** 1: partition AdamW state across ranks (ZeRO stage 1); 0: every rank holds all of it. */
  zero: 0 | 1;
  bucketBytes?: number;
}

/**
 * Which rank owns each parameter under ZeRO-1: largest tensors first, each to the rank holding
 * the fewest elements so far (torch's ZeroRedundancyOptimizer partitions the same way); ties go
 * to the lowest rank and equal sizes keep their order, so every rank computes the same owners.
 */
export function partitionParameters(sizes: readonly number[], worldSize: number): number[] {
  const owners = new Array<number>(sizes.length).fill(0);
  const load = new Array<number>(worldSize).fill(0);
  const order = sizes.map((size, i) => ({ size, i })).sort((a, b) => b.size - a.size || a.i - b.i);
  for (const { size, i } of order) {
    const rank = load.indexOf(Math.min(...load));
    owners[i] = rank;
    load[rank]! += size;
  }
  return owners;
}

export class DataParallel {
  readonly group: ProcessGroup;
  readonly rank: number;
  readonly worldSize: number;
  readonly zero: 0 | 1;
  readonly bucketBytes: number;
  /** Seconds spent in collectives since the last `takeCommSeconds()`. */
  #commSeconds = 0;
  /**
   * One flat gradient buffer per bucket, kept from step to step as DDP keeps its buckets: Gloo
   * moves a buffer it has seen before about four times faster than fresh memory (measured here:
   * 44 MB in 60 ms against 200 ms), and it saves an allocation per step.
   */
  #gradBuckets = new Map<string, Tensor>();

  constructor(options: DataParallelOptions) {
    this.group = options.group;
    this.rank = options.group.rank;
    this.worldSize = options.group.worldSize;
    this.zero = options.zero;
    this.bucketBytes = options.bucketBytes ?? DEFAULT_BUCKET_BYTES;
  }

  /** Rank 0 writes the run's files (logs, metrics, evaluations, checkpoints); the others only train. */
  get isWriter(): boolean {
    return this.rank === 0;
  }

  /** Collective time since the last call, in seconds (the loop logs it per step as `comm_seconds`). */
  takeCommSeconds(): number {
    const seconds = this.#commSeconds;
    this.#commSeconds = 0;
    return seconds;
  }

  /** Runs `fn` (a collective) and counts its time in `comm_seconds`: for collectives outside this class (gathered negatives). */
  timed<T>(fn: () => T): T {
    const start = performance.now();
    try {
      return fn();
    } finally {
      this.#commSeconds += (performance.now() - start) / 1000;
    }
  }

  /** Overwrites every tensor with `root`'s values, one flattened bucket at a time. */
  broadcastTensors(tensors: readonly Tensor[], root = 0): void {
    for (const bucket of this.#buckets(tensors)) {
      tidy(() =>
        noGrad(() => {
          const flat = cat(bucket.map((t) => t.detach().reshape(-1)), 0);
          this.timed(() => this.group.broadcast(flat, root));
          unflattenInto(flat, bucket);
        }),
      );
    }
  }

  /**
   * Averages the gradients of `params` across ranks, in place. A parameter without a gradient
   * is skipped; every rank must agree on which ones have one (checked: one small allreduce).
   */
  averageGradients(params: readonly Tensor[]): void {
    const withGrad: Tensor[] = [];
    let indexSum = 0;
    tidy(() => {
      params.forEach((p, i) => {
        if (p.grad !== null) {
          withGrad.push(p);
          indexSum += i + 1;
        }
      });
    });
    const [count, sum] = this.sumNumbers([withGrad.length, indexSum]);
    if (count !== withGrad.length * this.worldSize || sum !== indexSum * this.worldSize) {
      throw new Error(`rank ${this.rank}: the ranks disagree on which parameters received gradients (${withGrad.length} here); every rank must run the same model on the same kind of batch`);
    }
    for (const bucket of this.#buckets(withGrad)) {
      const key = bucket.map((p) => params.indexOf(p)).join(',');
      let flat = this.#gradBuckets.get(key);
      if (flat === undefined) {
        const numel = bucket.reduce((a, p) => a + p.numel, 0);
        flat = keep(empty([numel], { dtype: bucket[0]!.dtype, device: bucket[0]!.device }));
        this.#gradBuckets.set(key, flat);
      }
      const buffer = flat;
      tidy(() =>
        noGrad(() => {
          const grads = bucket.map((p) => p.grad!);
          let offset = 0;
          for (const g of grads) {
            buffer.narrow(0, offset, g.numel).copy_(g.reshape(-1));
            offset += g.numel;
          }
          this.timed(() => this.group.allreduce(buffer, 'avg'));
          unflattenInto(buffer, grads);
        }),
      );
    }
  }

  /** Frees the gradient buckets and closes the process group. */
  dispose(): void {
    for (const t of this.#gradBuckets.values()) t.dispose();
    this.#gradBuckets.clear();
    this.group.dispose();
  }

  /** Element-wise sums of `values` across ranks (float64). */
  sumNumbers(values: readonly number[]): number[] {
    return tidy(() => {
      const t = tensor(Float64Array.from(values), { dtype: 'float64' });
      this.timed(() => this.group.allreduce(t, 'sum'));
      return Array.from(t.toTypedArray() as Float64Array);
    });
  }

  /** Every rank's bytes, in rank order (lengths may differ). */
  gatherBytes(bytes: Uint8Array): Buffer[] {
    return tidy(() => {
      const lengths = this.timed(() => this.group.allgather(tensor(BigInt64Array.from([BigInt(bytes.length)]), { dtype: 'int64' })));
      const sizes = Array.from(lengths.toTypedArray() as BigInt64Array, Number);
      const longest = Math.max(...sizes, 1);
      const padded = new Uint8Array(longest);
      padded.set(bytes);
      const gathered = this.timed(() => this.group.allgather(fromBytes(padded, 'uint8', [longest])));
      const all = Buffer.from((gathered.toTypedArray() as Uint8Array).slice());
      return sizes.map((size, r) => all.subarray(r * longest, r * longest + size));
    });
  }

  /** `root`'s bytes on every rank (the others pass null). */
  broadcastBytes(bytes: Uint8Array | null, root = 0): Buffer {
    return tidy(() => {
      const length = tensor(BigInt64Array.from([BigInt(this.rank === root ? bytes!.length : 0)]), { dtype: 'int64' });
      this.timed(() => this.group.broadcast(length, root));
      const size = Number((length.toTypedArray() as BigInt64Array)[0]);
      const buffer = fromBytes(this.rank === root ? bytes! : new Uint8Array(size), 'uint8', [size]);
      if (size > 0) this.timed(() => this.group.broadcast(buffer, root));
      return Buffer.from((buffer.toTypedArray() as Uint8Array).slice());
    });
  }

  /** Rank 0's value on every rank, through JSON (the others pass anything; it is ignored). */
  broadcastJson<T>(value: T): T {
    const bytes = this.rank === 0 ? Buffer.from(JSON.stringify(value ?? null)) : null;
    return JSON.parse(this.broadcastBytes(bytes).toString('utf8')) as T;
  }

  /** Every rank's value, in rank order, through JSON. */
  gatherJson<T>(value: T): T[] {
    return this.gatherBytes(Buffer.from(JSON.stringify(value))).map((b) => JSON.parse(b.toString('utf8')) as T);
  }

  /** Consecutive runs of same-dtype tensors of at most `bucketBytes` each (a larger tensor is a bucket of its own). */
  #buckets(tensors: readonly Tensor[]): Tensor[][] {
    const buckets: Tensor[][] = [];
    let current: Tensor[] = [];
    let bytes = 0;
    for (const t of tensors) {
      if (current.length > 0 && (bytes + t.nbytes > this.bucketBytes || current[0]!.dtype !== t.dtype)) {
        buckets.push(current);
        current = [];
        bytes = 0;
      }
      current.push(t);
      bytes += t.nbytes;
    }
    if (current.length > 0) buckets.push(current);
    return buckets;
  }
}

/** Copies consecutive ranges of `flat` back into `targets` (in place, shapes kept). */
function unflattenInto(flat: Tensor, targets: readonly Tensor[]): void {
  let offset = 0;
  for (const target of targets) {
    const n = target.numel;
    target.copy_(flat.narrow(0, offset, n).view(...target.shape));
    offset += n;
  }
}

/** What ZeRO-1 saves on each rank: AdamW moments of the parameters it does not own. */
export function zeroMemoryReport(sizes: readonly number[], owners: readonly number[], rank: number): { ownedElements: number; totalElements: number; savedBytes: number } {
  const totalElements = sizes.reduce((a, b) => a + b, 0);
  const ownedElements = sizes.reduce((a, size, i) => a + (owners[i] === rank ? size : 0), 0);
  return { ownedElements, totalElements, savedBytes: (totalElements - ownedElements) * ADAMW_STATE_BYTES_PER_ELEMENT };
}

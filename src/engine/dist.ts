/**
 * Collectives for data-parallel training: a c10d Gloo process group over loopback or TCP,
 * with in-place `allreduce` and `broadcast`, a concatenating `allgather` and `barrier`.
 *
 * The work is PyTorch's own: `c10d::ProcessGroupGloo` met through a `c10d::TCPStore` or
 * `c10d::FileStore` (libtorch 1.13 headers under torch/csrc/distributed/c10d/; the shim is
 * native/kiln_dist.cc). Ranks find each other the way torch.distributed's `env://` and
 * `tcp://` rendezvous do (torch/distributed/rendezvous.py, `_create_c10d_store`), and
 * {@link distributedEnvironment} reads the variables torchrun sets for each worker
 * (https://pytorch.org/docs/stable/elastic/run.html, "Environment Variables").
 *
 * Every call blocks until all ranks have taken part, and fails with an Error naming this
 * rank, the operation and the cause once `timeoutMs` runs out ("rank 1: allreduce failed
 * after 5003 ms: ..."). Measured on loopback: a killed peer fails the next collective at once,
 * a silent one after `timeoutMs`, a missing one at creation after `timeoutMs` (about 1 s
 * later with a file store). Tensors must be on the CPU, and contiguous for in-place calls.
 *
 * @example
 * // torchrun --nproc_per_node 2 ... (or WORLD_SIZE=2 RANK=0|1 MASTER_ADDR=127.0.0.1 MASTER_PORT=29500 LOCAL_RANK=0|1)
 * import { ProcessGroup, distributedEnvironment, full } from 'kiln/engine';
 * const env = distributedEnvironment();
 * if (env !== null) {
 *   const group = ProcessGroup.create({ store: 'tcp', host: env.masterAddr, port: env.masterPort, rank: env.rank,
 *     worldSize: env.worldSize, timeoutMs: 60_000, storeHostedByAgent: env.storeHostedByAgent, attempt: env.restartCount });
 *   const x = full([3], env.rank + 1);
 *   group.allreduce(x, 'avg'); // every rank: [1.5, 1.5, 1.5]
 *   group.dispose();
 * }
 */
import { native, type TensorHandle } from './native.js';
import { cat } from './functional.js';
import { Tensor } from './tensor.js';

/** An opaque handle to a `c10d::ProcessGroupGloo` and its store. */
type ProcessGroupHandle = { readonly __brand: 'ProcessGroupHandle' };

/** The `kd_` functions of native/kiln_dist.cc, typed here next to their only caller. */
interface DistBinding {
  kd_create_tcp(host: string, port: number, rank: number, worldSize: number, timeoutMs: number, deviceHost: string, isServer: boolean, keyPrefix: string): ProcessGroupHandle;
  kd_create_file(path: string, rank: number, worldSize: number, timeoutMs: number, deviceHost: string): ProcessGroupHandle;
  kd_allreduce(group: ProcessGroupHandle, tensor: TensorHandle, op: AllreduceOp): void;
  kd_broadcast(group: ProcessGroupHandle, tensor: TensorHandle, root: number): void;
  kd_allgather(group: ProcessGroupHandle, tensor: TensorHandle): TensorHandle;
  kd_barrier(group: ProcessGroupHandle): void;
  kd_free(group: ProcessGroupHandle): void;
}
const dist = native as unknown as DistBinding;

interface CommonOptions {
  /** This process's rank, in [0, worldSize). */
  rank: number;
  worldSize: number;
  /** Bound on forming the group and on every collective, in milliseconds. */
  timeoutMs: number;
  /**
   * The address this rank's Gloo transport listens on and advertises to its peers. Defaults
   * to 127.0.0.1 when the TCP store is on loopback; otherwise c10d's default, this machine's
   * hostname (falling back to loopback when it does not resolve).
   */
  deviceHost?: string;
}

/** Ranks meet through a TCP key-value store (torch.distributed's `tcp://` and `env://`). */
export interface TcpStoreOptions extends CommonOptions {
  store: 'tcp';
  host: string;
  port: number;
  /**
   * True under torchrun, whose elastic agent already serves the store at MASTER_ADDR:MASTER_PORT
   * (TORCHELASTIC_USE_AGENT_STORE=True): every rank then connects as a client and keys go under
   * `/worker/attempt_<attempt>`. Otherwise rank 0 hosts the store.
   */
  storeHostedByAgent?: boolean;
  /** torchrun's TORCHELASTIC_RESTART_COUNT; only used with `storeHostedByAgent`. */
  attempt?: number;
}

/** Ranks meet through a fresh file that all of them can reach (torch.distributed's `file://`). */
export interface FileStoreOptions extends CommonOptions {
  store: 'file';
  path: string;
}

export type ProcessGroupOptions = TcpStoreOptions | FileStoreOptions;

/** `avg` is a sum divided by the world size (Gloo has no AVG op); it needs a floating-point tensor. */
export type AllreduceOp = 'sum' | 'avg';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '::1']);

/**
 * A group of `worldSize` processes that exchange tensors. Create one per process with the same
 * store settings on every rank; call each collective on every rank, in the same order.
 *
 * @example
 * const group = ProcessGroup.create({ store: 'file', path: '/tmp/kiln-rdzv-1', rank, worldSize: 2, timeoutMs: 10_000 });
 * const rows = group.allgather(full([2, 4], rank)); // (4, 4): rank 0's rows, then rank 1's
 * group.dispose();
 */
export class ProcessGroup {
  readonly rank: number;
  readonly worldSize: number;
  readonly timeoutMs: number;
  #handle: ProcessGroupHandle | null;

  private constructor(handle: ProcessGroupHandle, options: ProcessGroupOptions) {
    this.#handle = handle;
    this.rank = options.rank;
    this.worldSize = options.worldSize;
    this.timeoutMs = options.timeoutMs;
  }

  /** Forms the group: blocks until all ranks have joined, or throws after `timeoutMs`. */
  static create(options: ProcessGroupOptions): ProcessGroup {
    if (options.store === 'tcp') {
      const deviceHost = options.deviceHost ?? (LOOPBACK_HOSTS.has(options.host) || options.host.startsWith('127.') ? '127.0.0.1' : '');
      const byAgent = options.storeHostedByAgent === true;
      const keyPrefix = byAgent ? `/worker/attempt_${options.attempt ?? 0}` : '';
      const handle = dist.kd_create_tcp(options.host, options.port, options.rank, options.worldSize, options.timeoutMs, deviceHost, !byAgent && options.rank === 0, keyPrefix);
      return new ProcessGroup(handle, options);
    }
    const handle = dist.kd_create_file(options.path, options.rank, options.worldSize, options.timeoutMs, options.deviceHost ?? '');
    return new ProcessGroup(handle, options);
  }

  get disposed(): boolean {
    return this.#handle === null;
  }

  #live(operation: string): ProcessGroupHandle {
    if (this.#handle === null) throw new Error(`rank ${this.rank}: ${operation} on a disposed process group`);
    return this.#handle;
  }

  /** Reduces `tensor` across ranks in place (every rank ends with the result) and returns it. */
  allreduce(tensor: Tensor, op: AllreduceOp = 'sum'): Tensor {
    dist.kd_allreduce(this.#live('allreduce'), tensor.handle, op);
    return tensor;
  }

  /** Overwrites `tensor` on every rank with `root`'s values, in place, and returns it. */
  broadcast(tensor: Tensor, root = 0): Tensor {
    dist.kd_broadcast(this.#live('broadcast'), tensor.handle, root);
    return tensor;
  }

  /**
   * Every rank's `tensor` (n, ...) concatenated in rank order: (worldSize·n, ...); a scalar
   * gathers to (worldSize). Shapes and dtypes must match across ranks. Not differentiable.
   */
  allgather(tensor: Tensor): Tensor {
    return new Tensor(dist.kd_allgather(this.#live('allgather'), tensor.handle));
  }

  /** Returns once every rank has reached its barrier. */
  barrier(): void {
    dist.kd_barrier(this.#live('barrier'));
  }

  /** Closes this rank's connections now (on rank 0, also the store it hosts). Safe to call twice. */
  dispose(): void {
    if (this.#handle === null) return;
    const handle = this.#handle;
    this.#handle = null;
    dist.kd_free(handle);
  }
}

/**
 * Every rank's `local` [n, ...] concatenated in rank order, [worldSize·n, ...], differentiable
 * with respect to this rank's own slice (the other ranks' slices are constants here, gathered
 * from detached copies), for a loss that EVERY rank computes identically over the gathered
 * tensor (contrastive training with in-batch negatives from all ranks). Every rank must pass
 * the same n.
 *
 * The gradient reaching `local` is scaled by worldSize, so that AVERAGING parameter gradients
 * across ranks, as data-parallel training does, gives exactly the gradient of one process
 * computing the loss over the whole batch:
 *   - a parameter upstream of the gather (the encoder) gets ∂L/∂E_r·W on rank r; the average
 *     over ranks is Σ_r ∂L/∂E_r·∂E_r/∂θ, every term of L;
 *   - a parameter downstream of it (a learnt temperature, an interaction head) sees the whole
 *     batch on every rank, so each rank already has the full ∂L/∂θ and the average keeps it.
 * This is what torch.distributed.nn.functional.all_gather gives under DDP (its backward
 * all-reduces the gathered gradient, W identical copies for a loss every rank computes) without
 * a collective in the backward pass: the scaling is exact, `local + (W−1)·(local − local)`,
 * whose value is `local` bit for bit and whose gradient is W.
 */
export function allGatherWithGrad(group: ProcessGroup, local: Tensor): Tensor {
  const n = local.shape[0];
  if (n === undefined) throw new Error(`rank ${group.rank}: allGatherWithGrad needs a tensor with a first dimension, got a scalar`);
  const gathered = group.allgather(local.detach());
  const own = group.worldSize === 1 ? local : local.add(local.sub(local.detach()).mul(group.worldSize - 1));
  const parts: Tensor[] = [];
  if (group.rank > 0) parts.push(gathered.narrow(0, 0, group.rank * n));
  parts.push(own);
  const after = group.worldSize - 1 - group.rank;
  if (after > 0) parts.push(gathered.narrow(0, (group.rank + 1) * n, after * n));
  return cat(parts, 0);
}

/** Where this process sits in a multi-process run, as torchrun describes it. */
export interface DistributedEnvironment {
  /** MASTER_ADDR: the host of the rendezvous store. */
  masterAddr: string;
  /** MASTER_PORT */
  masterPort: number;
  /** WORLD_SIZE: processes in the whole job (at least 2 here). */
  worldSize: number;
  /** RANK: this process, in [0, worldSize). */
  rank: number;
  /** LOCAL_RANK: this process on its machine; picks the local device. */
  localRank: number;
  /** LOCAL_WORLD_SIZE: processes on this machine; null when the launcher does not say. */
  localWorldSize: number | null;
  /** TORCHELASTIC_USE_AGENT_STORE=True: torchrun's agent serves the store (see TcpStoreOptions). */
  storeHostedByAgent: boolean;
  /** TORCHELASTIC_RESTART_COUNT, 0 when unset. */
  restartCount: number;
}

/**
 * Reads torchrun's per-worker variables (https://pytorch.org/docs/stable/elastic/run.html).
 * Returns null for a single-process run (WORLD_SIZE unset or 1); throws an Error naming the
 * variable and its value when one is missing, malformed or inconsistent with the others.
 *
 * @example
 * distributedEnvironment({ WORLD_SIZE: '2', RANK: '1', LOCAL_RANK: '1', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29500' });
 * // { masterAddr: '127.0.0.1', masterPort: 29500, worldSize: 2, rank: 1, localRank: 1, localWorldSize: null, ... }
 */
export function distributedEnvironment(env: NodeJS.ProcessEnv = process.env): DistributedEnvironment | null {
  if (env.WORLD_SIZE === undefined) return null;
  const worldSize = integerVariable(env, 'WORLD_SIZE', 1);
  if (worldSize === 1) return null;
  const rank = integerVariable(env, 'RANK', 0);
  if (rank >= worldSize) throw new Error(`RANK=${env.RANK} must be below WORLD_SIZE=${env.WORLD_SIZE}`);
  const localRank = integerVariable(env, 'LOCAL_RANK', 0);
  if (localRank > rank) throw new Error(`LOCAL_RANK=${env.LOCAL_RANK} cannot exceed RANK=${env.RANK}: a machine's local ranks are a subset of the global ones`);
  let localWorldSize: number | null = null;
  if (env.LOCAL_WORLD_SIZE !== undefined) {
    localWorldSize = integerVariable(env, 'LOCAL_WORLD_SIZE', 1);
    if (localWorldSize > worldSize) throw new Error(`LOCAL_WORLD_SIZE=${env.LOCAL_WORLD_SIZE} cannot exceed WORLD_SIZE=${env.WORLD_SIZE}`);
    if (localRank >= localWorldSize) throw new Error(`LOCAL_RANK=${env.LOCAL_RANK} must be below LOCAL_WORLD_SIZE=${env.LOCAL_WORLD_SIZE}`);
  }
  const masterAddr = env.MASTER_ADDR;
  if (masterAddr === undefined || masterAddr.trim() === '') {
    throw new Error(`MASTER_ADDR is ${masterAddr === undefined ? 'not set' : 'empty'}; with WORLD_SIZE=${env.WORLD_SIZE} it must name the host of rank 0 (or of torchrun's agent)`);
  }
  const masterPort = integerVariable(env, 'MASTER_PORT', 1);
  if (masterPort > 65535) throw new Error(`MASTER_PORT=${env.MASTER_PORT} is not a TCP port (1 to 65535)`);
  const restartCount = env.TORCHELASTIC_RESTART_COUNT === undefined ? 0 : integerVariable(env, 'TORCHELASTIC_RESTART_COUNT', 0);
  return { masterAddr, masterPort, worldSize, rank, localRank, localWorldSize, storeHostedByAgent: env.TORCHELASTIC_USE_AGENT_STORE === 'True', restartCount };
}

/** A required variable holding a decimal integer of at least `min` (no sign, spaces or exponent). */
function integerVariable(env: NodeJS.ProcessEnv, name: string, min: number): number {
  const text = env[name];
  if (text === undefined) throw new Error(`${name} is not set; torchrun sets it for every worker, and a multi-process run (WORLD_SIZE=${env.WORLD_SIZE}) needs it`);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(Number(text))) throw new Error(`${name}=${JSON.stringify(text)} is not a non-negative integer`);
  const value = Number(text);
  if (value < min) throw new Error(`${name}=${text} must be at least ${min}`);
  return value;
}

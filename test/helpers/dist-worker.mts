/**
 * One rank of a multi-process collectives test (test/dist.test.ts spawns several with
 * `node --import tsx`). argv[2] is a JSON WorkerPlan; the worker runs its scenario and prints
 * one line, `RESULT <json>`, with what it observed, or exits without one where the scenario
 * says so (a killed peer). Errors are reported, not thrown, so the test can assert on them.
 *
 * Scenarios:
 * - collectives: every operation and dtype, with rank-dependent inputs the test can check.
 * - peer-killed: after the group forms, rank 1 kills itself (SIGKILL); rank 0 then allreduces.
 * - peer-silent: after the group forms, rank 1 sleeps past the timeout; rank 0 allreduces.
 * - create-only: forms the group and reports (used with a missing peer, to see it fail).
 * - gather-grad: a contrastive-style loss over allGatherWithGrad of each rank's embeddings;
 *   reports the loss and the parameter gradient summed over ranks.
 */
import { ProcessGroup, allGatherWithGrad, full, tensor, type ProcessGroupOptions, type Tensor } from '../../src/engine/index.js';
import { GATHER_GRAD_INPUTS, GATHER_GRAD_SCALE, GATHER_GRAD_WEIGHT, gatherGradLoss } from './dist-gather-case.js';

export interface WorkerPlan {
  scenario: 'collectives' | 'peer-killed' | 'peer-silent' | 'create-only' | 'gather-grad';
  group: ProcessGroupOptions;
}

export interface CollectivesResult {
  rank: number;
  worldSize: number;
  sumFloat32: number[];
  avgFloat32: number[];
  sumInt64: number[];
  sumInt64Dtype: string;
  broadcastFromLast: number[];
  allgatherShape: number[];
  allgather: number[];
  allgatherScalar: number[];
  avgInt64Error: string;
  barrierReturned: boolean;
}

export interface FailureResult {
  rank: number;
  error: string | null;
  elapsedMs: number;
}

function report(result: unknown): void {
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
}

function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

// Runs `fn`, returning the Error's message (or null) and how long the call took.
function timed(rank: number, fn: () => void): FailureResult {
  const start = performance.now();
  try {
    fn();
    return { rank, error: null, elapsedMs: Math.round(performance.now() - start) };
  } catch (error) {
    return { rank, error: error instanceof Error ? error.message : String(error), elapsedMs: Math.round(performance.now() - start) };
  }
}

function collectives(group: ProcessGroup): CollectivesResult {
  const { rank, worldSize } = group;
  const sumFloat32 = group.allreduce(tensor([rank + 1, 10 * (rank + 1), -rank], { dtype: 'float32' }), 'sum').toArray();
  const avgFloat32 = group.allreduce(tensor([rank + 1, 2 * rank], { dtype: 'float32' }), 'avg').toArray();
  // 2^40 + rank: beyond float32's exact range, so a lossy path would show.
  const int64 = group.allreduce(tensor([2 ** 40 + rank, -rank], { dtype: 'int64' }), 'sum');
  let avgInt64Error = '';
  try {
    group.allreduce(tensor([rank], { dtype: 'int64' }), 'avg');
  } catch (error) {
    avgInt64Error = (error as Error).message;
  }
  // Each rank starts with its own values; the last rank's win.
  const broadcastFromLast = group.broadcast(full([2, 2], 100 + rank, { dtype: 'float32' }), worldSize - 1).toArray();
  // Rank r contributes a (2, 3) block of r*10 + 0..5.
  const block = tensor([0, 1, 2, 3, 4, 5].map((v) => rank * 10 + v), { dtype: 'float32', shape: [2, 3] });
  const gathered = group.allgather(block);
  const allgatherScalar = group.allgather(tensor(rank * 7, { dtype: 'int64' })).toArray();
  group.barrier();
  return {
    rank,
    worldSize,
    sumFloat32,
    avgFloat32,
    sumInt64: int64.toArray(),
    sumInt64Dtype: int64.dtype,
    broadcastFromLast,
    allgatherShape: gathered.shape,
    allgather: gathered.toArray(),
    allgatherScalar,
    avgInt64Error,
    barrierReturned: true,
  };
}

export interface GatherGradResult {
  rank: number;
  loss: number;
  /** d loss / d weight, averaged over ranks (the trainer's gradient all-reduce). */
  gradient: number[];
  /** This rank's own d loss / d weight, before the average: worldSize × the terms through its own rows. */
  localGradient: number[];
  /** d loss / d scale (a parameter after the gather), averaged over ranks. */
  scaleGradient: number;
  /** This rank's own d loss / d scale: already the whole one. */
  localScaleGradient: number;
  gatheredShape: number[];
}

// Rank r embeds its own rows of GATHER_GRAD_INPUTS (two each) with the shared weight; every rank
// then computes the same loss over all ranks' embeddings.
function gatherGrad(group: ProcessGroup): GatherGradResult {
  const weight = tensor(GATHER_GRAD_WEIGHT, { dtype: 'float32', shape: [2, 3] }).requiresGrad_();
  const rows = GATHER_GRAD_INPUTS.slice(group.rank * 2, group.rank * 2 + 2).flat();
  const local: Tensor = tensor(rows, { dtype: 'float32', shape: [2, 2] }).matmul(weight);
  const scale = tensor(GATHER_GRAD_SCALE, { dtype: 'float32' }).requiresGrad_();
  const gathered = allGatherWithGrad(group, local);
  const loss = gatherGradLoss(gathered, scale);
  loss.backward();
  const localGradient = weight.grad!.toArray();
  // Data-parallel training averages every parameter's gradient across ranks.
  const gradient = group.allreduce(weight.grad!.contiguous(), 'avg').toArray();
  const localScaleGradient = scale.grad!.item();
  const scaleGradient = group.allreduce(scale.grad!.contiguous(), 'avg').item();
  return { rank: group.rank, loss: loss.item(), gradient, localGradient, scaleGradient, localScaleGradient, gatheredShape: gathered.shape };
}

const plan = JSON.parse(process.argv[2] ?? '{}') as WorkerPlan;
const rank = plan.group.rank;
const creationStart = performance.now();
let formed: ProcessGroup;
try {
  formed = ProcessGroup.create(plan.group);
} catch (error) {
  report({ rank, error: (error as Error).message, elapsedMs: Math.round(performance.now() - creationStart) } satisfies FailureResult);
  process.exit(0);
}
const creation: FailureResult = { rank, error: null, elapsedMs: Math.round(performance.now() - creationStart) };

switch (plan.scenario) {
  case 'create-only':
    report(creation);
    break;
  case 'collectives':
    report(collectives(formed));
    break;
  case 'gather-grad':
    report(gatherGrad(formed));
    break;
  case 'peer-killed':
    formed.barrier();
    if (rank === 1) process.kill(process.pid, 'SIGKILL');
    sleepSync(300); // let the kernel close rank 1's sockets first
    report(timed(rank, () => formed.allreduce(tensor([1, 2, 3], { dtype: 'float32' }), 'sum')));
    break;
  case 'peer-silent':
    formed.barrier();
    if (rank === 1) {
      sleepSync(formed.timeoutMs + 1500); // well past rank 0's timeout, so rank 0 sees a timeout, not a closed connection
      report({ rank, error: null, elapsedMs: 0 });
      process.exit(0);
    }
    report(timed(rank, () => formed.allreduce(tensor([1, 2, 3], { dtype: 'float32' }), 'sum')));
    break;
}
// Exit without disposing: after a failed collective the peer is gone, and the process
// ending closes the sockets; a healthy run disposes to check that it returns.
if (plan.scenario === 'collectives' || plan.scenario === 'create-only' || plan.scenario === 'gather-grad') formed.dispose();
process.exit(0);

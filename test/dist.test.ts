/**
 * Collectives across real processes (src/engine/dist.ts over c10d's ProcessGroupGloo, shim in
 * native/kiln_dist.cc): each case spawns 2 or 3 ranks of test/helpers/dist-worker.mts on
 * loopback and checks what they report against hand-computed values, and that every failure
 * (a killed peer, a silent peer, a peer that never came) is an Error naming the rank and the
 * operation within the timeout. Also the torchrun variable parsing, which needs no processes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { distributedEnvironment, tensor, type ProcessGroupOptions } from '../src/engine/index.js';
import type { CollectivesResult, FailureResult, GatherGradResult, WorkerPlan } from './helpers/dist-worker.mjs';
import { GATHER_GRAD_INPUTS, GATHER_GRAD_SCALE, GATHER_GRAD_WEIGHT, gatherGradLoss } from './helpers/dist-gather-case.js';
import { REPO_ROOT } from './helpers/python.js';
import { freePort } from '../src/train/launch.js';

const WORKER = 'test/helpers/dist-worker.mts';
// Past this a worker is killed and the test fails: nothing below may hang.
const WORKER_KILL_MS = 25_000;

interface WorkerOutcome {
  rank: number;
  exitCode: number | null;
  signal: NodeJS.Signals | null;
  result: unknown;
  stderr: string;
}

function runWorker(plan: WorkerPlan): Promise<WorkerOutcome> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', WORKER, JSON.stringify(plan)], { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), WORKER_KILL_MS);
    child.on('close', (exitCode, signal) => {
      clearTimeout(killer);
      const line = stdout.split('\n').find((l) => l.startsWith('RESULT '));
      resolve({ rank: plan.group.rank, exitCode, signal, result: line === undefined ? null : JSON.parse(line.slice('RESULT '.length)), stderr });
    });
  });
}

/** Starts one worker per options entry at once and waits for all of them. */
function runRanks(scenario: WorkerPlan['scenario'], groups: ProcessGroupOptions[]): Promise<WorkerOutcome[]> {
  return Promise.all(groups.map((group) => runWorker({ scenario, group })));
}

async function tcpGroups(worldSize: number, timeoutMs: number): Promise<ProcessGroupOptions[]> {
  const port = await freePort();
  return Array.from({ length: worldSize }, (_, rank) => ({ store: 'tcp' as const, host: '127.0.0.1', port, rank, worldSize, timeoutMs }));
}

function resultOf<T>(outcome: WorkerOutcome): T {
  expect(outcome.result, `rank ${outcome.rank} printed no RESULT (exit ${outcome.exitCode}, signal ${outcome.signal}); stderr:\n${outcome.stderr}`).not.toBeNull();
  return outcome.result as T;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/** What every rank of a `collectives` run must report, computed by hand from the worker's inputs. */
function checkCollectives(results: CollectivesResult[], worldSize: number): void {
  const ranks = range(worldSize);
  const sum = (f: (r: number) => number): number => ranks.reduce((acc, r) => acc + f(r), 0);
  for (const result of results) {
    expect(result.worldSize).toBe(worldSize);
    expect(result.sumFloat32).toEqual([sum((r) => r + 1), sum((r) => 10 * (r + 1)), sum((r) => -r)]);
    expect(result.avgFloat32).toEqual([sum((r) => r + 1) / worldSize, sum((r) => 2 * r) / worldSize]);
    expect(result.sumInt64Dtype).toBe('int64');
    expect(result.sumInt64).toEqual([worldSize * 2 ** 40 + sum((r) => r), -sum((r) => r)]);
    expect(result.avgInt64Error).toMatch(new RegExp(`^rank ${result.rank}: allreduce failed after \\d+ ms: 'avg' needs a floating-point tensor`));
    expect(result.broadcastFromLast).toEqual([1, 2, 3, 4].map(() => 100 + worldSize - 1));
    expect(result.allgatherShape).toEqual([2 * worldSize, 3]);
    expect(result.allgather).toEqual(ranks.flatMap((r) => range(6).map((v) => r * 10 + v)));
    expect(result.allgatherScalar).toEqual(ranks.map((r) => r * 7));
    expect(result.barrierReturned).toBe(true);
  }
}

describe('ProcessGroup over a TCP store, 2 ranks', () => {
  let results: CollectivesResult[];
  beforeAll(async () => {
    const outcomes = await runRanks('collectives', await tcpGroups(2, 10_000));
    results = outcomes.map((o) => resultOf<CollectivesResult>(o));
  }, 30_000);

  it('reports from both ranks, in rank order', () => {
    expect(results.map((r) => r.rank)).toEqual([0, 1]);
  });
  it('allreduce sum and avg give the hand-computed values, float32 and int64', () => {
    expect(results[0]!.sumFloat32).toEqual([3, 30, -1]);
    expect(results[1]!.avgFloat32).toEqual([1.5, 1]);
    expect(results[0]!.sumInt64).toEqual([2 ** 41 + 1, -1]);
    checkCollectives(results, 2);
  });
  it('broadcast from rank 1 overwrites rank 0', () => {
    expect(results[0]!.broadcastFromLast).toEqual([101, 101, 101, 101]);
  });
  it('allgather concatenates every rank in rank order along dim 0', () => {
    expect(results[1]!.allgatherShape).toEqual([4, 3]);
    expect(results[1]!.allgather).toEqual([0, 1, 2, 3, 4, 5, 10, 11, 12, 13, 14, 15]);
  });
});

describe('allGatherWithGrad, 2 ranks', () => {
  it('gives every rank the whole batch, and the rank-averaged gradient equals one process computing the loss over it', async () => {
    const [rank0, rank1] = (await runRanks('gather-grad', await tcpGroups(2, 10_000))).map((o) => resultOf<GatherGradResult>(o));
    // The reference: one process, all four rows, the same loss, plain autograd.
    const weight = tensor(GATHER_GRAD_WEIGHT, { dtype: 'float32', shape: [2, 3] }).requiresGrad_();
    const scale = tensor(GATHER_GRAD_SCALE, { dtype: 'float32' }).requiresGrad_();
    const embeddings = tensor(GATHER_GRAD_INPUTS.flat(), { dtype: 'float32', shape: [4, 2] }).matmul(weight);
    const loss = gatherGradLoss(embeddings, scale);
    loss.backward();
    const expected = weight.grad!.toArray();
    const expectedScale = scale.grad!.item();
    for (const result of [rank0!, rank1!]) {
      expect(result.gatheredShape).toEqual([4, 3]);
      expect(result.loss).toBeCloseTo(loss.item(), 6);
      result.gradient.forEach((g, i) => expect(g).toBeCloseTo(expected[i]!, 5));
      // After the gather every rank sees the whole batch: its own gradient is already the whole one.
      expect(result.localScaleGradient).toBeCloseTo(expectedScale, 5);
      expect(result.scaleGradient).toBeCloseTo(expectedScale, 5);
    }
    // Neither rank's own encoder gradient is the whole one: the case couples the ranks' rows, and
    // the two local parts (each scaled by the world size) average to it.
    for (const result of [rank0!, rank1!]) expect(Math.max(...result.localGradient.map((g, i) => Math.abs(g - expected[i]!)))).toBeGreaterThan(1e-2);
    rank0!.localGradient.forEach((g, i) => expect((g + rank1!.localGradient[i]!) / 2).toBeCloseTo(expected[i]!, 5));
  }, 30_000);
});

describe('ProcessGroup with 3 ranks', () => {
  it('every collective agrees with the hand-computed values', async () => {
    const outcomes = await runRanks('collectives', await tcpGroups(3, 10_000));
    const results = outcomes.map((o) => resultOf<CollectivesResult>(o));
    checkCollectives(results, 3);
    expect(results[2]!.sumFloat32).toEqual([6, 60, -3]);
  }, 30_000);
});

describe('ProcessGroup over a file store', () => {
  let directory: string;
  beforeAll(() => {
    directory = mkdtempSync(join(tmpdir(), 'kiln-dist-'));
  });
  afterAll(() => rmSync(directory, { recursive: true, force: true }));

  it('forms and runs every collective', async () => {
    const path = join(directory, 'rendezvous');
    const groups = range(2).map((rank): ProcessGroupOptions => ({ store: 'file', path, rank, worldSize: 2, timeoutMs: 10_000, deviceHost: '127.0.0.1' }));
    const results = (await runRanks('collectives', groups)).map((o) => resultOf<CollectivesResult>(o));
    checkCollectives(results, 2);
  }, 30_000);
});

describe('ProcessGroup failures end within the timeout, as Errors naming the rank and the operation', () => {
  const timeoutMs = 3000;
  // Slack for process scheduling on a loaded machine, above the shim's own 1 s wait grace.
  const marginMs = 2500;

  it('a killed peer: the next allreduce on rank 0 throws', async () => {
    const [rank0, rank1] = await runRanks('peer-killed', await tcpGroups(2, timeoutMs));
    expect(rank1!.signal).toBe('SIGKILL');
    const failure = resultOf<FailureResult>(rank0!);
    expect(failure.error).toMatch(/^rank 0: allreduce failed after \d+ ms: /);
    expect(failure.elapsedMs).toBeLessThan(timeoutMs + marginMs);
    console.info(`killed peer: rank 0 failed in ${failure.elapsedMs} ms: ${failure.error}`);
  }, 30_000);

  it('a silent peer: rank 0 allreduce throws once the timeout runs out', async () => {
    const [rank0] = await runRanks('peer-silent', await tcpGroups(2, timeoutMs));
    const failure = resultOf<FailureResult>(rank0!);
    expect(failure.error).toMatch(/^rank 0: allreduce failed after \d+ ms: /);
    expect(failure.elapsedMs).toBeGreaterThanOrEqual(timeoutMs - 100);
    expect(failure.elapsedMs).toBeLessThan(timeoutMs + marginMs);
    console.info(`silent peer: rank 0 failed in ${failure.elapsedMs} ms: ${failure.error}`);
  }, 30_000);

  it('a missing peer: creating the group on rank 0 throws, naming the store', async () => {
    const [rank0] = await tcpGroups(2, timeoutMs);
    const [outcome] = await runRanks('create-only', [rank0!]);
    const failure = resultOf<FailureResult>(outcome!);
    expect(failure.error).toMatch(/^rank 0: creating the process group of 2 ranks \(TCP store at 127\.0\.0\.1:\d+\) failed after \d+ ms: /);
    expect(failure.elapsedMs).toBeLessThan(timeoutMs + marginMs);
    console.info(`missing peer: rank 0 failed in ${failure.elapsedMs} ms: ${failure.error}`);
  }, 30_000);

  it('a missing peer on a file store: creation on rank 0 throws, naming the file', async () => {
    const directory = mkdtempSync(join(tmpdir(), 'kiln-dist-'));
    try {
      const path = join(directory, 'rendezvous');
      const [outcome] = await runRanks('create-only', [{ store: 'file', path, rank: 0, worldSize: 2, timeoutMs, deviceHost: '127.0.0.1' }]);
      const failure = resultOf<FailureResult>(outcome!);
      expect(failure.error).toMatch(/^rank 0: creating the process group of 2 ranks \(file store .*rendezvous\) failed after \d+ ms: /);
      expect(failure.elapsedMs).toBeLessThan(timeoutMs + marginMs);
      console.info(`missing peer (file store): rank 0 failed in ${failure.elapsedMs} ms: ${failure.error}`);
    } finally {
      rmSync(directory, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('distributedEnvironment (torchrun variables)', () => {
  const torchrun = { WORLD_SIZE: '4', RANK: '3', LOCAL_RANK: '1', LOCAL_WORLD_SIZE: '2', MASTER_ADDR: 'node0', MASTER_PORT: '29500' };

  it('is null for a single process', () => {
    expect(distributedEnvironment({})).toBeNull();
    expect(distributedEnvironment({ WORLD_SIZE: '1', RANK: '0' })).toBeNull();
  });
  it('reads every variable', () => {
    expect(distributedEnvironment(torchrun)).toEqual({
      masterAddr: 'node0', masterPort: 29500, worldSize: 4, rank: 3, localRank: 1, localWorldSize: 2, storeHostedByAgent: false, restartCount: 0,
    });
    expect(distributedEnvironment({ ...torchrun, LOCAL_WORLD_SIZE: undefined, TORCHELASTIC_USE_AGENT_STORE: 'True', TORCHELASTIC_RESTART_COUNT: '2' })).toMatchObject({
      localWorldSize: null, storeHostedByAgent: true, restartCount: 2,
    });
  });
  it('names the variable and its value when they are wrong', () => {
    expect(() => distributedEnvironment({ ...torchrun, WORLD_SIZE: '0' })).toThrow('WORLD_SIZE=0 must be at least 1');
    expect(() => distributedEnvironment({ ...torchrun, WORLD_SIZE: 'two' })).toThrow('WORLD_SIZE="two" is not a non-negative integer');
    expect(() => distributedEnvironment({ ...torchrun, RANK: '4' })).toThrow('RANK=4 must be below WORLD_SIZE=4');
    expect(() => distributedEnvironment({ ...torchrun, RANK: '1.5' })).toThrow('RANK="1.5" is not a non-negative integer');
    expect(() => distributedEnvironment({ ...torchrun, RANK: undefined })).toThrow('RANK is not set');
    expect(() => distributedEnvironment({ ...torchrun, MASTER_PORT: '70000' })).toThrow('MASTER_PORT=70000 is not a TCP port');
    expect(() => distributedEnvironment({ ...torchrun, MASTER_PORT: '0' })).toThrow('MASTER_PORT=0 must be at least 1');
    expect(() => distributedEnvironment({ ...torchrun, MASTER_ADDR: '' })).toThrow('MASTER_ADDR is empty');
    expect(() => distributedEnvironment({ ...torchrun, LOCAL_RANK: '2' })).toThrow('LOCAL_RANK=2 must be below LOCAL_WORLD_SIZE=2');
    expect(() => distributedEnvironment({ ...torchrun, LOCAL_WORLD_SIZE: '8' })).toThrow('LOCAL_WORLD_SIZE=8 cannot exceed WORLD_SIZE=4');
  });
});

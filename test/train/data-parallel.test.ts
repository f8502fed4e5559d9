/**
 * Data-parallel training end to end, on loopback: `kiln train --nproc 2` against one process
 * taking the same batches, ZeRO-1 against plain data parallelism, and a worker killed mid-run.
 *
 * Every run pins OpenBLAS and OpenMP to one thread: the launcher gives each worker its share of
 * the cores, and the single-process reference must run the same kernels, or the two differ by
 * the rounding of differently threaded matmuls rather than by anything data parallelism does.
 */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { loadSafetensors } from '../../src/engine/index.js';
import { loadLatestCheckpoint } from '../../src/train/checkpoint.js';
import { BIN, ENV, onlyRun, runDirs } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/python.js';

const TIMEOUT_MS = 300_000;
const CONFIG = 'configs/examples/own-pairs.yaml';
const PINNED = { ...ENV, OPENBLAS_NUM_THREADS: '1', OMP_NUM_THREADS: '1' };
// 20 fp32 steps without dropout (each rank draws its own dropout masks from its slice's seed,
// which matches one process too, but zero dropout keeps the comparison about the gradients).
const TWENTY_STEPS = ['--set', 'train.steps=20', '--set', 'train.warmup_steps=2', '--set', 'model.hidden_dropout=0', '--set', 'model.attention_dropout=0', '--set', 'train.log_every=1', '--set', 'train.eval_every=0', '--set', 'train.checkpoint_every=10', '--set', 'data.eval=[]', '--quiet'];

function train(runs: string, args: string[]): { status: number | null; stderr: string; run: string } {
  const r = spawnSync(process.execPath, [BIN, 'train', '--config', CONFIG, '--runs', runs, ...args], { cwd: REPO_ROOT, env: PINNED, encoding: 'utf8' });
  expect(r.status, r.stderr).toBe(0);
  return { status: r.status, stderr: r.stderr, run: onlyRun(runs) };
}

function losses(run: string): number[] {
  return readFileSync(join(run, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((line) => JSON.parse(line) as { name: string; value: number })
    .filter((m) => m.name === 'train/loss')
    .map((m) => m.value);
}

function weights(run: string): Map<string, Float32Array> {
  const { tensors } = loadSafetensors(join(run, 'model.safetensors'));
  const out = new Map<string, Float32Array>();
  for (const [name, t] of tensors) {
    out.set(name, t.toTypedArray().slice() as Float32Array);
    t.dispose();
  }
  return out;
}

/**
 * The largest per-tensor relative difference ‖a − b‖₂ / ‖b‖₂. Tensors whose true gradient is
 * zero (attention key biases: softmax ignores a constant shift of its logits) hold only rounding
 * noise of order 1e-9, which AdamW's normalisation turns into steps of random sign; for those
 * (‖b‖∞ < 1e-6) the absolute difference is what is compared, and it must stay noise.
 */
function largestRelativeDifference(a: Map<string, Float32Array>, b: Map<string, Float32Array>): { relative: number; tensor: string } {
  expect([...a.keys()].sort()).toEqual([...b.keys()].sort());
  let worst = { relative: 0, tensor: '' };
  for (const [name, x] of a) {
    const y = b.get(name)!;
    let diff = 0;
    let norm = 0;
    let largest = 0;
    for (let i = 0; i < x.length; i++) {
      diff += (x[i]! - y[i]!) ** 2;
      norm += y[i]! ** 2;
      largest = Math.max(largest, Math.abs(x[i]! - y[i]!), Math.abs(y[i]!));
    }
    if (largest < 1e-6) continue; // noise on both sides, and its difference below 1e-6
    const relative = Math.sqrt(diff / norm);
    if (relative > worst.relative) worst = { relative, tensor: name };
  }
  return worst;
}

function expectSameLosses(a: number[], b: number[]): void {
  expect(a).toHaveLength(20);
  expect(b).toHaveLength(20);
  a.forEach((x, i) => expect(Math.abs(x - b[i]!) / Math.abs(b[i]!), `step ${i + 1}: ${x} vs ${b[i]}`).toBeLessThan(1e-5));
}

describe('kiln train --nproc 2 (c10d Gloo on loopback)', () => {
  it('2 processes give the losses and final weights of 1 process taking the same micro-batches (grad_accum 2), to 1e-5', () => {
    const two = train(mkdtempSync(join(tmpdir(), 'kiln-dp2-')), [...TWENTY_STEPS, '--nproc', '2']);
    const one = train(mkdtempSync(join(tmpdir(), 'kiln-dp1-')), [...TWENTY_STEPS, '--set', 'train.grad_accum=2']);
    expect(two.stderr).toMatch(/2 processes × 1 thread/);
    expectSameLosses(losses(two.run), losses(one.run));
    const worst = largestRelativeDifference(weights(two.run), weights(one.run));
    expect(worst.relative, worst.tensor).toBeLessThan(1e-5);
    // Rank 0 alone wrote the run: one run directory, its checkpoint from both ranks' training.
    const summary = JSON.parse(readFileSync(join(two.run, 'summary.json'), 'utf8')) as { worldSize: number; steps: number };
    expect(summary).toMatchObject({ worldSize: 2, steps: 20 });
    const state = JSON.parse(readFileSync(join(two.run, 'checkpoints', 'step-0000020', 'state.json'), 'utf8')) as { state: { worldSize: number } };
    expect(state.state.worldSize).toBe(2);
  }, TIMEOUT_MS);

  it('with gather_negatives, 2 processes match 1 process that sees the whole batch at once', () => {
    const gather = ['--set', 'loss[0].gather_negatives=true'];
    const two = train(mkdtempSync(join(tmpdir(), 'kiln-dpg2-')), [...TWENTY_STEPS, ...gather, '--nproc', '2']);
    const one = train(mkdtempSync(join(tmpdir(), 'kiln-dpg1-')), [...TWENTY_STEPS, ...gather]);
    expectSameLosses(losses(two.run), losses(one.run));
    const worst = largestRelativeDifference(weights(two.run), weights(one.run));
    expect(worst.relative, worst.tensor).toBeLessThan(1e-5);
    // Without the gather each rank sees half the negatives: a different loss from the first step.
    const plain = train(mkdtempSync(join(tmpdir(), 'kiln-dpp2-')), [...TWENTY_STEPS, '--nproc', '2']);
    expect(Math.abs(losses(plain.run)[0]! - losses(one.run)[0]!)).toBeGreaterThan(1e-2);
  }, TIMEOUT_MS);

  it('ZeRO-1 gives the weights of plain data parallelism, keeps each rank its own optimizer shard and reports the memory saved', () => {
    const zero = train(mkdtempSync(join(tmpdir(), 'kiln-dpz-')), [...TWENTY_STEPS, '--set', 'train.zero=1', '--nproc', '2']);
    const plain = train(mkdtempSync(join(tmpdir(), 'kiln-dpp-')), [...TWENTY_STEPS, '--nproc', '2']);
    const a = weights(zero.run);
    const b = weights(plain.run);
    for (const [name, x] of a) expect(Array.from(x), name).toEqual(Array.from(b.get(name)!));
    expect(losses(zero.run)).toEqual(losses(plain.run));
    const checkpoint = join(zero.run, 'checkpoints', 'step-0000020');
    expect(readdirSync(checkpoint).sort()).toEqual(['model.safetensors', 'optimizer.bin', 'optimizer.rank-1.bin', 'state.json']);
    // Each shard holds the moments of part of the model: together about the whole optimizer state.
    const shards = readFileSync(join(checkpoint, 'optimizer.bin')).length + readFileSync(join(checkpoint, 'optimizer.rank-1.bin')).length;
    const whole = readFileSync(join(plain.run, 'checkpoints', 'step-0000020', 'optimizer.bin')).length;
    expect(Math.abs(shards - whole) / whole).toBeLessThan(0.05);
    expect(zero.stderr).toMatch(/ZeRO-1: rank 0 keeps AdamW state for \d+ of 2024704 parameter elements, [\d.]+ MiB less/);
  }, TIMEOUT_MS);

  it('a killed worker makes the other exit non-zero with a message, the last checkpoint stays intact, and the run resumes with the same world size only', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-dpk-'));
    const args = ['train', '--config', CONFIG, '--runs', runs, '--nproc', '2', '--dist-timeout', '30', '--quiet', '--set', 'train.steps=100000', '--set', 'train.checkpoint_every=3', '--set', 'train.eval_every=0', '--set', 'train.log_every=1'];
    const child = spawn(process.execPath, [BIN, ...args], { cwd: REPO_ROOT, env: PINNED, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    // Kill rank 1 once a checkpoint past the first is on disk.
    await new Promise<void>((resolve, reject) => {
      const timer = setInterval(() => {
        const dirs = runDirs(runs);
        const latest = dirs.length === 1 ? join(runs, dirs[0]!, 'checkpoints', 'latest') : null;
        const pid = /rank 1 pid (\d+)/.exec(stderr)?.[1];
        if (pid !== undefined && latest !== null && existsSync(latest) && Number(/step-(\d+)/.exec(readFileSync(latest, 'utf8'))?.[1]) >= 6) {
          clearInterval(timer);
          process.kill(Number(pid), 'SIGKILL');
          resolve();
        }
      }, 20);
      void exited.then(() => {
        clearInterval(timer);
        reject(new Error(`the run ended before it could be killed: ${stderr}`));
      });
    });
    const killedAt = performance.now();
    const code = await exited;
    expect(code).not.toBe(0);
    // Rank 0's next collective fails at once on the closed connection, well within the timeout.
    expect(performance.now() - killedAt).toBeLessThan(30_000);
    expect(stderr).toMatch(/rank 1 \(pid \d+\) was killed by SIGKILL/);
    expect(stderr).toMatch(/rank 0: \w+ failed after \d+ ms/);
    expect(stderr).toMatch(/continue with: kiln train --resume .* --nproc 2/);

    const run = onlyRun(runs);
    const checkpoint = loadLatestCheckpoint<{ worldSize: number }>(run)!;
    expect(checkpoint.step).toBeGreaterThanOrEqual(6);
    expect(checkpoint.state.worldSize).toBe(2);
    expect(checkpoint.weights.size).toBeGreaterThan(10);
    for (const t of checkpoint.weights.values()) {
      expect(Number.isFinite(t.abs().max().item())).toBe(true);
      t.dispose();
    }
    expect(checkpoint.optimizerStates[0]!.length).toBeGreaterThan(1000);

    // One process cannot take over a two-process run: exit 2, and nothing written.
    const before = readFileSync(join(run, 'metrics.jsonl'), 'utf8');
    const single = spawnSync(process.execPath, [BIN, 'train', '--resume', run, '--quiet'], { cwd: REPO_ROOT, env: PINNED, encoding: 'utf8' });
    expect(single.status).toBe(2);
    expect(single.stderr).toMatch(/was written by 2 process\(es\); this run has 1\. Resume with the same number: kiln train --resume .* --nproc 2/);
    expect(single.stderr).not.toMatch(/\n\s+at /);
    expect(readFileSync(join(run, 'metrics.jsonl'), 'utf8')).toBe(before);

    // Two processes continue from the checkpoint (a short run: the steps are cut by the resumed config's own count).
    const resumed = spawn(process.execPath, [BIN, 'train', '--resume', run, '--nproc', '2', '--quiet'], { cwd: REPO_ROOT, env: PINNED, stdio: 'ignore' });
    // The resumed run would train 100000 steps: check it gets past the checkpoint, then stop it.
    const resumedStep = await new Promise<number>((resolve, reject) => {
      const timer = setInterval(() => {
        const latest = join(run, 'checkpoints', 'latest');
        const step = Number(/step-(\d+)/.exec(readFileSync(latest, 'utf8'))?.[1]);
        if (step > checkpoint.step) {
          clearInterval(timer);
          resolve(step);
        }
      }, 20);
      resumed.on('exit', (c) => {
        clearInterval(timer);
        reject(new Error(`the resumed run exited with ${c}`));
      });
    });
    resumed.kill('SIGTERM');
    expect(resumedStep).toBeGreaterThan(checkpoint.step);
  }, TIMEOUT_MS);
});

describe("a worker started by another launcher (torchrun's variables)", () => {
  it('is a worker, not a launcher: as rank 0 of 2 whose peer never comes, it fails after --dist-timeout naming the rendezvous, writing nothing', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-dpalone-'));
    const env = { ...PINNED, WORLD_SIZE: '2', RANK: '0', LOCAL_RANK: '0', MASTER_ADDR: '127.0.0.1', MASTER_PORT: '29517' };
    const started = performance.now();
    const r = spawnSync(process.execPath, [BIN, 'train', '--config', CONFIG, '--runs', runs, '--quiet', '--dist-timeout', '3'], { cwd: REPO_ROOT, env, encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stderr).toMatch(/^rank 0: creating the process group of 2 ranks \(TCP store at 127\.0\.0\.1:29517\) failed after \d+ ms/);
    expect(r.stderr).toMatch(/did not all meet at 127\.0\.0\.1:29517 within --dist-timeout \(3 s\).*Nothing was written/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(performance.now() - started).toBeLessThan(60_000);
    expect(runDirs(runs)).toEqual([]);
  }, TIMEOUT_MS);
});

describe('kiln train --nproc: bad settings exit 2 before any worker starts', () => {
  it('a batch that does not cut into the processes, gather_negatives outside two-tower training, a mixed gather', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-dpbad-'));
    const run = (args: string[]): { status: number | null; stderr: string } => {
      const r = spawnSync(process.execPath, [BIN, 'train', '--config', CONFIG, '--runs', runs, '--quiet', ...args], { cwd: REPO_ROOT, env: PINNED, encoding: 'utf8' });
      return { status: r.status, stderr: r.stderr };
    };
    const uneven = run(['--nproc', '3']);
    expect(uneven.status).toBe(2);
    expect(uneven.stderr).toMatch(/train\.batch_size 16 does not cut into 3 processes × train\.grad_accum 1 = 3 equal micro-batches; use a multiple of 3/);
    const accum = run(['--set', 'train.grad_accum=3']);
    expect(accum.status).toBe(2);
    expect(accum.stderr).toMatch(/grad_accum.*train\.batch_size 16 does not cut into 3 equal micro-batches/);
    const mixed = run(['--set', 'loss=[{name: infonce, gather_negatives: true}, {name: bce}]']);
    expect(mixed.status).toBe(2);
    expect(mixed.stderr).toMatch(/loss\.1\.gather_negatives.*set gather_negatives on all of them or none|loss\[1\]\.gather_negatives.*all of them or none/);
    const ce = run(['--set', 'task=cross-encoder', '--set', 'loss=[{name: bce, gather_negatives: true}]']);
    expect(ce.status).toBe(2);
    expect(ce.stderr).toMatch(/only task twotower has/);
    for (const r of [uneven, accum, mixed, ce]) expect(r.stderr).not.toMatch(/launched \d worker/);
    expect(runDirs(runs)).toEqual([]);
  }, TIMEOUT_MS);
});

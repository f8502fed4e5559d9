/**
 * Resumable checkpoints, written atomically.
 *
 * A checkpoint is a directory `checkpoints/step-NNNNNNN/` holding the weights
 * (model.safetensors), the optimizer state (optimizer.bin: AdamW moments and step counts, as
 * libtorch serialises them; under ZeRO-1 each rank's shard, rank R > 0 in optimizer.rank-R.bin)
 * and state.json (step, data-order state, early-stopping state, world size, …).
 * It is assembled in a temporary directory and renamed into place, then `checkpoints/latest`
 * (a one-line file, itself written atomically) is pointed at it, and only then are older
 * checkpoints deleted. A `kill -9` at any instant leaves `latest` naming a complete checkpoint.
 */
import { existsSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

import { writeFileAtomic } from '../util/atomic-write.js';
import { loadSafetensors, saveSafetensors, type Tensor } from '../engine/index.js';

export interface CheckpointFiles<State> {
  step: number;
  weights: Map<string, Tensor>;
  /** The optimizer's state bytes: one buffer, or under ZeRO-1 one per rank in rank order. */
  optimizerStates: readonly Buffer[];
  state: State;
}

/** optimizer.bin for rank 0 (and for an unpartitioned optimizer), optimizer.rank-R.bin for the other ranks' shards. */
function optimizerFile(rank: number): string {
  return rank === 0 ? 'optimizer.bin' : `optimizer.rank-${rank}.bin`;
}

const LATEST = 'latest';

export function saveCheckpoint<State>(runPath: string, checkpoint: CheckpointFiles<State>, keep = 1): string {
  const root = join(runPath, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const name = `step-${String(checkpoint.step).padStart(7, '0')}`;
  const temp = join(root, `.${name}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  mkdirSync(temp);
  saveSafetensors(join(temp, 'model.safetensors'), checkpoint.weights);
  checkpoint.optimizerStates.forEach((bytes, rank) => writeFileAtomic(join(temp, optimizerFile(rank)), [bytes]));
  writeFileAtomic(join(temp, 'state.json'), [Buffer.from(JSON.stringify({ step: checkpoint.step, state: checkpoint.state }))]);
  const final = join(root, name);
  rmSync(final, { recursive: true, force: true }); // a stale one from a run resumed before this step
  renameSync(temp, final);
  writeFileAtomic(join(root, LATEST), [Buffer.from(`${name}\n`)]);
  // Older checkpoints and abandoned temporaries go only after `latest` names the new one.
  const complete = readdirSync(root).filter((f) => /^step-\d+$/.test(f)).sort();
  for (const old of complete.slice(0, Math.max(0, complete.length - keep))) rmSync(join(root, old), { recursive: true, force: true });
  for (const f of readdirSync(root)) if (f.endsWith('.tmp') && !f.includes(`.${process.pid}.`)) rmSync(join(root, f), { recursive: true, force: true });
  return final;
}

/** Rewrites the state of the checkpoint `latest` names (it must be at `step`), atomically, leaving its weights alone. */
export function updateCheckpointState<State>(runPath: string, step: number, state: State): void {
  const root = join(runPath, 'checkpoints');
  const name = readFileSync(join(root, LATEST), 'utf8').trim();
  if (name !== `step-${String(step).padStart(7, '0')}`) throw new Error(`${join(root, LATEST)} names ${name}, not the checkpoint of step ${step}`);
  writeFileAtomic(join(root, name, 'state.json'), [Buffer.from(JSON.stringify({ step, state }))]);
}

export interface LoadedCheckpoint<State> {
  path: string;
  step: number;
  weights: Map<string, Tensor>;
  /** optimizer.bin, then optimizer.rank-1.bin, … when the run partitioned its optimizer (ZeRO-1). */
  optimizerStates: Buffer[];
  state: State;
}

/** The checkpoint `latest` names, or null when the run has none yet. The caller disposes the weights. */
export function loadLatestCheckpoint<State>(runPath: string): LoadedCheckpoint<State> | null {
  const root = join(runPath, 'checkpoints');
  const latestFile = join(root, LATEST);
  if (!existsSync(latestFile)) return null;
  const name = readFileSync(latestFile, 'utf8').trim();
  const path = join(root, name);
  if (!existsSync(join(path, 'state.json'))) throw new Error(`${latestFile} names ${name}, which is missing or incomplete`);
  const { step, state } = JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as { step: number; state: State };
  const { tensors } = loadSafetensors(join(path, 'model.safetensors'));
  const optimizerStates: Buffer[] = [];
  for (let rank = 0; existsSync(join(path, optimizerFile(rank))); rank++) optimizerStates.push(readFileSync(join(path, optimizerFile(rank))));
  if (optimizerStates.length === 0) throw new Error(`${path}: optimizer.bin is missing`);
  return { path, step, weights: tensors, optimizerStates, state };
}

/** The step and state of the checkpoint `latest` names, without loading its tensors; null when the run has none. */
export function readLatestCheckpointState<State>(runPath: string): { path: string; step: number; state: State } | null {
  const latestFile = join(runPath, 'checkpoints', LATEST);
  if (!existsSync(latestFile)) return null;
  const path = join(runPath, 'checkpoints', readFileSync(latestFile, 'utf8').trim());
  if (!existsSync(join(path, 'state.json'))) return null;
  const { step, state } = JSON.parse(readFileSync(join(path, 'state.json'), 'utf8')) as { step: number; state: State };
  return { path, step, state };
}

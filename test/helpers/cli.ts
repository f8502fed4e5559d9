/** Running the built `kiln` CLI (bin/kiln.js) against the real data root, for end-to-end tests. */
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect } from 'vitest';

import { REPO_ROOT } from './python.js';
import { DATA_ROOT } from '../data/root.js';

export const BIN = join(REPO_ROOT, 'bin', 'kiln.js');
export const ENV = { ...process.env, KILN_DATA: DATA_ROOT };

export function kiln(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: REPO_ROOT, env: ENV });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** The run directories under `runsRoot` (the run store, kiln.db, sits beside them). */
export function runDirs(runsRoot: string): string[] {
  return existsSync(runsRoot) ? readdirSync(runsRoot, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort() : [];
}

/** The one run directory under `runsRoot` (fails the test if there is not exactly one). */
export function onlyRun(runsRoot: string): string {
  const runs = runDirs(runsRoot);
  expect(runs).toHaveLength(1);
  return join(runsRoot, runs[0]!);
}

/**
 * Starts `kiln train <trainArgs> --runs runsRoot`, kills it with SIGKILL as soon as its
 * `checkpoints/latest` names step `minStep` or later, and returns the run directory.
 */
export async function killAfterCheckpoint(runsRoot: string, trainArgs: string[], minStep: number): Promise<string> {
  const child = spawn(process.execPath, [BIN, 'train', ...trainArgs, '--runs', runsRoot], { cwd: REPO_ROOT, env: ENV, stdio: 'ignore' });
  await new Promise<void>((resolvePromise, reject) => {
    const timer = setInterval(() => {
      const runs = runDirs(runsRoot);
      const latest = runs.length === 1 ? join(runsRoot, runs[0]!, 'checkpoints', 'latest') : null;
      if (latest !== null && existsSync(latest) && Number(/step-(\d+)/.exec(readFileSync(latest, 'utf8'))?.[1]) >= minStep) {
        child.kill('SIGKILL');
        clearInterval(timer);
        resolvePromise();
      }
    }, 10);
    child.on('exit', () => {
      clearInterval(timer);
      reject(new Error('the run finished before it could be killed'));
    });
  });
  await new Promise((r) => child.on('exit', r));
  return onlyRun(runsRoot);
}

/** Running the built `kiln` CLI (bin/kiln.js) against the real data root, for end-to-end tests. */
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
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

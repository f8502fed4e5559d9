/**
 * Two `kiln train` processes writing into one runs directory at once: both runs are in the
 * store, finished, with every metric point their metrics.jsonl has (none lost to a lock).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { RunStore } from '../../src/track/store.js';
import { BIN, ENV, runDirs } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/python.js';

describe('the run store under two concurrent trainings', () => {
  it('loses nothing', async () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const train = (lr: string): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolvePromise) => {
        // log_every 1: a store write every step from both processes.
        const child = spawn(process.execPath, [BIN, 'train', '--config', 'configs/tiny-mlm.yaml', '--runs', runs, '--quiet', '--set', `train.lr=${lr}`, '--set', 'train.log_every=1', '--set', 'train.steps=40'], { cwd: REPO_ROOT, env: ENV });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        child.on('exit', (code) => resolvePromise({ code, stderr }));
      });
    const results = await Promise.all([train('1.0e-3'), train('2.0e-3')]);
    for (const r of results) expect(r.code, r.stderr).toBe(0);
    const ids = runDirs(runs);
    expect(ids).toHaveLength(2);
    const store = RunStore.open(runs);
    expect(store.listRuns().map((r) => r.id).sort()).toEqual(ids);
    for (const id of ids) {
      const run = store.getRun(id);
      expect(run.status).toBe('finished');
      const lines = readFileSync(join(runs, id, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; name: string; value: number });
      expect(lines.filter((l) => l.name === 'train/loss')).toHaveLength(40);
      for (const key of new Set(lines.map((l) => l.name))) {
        expect(store.metricSeries(id, key).map((p) => [p.step, p.value]), key).toEqual(lines.filter((l) => l.name === key).map((l) => [l.step, l.value]));
      }
    }
    store.close();
  }, 180_000);
});

/**
 * The flags `kiln serve` and `kiln export` share with the other commands (--json, --quiet,
 * --threads; test/cli.test.ts checks every command declares them), end to end through the
 * built CLI: what --json prints, what --quiet leaves out, and the fix printed when a training
 * run is given to `kiln serve --model`.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { beforeAll, describe, expect, it } from 'vitest';

import { BIN, ENV, kiln } from './helpers/cli.js';
import { exportedTinyModels, tinyRun } from './helpers/exported-model.js';
import { REPO_ROOT } from './helpers/python.js';

beforeAll(() => {
  expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'serve.js')), 'build first: npx tsc -p tsconfig.build.json').toBe(true);
});

describe('kiln serve --model <a training run>', () => {
  it('exits 2 with the one line that says to export it first', () => {
    // What trainingRunGivenAsModel recognises: config.yaml, and no *.onnx beside it (model.json
    // too, as a run has, so the check is not the one for a directory without a card).
    const run = mkdtempSync(join(tmpdir(), 'kiln-run-'));
    writeFileSync(join(run, 'config.yaml'), 'name: tiny\n');
    writeFileSync(join(run, 'model.json'), '{}');
    const r = kiln(['serve', '--model', run, '--port', '0']);
    expect(r.status, r.stderr).toBe(2);
    const errors = r.stderr.split('\n').filter((line) => line.includes('training run'));
    expect(errors).toEqual([`--model ${run} is a training run; run \`kiln export --run ${run} --out DIR\` first, then pass --model DIR`]);
    expect(r.stderr).not.toMatch(/\n\s+at /);
    expect(r.stdout).toBe('');
  }, 30_000);
});

describe('kiln export --json --quiet --threads', () => {
  it('prints the result as one JSON object with the output directory, and nothing on stderr', () => {
    // A random tiny model in a run directory without config.yaml: the parity check runs on the
    // built-in texts, so no training and no data are needed.
    const run = tinyRun();
    const out = join(mkdtempSync(join(tmpdir(), 'kiln-export-')), 'model');
    const r = kiln(['export', '--run', run, '--out', out, '--json', '--quiet', '--threads', '1']);
    expect(r.status, r.stderr).toBe(0);
    expect(r.stderr).toBe('');
    const result = JSON.parse(r.stdout) as { outDir: string; format: string; modelId: string; kind: string; quantization: string; checks: { parity?: { passed: boolean; maxAbsDiff: number } } | null };
    expect(result).toMatchObject({ outDir: out, format: 'onnx', kind: 'two-tower', quantization: 'none' });
    expect(result.modelId).toMatch(/@[0-9a-f]{12}$/);
    expect(result.checks?.parity?.passed).toBe(true);
    expect(result.checks?.parity?.maxAbsDiff).toBeLessThanOrEqual(1e-4);
    expect(existsSync(join(out, 'model.json'))).toBe(true);
  }, 60_000);

  it('rejects --threads 0 with exit 2', () => {
    const r = kiln(['export', '--run', tmpdir(), '--threads', '0']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--threads 0: expected a positive integer');
  }, 30_000);
});

describe('kiln serve --json', () => {
  it('prints one JSON line with the url, answers there, and keeps stdout to that line through SIGTERM', async () => {
    const { twoTower } = await exportedTinyModels();
    const child = spawn(process.execPath, [BIN, 'serve', '--model', twoTower, '--port', '0', '--threads', '1', '--json'], { cwd: REPO_ROOT, env: ENV, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
    try {
      const line = await new Promise<string>((resolve, reject) => {
        createInterface({ input: child.stdout }).once('line', resolve);
        void exited.then((code) => reject(new Error(`kiln serve exited ${code} before listening: ${stderr}`)));
      });
      const startup = JSON.parse(line) as { url: string; model: string; kind: string; openai: { baseUrl: string; models: string[] } | null; index: unknown; skills: unknown };
      expect(startup.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      expect(startup.url).not.toBe('http://127.0.0.1:0');
      expect(startup.kind).toBe('two-tower');
      expect(startup.openai?.baseUrl).toBe(`${startup.url}/v1`);
      expect(startup.openai?.models).toContain(startup.model);
      expect(startup.index).toBeNull();
      expect(startup.skills).toBeNull();
      const health = await fetch(`${startup.url}/healthz`);
      expect(await health.json()).toEqual({ status: 'ok', model: startup.model });
      child.kill('SIGTERM');
      expect(await exited, stderr).toBe(0);
      // The shutdown lines went to stderr: stdout is still the one JSON document.
      expect(stdout).toBe(`${line}\n`);
      expect(stderr).toContain('SIGTERM: draining in-flight requests, then stopping\nstopped\n');
    } finally {
      child.kill('SIGKILL');
    }
  }, 60_000);
});

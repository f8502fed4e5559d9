import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { REPO_ROOT, runPython } from './helpers/python.js';

const BIN = join(REPO_ROOT, 'bin', 'kiln.js');

function kiln(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: REPO_ROOT });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('kiln CLI', () => {
  it('is built by npm ci (dist/cli/main.js)', () => {
    expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'main.js')), 'run `npm ci` or `npm run build`').toBe(true);
  });

  it('--help lists exactly the commands that exist', () => {
    const r = kiln(['--help']);
    expect(r.status).toBe(0);
    const listed = [...r.stdout.matchAll(/^\s+kiln (\w+)/gm)].map((m) => m[1]);
    expect(listed).toEqual(['info', 'train', 'eval', 'export', 'embed', 'index', 'serve', 'runs', 'dashboard', 'gate', 'skills']);
  });

  it('info --json reports the libtorch that Python torch also reports', () => {
    const r = kiln(['info', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { libtorch: string; cudaCompiled: boolean; intraOpThreads: number; blas: string };
    const pythonTorch = runPython(['-c', 'import torch; print(torch.__version__.split("+")[0])']).trim();
    // Debian's python3-torch and libtorch-dev are one build; the C++ TORCH_VERSION drops the patch level.
    expect(pythonTorch.startsWith(info.libtorch.split('.').slice(0, 2).join('.'))).toBe(true);
    expect(info.intraOpThreads).toBeGreaterThanOrEqual(1);
    // .ci/run installs OpenBLAS; with Debian's reference BLAS every matmul is ~40x slower.
    expect(info.blas).toMatch(/openblas/i);
  });

  it('an unknown command exits 2 with a reason', () => {
    const r = kiln(['frobnicate']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('Unknown argument: frobnicate');
  });

  it('a flag given twice where one value is expected exits 2 with a reason, not a stack trace', () => {
    const r = kiln(['train', '--config', 'configs/tiny.yaml', '--config', 'configs/tiny.yaml']);
    expect(r.status).toBe(2);
    expect(r.stderr).toContain('--config is given 2 times; give it once');
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });
});

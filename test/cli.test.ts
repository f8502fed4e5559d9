import { describe, expect, it } from 'vitest';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { CommandModule } from 'yargs';
import { REPO_ROOT, runPython } from './helpers/python.js';
import { COMMANDS } from '../src/cli/commands/index.js';
import { KILN_VERSION } from '../src/version.js';

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
    expect(listed).toEqual(['info', 'data', 'train', 'eval', 'export', 'embed', 'index', 'serve', 'runs', 'dashboard', 'gate', 'skills']);
  });

  it('info --json reports the libtorch that Python torch also reports, OpenBLAS and Kiln\'s malloc setting', () => {
    const r = kiln(['info', '--json']);
    expect(r.status, r.stderr).toBe(0);
    const info = JSON.parse(r.stdout) as { libtorch: string; cudaCompiled: boolean; intraOpThreads: number; blas: string; malloc: string };
    const pythonTorch = runPython(['-c', 'import torch; print(torch.__version__.split("+")[0])']).trim();
    // Debian's python3-torch and libtorch-dev are one build; the C++ TORCH_VERSION drops the patch level.
    expect(pythonTorch.startsWith(info.libtorch.split('.').slice(0, 2).join('.'))).toBe(true);
    expect(info.intraOpThreads).toBeGreaterThanOrEqual(1);
    // .ci/run installs OpenBLAS; with Debian's reference BLAS every matmul is ~40x slower.
    expect(info.blas).toMatch(/openblas/i);
    // src/engine/allocator.ts: Kiln's thresholds unless the environment chose an allocator.
    expect(info.malloc).toMatch(/^glibc, tuned by Kiln \(mmap threshold 32 MiB, trim threshold 1024 MiB/);
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

  it('`npm exec kiln` (what npx kiln runs) prints no npm warning: the project sets no config npm does not know', () => {
    // A cache and user config of its own: the test is about this project's npm config, not the
    // machine's. --ignore-scripts: the first `npm exec` into an empty npx cache installs this
    // package there as a link and would run its own install script (node-gyp rebuild) on the checkout.
    const home = mkdtempSync(join(tmpdir(), 'kiln-npm-'));
    try {
      writeFileSync(join(home, 'npmrc'), '');
      const r = spawnSync('npm', ['exec', '--ignore-scripts', '--', 'kiln', '--version'], {
        cwd: REPO_ROOT,
        encoding: 'utf8',
        env: { ...process.env, npm_config_cache: join(home, 'cache'), npm_config_userconfig: join(home, 'npmrc'), npm_config_update_notifier: 'false' },
      });
      expect(r.status, r.stderr).toBe(0);
      expect(r.stdout.trim()).toBe(KILN_VERSION);
      expect(r.stderr).not.toMatch(/npm warn/i);
    } finally {
      rmSync(home, { recursive: true, force: true });
    }
  });

  it('a usage error points to the --help of the (sub)command that was given', () => {
    const hint = (args: string[]): string => {
      const r = kiln(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).not.toMatch(/\n\s+at /);
      return /Run `([^`]+)` for usage\./.exec(r.stderr)?.[1] ?? `no hint in: ${r.stderr}`;
    };
    expect(hint(['frobnicate'])).toBe('kiln --help');
    expect(hint(['train'])).toBe('kiln train --help');
    expect(hint(['train', '--config', 'configs/tiny.yaml', '--threads', '0'])).toBe('kiln train --help');
    expect(hint(['runs', 'list', '--frobnicate'])).toBe('kiln runs list --help');
    expect(hint(['skills', 'extract'])).toBe('kiln skills extract --help');
  });
});

/**
 * The options a command's builder declares, and its subcommands, found by running the builder
 * against a stand-in for yargs that records `option`/`options`/`command` and ignores the rest.
 */
function declared(command: CommandModule<object, never>): { options: Set<string>; subcommands: CommandModule<object, never>[] } {
  const options = new Set<string>();
  const subcommands: CommandModule<object, never>[] = [];
  const recorder: unknown = new Proxy(
    {},
    {
      get: (_target, method) => (...args: unknown[]) => {
        if (method === 'option') options.add(String(args[0]));
        if (method === 'options') for (const key of Object.keys(args[0] as object)) options.add(key);
        if (method === 'command') subcommands.push(args[0] as CommandModule<object, never>);
        return recorder;
      },
    },
  );
  const builder = command.builder;
  if (typeof builder === 'function') (builder as (y: unknown) => unknown)(recorder);
  else if (builder !== undefined) for (const key of Object.keys(builder)) options.add(key);
  return { options, subcommands };
}

/** Every runnable command as `kiln …` with the options it accepts (a parent's options apply to its subcommands, as `kiln runs --json`). */
function leafCommands(): Map<string, Set<string>> {
  const leaves = new Map<string, Set<string>>();
  const walk = (command: CommandModule<object, never>, prefix: string, inherited: Set<string>): void => {
    const name = `${prefix} ${String(command.command).split(' ')[0]}`;
    const { options, subcommands } = declared(command);
    const all = new Set([...inherited, ...options]);
    if (subcommands.length === 0) leaves.set(name, all);
    for (const sub of subcommands) walk(sub, name, all);
  };
  for (const command of COMMANDS) walk(command, 'kiln', new Set());
  return leaves;
}

describe('flags agree across commands', () => {
  // --json: stdout is one JSON document; --quiet: no progress or notes on stderr (errors still
  // print); --threads N: compute threads. Each exemption says why the flag makes no sense there.
  const EXEMPT: Record<string, Record<string, string>> = {
    '--json': {
      'kiln skills extract': 'its stdout is already JSON lines, one record per document (--pretty is the human form)',
      'kiln skills postings': 'its stdout is already JSON lines, one posting per line',
    },
    '--quiet': {
      'kiln info': 'prints nothing on stderr',
      'kiln eval': 'prints nothing on stderr but errors',
      'kiln gate': 'prints nothing on stderr but errors',
      'kiln dashboard': 'prints nothing on stderr but errors',
      'kiln skills eval': 'prints nothing on stderr but errors',
      'kiln runs list': 'the run store commands print nothing on stderr but errors',
      'kiln runs show': 'the run store commands print nothing on stderr but errors',
      'kiln runs compare': 'the run store commands print nothing on stderr but errors',
      'kiln runs delete': 'the run store commands print nothing on stderr but errors',
      'kiln runs import': 'the run store commands print nothing on stderr but errors',
      'kiln runs tag': 'the run store commands print nothing on stderr but errors',
      'kiln runs export': 'the run store commands print nothing on stderr but errors',
    },
    '--threads': {
      'kiln info': 'computes nothing (it reports the thread pools)',
      'kiln gate': 'compares numbers already computed',
      'kiln dashboard': 'serves the run store; computes nothing',
      'kiln skills postings': 'reads and joins files; computes nothing',
      'kiln data inspect': 'reads and tokenises files; no libtorch or onnxruntime work',
      'kiln runs list': 'reads the run store; computes nothing',
      'kiln runs show': 'reads the run store; computes nothing',
      'kiln runs compare': 'reads the run store; computes nothing',
      'kiln runs delete': 'reads the run store; computes nothing',
      'kiln runs import': 'reads the run store; computes nothing',
      'kiln runs tag': 'reads the run store; computes nothing',
      'kiln runs export': 'reads the run store; computes nothing',
    },
  };
  it('every command has --json, --quiet and --threads, or an exemption that says why not', () => {
    const leaves = leafCommands();
    // The walk found the commands that exist (a renamed command must not silently drop out).
    expect([...leaves.keys()]).toEqual(expect.arrayContaining(['kiln train', 'kiln embed', 'kiln export', 'kiln index build', 'kiln skills build', 'kiln skills extract', 'kiln runs list', 'kiln serve']));
    const missing: string[] = [];
    for (const [flag, exempt] of Object.entries(EXEMPT)) {
      for (const name of Object.keys(exempt)) expect(leaves.has(name), `exemption for a command that does not exist: ${name}`).toBe(true);
      for (const [name, options] of leaves) {
        const has = options.has(flag.slice(2));
        if (!has && exempt[name] === undefined) missing.push(`${name} ${flag}`);
        // An exemption for a command that has the flag after all is stale: remove it.
        if (has && exempt[name] !== undefined) missing.push(`${name} has ${flag}: remove its exemption`);
      }
    }
    expect(missing).toEqual([]);
  });
});

/**
 * What a first hour with the CLI runs into, end to end on the built CLI: a missing data root or
 * data file, a training run given where an export is expected, `kiln train --dry-run`, a CUDA
 * config on a machine without CUDA, `--quiet`/`--json` on train, and the provenance that
 * summary.json records. Each error is one line on stderr with exit code 2, never a stack trace.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { REPO_ROOT } from '../helpers/python.js';
import { BIN, ENV, kiln, onlyRun } from '../helpers/cli.js';
import { gitState } from '../../src/train/summary.js';
import { KILN_VERSION } from '../../src/version.js';

// A two-step tiny run without evaluation splits: seconds, enough to have a real run directory.
const QUICK = ['--set', 'train.steps=2', '--set', 'train.warmup_steps=0', '--set', 'train.eval_every=0', '--set', 'data.eval=[]'];
const TIMEOUT_MS = 300_000;

/** The CLI with KILN_DATA unset (and `extra` in the environment). */
function kilnWithoutDataRoot(args: string[]): { status: number | null; stdout: string; stderr: string } {
  const { KILN_DATA: _unset, ...env } = ENV;
  const r = spawnSync(process.execPath, [BIN, ...args], { encoding: 'utf8', cwd: REPO_ROOT, env });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

/** A user error: exit 2, one line on stderr matching `message`, no stack trace. */
function expectOneLineError(r: { status: number | null; stderr: string }, message: RegExp): void {
  expect(r.status, r.stderr).toBe(2);
  expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
  expect(r.stderr).toMatch(message);
  expect(r.stderr).not.toMatch(/\n\s+at /);
}

interface Summary {
  parameters: number;
  kilnVersion: string;
  git: { commit: string; dirty: boolean } | null;
}

describe('a first hour without stack traces', () => {
  let root: string;
  let run: string;
  let trained: { status: number | null; stdout: string; stderr: string };

  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'kiln-first-hour-'));
    trained = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', join(root, 'runs'), '--quiet', '--json', ...QUICK]);
    expect(trained.status, trained.stderr).toBe(0);
    run = onlyRun(join(root, 'runs'));
  }, TIMEOUT_MS);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('every command that reads data: no data root, or a data root without the file, is one line and exit 2', () => {
    const empty = join(root, 'empty-data-root');
    mkdirSync(empty);
    // skills build checks its model directory before the data: give it one that passes that check.
    const exportLike = join(root, 'export-like');
    mkdirSync(exportLike);
    writeFileSync(join(exportLike, 'model.json'), '{}');
    const commands: string[][] = [
      ['train', '--config', 'configs/tiny.yaml', '--runs', join(root, 'no-runs')],
      ['data', 'inspect', '--config', 'configs/tiny.yaml'],
      ['eval', '--run', run],
      ['eval', '--config', 'configs/tiny.yaml', '--baseline', 'bm25'],
      ['skills', 'build', '--model', exportLike, '--out', join(root, 'skills')],
      ['skills', 'eval', '--model', join(root, 'no-skills-model')],
      ['skills', 'postings'],
    ];
    for (const args of commands) {
      expectOneLineError(kilnWithoutDataRoot(args), /no data root: pass --data-root DIR or set KILN_DATA=DIR/);
    }
    // A data root without bert-vocab/vocab.txt: the run names the file and where to get it.
    expectOneLineError(kiln(['train', '--config', 'configs/tiny.yaml', '--runs', join(root, 'no-runs'), '--data-root', empty]), /missing data file .*bert-vocab\/vocab\.txt.*download it from/);
    // The others name the first file they miss.
    expectOneLineError(kiln(['eval', '--config', 'configs/tiny.yaml', '--baseline', 'bm25', '--data-root', empty]), /missing data file .*jobbert-titles\/titles\.csv/);
    expectOneLineError(kiln(['skills', 'build', '--model', exportLike, '--out', join(root, 'skills'), '--data-root', empty]), /missing data file .*esco-v1\.1\.1/);
    expectOneLineError(kiln(['skills', 'postings', '--data-root', empty]), /missing data file .*skillspan\/json\/dev\.json/);
    expect(existsSync(join(root, 'no-runs'))).toBe(false);
    expect(existsSync(join(root, 'skills'))).toBe(false);
  }, TIMEOUT_MS);

  it('a training run given as --model says to export it first (embed, index build, skills build)', () => {
    const fix = new RegExp(`--model ${run} is a training run; run \`kiln export --run ${run} --out DIR\` first`);
    const cases: string[][] = [
      ['embed', '--model', run, '--input', join(root, 'titles.csv'), '--out', join(root, 'vectors.arrow')],
      ['index', 'build', '--model', run, '--corpus', join(root, 'titles.csv'), '--out', join(root, 'index')],
      ['skills', 'build', '--model', run, '--out', join(root, 'skills')],
    ];
    for (const args of cases) {
      const r = kiln(args);
      expect(r.status, r.stderr).toBe(2);
      expect(r.stderr).toMatch(fix);
      expect(r.stderr).not.toMatch(/\n\s+at /);
    }
    for (const written of ['vectors.arrow', 'index', 'skills']) expect(existsSync(join(root, written)), written).toBe(false);
  }, TIMEOUT_MS);

  it('train --dry-run loads, builds and times steps, prints what a run records, and writes nothing', () => {
    const runs = join(root, 'dry-runs');
    const r = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--dry-run', ...QUICK]);
    expect(r.status, r.stderr).toBe(0);
    const parameters = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as Summary;
    expect(r.stdout).toContain(`(${parameters.parameters.toLocaleString('en-US')})`);
    expect(r.stdout).toMatch(/train: 2 steps of 16 examples/);
    // Two steps: one warm-up and one timed, and the output says so.
    expect(r.stdout).toMatch(/timed 1 step\(s\) after 1 warm-up step\(s\): \d+\.\d+ s\/step → about \S+ for 2 steps/);
    const json = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', runs, '--dry-run', '--json', '--set', 'train.steps=5', '--set', 'train.warmup_steps=0', '--set', 'data.eval=[]']);
    expect(json.status, json.stderr).toBe(0);
    const report = JSON.parse(json.stdout) as { parameters: number; steps: number; warmupSteps: number; timedSteps: number; secondsPerStep: number; estimatedSeconds: number };
    expect(report).toMatchObject({ parameters: parameters.parameters, steps: 5, warmupSteps: 1, timedSteps: 3 });
    expect(report.secondsPerStep).toBeGreaterThan(0);
    expect(report.estimatedSeconds).toBeCloseTo(5 * report.secondsPerStep, 9);
    // No run directory and no run store (kiln.db): --runs is never created.
    expect(existsSync(runs)).toBe(false);
  }, TIMEOUT_MS);

  it('train.device: cuda on a build without CUDA is a config error naming the key, before any data loads', () => {
    const info = JSON.parse(kiln(['info', '--json']).stdout) as { cudaAvailable: boolean };
    if (info.cudaAvailable) return; // a CUDA machine runs the config; the check is for the others
    // A data root that does not exist: the config error comes first.
    const r = kiln(['train', '--config', 'configs/tiny.yaml', '--runs', join(root, 'cuda-runs'), '--data-root', join(root, 'nowhere'), '--set', 'train.device=cuda']);
    expectOneLineError(r, /^configs\/tiny\.yaml: train\.device: cuda is not available here: .*; use cpu \(from --set train\.device=cuda\)/);
    expect(existsSync(join(root, 'cuda-runs'))).toBe(false);
  }, TIMEOUT_MS);

  it('train --quiet keeps per-step lines off the terminal (train.log keeps them); --json prints the summary', () => {
    expect(trained.stderr).not.toMatch(/^step \d+\/\d+/m);
    expect(trained.stderr).toMatch(/completed 2 steps/);
    expect(readFileSync(join(run, 'train.log'), 'utf8')).toMatch(/^step 2\/2 loss/m);
    const printed = JSON.parse(trained.stdout) as { runPath: string; status: string; steps: number };
    expect(printed).toMatchObject({ runPath: run, status: 'completed', steps: 2 });
  });

  it("summary.json records the Kiln version and the checkout's git commit, and leaves room for data hashes", () => {
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as Summary;
    expect(summary.kilnVersion).toBe(KILN_VERSION);
    const isCheckout = existsSync(join(REPO_ROOT, '.git'));
    if (!isCheckout) {
      expect(summary.git).toBeNull();
      return;
    }
    const git = (args: string[]): string => execFileSync('git', ['--no-optional-locks', ...args], { cwd: REPO_ROOT, encoding: 'utf8' }).trim();
    // Other tests may edit tracked files meanwhile, so the dirty flag is only checked for its type.
    expect(summary.git).toEqual({ commit: git(['rev-parse', 'HEAD']), dirty: expect.any(Boolean) as unknown as boolean });
  });

  it('gitState is null outside a git checkout, and for a directory inside one that is not its top', () => {
    const notGit = mkdtempSync(join(tmpdir(), 'kiln-not-git-'));
    expect(gitState(notGit)).toBeNull();
    if (existsSync(join(REPO_ROOT, '.git'))) {
      expect(gitState(REPO_ROOT)?.commit).toMatch(/^[0-9a-f]{40}$/);
      // Kiln installed under another project's node_modules must not record that project's commit.
      expect(gitState(join(REPO_ROOT, 'src'))).toBeNull();
    }
    expect(readdirSync(notGit)).toEqual([]);
    rmSync(notGit, { recursive: true, force: true });
  });
});

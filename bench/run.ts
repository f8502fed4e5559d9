/**
 * `npm run bench`: every benchmark in turn, then BENCHMARKS.md's generated section from this
 * run's numbers. It is not part of the test suite (`npm test`); it takes many minutes and wants
 * an otherwise idle machine.
 *
 * Each benchmark runs as its own child process, output streamed as it comes:
 *   node --import tsx bench/<name>.ts --json bench/results/<name>.json [settings]
 * in the order engine, train, infer, serve, memory, dist, skills-trie, search (only with --index),
 * skills-serve. A benchmark's old JSON is deleted first, so the tables only ever hold numbers of this run. One
 * that fails (non-zero exit, no JSON) is reported as failed with its exit code, the others
 * still run, and this script exits 1 at the end.
 *
 * The generated section (bench/report.ts renders it) goes between `<!-- bench:begin -->` and
 * `<!-- bench:end -->` in the output file (added after the title when absent); the rest of the
 * file, history and analysis written by hand, is kept byte for byte. The file is replaced
 * atomically.
 *
 * Models: infer measures a training run, serve (and search) an exported model, skills-serve a
 * skills model (`--skills DIR`, else built by it from the export). `--run runs/<id>` and `--model
 * DIR` name them; without them, `configs/tiny.yaml` is trained into a temporary runs directory
 * and exported there (`bin/kiln.js` runs from dist/: build it first), and the tables say so.
 * dist trains configs/twotower.yaml itself (`bin/kiln.js`, from dist/), in 1 process and in 2.
 * $KILN_DATA must name the data root for infer, serve, dist, skills-trie, search and skills-serve.
 *
 * Options:
 *   --only engine,train,...   a subset (engine, train, infer, serve, memory, dist, skills-trie, search, skills-serve)
 *   --quick                   each benchmark's smallest sensible settings: a smoke run, not numbers to keep
 *   --out FILE                the markdown file to update (default BENCHMARKS.md)
 *   --run DIR                 the run for infer (default: tiny.yaml, trained here)
 *   --model DIR               the export for serve, search and skills-serve (default: the run above, exported here)
 *   --index DIR               a search index (`kiln index build`); adds search, which then needs --model
 *   --skills DIR              the skills model for skills-serve (`kiln skills build`; default: built from --model's export)
 *
 * @example
 * npm run bench                                            # everything (KILN_DATA set), BENCHMARKS.md updated
 * npm run bench -- --quick --only engine,memory --out /tmp/BENCH-smoke.md
 * npm run bench -- --only infer,serve --run runs/twotower-20261123-171027 --model exports/twotower
 */
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir, totalmem } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuModel } from './machine.js';

import { writeFileAtomic } from '../src/util/atomic-write.js';
import { BENCH_NAMES, renderReport, replaceGenerated, succeeded, type BenchName, type BenchOutcome, type Machine } from './report.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const RESULTS = join(REPO, 'bench', 'results');
const PYTHON = process.env['KILN_PYTHON'] ?? '/usr/bin/python3';

/** Settings for --quick: enough to exercise every code path of each benchmark, in seconds. */
const QUICK: Record<BenchName, string[]> = {
  engine: ['--rounds', '1', '--reps', '2', '--warmup', '1', '--calls', '1000', '--repeats', '1', '--threads', '1', '--n', '256'],
  train: ['--rounds', '1', '--warmup', '0', '--threads', '1', '--precisions', 'fp32', '--gap-ms', '0'],
  infer: ['--texts', '256', '--rounds', '1', '--threads', '1', '--no-int8'],
  serve: ['--rate', '20', '--duration', '3', '--connections', '5', '--warmup', '5'],
  memory: ['--steps', '300', '--rounds', '2', '--warmup', '100'],
  dist: ['--rounds', '1', '--steps', '6', '--warmup', '2', '--precisions', 'fp32'],
  'skills-trie': ['--reps', '2', '--min-seconds', '0.25'],
  search: ['--rate', '20', '--duration', '3', '--warmup', '5', '--modes', 'hybrid', '--arrivals', 'paced'],
  'skills-serve': ['--quick'],
};

/** Exit 2 with a message, before anything has run. */
function usage(message: string): never {
  process.stderr.write(`npm run bench: ${message}\n`);
  process.exit(2);
}

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    quick: { type: 'boolean', default: false },
    out: { type: 'string', default: join(REPO, 'BENCHMARKS.md') },
    run: { type: 'string' },
    model: { type: 'string' },
    index: { type: 'string' },
    skills: { type: 'string' },
  },
  strict: true,
});

// ---- what to run ----
const selected: BenchName[] = (() => {
  if (opts.only === undefined) return BENCH_NAMES.filter((n) => n !== 'search' || opts.index !== undefined);
  const names = opts.only.split(',').map((n) => n.trim()).filter((n) => n !== '');
  for (const n of names) if (!(BENCH_NAMES as readonly string[]).includes(n)) usage(`--only: unknown benchmark '${n}'; known: ${BENCH_NAMES.join(', ')}`);
  return BENCH_NAMES.filter((n) => names.includes(n)); // always in the suite's order
})();
if (selected.length === 0) usage('--only names no benchmark');
if (selected.includes('search') && opts.index === undefined) usage('search needs an index: pass --index DIR (build one with `npx kiln index build`; see bench/search.ts)');
if (selected.includes('search') && opts.model === undefined) usage('search needs the model its index was built with: pass --model DIR with --index');
const needsData = selected.filter((n) => n === 'infer' || n === 'serve' || n === 'dist' || n === 'skills-trie' || n === 'search' || n === 'skills-serve');
const dataRoot = process.env['KILN_DATA'];
if (needsData.length > 0 && (dataRoot === undefined || dataRoot === '')) {
  usage(`${needsData.join(', ')} ${needsData.length === 1 ? 'reads' : 'read'} the data root from $KILN_DATA, which is not set: export KILN_DATA=<data root>, or leave them out (--only engine,train,memory)`);
}
for (const [flag, path] of [['--run', opts.run], ['--model', opts.model], ['--index', opts.index], ['--skills', opts.skills]] as const) {
  if (path !== undefined && !existsSync(path)) usage(`${flag} ${path}: no such directory`);
}

// ---- running children ----
const rel = (p: string): string => (p.startsWith(REPO) ? relative(REPO, p) || '.' : p);
const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);

/** Runs `node args…` in the repository root with output streamed; resolves to the exit code (null: signal or no start). */
function runNode(args: readonly string[]): Promise<number | null> {
  return new Promise((done) => {
    const child = spawn(process.execPath, args, { cwd: REPO, env: process.env, stdio: 'inherit' });
    child.on('error', (e) => {
      process.stderr.write(`could not start node: ${e.message}\n`);
      done(null);
    });
    child.on('exit', (code) => done(code));
  });
}

/** The model for infer (a run) and serve (an export), trained from configs/tiny.yaml when not given. */
interface Models {
  run?: string;
  model?: string;
  runNote: string;
  modelNote: string;
  error?: string;
}
let tempModelDir: string | null = null;
let models: Models | null = null;

async function prepareModels(): Promise<Models> {
  if (models !== null) return models;
  const wantRun = selected.includes('infer') && opts.run === undefined;
  const wantModel = (selected.includes('serve') || selected.includes('search') || (selected.includes('skills-serve') && opts.skills === undefined)) && opts.model === undefined;
  models = { runNote: `run \`${opts.run ?? ''}\` (--run)`, modelNote: `export \`${opts.model ?? ''}\` (--model)` };
  if (opts.run !== undefined) models.run = resolve(opts.run);
  if (opts.model !== undefined) models.model = resolve(opts.model);
  if (!wantRun && !wantModel) return models;

  if (!existsSync(join(REPO, 'dist', 'cli', 'commands', 'train.js'))) {
    models.error = 'no model given and dist/ is not built to train one (npx tsc -p tsconfig.build.json), or pass --run / --model';
    return models;
  }
  tempModelDir = mkdtempSync(join(tmpdir(), 'kiln-bench-model-'));
  let runDir = models.run;
  if (runDir === undefined) {
    const runsRoot = join(tempModelDir, 'runs');
    const args = [join(REPO, 'bin', 'kiln.js'), 'train', '--config', 'configs/tiny.yaml', '--runs', runsRoot, '--quiet'];
    process.stdout.write(`\n== model: no --run given; training configs/tiny.yaml\n$ node ${args.map((a) => shellWord(rel(a))).join(' ')}\n`);
    const code = await runNode(args);
    const trained = existsSync(runsRoot) ? readdirSync(runsRoot).filter((d) => existsSync(join(runsRoot, d, 'model.safetensors'))) : [];
    if (code !== 0 || trained.length !== 1) {
      models.error = `training configs/tiny.yaml failed (exit ${code ?? 'none'})`;
      return models;
    }
    runDir = join(runsRoot, trained[0]!);
    models.run = runDir;
    models.runNote = `\`configs/tiny.yaml\` trained by this run (run ${trained[0]!}, a smoke-sized model, removed afterwards)`;
    models.modelNote = `\`configs/tiny.yaml\` trained and exported by this run (run ${trained[0]!}, fp32, a smoke-sized model, removed afterwards)`;
  }
  if (wantModel) {
    const out = join(tempModelDir, 'onnx');
    const args = [join(REPO, 'bin', 'kiln.js'), 'export', '--run', runDir, '--out', out];
    process.stdout.write(`\n== model: no --model given; exporting ${rel(runDir)}\n$ node ${args.map((a) => shellWord(rel(a))).join(' ')}\n`);
    const code = await runNode(args);
    if (code !== 0) {
      models.error = `kiln export of ${rel(runDir)} failed (exit ${code ?? 'none'})`;
      return models;
    }
    models.model = out;
    if (opts.run !== undefined) models.modelNote = `run \`${opts.run}\` (--run), exported by this run (fp32, removed afterwards)`;
  }
  return models;
}

/** Runs one benchmark and reads its JSON. */
async function runBench(name: BenchName): Promise<BenchOutcome> {
  const json = join(RESULTS, `${name}.json`);
  rmSync(json, { force: true }); // never report a previous run's numbers
  const args = ['--import', 'tsx', join('bench', `${name}.ts`), '--json', rel(json)];
  let model: string | undefined;
  if (name === 'infer' || name === 'serve' || name === 'search') {
    const m = await prepareModels();
    const path = name === 'infer' ? m.run : m.model;
    model = name === 'infer' ? m.runNote : m.modelNote;
    if (m.error !== undefined || path === undefined) {
      return { name, command: `node ${args.join(' ')}`, exitCode: null, seconds: 0, json: null, error: m.error ?? 'no model', model };
    }
    args.push(name === 'infer' ? '--run' : '--model', rel(path));
    if (name === 'search') args.push('--index', rel(resolve(opts.index!)));
  }
  if (name === 'skills-serve') {
    if (opts.skills !== undefined) {
      args.push('--skills', rel(resolve(opts.skills)));
      model = `skills model \`${opts.skills}\` (--skills)`;
    } else {
      const m = await prepareModels();
      model = `a skills model built by the benchmark from ${m.modelNote}`;
      if (m.error !== undefined || m.model === undefined) {
        return { name, command: `node ${args.join(' ')}`, exitCode: null, seconds: 0, json: null, error: m.error ?? 'no model', model };
      }
      args.push('--model', rel(m.model));
    }
  }
  if (opts.quick) args.push(...QUICK[name]);
  const command = `node ${args.map(shellWord).join(' ')}`;
  process.stdout.write(`\n== ${name}\n$ ${command}\n`);
  const started = performance.now();
  const exitCode = await runNode(args);
  const seconds = (performance.now() - started) / 1000;
  const outcome: BenchOutcome = { name, command, exitCode, seconds, json: null, ...(model === undefined ? {} : { model }) };
  if (exitCode !== 0) return outcome;
  try {
    outcome.json = JSON.parse(readFileSync(json, 'utf8')) as unknown;
  } catch (error) {
    outcome.error = existsSync(json) ? `${rel(json)} is not JSON: ${(error as Error).message}` : `it wrote no ${rel(json)}`;
  }
  if (name === 'infer' && outcome.json !== null) outcome.model = `${model ?? ''}; ${(outcome.json as { parameters?: number }).parameters?.toLocaleString('en-US') ?? '?'} parameters`;
  if ((name === 'serve' || name === 'skills-serve') && outcome.json !== null) outcome.model = `${model ?? ''}; served as \`${(outcome.json as { model?: string }).model ?? '?'}\``;
  return outcome;
}

// ---- machine ----

function quiet(command: string, args: string[]): string | null {
  try {
    return execFileSync(command, args, { cwd: REPO, encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
  } catch {
    return null;
  }
}

async function machine(): Promise<Machine> {
  let libtorch = 'unknown';
  try {
    const { buildInfo } = await import('../src/engine/index.js');
    libtorch = buildInfo().torchVersion;
  } catch (error) {
    libtorch = `unknown (the addon did not load: ${(error as Error).message.split('\n')[0] ?? ''})`;
  }
  const torch = quiet(PYTHON, ['-c', 'import torch;print(torch.__version__)']);
  const python = quiet(PYTHON, ['-c', 'import platform;print(platform.python_version())']);
  let onnxruntime = 'not installed';
  try {
    onnxruntime = (JSON.parse(readFileSync(join(REPO, 'node_modules', 'onnxruntime-node', 'package.json'), 'utf8')) as { version: string }).version;
  } catch {
    // keep 'not installed'
  }
  const commit = quiet('git', ['rev-parse', '--short', 'HEAD']);
  const dirty = quiet('git', ['status', '--porcelain', '--untracked-files=no']);
  return {
    cpu: cpuModel(),
    cores: availableParallelism(),
    memoryGiB: totalmem() / 2 ** 30,
    node: process.version,
    libtorch,
    pytorch: torch === null ? `not found (${PYTHON} -c 'import torch' failed)` : `${torch} on Python ${python ?? '?'} (${PYTHON})`,
    onnxruntime,
    commit: commit === null ? 'unknown' : `${commit}${dirty !== null && dirty !== '' ? ' with uncommitted changes' : ''}`,
    date: new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
  };
}

// ---- main ----
mkdirSync(RESULTS, { recursive: true });
const outcomes: BenchOutcome[] = [];
try {
  for (const name of selected) outcomes.push(await runBench(name));
} finally {
  if (tempModelDir !== null) rmSync(tempModelDir, { recursive: true, force: true });
}

const out = resolve(opts.out);
const generated = renderReport({
  machine: await machine(),
  command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).map(shellWord).join(' ')}` : ''}`,
  outcomes,
  quick: opts.quick,
});
const before = existsSync(out) ? readFileSync(out, 'utf8') : '# Benchmarks\n';
writeFileAtomic(out, [Buffer.from(replaceGenerated(before, generated), 'utf8')]);

process.stdout.write(`\n${generated}\n\nwrote ${out}\n`);
const failed = outcomes.filter((o) => !succeeded(o));
if (failed.length > 0) {
  process.stderr.write(`failed: ${failed.map((o) => `${o.name} (exit ${o.exitCode ?? 'none'}${o.error === undefined ? '' : `: ${o.error}`})`).join(', ')}\n`);
  process.exitCode = 1;
}

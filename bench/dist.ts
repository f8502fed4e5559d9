/**
 * `npm run bench:dist`: data-parallel training on one machine. `kiln train` with 1 process × 2
 * intra-op threads against `kiln train --nproc 2` with 2 processes × 1 thread, on the same
 * config, the same global batch and the same batches (same seed), and where the 2-process run's
 * time goes: how long rank 0 spends in collectives per step, and how many bytes the gradient
 * allreduce moves.
 *
 * Method:
 *   - Every measurement is one real `node bin/kiln.js train` (dist/ must be built: `npx tsc -p
 *     tsconfig.build.json`) in a fresh temporary runs directory (mkdtemp; removed afterwards),
 *     with `--quiet` and these overrides after the config's own:
 *       train.steps=<--steps> train.warmup_steps=0 train.eval_every=0 data.eval=[]
 *       train.log_every=1 train.checkpoint_every=100000 train.precision=<precision>
 *     (the LR warm-up is dropped because it may be longer than the run; the step's cost does not
 *     depend on the learning rate). No evaluation runs; the end-of-run checkpoint is written after
 *     the last timed step.
 *       1 process:   --threads 2, with OPENBLAS_NUM_THREADS=2 and OMP_NUM_THREADS=2 in its env.
 *       2 processes: --nproc 2 --threads 1, with OPENBLAS_NUM_THREADS and OMP_NUM_THREADS removed
 *                    from the env, so the launcher (src/train/launch.ts) gives each worker
 *                    cores / 2 of them (1 on a 2-core machine).
 *     Both: torchrun-style variables (WORLD_SIZE, RANK, MASTER_*, …) and MLFLOW_TRACKING_URI are
 *     removed from the env, so neither joins an outside group nor logs anywhere.
 *   - The numbers come from rank 0's run directory: `train/examples_per_second` of every step
 *     (the global batch over rank 0's step time; per-source batching makes steps of different
 *     lengths, the same sequence in both modes), `train/comm_seconds` of every step (2 processes
 *     only: seconds rank 0 spent in collectives: the gradient allreduce, the per-step stats
 *     exchange and the all-gathers of `gather_negatives` in the forward pass, waiting for the
 *     slower rank included), and summary.json
 *     (`parameters`, `worldSize`, `wallSeconds`); the resolved config.yaml gives
 *     `train.batch_size` and confirms the precision.
 *   - The first `--warmup` steps of each run are dropped; a run's value is the median over the
 *     remaining steps. Rounds run both modes back to back for each precision (1 process, then 2
 *     processes), and each mode's result is the median over rounds of those per-run medians;
 *     min–max are over rounds. Paired ratio: the median over rounds of 2 processes / 1 process
 *     in the same round.
 *   - Step time = batch_size / examples_per_second (medians); the collectives' share of the
 *     2-process step is median comm seconds / that step time.
 *   - Allreduce volume per step: parameters × 4 bytes (the gradients are averaged in fp32
 *     buckets of 25 MiB in both precisions: bf16 autocast keeps fp32 parameters and gradients);
 *     a ring allreduce sends 2·(W−1)/W of that per rank (W = 2: once the gradient size).
 *   - The comparison is meant for 2 cores (the default machine of this project); on a larger
 *     machine pin it, e.g. `taskset -c 0,1 npm run bench:dist`, or the launcher gives each worker
 *     more than 1 BLAS thread.
 *
 * Options: --config configs/twotower.yaml --steps 40 --warmup 10 --rounds 3
 *          --precisions bf16,fp32 --set key=value (more overrides, repeatable) --json FILE
 * The data root is $KILN_DATA, else ../shared/datasets beside the repository.
 *
 * @example
 * KILN_DATA=/work/shared/datasets npm run bench:dist
 * node --import tsx bench/dist.ts --rounds 1 --steps 6 --warmup 2 --precisions fp32 --json /tmp/dist.json
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';

import { cpuModel } from './machine.js';
import { positiveInt } from './args.js';
import { median, type DistJson, type DistMode, type DistPrecisionResult, type DistRun } from './report.js';

const REPO = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const KILN = join(REPO, 'bin', 'kiln.js');
/** Processes of the data-parallel mode, and the intra-op threads of the single process. */
const WORLD = 2;
const FP32_BYTES = 4;
/** Variables that would make a run join (or start) some other process group. */
const DIST_VARIABLES = ['WORLD_SIZE', 'RANK', 'LOCAL_RANK', 'LOCAL_WORLD_SIZE', 'GROUP_RANK', 'MASTER_ADDR', 'MASTER_PORT', 'KILN_LAUNCHED_WORKER', 'TORCHELASTIC_USE_AGENT_STORE', 'TORCHELASTIC_RESTART_COUNT', 'MLFLOW_TRACKING_URI'];

const { values: opts } = parseArgs({
  options: {
    config: { type: 'string', default: 'configs/twotower.yaml' },
    steps: { type: 'string', default: '40' },
    warmup: { type: 'string', default: '10' },
    rounds: { type: 'string', default: '3' },
    precisions: { type: 'string', default: 'bf16,fp32' },
    set: { type: 'string', multiple: true, default: [] },
    json: { type: 'string' },
  },
  strict: true,
});

const config = {
  config: opts.config!,
  steps: positiveInt('steps', opts.steps),
  warmup: positiveInt('warmup', opts.warmup, 0),
  rounds: positiveInt('rounds', opts.rounds),
  precisions: (opts.precisions ?? '').split(',').map((p) => p.trim()).filter((p) => p !== '') as ('fp32' | 'bf16')[],
  sets: opts.set ?? [],
  dataRoot: process.env['KILN_DATA'] ?? join(REPO, '..', 'shared', 'datasets'),
};
if (config.warmup >= config.steps) throw new Error(`--warmup ${config.warmup} leaves no timed step of --steps ${config.steps}`);
if (config.precisions.length === 0) throw new Error('--precisions names no precision');
for (const p of config.precisions) if (p !== 'fp32' && p !== 'bf16') throw new Error(`--precisions: unknown precision ${p}`);
if (!existsSync(resolve(REPO, config.config))) throw new Error(`--config ${config.config}: no such file`);
if (!existsSync(join(REPO, 'dist', 'cli', 'commands', 'train.js'))) throw new Error('bin/kiln.js runs from dist/, which is not built: npx tsc -p tsconfig.build.json');

const shellWord = (w: string): string => (/^[\w@%+=:,./-]+$/.test(w) ? w : `'${w.replace(/'/g, `'\\''`)}'`);
const rel = (p: string): string => (p.startsWith(REPO) ? relative(REPO, p) || '.' : p);

/** The command line and environment of one mode (the runs directory is added per run). */
function modeCommand(mode: DistMode, precision: string): { args: string[]; env: NodeJS.ProcessEnv; envNote: Record<string, string> } {
  const sets = [
    `train.steps=${config.steps}`,
    'train.warmup_steps=0',
    'train.eval_every=0',
    'data.eval=[]',
    'train.log_every=1',
    'train.checkpoint_every=100000',
    `train.precision=${precision}`,
    ...config.sets,
  ];
  const args = ['train', '--config', config.config, '--data-root', config.dataRoot, '--quiet', ...sets.flatMap((s) => ['--set', s])];
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const k of DIST_VARIABLES) delete env[k];
  let envNote: Record<string, string>;
  if (mode === '1p') {
    args.push('--threads', String(WORLD));
    env['OPENBLAS_NUM_THREADS'] = String(WORLD);
    env['OMP_NUM_THREADS'] = String(WORLD);
    envNote = { OPENBLAS_NUM_THREADS: String(WORLD), OMP_NUM_THREADS: String(WORLD) };
  } else {
    args.push('--nproc', String(WORLD), '--threads', '1');
    delete env['OPENBLAS_NUM_THREADS'];
    delete env['OMP_NUM_THREADS'];
    const share = String(Math.max(1, Math.floor(availableParallelism() / WORLD)));
    envNote = { OPENBLAS_NUM_THREADS: `${share} (launcher)`, OMP_NUM_THREADS: `${share} (launcher)` };
  }
  return { args, env, envNote };
}

/** Runs `node bin/kiln.js args…`; resolves to its exit code and the tail of its output. */
function runKiln(args: readonly string[], env: NodeJS.ProcessEnv): Promise<{ code: number | null; output: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [KILN, ...args], { cwd: REPO, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    const keep = (chunk: Buffer): void => {
      output = (output + chunk.toString('utf8')).slice(-8000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    child.on('error', (e) => done({ code: null, output: `could not start node: ${e.message}` }));
    child.on('close', (code) => done({ code, output }));
  });
}

interface MetricLine {
  step: number;
  name: string;
  value: number;
}

/** One `kiln train` in a fresh runs directory, read back and removed. */
async function measure(mode: DistMode, precision: 'fp32' | 'bf16', round: number): Promise<DistRun> {
  const { args, env, envNote } = modeCommand(mode, precision);
  const runs = mkdtempSync(join(tmpdir(), 'kiln-bench-dist-'));
  const full = [...args, '--runs', runs];
  const command = `node ${[rel(KILN), ...full].map(shellWord).join(' ')}`;
  try {
    const started = performance.now();
    const { code, output } = await runKiln(full, env);
    const elapsedSeconds = (performance.now() - started) / 1000;
    if (code !== 0) throw new Error(`${mode} ${precision}: kiln train exited ${code ?? 'on a signal'}\n$ ${command}\n${output}`);
    const dirs = readdirSync(runs).filter((d) => existsSync(join(runs, d, 'summary.json')));
    if (dirs.length !== 1) throw new Error(`${mode} ${precision}: expected one finished run in ${runs}, found ${dirs.length}\n${output}`);
    const dir = join(runs, dirs[0]!);
    const summary = JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as { parameters: number; worldSize?: number; wallSeconds: number; steps: number; status: string };
    const resolved = parseYaml(readFileSync(join(dir, 'config.yaml'), 'utf8')) as { train: { batch_size: number; precision: string; grad_accum?: number } };
    const worldSize = summary.worldSize ?? 1;
    const expectedWorld = mode === '1p' ? 1 : WORLD;
    if (summary.status !== 'completed' || summary.steps !== config.steps) throw new Error(`${mode} ${precision}: the run ended '${summary.status}' after ${summary.steps} of ${config.steps} steps`);
    if (worldSize !== expectedWorld) throw new Error(`${mode} ${precision}: summary.json says worldSize ${worldSize}, expected ${expectedWorld}`);
    if (resolved.train.precision !== precision) throw new Error(`${mode} ${precision}: the run trained in ${resolved.train.precision}`);
    const lines = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => JSON.parse(l) as MetricLine);
    const perStep = (name: string): number[] => {
      const byStep = new Map<number, number>();
      for (const l of lines) if (l.name === name && l.step > config.warmup) byStep.set(l.step, l.value);
      return [...byStep.keys()].sort((a, b) => a - b).map((s) => byStep.get(s)!);
    };
    const timed = config.steps - config.warmup;
    const examplesPerSecond = perStep('train/examples_per_second');
    if (examplesPerSecond.length !== timed) throw new Error(`${mode} ${precision}: ${examplesPerSecond.length} train/examples_per_second lines after step ${config.warmup}, expected ${timed}`);
    let commSeconds: number[] | null = null;
    if (mode === '2p') {
      commSeconds = perStep('train/comm_seconds');
      if (commSeconds.length !== timed) throw new Error(`${mode} ${precision}: ${commSeconds.length} train/comm_seconds lines after step ${config.warmup}, expected ${timed}`);
    }
    return {
      precision,
      mode,
      round,
      processes: expectedWorld,
      threads: mode === '1p' ? WORLD : 1,
      env: envNote,
      command,
      batchSize: resolved.train.batch_size,
      parameters: summary.parameters,
      worldSize,
      wallSeconds: summary.wallSeconds,
      elapsedSeconds,
      examplesPerSecond,
      commSeconds,
      medianExamplesPerSecond: median(examplesPerSecond),
      medianCommSeconds: commSeconds === null ? null : median(commSeconds),
    };
  } finally {
    rmSync(runs, { recursive: true, force: true });
  }
}

// ---- main ----
const machine = { cpu: cpuModel(), cores: availableParallelism(), node: process.version };
console.log(`dist: kiln train, 1 process × ${WORLD} threads against ${WORLD} processes × 1 thread (--nproc ${WORLD}), same config and global batch`);
console.log(`  CPU      ${machine.cpu} (${machine.cores} cores available)`);
console.log(`  config   ${config.config}${config.sets.length === 0 ? '' : ` with ${config.sets.map((s) => `--set ${s}`).join(' ')}`}; data ${config.dataRoot}`);
console.log(`  method   ${config.rounds} round${config.rounds === 1 ? '' : 's'} of one run per (precision, mode), each ${config.steps} steps, the first ${config.warmup} dropped; precisions ${config.precisions.join(', ')}`);
if (machine.cores !== WORLD) console.log(`  note     ${machine.cores} cores, not ${WORLD}: the launcher gives each worker ${Math.max(1, Math.floor(machine.cores / WORLD))} BLAS threads; pin with taskset -c 0,1 for the ${WORLD}-core comparison`);

const runs: DistRun[] = [];
const started = performance.now();
for (let r = 0; r < config.rounds; r++) {
  for (const precision of config.precisions) {
    for (const mode of ['1p', '2p'] as const) {
      const run = await measure(mode, precision, r);
      runs.push(run);
      process.stderr.write(
        `  round ${r + 1}/${config.rounds} ${precision} ${mode === '1p' ? `1 process × ${WORLD} threads` : `${WORLD} processes × 1 thread`}: ${run.medianExamplesPerSecond.toFixed(1)} examples/s` +
          `${run.medianCommSeconds === null ? '' : `, ${(run.medianCommSeconds * 1000).toFixed(0)} ms/step in collectives`} (median of ${run.examplesPerSecond.length} steps; run ${run.elapsedSeconds.toFixed(0)} s)\n`,
      );
    }
  }
}

const results: DistPrecisionResult[] = config.precisions.map((precision) => {
  const of = (mode: DistMode): DistRun[] => runs.filter((x) => x.precision === precision && x.mode === mode).sort((a, b) => a.round - b.round);
  const one = of('1p');
  const two = of('2p');
  const batchSize = one[0]!.batchSize;
  const parameters = one[0]!.parameters;
  for (const x of [...one, ...two]) {
    if (x.batchSize !== batchSize || x.parameters !== parameters) throw new Error(`${precision}: runs disagree on batch size or parameter count (${x.batchSize} / ${x.parameters} against ${batchSize} / ${parameters})`);
  }
  const onePerRound = one.map((x) => x.medianExamplesPerSecond);
  const twoPerRound = two.map((x) => x.medianExamplesPerSecond);
  const commPerRound = two.map((x) => x.medianCommSeconds ?? Number.NaN);
  const oneExamplesPerSecond = median(onePerRound);
  const twoExamplesPerSecond = median(twoPerRound);
  const commSeconds = median(commPerRound);
  const twoStepSeconds = batchSize / twoExamplesPerSecond;
  const allreduceBytes = parameters * FP32_BYTES;
  return {
    precision,
    batchSize,
    parameters,
    onePerRound,
    twoPerRound,
    pairedRatios: twoPerRound.map((t, i) => t / onePerRound[i]!),
    commPerRound,
    oneExamplesPerSecond,
    twoExamplesPerSecond,
    ratio: twoExamplesPerSecond / oneExamplesPerSecond,
    pairedRatio: median(twoPerRound.map((t, i) => t / onePerRound[i]!)),
    oneStepSeconds: batchSize / oneExamplesPerSecond,
    twoStepSeconds,
    commSeconds,
    commShare: commSeconds / twoStepSeconds,
    allreduceBytes,
    ringBytesPerRank: (allreduceBytes * 2 * (WORLD - 1)) / WORLD,
  };
});

const report: DistJson = {
  machine,
  config: { ...config, worldSize: WORLD },
  results,
  runs,
};

const range = (xs: number[], digits = 1): string => (xs.length < 2 ? '—' : `${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)}`);
console.log('');
console.log(`Median over ${config.rounds} round${config.rounds === 1 ? '' : 's'} of each run's median over steps ${config.warmup + 1}–${config.steps}; total ${((performance.now() - started) / 1000).toFixed(0)} s:`);
console.log('');
console.log(`| precision | batch | 1 process × ${WORLD} threads ex/s | min–max | ${WORLD} processes × 1 thread ex/s | min–max | ${WORLD}p / 1p | paired | collectives ms/step (${WORLD}p, rank 0) | share of ${WORLD}p step | allreduce MB/step | ring MB sent per rank |`);
console.log('|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
for (const x of results) {
  console.log(
    `| ${x.precision} | ${x.batchSize} | ${x.oneExamplesPerSecond.toFixed(1)} | ${range(x.onePerRound)} | ${x.twoExamplesPerSecond.toFixed(1)} | ${range(x.twoPerRound)} | ${x.ratio.toFixed(3)} | ${x.pairedRatio.toFixed(3)} | ` +
      `${(x.commSeconds * 1000).toFixed(0)} of ${(x.twoStepSeconds * 1000).toFixed(0)} | ${(x.commShare * 100).toFixed(1)}% | ${(x.allreduceBytes / 1e6).toFixed(1)} | ${(x.ringBytesPerRank / 1e6).toFixed(1)} |`,
  );
}
console.log('');
console.log(`(${results[0]!.parameters.toLocaleString('en-US')} parameters × ${FP32_BYTES} bytes of fp32 gradients per step; a ring allreduce sends 2·(W−1)/W of it per rank, W = ${WORLD}. Collective time includes waiting for the slower rank and the forward all-gathers of gather_negatives.)`);

if (opts.json !== undefined) {
  const out = resolve(opts.json);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
  console.log(`Wrote ${opts.json}`);
}

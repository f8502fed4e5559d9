/**
 * `npm run bench:engine`: Kiln's engine against Python PyTorch on the same machine, in one run.
 *
 * Metrics (same methodology on both sides; the PyTorch side is bench/engine_torch.py):
 *   - matmul: 1024x1024 @ 1024x1024 float32, GFLOP/s = 2n^3 / median time of `--reps` timed
 *     calls after `--warmup` untimed ones, at each thread count in `--threads`
 *     (setNumThreads / torch.set_num_threads).
 *   - small-op overhead: `--calls` calls timed as one batch, `--repeats` batches, median µs per
 *     call, for a + b (1 element and 4x4), a @ b (4x4) and relu (4x4). Each Kiln call releases
 *     its result inside the timed loop with `.dispose()` (the primary rows), the counterpart of
 *     Python rebinding the local and freeing the old result by refcount. A second set of rows
 *     releases them with `tidy()` around groups of 100 calls (compared with the same PyTorch
 *     batches).
 *
 * Interleaving: one Python process (engine_torch.py --serve) stays up for the whole run and
 * answers measurement requests, so the two sides alternate within each round and noise from the
 * machine (other processes, frequency) falls on both alike:
 *   - small ops: single batches alternate, Kiln .dispose(), PyTorch, Kiln tidy, then reversed
 *     (ABBA) for the next batch;
 *   - matmul: blocks of warm-up + reps/2 timed calls, in the order Kiln, PyTorch, PyTorch, Kiln
 *     (reversed on odd rounds). Blocks rather than single calls, because after a call the BLAS
 *     (OpenBLAS pthreads) and OpenMP worker threads of that process keep spin-waiting for a
 *     while and would take the 2 cores from the other side's next call.
 * This is repeated for `--rounds` rounds; each reported number is the median over rounds of the
 * per-round medians. The table also gives a paired ratio, which pass/fail uses: for small ops the
 * median over all back-to-back (Kiln, PyTorch) batch pairs of Kiln's time / PyTorch's time; for
 * matmul the median over rounds of the ratio of the two sides' medians in that round.
 * While one side measures, the other is blocked waiting (Node in its event loop, Python on
 * stdin), so the two never compete for the 2 cores.
 *
 * Options: --rounds 3 --reps 20 --warmup 3 --calls 100000 --repeats 7 --threads 1,2 --n 1024
 *          --json out.json (also write every sample) --strict (exit 1 when a target is missed).
 * The interpreter is $KILN_PYTHON, else /usr/bin/python3 (Debian's, with torch 1.13: the same
 * libtorch Kiln links). Both sides run with this process's environment, unchanged.
 */
import { WorkerProcess } from './worker.js';
import { readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { cpuModel } from './machine.js';
import { buildInfo, getNumThreads, randn, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';

// ---------------------------------------------------------------------------------------------
// Options
// ---------------------------------------------------------------------------------------------
const { values: opts } = parseArgs({
  options: {
    rounds: { type: 'string', default: '3' },
    reps: { type: 'string', default: '20' },
    warmup: { type: 'string', default: '3' },
    calls: { type: 'string', default: '100000' },
    repeats: { type: 'string', default: '7' },
    threads: { type: 'string', default: '1,2' },
    n: { type: 'string', default: '1024' },
    json: { type: 'string' },
    strict: { type: 'boolean', default: false },
  },
  strict: true,
});

function positiveInt(name: string, text: string | undefined): number {
  const v = Number(text);
  if (!Number.isSafeInteger(v) || v < 1) throw new Error(`--${name}: expected a positive integer, got ${String(text)}`);
  return v;
}

const config = {
  rounds: positiveInt('rounds', opts.rounds),
  reps: positiveInt('reps', opts.reps),
  warmup: positiveInt('warmup', opts.warmup),
  calls: positiveInt('calls', opts.calls),
  repeats: positiveInt('repeats', opts.repeats),
  n: positiveInt('n', opts.n),
  threads: (opts.threads ?? '1,2').split(',').filter((t) => t !== '').map((t) => positiveInt('threads', t)),
  smallOpThreads: 1,
  tidyGroup: 100,
  python: process.env['KILN_PYTHON'] ?? '/usr/bin/python3',
  order: 'interleaved ABBA (small ops: alternating batches; matmul: alternating blocks)',
};

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}

const now = (): bigint => process.hrtime.bigint();

// ---------------------------------------------------------------------------------------------
// Kiln side: one measurement per call, returning nanoseconds
// ---------------------------------------------------------------------------------------------
const SMALL_OPS: Record<string, number[]> = {
  add_1: [1],
  add_4x4: [4, 4],
  matmul_4x4: [4, 4],
  relu_4x4: [4, 4],
  empty_loop: [1],
};
/** The small ops with a target; empty_loop is the timing loop's own cost. */
const TARGET_OPS = ['add_1', 'add_4x4', 'matmul_4x4', 'relu_4x4'] as const;

const matmulInputs = new Map<number, [Tensor, Tensor]>();
function kilnMatmulOnce(n: number): number {
  let inputs = matmulInputs.get(n);
  if (inputs === undefined) {
    inputs = [randn([n, n]), randn([n, n])];
    matmulInputs.set(n, inputs);
  }
  const [a, b] = inputs;
  const t0 = now();
  const c = a.matmul(b);
  const t1 = now();
  c.dispose();
  return Number(t1 - t0);
}

const smallInputs = new Map<string, [Tensor, Tensor]>();
function smallPair(name: string): [Tensor, Tensor] {
  let pair = smallInputs.get(name);
  if (pair === undefined) {
    const shape = SMALL_OPS[name];
    if (shape === undefined) throw new Error(`unknown op ${name}`);
    pair = [randn(shape), randn(shape)];
    smallInputs.set(name, pair);
  }
  return pair;
}

// Each loop is written out per op (not through a callback) so that V8 sees one monomorphic
// call site per op, as CPython's loop body is a fixed bytecode sequence per op.
function kilnDisposeBatch(name: string, calls: number): number {
  const [a, b] = smallPair(name);
  let t0: bigint;
  switch (name) {
    case 'add_1':
    case 'add_4x4':
      t0 = now();
      for (let i = 0; i < calls; i++) a.add(b).dispose();
      break;
    case 'matmul_4x4':
      t0 = now();
      for (let i = 0; i < calls; i++) a.matmul(b).dispose();
      break;
    case 'relu_4x4':
      t0 = now();
      for (let i = 0; i < calls; i++) a.relu().dispose();
      break;
    default: {
      let sink = 0;
      t0 = now();
      for (let i = 0; i < calls; i++) sink += i;
      if (sink < 0) console.log(sink);
    }
  }
  return Number(now() - t0);
}

function kilnTidyBatch(name: string, calls: number): number {
  const [a, b] = smallPair(name);
  const g = config.tidyGroup;
  const groups = Math.ceil(calls / g);
  let body: () => void;
  switch (name) {
    case 'add_1':
    case 'add_4x4':
      body = () => {
        for (let j = 0; j < g; j++) a.add(b);
      };
      break;
    case 'matmul_4x4':
      body = () => {
        for (let j = 0; j < g; j++) a.matmul(b);
      };
      break;
    case 'relu_4x4':
      body = () => {
        for (let j = 0; j < g; j++) a.relu();
      };
      break;
    default:
      throw new Error(`no tidy loop for ${name}`);
  }
  const t0 = now();
  for (let k = 0; k < groups; k++) tidy(body);
  return Number(now() - t0) * (calls / (groups * g));
}

// ---------------------------------------------------------------------------------------------
// PyTorch side: a long-lived engine_torch.py --serve answering one request per line
// ---------------------------------------------------------------------------------------------
interface PythonInfo {
  python: string;
  executable: string;
  torchVersion: string;
  defaultNumThreads: number;
  defaultNumInteropThreads: number;
}
interface PythonReply {
  ns?: number;
  samples?: number[];
  threads?: number;
  error?: string;
}

class PythonServer extends WorkerProcess {
  constructor(python: string, script: string) {
    super('engine_torch.py', python, [script, '--serve'], 'set KILN_PYTHON to a python with torch');
  }

  async ns(message: Record<string, unknown>): Promise<number> {
    const reply = await this.request<PythonReply>(message);
    if (typeof reply.ns !== 'number') throw new Error(`engine_torch.py: no timing in reply to ${JSON.stringify(message)}`);
    return reply.ns;
  }
}

// ---------------------------------------------------------------------------------------------
// Machine information
// ---------------------------------------------------------------------------------------------

/** The BLAS/OpenMP libraries this process mapped (Kiln's libtorch pulls them in). */
function mappedLibraries(pattern: RegExp): string[] {
  try {
    const paths = new Set<string>();
    for (const line of readFileSync('/proc/self/maps', 'utf8').split('\n')) {
      const path = line.slice(line.indexOf('/'));
      if (line.includes('/') && pattern.test(path)) {
        let real = path;
        try {
          real = realpathSync(path);
        } catch {
          // keep the mapped name
        }
        paths.add(real === path ? path : `${path} -> ${real}`);
      }
    }
    return [...paths];
  } catch {
    return [];
  }
}

// ---------------------------------------------------------------------------------------------
// Main
// ---------------------------------------------------------------------------------------------
const kilnDefaultThreads = getNumThreads();
const info = buildInfo();
const machine = {
  cpu: cpuModel(),
  cores: availableParallelism(),
  logicalCpus: cpus().length,
  node: process.version,
  libtorch: info.torchVersion,
  kilnDefaultThreads,
  kilnDefaultInteropThreads: /get_num_interop_threads\(\) : (\d+)/.exec(info.parallelInfo)?.[1] ?? '?',
  blas: mappedLibraries(/lib(open)?blas|libmkl|libblis/),
  openmp: mappedLibraries(/libgomp|libiomp|libomp/),
  env: Object.fromEntries(
    Object.entries(process.env).filter(([k]) => /^(OPENBLAS_|OMP_|MKL_|GOMP_|KMP_)/.test(k)),
  ) as Record<string, string | undefined>,
  python: config.python,
  pythonTorch: '',
  pythonDefaultThreads: 0,
  pythonDefaultInteropThreads: 0,
};

console.log('Kiln engine micro-benchmark vs PyTorch');
console.log(`  CPU            ${machine.cpu} (${machine.cores} cores available, ${machine.logicalCpus} logical CPUs)`);
console.log(`  node           ${machine.node}`);
console.log(`  libtorch       ${machine.libtorch} (Kiln addon; default intra-op threads ${kilnDefaultThreads}, inter-op ${machine.kilnDefaultInteropThreads})`);
console.log(`  BLAS           ${machine.blas.join(', ') || '(none mapped)'}`);
console.log(`  OpenMP         ${machine.openmp.join(', ') || '(none mapped)'}`);
console.log(`  env            ${Object.entries(machine.env).map(([k, v]) => `${k}=${v ?? ''}`).join(' ') || '(no OPENBLAS_/OMP_/MKL_/GOMP_/KMP_ variables set)'}`);

const script = join(dirname(fileURLToPath(import.meta.url)), 'engine_torch.py');
const py = new PythonServer(config.python, script);
const pyInfo = await py.request<PythonInfo>({ cmd: 'info' });
machine.pythonTorch = pyInfo.torchVersion;
machine.pythonDefaultThreads = pyInfo.defaultNumThreads;
machine.pythonDefaultInteropThreads = pyInfo.defaultNumInteropThreads;
console.log(`  PyTorch        ${pyInfo.torchVersion} on Python ${pyInfo.python} (${pyInfo.executable}); default intra-op threads ${pyInfo.defaultNumThreads}, inter-op ${pyInfo.defaultNumInteropThreads}`);
console.log(
  `  config         ${config.rounds} rounds, ${config.order}; matmul n=${config.n} warmup=${config.warmup} reps=${config.reps} threads=${config.threads.join(',')}; ` +
    `small ops ${config.repeats} batches of ${config.calls} calls at ${config.smallOpThreads} thread, tidy groups of ${config.tidyGroup}`,
);

/** samples[metric][side][round] = raw samples (ns per matmul; ns per call for small ops). */
type Side = 'kiln' | 'pytorch';
const samples: Record<string, Record<Side, number[][]>> = {};
function record(metric: string, side: Side, round: number, value: number): void {
  const bySide = (samples[metric] ??= { kiln: [], pytorch: [] });
  const rounds = bySide[side];
  while (rounds.length <= round) rounds.push([]);
  (rounds[round] as number[]).push(value);
}

/** Runs the steps in order when `flip` is false, reversed when true. */
async function inOrder(flip: boolean, steps: (() => Promise<void> | void)[]): Promise<void> {
  for (const step of flip ? [...steps].reverse() : steps) await step();
}

const started = now();
for (let r = 0; r < config.rounds; r++) {
  const t0 = now();
  for (const t of config.threads) {
    // Matmul runs in blocks (warm-up, then half the reps) in ABBA order within the round: single
    // alternating calls would let one side's BLAS/OpenMP worker threads, still spin-waiting
    // after its call, steal the 2 cores from the other side's next call.
    const metric = `matmul:${t}`;
    const half = Math.ceil(config.reps / 2);
    // setNumThreads once per block, before the warm-up (as engine_torch.py does per request):
    // libtorch's set_num_threads re-creates its pthreadpool, whose new worker spin-waits for a
    // while; called right before every timed call it halved 2-thread GFLOP/s on both sides.
    const kilnBlock = (): void => {
      setNumThreads(t);
      for (let i = 0; i < config.warmup; i++) kilnMatmulOnce(config.n);
      for (let i = 0; i < half; i++) record(metric, 'kiln', r, kilnMatmulOnce(config.n));
    };
    const pyBlock = async (): Promise<void> => {
      const reply = await py.request<PythonReply>({ cmd: 'matmul', n: config.n, threads: t, warmup: config.warmup, reps: half });
      for (const ns of reply.samples ?? []) record(metric, 'pytorch', r, ns);
    };
    await inOrder(r % 2 === 1, [kilnBlock, pyBlock, pyBlock, kilnBlock]);
  }
  setNumThreads(config.smallOpThreads);
  // Warm-up: a tenth of a batch, at least 10 000 calls (enough for V8 to optimise the loops).
  const warm = Math.max(Math.floor(config.calls / 10), 10_000);
  for (const name of Object.keys(SMALL_OPS)) {
    const pyRequest = { cmd: 'small', op: name, threads: config.smallOpThreads };
    const hasTidy = (TARGET_OPS as readonly string[]).includes(name);
    kilnDisposeBatch(name, warm);
    if (hasTidy) kilnTidyBatch(name, warm);
    await py.ns({ ...pyRequest, calls: warm });
    for (let i = 0; i < config.repeats; i++) {
      // Kiln .dispose(), PyTorch, Kiln tidy; reversed on every other batch.
      const steps: (() => Promise<void> | void)[] = [
        () => record(`small:${name}`, 'kiln', r, kilnDisposeBatch(name, config.calls) / config.calls),
        async () => record(`small:${name}`, 'pytorch', r, (await py.ns({ ...pyRequest, calls: config.calls })) / config.calls),
      ];
      if (hasTidy) steps.push(() => record(`small:${name}:tidy`, 'kiln', r, kilnTidyBatch(name, config.calls) / config.calls));
      await inOrder((i + r) % 2 === 1, steps);
    }
  }
  process.stderr.write(`  round ${r + 1}/${config.rounds} done in ${(Number(now() - t0) / 1e9).toFixed(1)} s\n`);
}
await py.close();
for (const [a, b] of [...matmulInputs.values(), ...smallInputs.values()]) {
  a.dispose();
  b.dispose();
}

// ---------------------------------------------------------------------------------------------
// Report
// ---------------------------------------------------------------------------------------------
/** One metric of the report (also read by bench/report.ts from the --json file). */
export interface Row {
  metric: string;
  unit: string;
  kiln: number;
  pytorch: number;
  ratio: number;
  /** Median over adjacent (Kiln, PyTorch) sample pairs of the Kiln/PyTorch ratio of the metric. */
  pairedRatio: number;
  target: string;
  pass: boolean | null;
  kilnRounds: number[];
  pytorchRounds: number[];
}
const rows: Row[] = [];
/** Per-round medians of one side of a metric, converted by `f`. */
function roundMedians(metric: string, side: Side, f: (v: number) => number): number[] {
  return (samples[metric]?.[side] ?? []).map((round) => f(median(round)));
}
/** Median over sample pairs of kiln/pytorch time (sample i of round r on each side). */
function pairedTimeRatio(kilnMetric: string, pyMetric: string): number {
  const k = samples[kilnMetric]?.kiln ?? [];
  const p = samples[pyMetric]?.pytorch ?? [];
  const ratios: number[] = [];
  k.forEach((round, r) => round.forEach((v, i) => {
    const w = p[r]?.[i];
    if (w !== undefined) ratios.push(v / w);
  }));
  return median(ratios);
}
const gflops = (ns: number): number => (2 * config.n ** 3) / ns;
const us = (nsPerCall: number): number => nsPerCall / 1e3;

for (const t of config.threads) {
  const k = roundMedians(`matmul:${t}`, 'kiln', gflops);
  const p = roundMedians(`matmul:${t}`, 'pytorch', gflops);
  const ratio = median(k) / median(p);
  // Matmul samples come in blocks, not pairs: "paired" is the median over rounds of the ratio of
  // the two sides' medians within the round (each round is balanced ABBA).
  const pairedRatio = median(k.map((kv, i) => kv / (p[i] ?? Number.NaN)));
  rows.push({ metric: `matmul ${config.n}x${config.n} fp32, ${t} thread${t === 1 ? '' : 's'}`, unit: 'GFLOP/s', kiln: median(k), pytorch: median(p), ratio, pairedRatio, target: 'Kiln/PyTorch >= 0.95', pass: pairedRatio >= 0.95, kilnRounds: k, pytorchRounds: p });
}
const labels: Record<string, string> = {
  add_1: 'a + b, 1 element',
  add_4x4: 'a + b, 4x4',
  matmul_4x4: 'a @ b, 4x4',
  relu_4x4: 'relu, 4x4',
};
for (const mode of ['dispose', 'tidy'] as const) {
  for (const name of TARGET_OPS) {
    const kilnMetric = mode === 'dispose' ? `small:${name}` : `small:${name}:tidy`;
    const k = roundMedians(kilnMetric, 'kiln', us);
    const p = roundMedians(`small:${name}`, 'pytorch', us);
    const ratio = median(k) / median(p);
    const pairedRatio = pairedTimeRatio(kilnMetric, `small:${name}`);
    const how = mode === 'dispose' ? '.dispose()' : `tidy/${config.tidyGroup}`;
    rows.push({ metric: `${labels[name] ?? name} (Kiln ${how})`, unit: 'us/call', kiln: median(k), pytorch: median(p), ratio, pairedRatio, target: 'Kiln/PyTorch <= 1.00', pass: pairedRatio <= 1, kilnRounds: k, pytorchRounds: p });
  }
}
{
  const k = roundMedians('small:empty_loop', 'kiln', us);
  const p = roundMedians('small:empty_loop', 'pytorch', us);
  rows.push({ metric: 'empty loop iteration (reference)', unit: 'us/call', kiln: median(k), pytorch: median(p), ratio: median(k) / median(p), pairedRatio: pairedTimeRatio('small:empty_loop', 'small:empty_loop'), target: '-', pass: null, kilnRounds: k, pytorchRounds: p });
}

function fmt(v: number, unit: string): string {
  if (!Number.isFinite(v)) return 'n/a';
  return unit === 'GFLOP/s' ? v.toFixed(2) : v < 0.1 ? v.toFixed(4) : v.toFixed(3);
}
const header = ['metric', 'unit', 'Kiln', 'PyTorch', 'ratio', 'paired', 'target (on paired)', 'result'];
const ratioText = (v: number): string => (Number.isFinite(v) ? v.toFixed(3) : 'n/a');
const table = rows.map((r) => [r.metric, r.unit, fmt(r.kiln, r.unit), fmt(r.pytorch, r.unit), ratioText(r.ratio), ratioText(r.pairedRatio), r.target, r.pass === null ? '' : r.pass ? 'PASS' : 'FAIL']);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => (row[i] ?? '').length)));
const line = (cells: string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
console.log('');
console.log(`Median over ${config.rounds} rounds of per-round medians; ratio = Kiln / PyTorch of those; paired = median Kiln/PyTorch ratio of back-to-back batches (matmul: of each round's blocks); total ${(Number(now() - started) / 1e9).toFixed(0)} s:`);
console.log(line(header));
console.log(line(widths.map((w) => '-'.repeat(w))));
for (const row of table) console.log(line(row));
console.log('');
console.log('Per-round medians (Kiln | PyTorch):');
for (const r of rows) {
  console.log(`  ${r.metric.padEnd(widths[0] ?? 0)}  ${r.kilnRounds.map((v) => fmt(v, r.unit)).join(' ')} | ${r.pytorchRounds.map((v) => fmt(v, r.unit)).join(' ')}`);
}
const missed = rows.filter((r) => r.pass === false);
console.log('');
console.log(missed.length === 0 ? 'All targets met.' : `Targets missed: ${missed.map((r) => r.metric).join('; ')}`);

if (opts.json !== undefined) {
  writeFileSync(opts.json, JSON.stringify({ machine, config, rows, samples }, null, 2) + '\n');
  console.log(`Wrote ${opts.json}`);
}
if (opts.strict && missed.length > 0) process.exitCode = 1;

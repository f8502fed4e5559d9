/**
 * The pure half of `npm run bench` (bench/run.ts): the JSON each benchmark writes with
 * `--json FILE`, turned into the markdown tables of BENCHMARKS.md's generated section.
 *
 * Every benchmark's numbers become rows of one shape: a metric, its unit (with ↑ when higher
 * is better, ↓ when lower is), Kiln's median and min–max, the reference's (PyTorch, or a
 * target for the HTTP benchmarks) median and min–max, the ratio Kiln / reference of the two
 * medians, and a paired ratio where the benchmark measured one (the median over rounds of
 * back-to-back ratios, which cancels machine drift slower than a round). Only numbers from one
 * run are ever set side by side.
 *
 * The generated section sits between `<!-- bench:begin -->` and `<!-- bench:end -->` in
 * BENCHMARKS.md; `replaceGenerated` swaps only what is between them and keeps every other byte.
 *
 * Nothing here touches the file system, a process or a clock: the tests in
 * test/bench-report.test.ts call it with hand-written JSON.
 *
 * @example
 * summarize([3, 1, 2]);          // { median: 2, min: 1, max: 3, n: 3 }
 * formatRange(summarize([3.5, 1.25, 2])); // '1.25–3.50'
 * replaceGenerated('# Benchmarks\n\nold prose\n', 'tables'); // title, marked block, 'old prose' unchanged
 */

import type { Row as EngineRow } from './engine.js';

export const BEGIN_MARKER = '<!-- bench:begin -->';
export const END_MARKER = '<!-- bench:end -->';

/** The benchmarks `npm run bench` knows, in the order it runs them. */
export const BENCH_NAMES = ['engine', 'train', 'infer', 'serve', 'memory', 'dist', 'skills-trie', 'search', 'skills-serve'] as const;
export type BenchName = (typeof BENCH_NAMES)[number];

// =============================================================================================
// Statistics and number formatting
// =============================================================================================

/** Median of `values` (mean of the two middle ones for an even count); NaN when empty. */
export function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/** Median, min, max and count of some samples. */
export interface Stat {
  median: number;
  min: number;
  max: number;
  n: number;
}

export function summarize(values: readonly number[]): Stat {
  const finite = values.filter(Number.isFinite);
  if (finite.length === 0) return { median: Number.NaN, min: Number.NaN, max: Number.NaN, n: 0 };
  return { median: median(finite), min: Math.min(...finite), max: Math.max(...finite), n: finite.length };
}

/** One value, no spread (a peak RSS, a p95 over all responses). */
export function single(value: number): Stat {
  return { median: value, min: value, max: value, n: Number.isFinite(value) ? 1 : 0 };
}

/**
 * A measured value to about three significant figures: 1234.5 → '1235', 56.78 → '56.8',
 * 1.2345 → '1.23', 0.012345 → '0.0123'; integers as they are (0 → '0'). Non-finite values
 * are 'n/a'.
 */
export function formatNumber(v: number): string {
  if (!Number.isFinite(v)) return 'n/a';
  if (Number.isInteger(v)) return String(v); // counts: 0 handles, not 0.00
  const a = Math.abs(v);
  if (a >= 100) return v.toFixed(0);
  if (a >= 10) return v.toFixed(1);
  if (a >= 1 || a === 0) return v.toFixed(2);
  return v.toPrecision(3);
}

/** A ratio to three decimals ('0.981'); '—' when there is none. */
export function formatRatio(v: number | null | undefined): string {
  return v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(3);
}

/** 'min–max' (en dash) of a statistic over two or more samples; '—' for one sample or none. */
export function formatRange(s: Stat | null): string {
  if (s === null || s.n < 2) return '—';
  return `${formatNumber(s.min)}–${formatNumber(s.max)}`;
}

// =============================================================================================
// Rows and tables
// =============================================================================================

export interface Row {
  metric: string;
  /** With ↑ (higher is better) or ↓ (lower is better). */
  unit: string;
  kiln: Stat | null;
  reference: Stat | null;
  /** Kiln / reference of the medians; null when there is no reference. */
  ratio: number | null;
  /** Median over rounds of back-to-back Kiln/reference ratios, where the benchmark paired them. */
  paired?: number | null;
  note?: string;
  /** A row of the reference itself (PyTorch at another thread count): shown, not judged before/after. */
  ofReference?: boolean;
}

/** Kiln's median / the reference's median, or null without a reference. */
export function ratioOf(kiln: Stat | null, reference: Stat | null): number | null {
  if (kiln === null || reference === null) return null;
  const r = kiln.median / reference.median;
  return Number.isFinite(r) ? r : null;
}

const cell = (text: string): string => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

/** A markdown table: header row, separator, rows; `|` inside cells is escaped. */
export function markdownTable(header: readonly string[], rows: readonly (readonly string[])[], align?: readonly ('l' | 'r')[]): string {
  const sep = header.map((_, i) => (align?.[i] === 'r' ? '---:' : '---'));
  return [header, sep, ...rows].map((r, i) => `| ${(i === 1 ? r : r.map(cell)).join(' | ')} |`).join('\n');
}

/**
 * The table of one benchmark's rows; `reference` names the reference columns ('PyTorch'),
 * `subject` the measured ones ('Kiln', or for dist '2 processes' against '1 process').
 */
export function renderRows(rows: readonly Row[], reference: string, subject = 'Kiln'): string {
  const withNotes = rows.some((r) => r.note !== undefined && r.note !== '');
  // A target is one number, not a measurement: no 'median' in its header.
  const refMedian = reference === 'target' ? 'target' : `${reference} median`;
  const header = ['metric', 'unit', `${subject} median`, `${subject} min–max`, refMedian, `${reference} min–max`, `${subject} / ${reference}`, 'paired'];
  if (withNotes) header.push('notes');
  const body = rows.map((r) => {
    const line = [
      r.metric,
      r.unit,
      r.kiln === null ? '—' : formatNumber(r.kiln.median),
      formatRange(r.kiln),
      r.reference === null ? '—' : formatNumber(r.reference.median),
      formatRange(r.reference),
      formatRatio(r.ratio),
      formatRatio(r.paired),
    ];
    if (withNotes) line.push(r.note ?? '');
    return line;
  });
  return markdownTable(header, body, ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'r', 'l']);
}

// =============================================================================================
// The JSON each benchmark writes (only the fields read here)
// =============================================================================================

/** bench/engine.ts: `{ machine, config, rows, samples }`. */
export interface EngineJson {
  machine?: { libtorch?: string; pythonTorch?: string };
  config: { rounds: number };
  rows: EngineRow[];
}

/** bench/train.ts: `{ config, model, samples, phases, losses, rss, evalLoss, infos, best }`. */
export interface TrainJson {
  config: { rounds: number; threads: number[]; precisions: string[] };
  /** 'precision:side:threads' → rounds → step times in ns. */
  samples: Record<string, number[][]>;
  /** 'precision:side' → peak RSS in MiB. */
  rss: Record<string, number>;
}

/** bench/infer.ts: one row per engine ×threads; no per-pass samples. */
export interface InferJson {
  run: string;
  parameters: number;
  texts: number;
  rounds: number;
  pytorchReference: string;
  results: { engine: string; threads: number; medianMs: number; textsPerSecond: number; speedupVsPytorch: number }[];
  target?: { results: { family: string; engine: string; speedup: number; passed: boolean }[] };
}

interface Latency {
  p50: number;
  p95: number;
  p99: number;
  mean: number;
  max: number;
}

/** bench/serve.ts. */
export interface ServeJson {
  model: string;
  settings: { rate: number; duration: number; connections: number };
  latencyMs: Latency;
  requests: { sent: number; completed: number; achievedPerSecond: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  server?: { meanBatchSize: number; meanModelCallMs: number };
  exitCode: number | null;
  /** Every variant at every offered rate (a sweep: `--rate 1000,2000 --variants thread,http-thread`). */
  runs?: {
    variant: string;
    rate: number;
    latencyMs: Latency;
    requests: { completed: number; sent: number; achievedPerSecond: number };
    errors: number;
    timeouts: number;
    non2xx: number;
    server: { meanBatchSize: number; modelBusyFraction: number };
    met: boolean;
  }[];
  target: { p95Ms: number; rate: number; minAchievedFraction: number };
  passed: boolean;
}

/** bench/search.ts. */
export interface SearchJson {
  model: string;
  documents: number;
  settings: { rate: number; duration: number };
  modes: { mode: string; arrivals: string; latencyMs: Latency; achievedPerSecond: number; errors: number; timeouts: number; non2xx: number }[];
  exitCode: number | null;
  target: { mode: string; arrivals: string; p95Ms: number; rate: number };
  passed: boolean;
}

/** One side of bench/memory.ts's loop. */
export interface MemorySide {
  /** Steps per second of each timed round. */
  stepsPerSecond: number[];
  rssAfterWarmupMiB: number;
  /** RSS after the last round − RSS after warm-up. */
  rssGrowthMiB: number;
  firstLoss: number;
  lastLoss: number;
}

/** bench/memory.ts. */
export interface MemoryJson {
  config: { steps: number; warmup: number; rounds: number; threads: number; python: string | null };
  kiln: MemorySide & { liveAfterWarmup: number; liveDrift: number };
  /** Null with --no-torch. */
  pytorch: (MemorySide & { torchVersion: string }) | null;
  /** Kiln steps/s ÷ PyTorch steps/s of each round (back-to-back rounds). */
  pairedRatios: number[];
  /** Live tensor count unchanged and RSS growth under `rssBoundMiB`. */
  bounded: boolean;
  rssBoundMiB: number;
}

/** bench/dist.ts: 1p = 1 process × 2 threads, 2p = 2 processes × 1 thread (`kiln train --nproc 2`). */
export type DistMode = '1p' | '2p';

/** One `kiln train` of bench/dist.ts. */
export interface DistRun {
  precision: string;
  mode: DistMode;
  /** 0-based. */
  round: number;
  processes: number;
  /** libtorch intra-op threads per process (--threads). */
  threads: number;
  /** OPENBLAS_NUM_THREADS and OMP_NUM_THREADS as the run got them. */
  env: Record<string, string>;
  command: string;
  batchSize: number;
  parameters: number;
  worldSize: number;
  /** summary.json's wallSeconds (the training loop). */
  wallSeconds: number;
  /** The whole command, start-up and data loading included. */
  elapsedSeconds: number;
  /** train/examples_per_second of each step after the warm-up. */
  examplesPerSecond: number[];
  /** train/comm_seconds of each step after the warm-up (rank 0); null in one process. */
  commSeconds: number[] | null;
  medianExamplesPerSecond: number;
  medianCommSeconds: number | null;
}

/** bench/dist.ts's summary of one precision: medians over rounds of the runs' medians over steps. */
export interface DistPrecisionResult {
  precision: string;
  batchSize: number;
  parameters: number;
  /** Per round, in round order. */
  onePerRound: number[];
  twoPerRound: number[];
  /** 2p / 1p of each round. */
  pairedRatios: number[];
  /** Median comm seconds per step of each round's 2-process run. */
  commPerRound: number[];
  oneExamplesPerSecond: number;
  twoExamplesPerSecond: number;
  /** twoExamplesPerSecond / oneExamplesPerSecond. */
  ratio: number;
  pairedRatio: number;
  /** batchSize / the median examples/s of each mode. */
  oneStepSeconds: number;
  twoStepSeconds: number;
  commSeconds: number;
  /** commSeconds / twoStepSeconds. */
  commShare: number;
  /** parameters × 4 bytes of fp32 gradients. */
  allreduceBytes: number;
  /** 2·(W−1)/W × allreduceBytes. */
  ringBytesPerRank: number;
}

/** bench/dist.ts. */
export interface DistJson {
  machine: { cpu: string; cores: number; node: string };
  config: { config: string; steps: number; warmup: number; rounds: number; precisions: string[]; sets: string[]; dataRoot: string; worldSize: number };
  results: DistPrecisionResult[];
  runs: DistRun[];
}

/** bench/skills-trie.ts. */
export interface SkillsTrieJson {
  config: { reps: number; minSeconds: number; passes: number; dataRoot: string };
  sentences: { count: number; train: number; dev: number; meanChars: number };
  trie: { labels: number; buildSeconds: number; loadSeconds: number; jsonBytes: number };
  matchesPerPass: number;
  /** Wall-clock sentences/s of each repetition. */
  sentencesPerSecond: number[];
  sentencesPerCpuSecond: number[];
  /** CPU time / wall time of each repetition. */
  cpuShare: number[];
  target: { sentencesPerSecond: number };
  /** Median sentences/s ≥ the target. */
  passed: boolean;
}

/** One fixed-rate run of bench/skills-serve.ts. */
export interface SkillsServeRun {
  /** step: the rate ladder; refine: between the last passing and first failing step; confirm: the longer run at the best rate. */
  phase: 'step' | 'refine' | 'confirm';
  offered: number;
  duration: number;
  achievedPerSecond: number;
  latencyMs: Latency;
  sent: number;
  completed: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  /** p95 under the target, nothing dropped, achieved ≥ the fraction of offered. */
  passed: boolean;
  /** The server's view of this run (/metrics differences): sentences per model call, model-call and request time. */
  server: { modelCalls: number; meanSentencesPerCall: number; meanModelCallMs: number; meanRequestMs: number } | null;
}

/** bench/skills-serve.ts. */
export interface SkillsServeJson {
  model: string;
  skills: { dir: string; builtHere: boolean; skills: number };
  cores: number;
  postings: { count: number; meanChars: number; meanSentences: number };
  settings: { connections: number; stepDuration: number; confirmDuration: number };
  runs: SkillsServeRun[];
  /** The highest offered rate whose confirming run passed; 0 when none did. */
  bestRate: number;
  /** ceil(caseStudyRate / bestRate) machines like this one; null when bestRate is 0. */
  machinesNeeded: number | null;
  exitCode: number | null;
  target: { p95Ms: number; minAchievedFraction: number; rate: number; caseStudyRate: number };
  /** bestRate ≥ target.rate and exit 0 on SIGTERM. */
  passed: boolean;
}

// =============================================================================================
// JSON → rows, per benchmark
// =============================================================================================

/** Unit with a direction arrow: GFLOP/s and rates are better higher, times and sizes lower. */
function arrow(unit: string): string {
  return /\/s$/.test(unit) ? `${unit} ↑` : `${unit} ↓`;
}

export function engineRows(j: EngineJson): Row[] {
  return j.rows.map((r) => {
    const kiln = summarize(r.kilnRounds);
    const reference = summarize(r.pytorchRounds);
    return { metric: r.metric, unit: arrow(r.unit), kiln, reference, ratio: ratioOf(kiln, reference), paired: r.pairedRatio, note: r.pass === null ? '' : `${r.target} (paired): ${r.pass ? 'met' : 'missed'}` };
  });
}

export function trainRows(j: TrainJson): Row[] {
  const rows: Row[] = [];
  const ms = (id: string): number[] => (j.samples[id] ?? []).flat().map((ns) => ns / 1e6);
  const roundSum = (round: readonly number[] | undefined): number => (round ?? []).reduce((a, b) => a + b, 0);
  for (const p of j.config.precisions) {
    for (const t of j.config.threads) {
      const k = `${p}:kiln:${t}`;
      const q = `${p}:pytorch:${t}`;
      const kiln = summarize(ms(k));
      const reference = summarize(ms(q));
      // Median over rounds of (Σ Kiln step time in the round) / (Σ PyTorch step time in the round), as bench/train.ts pairs them.
      const perRound = (j.samples[k] ?? []).map((round, r) => roundSum(round) / roundSum(j.samples[q]?.[r])).filter(Number.isFinite);
      rows.push({ metric: `${p} step, ${t} thread${t === 1 ? '' : 's'}`, unit: 'ms/step ↓', kiln, reference, ratio: ratioOf(kiln, reference), paired: perRound.length > 0 ? median(perRound) : null });
    }
    const kRss = j.rss[`${p}:kiln`];
    const pRss = j.rss[`${p}:pytorch`];
    if (kRss !== undefined && pRss !== undefined) {
      const kiln = single(kRss);
      const reference = single(pRss);
      rows.push({ metric: `${p} worker peak RSS`, unit: 'MiB ↓', kiln, reference, ratio: ratioOf(kiln, reference) });
    }
  }
  return rows;
}

export function inferRows(j: InferJson): Row[] {
  const ref = j.results.find((r) => r.engine === j.pytorchReference);
  const reference = ref === undefined ? null : single(ref.textsPerSecond);
  return j.results
    .filter((r) => r.engine !== j.pytorchReference)
    .map((r) => {
      const kiln = single(r.textsPerSecond);
      return {
        metric: r.engine,
        unit: 'texts/s ↑',
        kiln,
        reference,
        ratio: ratioOf(kiln, reference),
        paired: r.speedupVsPytorch,
        note: `median pass ${formatNumber(r.medianMs)} ms`,
        ...(r.engine.startsWith('pytorch') ? { ofReference: true } : {}),
      };
    });
}

/** Serving has no PyTorch counterpart: its reference columns hold the target. */
export function serveRows(j: ServeJson): Row[] {
  if (j.runs !== undefined && j.runs.length > 1) {
    // A sweep: per variant and rate, the p95 against the target and the rate achieved.
    return j.runs.map((r) => {
      const p95 = single(r.latencyMs.p95);
      const target = single(j.target.p95Ms);
      return {
        metric: `${r.variant} at ${r.rate} req/s: p95`,
        unit: 'ms ↓',
        kiln: p95,
        reference: target,
        ratio: ratioOf(p95, target),
        note: `achieved ${formatNumber(r.requests.achievedPerSecond)} req/s (${r.met ? 'met' : 'missed'}); errors ${r.errors}, non-2xx ${r.non2xx}, timeouts ${r.timeouts}; ${formatNumber(r.server.meanBatchSize)} texts per model call, model busy ${Math.round(100 * r.server.modelBusyFraction)}%`,
      };
    });
  }
  const l = j.latencyMs;
  const achieved = single(j.requests.achievedPerSecond);
  const minRate = single(j.target.minAchievedFraction * j.target.rate);
  const p95 = single(l.p95);
  const target = single(j.target.p95Ms);
  return [
    { metric: 'latency p50', unit: 'ms ↓', kiln: single(l.p50), reference: null, ratio: null, note: `mean ${formatNumber(l.mean)}, max ${formatNumber(l.max)}` },
    { metric: 'latency p95', unit: 'ms ↓', kiln: p95, reference: target, ratio: ratioOf(p95, target), note: `target < ${j.target.p95Ms} ms` },
    { metric: 'latency p99', unit: 'ms ↓', kiln: single(l.p99), reference: null, ratio: null },
    {
      metric: 'achieved rate',
      unit: 'req/s ↑',
      kiln: achieved,
      reference: minRate,
      ratio: ratioOf(achieved, minRate),
      note: `${j.requests.completed}/${j.requests.sent} answered; errors ${j.errors}, non-2xx ${j.non2xx}, timeouts ${j.timeouts}; exit ${j.exitCode ?? 'hung'}${j.server === undefined ? '' : `; ${formatNumber(j.server.meanBatchSize)} texts per model call`}`,
    },
  ];
}

export function searchRows(j: SearchJson): Row[] {
  return j.modes.map((m) => {
    const p95 = single(m.latencyMs.p95);
    const isTarget = m.mode === j.target.mode && m.arrivals === j.target.arrivals;
    const target = isTarget ? single(j.target.p95Ms) : null;
    return {
      metric: `${m.mode}, ${m.arrivals}: latency p95`,
      unit: 'ms ↓',
      kiln: p95,
      reference: target,
      ratio: ratioOf(p95, target),
      note: `p50 ${formatNumber(m.latencyMs.p50)}, p99 ${formatNumber(m.latencyMs.p99)}; ${formatNumber(m.achievedPerSecond)} req/s; errors ${m.errors}, non-2xx ${m.non2xx}, timeouts ${m.timeouts}`,
    };
  });
}

export function memoryRows(j: MemoryJson): Row[] {
  const kiln = summarize(j.kiln.stepsPerSecond);
  const reference = j.pytorch === null ? null : summarize(j.pytorch.stepsPerSecond);
  const kGrowth = single(j.kiln.rssGrowthMiB);
  const pGrowth = j.pytorch === null ? null : single(j.pytorch.rssGrowthMiB);
  return [
    { metric: `${j.config.steps} tidy AdamW steps per round`, unit: 'steps/s ↑', kiln, reference, ratio: ratioOf(kiln, reference), paired: j.pairedRatios.length > 0 ? median(j.pairedRatios) : null },
    { metric: 'RSS growth after warm-up', unit: 'MiB ↓', kiln: kGrowth, reference: pGrowth, ratio: null, note: `bound < ${j.rssBoundMiB} MiB (Kiln)` },
    { metric: 'live tensor drift', unit: 'handles ↓', kiln: single(j.kiln.liveDrift), reference: null, ratio: null, note: `${j.kiln.liveAfterWarmup} live after warm-up; must stay 0` },
  ];
}

/**
 * Data parallelism has no PyTorch counterpart here: Kiln's 2 processes × 1 thread are set against
 * its own 1 process × 2 threads (the reference columns), per precision; collective time and
 * allreduce volume belong to the 2-process runs only.
 */
export function distRows(j: DistJson): Row[] {
  const w = j.config.worldSize;
  const rows: Row[] = [];
  for (const x of j.results) {
    const two = summarize(x.twoPerRound);
    const one = summarize(x.onePerRound);
    rows.push({
      metric: `${x.precision} training, batch ${x.batchSize}: ${w} processes × 1 thread vs 1 process × ${w} threads`,
      unit: 'examples/s ↑',
      kiln: two,
      reference: one,
      ratio: ratioOf(two, one),
      paired: x.pairedRatios.length > 0 ? median(x.pairedRatios) : null,
      note: `step ${formatNumber(x.twoStepSeconds * 1000)} ms vs ${formatNumber(x.oneStepSeconds * 1000)} ms`,
    });
    rows.push({
      metric: `${x.precision} time in collectives per step (rank 0)`,
      unit: 'ms ↓',
      kiln: summarize(x.commPerRound.map((s) => s * 1000)),
      reference: null,
      ratio: null,
      note: `${formatNumber(x.commShare * 100)}% of the median ${w}-process step; gradient allreduce + stats exchange, waiting included`,
    });
    rows.push({
      metric: `${x.precision} gradient allreduce per step`,
      unit: 'MB ↓',
      kiln: single(x.allreduceBytes / 1e6),
      reference: null,
      ratio: null,
      note: `${x.parameters} parameters × 4 B fp32; ring: ${formatNumber(x.ringBytesPerRank / 1e6)} MB sent per rank`,
    });
  }
  return rows;
}

/** The tagger has no PyTorch counterpart: its reference columns hold the target. */
export function skillsTrieRows(j: SkillsTrieJson): Row[] {
  const rate = summarize(j.sentencesPerSecond);
  const target = single(j.target.sentencesPerSecond);
  return [
    {
      metric: `tag SkillSpan train + dev (${j.sentences.count} sentences), 1 thread`,
      unit: 'sentences/s ↑',
      kiln: rate,
      reference: target,
      ratio: ratioOf(rate, target),
      note: `${j.config.passes} pass${j.config.passes === 1 ? '' : 'es'} per repetition; CPU/wall ${formatNumber(median(j.cpuShare))}; ${formatNumber(median(j.sentencesPerCpuSecond))} sentences per CPU-second`,
    },
    { metric: 'trie build (ESCO + Stack Overflow)', unit: 's ↓', kiln: single(j.trie.buildSeconds), reference: null, ratio: null, note: `${j.trie.labels} labels` },
    { metric: 'trie load (saved JSON)', unit: 's ↓', kiln: single(j.trie.loadSeconds), reference: null, ratio: null },
    { metric: 'saved trie JSON', unit: 'MiB ↓', kiln: single(j.trie.jsonBytes / 2 ** 20), reference: null, ratio: null, note: `${j.trie.jsonBytes} bytes` },
  ];
}

/** POST /skills has no PyTorch counterpart: the reference columns hold the target (p95 per run, the rate overall). */
export function skillsServeRows(j: SkillsServeJson): Row[] {
  const p95Target = single(j.target.p95Ms);
  const rows: Row[] = j.runs.map((r) => {
    const p95 = single(r.latencyMs.p95);
    return {
      metric: `${r.phase} at ${r.offered} req/s (${r.duration} s): latency p95`,
      unit: 'ms ↓',
      kiln: p95,
      reference: p95Target,
      ratio: ratioOf(p95, p95Target),
      note: `${r.passed ? 'pass' : 'fail'}; ${formatNumber(r.achievedPerSecond)} req/s achieved; p50 ${formatNumber(r.latencyMs.p50)}, p99 ${formatNumber(r.latencyMs.p99)}; errors ${r.errors}, non-2xx ${r.non2xx}, timeouts ${r.timeouts}${r.server === null ? '' : `; ${formatNumber(r.server.meanSentencesPerCall)} sentences per model call`}`,
    };
  });
  const best = single(j.bestRate);
  const target = single(j.target.rate);
  rows.push({
    metric: 'highest rate: p95 < target, nothing dropped',
    unit: 'req/s ↑',
    kiln: best,
    reference: target,
    ratio: ratioOf(best, target),
    note: `${j.postings.count} SkillSpan dev postings, ${formatNumber(j.postings.meanSentences)} sentences each on average; ${machinesText(j)}; exit ${j.exitCode ?? 'hung'}`,
  });
  return rows;
}

/** "2 × 2-core machines for 200 edits/s" (the LinkedIn case study's rate), or why there is no count. */
function machinesText(j: SkillsServeJson): string {
  return j.machinesNeeded === null ? `no rate passed: no count of machines for ${j.target.caseStudyRate} edits/s` : `${j.machinesNeeded} × ${j.cores}-core machines for ${j.target.caseStudyRate} edits/s`;
}

/** The rows for `name`'s JSON, the names of its reference (and, where not Kiln, measured) columns. */
export function rowsFor(name: BenchName, json: unknown): { rows: Row[]; reference: string; subject?: string; verdict: string | null } {
  switch (name) {
    case 'engine': {
      const j = json as EngineJson;
      const missed = j.rows.filter((r) => r.pass === false).length;
      return { rows: engineRows(j), reference: 'PyTorch', verdict: missed === 0 ? 'all targets met' : `${missed} target${missed === 1 ? '' : 's'} missed` };
    }
    case 'train':
      return { rows: trainRows(json as TrainJson), reference: 'PyTorch', verdict: null };
    case 'infer': {
      const j = json as InferJson;
      const t = j.target?.results ?? [];
      return { rows: inferRows(j), reference: 'PyTorch', verdict: t.length === 0 ? null : t.map((r) => `${r.family} ≥ 2× PyTorch: ${r.passed ? 'met' : 'missed'} (${formatNumber(r.speedup)}×)`).join('; ') };
    }
    case 'serve': {
      const j = json as ServeJson;
      const sweep = j.runs !== undefined && j.runs.length > 1;
      const verdict = sweep
        ? `p95 < ${j.target.p95Ms} ms with ≥ ${100 * j.target.minAchievedFraction}% answered, no errors, at every rate of ${j.runs![0]!.variant}: ${j.passed ? 'met' : 'missed'}`
        : `p95 < ${j.target.p95Ms} ms at ${j.target.rate} req/s, no errors: ${j.passed ? 'met' : 'missed'}`;
      return { rows: serveRows(j), reference: 'target', verdict };
    }
    case 'memory': {
      const j = json as MemoryJson;
      return { rows: memoryRows(j), reference: 'PyTorch', verdict: `memory bounded: ${j.bounded ? 'yes' : 'NO'}` };
    }
    case 'dist': {
      const j = json as DistJson;
      const w = j.config.worldSize;
      return { rows: distRows(j), reference: '1 process', subject: `${w} processes`, verdict: null };
    }
    case 'skills-trie': {
      const j = json as SkillsTrieJson;
      return { rows: skillsTrieRows(j), reference: 'target', verdict: `≥ ${j.target.sentencesPerSecond} sentences/s on one core: ${j.passed ? 'met' : 'missed'} (${formatNumber(median(j.sentencesPerSecond))})` };
    }
    case 'search': {
      const j = json as SearchJson;
      return { rows: searchRows(j), reference: 'target', verdict: `${j.target.mode} p95 < ${j.target.p95Ms} ms at ${j.target.rate} req/s (${j.target.arrivals}): ${j.passed ? 'met' : 'missed'}` };
    }
    case 'skills-serve': {
      const j = json as SkillsServeJson;
      return {
        rows: skillsServeRows(j),
        reference: 'target',
        verdict: `POST /skills at ≥ ${j.target.rate} req/s with p95 < ${j.target.p95Ms} ms, nothing dropped: ${j.passed ? 'met' : 'missed'} (best ${formatNumber(j.bestRate)} req/s; ${machinesText(j)})`,
      };
    }
  }
}

// =============================================================================================
// Before and after: one benchmark's rows from two runs, side by side
// =============================================================================================

/** How a row moved between two runs of one benchmark. */
export interface RowChange {
  metric: string;
  unit: string;
  before: Stat | null;
  after: Stat | null;
  /** after / before of Kiln's medians; null when either side has none. */
  change: number | null;
  /** Kiln / reference in each run (the reference measured in that same run), where there is one. */
  beforeRatio: number | null;
  afterRatio: number | null;
  /** The two ratios are both runs' paired ratios (medians of back-to-back rounds), not ratios of medians. */
  pairedRatios: boolean;
  /** 'better', 'worse' or 'level' (within the tolerance), read with the unit's arrow; 'mixed' when the raw change and the change against the reference disagree; 'reference' for a row of the reference itself; 'only before' / 'only after' for unmatched rows; '—' without a direction or a positive median to divide by. */
  verdict: string;
}

/**
 * The rows of two runs of one benchmark matched by metric name, in the after run's order (rows
 * only the before run has come last). A change beyond `tolerance` (a fraction: 0.05 = 5%) in
 * the direction the unit's arrow calls worse is 'worse'.
 *
 * With `byReference`, for a reference measured independently in each run (PyTorch), a row
 * with a ratio in both runs is also judged on the change of Kiln / reference: drift of the
 * machine between the runs moves both sides. The two readings must agree: when one calls the
 * row level it is level (the other's change is drift, or the reference's own noise), and when
 * they point opposite ways it is 'mixed'. Where both runs paired the rounds (`Row.paired`), the
 * paired ratios are compared instead of the ratios of medians: a round's Kiln and PyTorch ran
 * back to back, so the machine's drift within a run cancels in each round's ratio, while the
 * two medians may come from rounds minutes apart (on this VM a small op's per-round median
 * moves by up to 2× within one run). Leave it off where the reference is a fixed target
 * (the ratio is then the raw change anyway) or Kiln itself (dist's 1 process, which the change
 * under test moves too).
 */
export function compareRows(before: readonly Row[], after: readonly Row[], options: { tolerance?: number; byReference?: boolean } = {}): RowChange[] {
  const tolerance = options.tolerance ?? 0.05;
  const byMetric = new Map(before.map((r) => [r.metric, r]));
  const direction = (unit: string): 1 | -1 | 0 => (unit.includes('↑') ? 1 : unit.includes('↓') ? -1 : 0);
  const change = (b: Row | undefined, a: Row | undefined): RowChange => {
    const unit = a?.unit ?? b?.unit ?? '';
    const beforeStat = b?.kiln ?? null;
    const afterStat = a?.kiln ?? null;
    // A ratio means something only for positive quantities (not for an RSS growth near zero).
    const measured = beforeStat !== null && afterStat !== null && beforeStat.n > 0 && afterStat.n > 0;
    const rawChange = measured && beforeStat.median > 0 && afterStat.median >= 0 ? afterStat.median / beforeStat.median : null;
    const pairedRatios = typeof b?.paired === 'number' && typeof a?.paired === 'number';
    const beforeRatio = pairedRatios ? b!.paired! : (b?.ratio ?? null);
    const afterRatio = pairedRatios ? a!.paired! : (a?.ratio ?? null);
    let verdict = '—';
    if (b === undefined) verdict = 'only after';
    else if (a === undefined) verdict = 'only before';
    else if (a.ofReference === true) verdict = 'reference';
    else {
      const dir = direction(unit);
      const judge = (ratio: number | null): string | null => {
        if (ratio === null || dir === 0) return null;
        const gain = dir === 1 ? ratio - 1 : 1 - ratio;
        return gain > tolerance ? 'better' : gain < -tolerance ? 'worse' : 'level';
      };
      const raw = judge(rawChange);
      const relative = options.byReference === true && beforeRatio !== null && afterRatio !== null && beforeRatio > 0 ? judge(afterRatio / beforeRatio) : null;
      if (measured && beforeStat.median === afterStat.median) verdict = 'level';
      else if (raw === null || relative === null) verdict = raw ?? relative ?? '—';
      else if (raw === relative) verdict = raw;
      else verdict = raw === 'level' || relative === 'level' ? 'level' : 'mixed';
    }
    return { metric: a?.metric ?? b!.metric, unit, before: beforeStat, after: afterStat, change: rawChange, beforeRatio, afterRatio, pairedRatios, verdict };
  };
  const rows = after.map((a) => change(byMetric.get(a.metric), a));
  const seen = new Set(after.map((a) => a.metric));
  for (const b of before) if (!seen.has(b.metric)) rows.push(change(b, undefined));
  return rows;
}

/**
 * The markdown table of `compareRows`; `reference` names what the ratio columns divide by. A
 * ratio marked "(paired)" is the median of back-to-back rounds' ratios, the one the verdict read.
 */
export function renderComparison(changes: readonly RowChange[], reference: string): string {
  const stat = (s: Stat | null): string => (s === null || s.n === 0 ? '—' : formatNumber(s.median));
  const ratio = (c: RowChange, r: number | null): string => (c.pairedRatios && r !== null ? `${formatRatio(r)} (paired)` : formatRatio(r));
  return markdownTable(
    ['metric', 'unit', 'before', 'after', 'after / before', `before / ${reference}`, `after / ${reference}`, 'verdict'],
    changes.map((c) => [c.metric, c.unit, stat(c.before), stat(c.after), formatRatio(c.change), ratio(c, c.beforeRatio), ratio(c, c.afterRatio), c.verdict]),
    ['l', 'l', 'r', 'r', 'r', 'r', 'r', 'l'],
  );
}

// =============================================================================================
// The generated section
// =============================================================================================

/** One benchmark of the run, as bench/run.ts saw it. */
export interface BenchOutcome {
  name: BenchName;
  /** The exact command line, relative to the repository root. */
  command: string;
  /** The child's exit code; null when it could not start or was killed by a signal. */
  exitCode: number | null;
  seconds: number;
  /** The parsed `--json` file; null when the benchmark failed or wrote none. */
  json: unknown;
  /** Why it failed, when the exit code alone does not say. */
  error?: string;
  /** Which model it measured (infer, serve, search, skills-serve). */
  model?: string;
  /** Extra lines printed under the table. */
  notes?: string[];
}

export interface Machine {
  cpu: string;
  cores: number;
  memoryGiB: number;
  node: string;
  libtorch: string;
  pytorch: string;
  onnxruntime: string;
  commit: string;
  date: string;
}

export function renderMachine(m: Machine): string {
  return markdownTable(
    ['', ''],
    [
      ['CPU', m.cpu],
      ['cores', String(m.cores)],
      ['memory', `${m.memoryGiB.toFixed(1)} GiB`],
      ['Node', m.node],
      ['libtorch (Kiln)', m.libtorch],
      ['PyTorch', m.pytorch],
      ['onnxruntime-node', m.onnxruntime],
      ['commit', m.commit],
      ['date', m.date],
    ],
  );
}

/** Whether a benchmark produced readable numbers. */
export function succeeded(o: BenchOutcome): boolean {
  return o.exitCode === 0 && o.json !== null && o.error === undefined;
}

/** 'ok', or 'failed (exit N)' with the reason. */
export function statusText(o: BenchOutcome): string {
  if (succeeded(o)) return 'ok';
  const exit = o.exitCode === null ? 'did not exit normally' : `exit ${o.exitCode}`;
  return `**failed** (${exit})${o.error === undefined ? '' : `: ${o.error}`}`;
}

/** The summary table: one row per benchmark with its result, wall time and verdict. */
export function renderSummary(outcomes: readonly BenchOutcome[]): string {
  return markdownTable(
    ['benchmark', 'result', 'wall s', 'targets'],
    outcomes.map((o) => {
      let verdict = '';
      if (succeeded(o)) {
        try {
          verdict = rowsFor(o.name, o.json).verdict ?? '';
        } catch {
          verdict = '';
        }
      }
      return [o.name, statusText(o), o.seconds.toFixed(0), verdict];
    }),
    ['l', 'l', 'r', 'l'],
  );
}

/** One benchmark's subsection: command, model, table (or why there is none), notes. */
export function renderBench(o: BenchOutcome): string {
  const parts = [`### ${o.name}`, '', '```sh', o.command, '```', ''];
  if (o.model !== undefined) parts.push(`Model: ${o.model}`, '');
  if (!succeeded(o)) {
    parts.push(`Result: ${statusText(o)}. No numbers from this run.`);
  } else {
    try {
      const { rows, reference, subject, verdict } = rowsFor(o.name, o.json);
      parts.push(renderRows(rows, reference, subject));
      if (verdict !== null) parts.push('', `Targets: ${verdict}.`);
    } catch (error) {
      parts.push(`Result: **failed**: the JSON could not be read (${(error as Error).message}).`);
    }
  }
  for (const note of o.notes ?? []) parts.push('', note);
  return parts.join('\n');
}

/** The whole generated section (without the markers). */
export function renderReport(run: { machine: Machine; command: string; outcomes: readonly BenchOutcome[]; quick?: boolean }): string {
  return [
    '## Latest `npm run bench`',
    '',
    ...(run.quick === true ? ['**Smoke run (`--quick`)**: every benchmark at its smallest settings, on a smoke-sized model where one was trained here. These numbers check that the suite runs; they are not measurements to compare.', ''] : []),
    'Generated by `bench/run.ts` from the JSON of one run; everything outside the `bench:begin`/`bench:end` markers is written by hand.',
    'Medians and min–max are over the rounds (engine, memory, dist: per-round medians) or over every timed step (train);',
    'a single value has no min–max. The ratio is Kiln / reference of the medians (↑: higher is better, ↓: lower);',
    '"paired" is the median of back-to-back ratios where the benchmark measured them (infer: the per-round speed-up over PyTorch at its best thread count).',
    'Serving, search, the skills trie tagger and skills serving have no PyTorch counterpart: their reference columns hold the target.',
    'dist sets Kiln against itself: 2 processes × 1 thread (`kiln train --nproc 2`) in the measured columns, 1 process × 2 threads in the reference columns.',
    '',
    '```sh',
    run.command,
    '```',
    '',
    renderMachine(run.machine),
    '',
    renderSummary(run.outcomes),
    '',
    ...run.outcomes.flatMap((o) => [renderBench(o), '']),
  ]
    .join('\n')
    .trimEnd();
}

/**
 * `file` with `generated` between the markers, every byte outside them unchanged. Without
 * markers, the block is inserted after the first `# ` title line (or at the top when there is
 * none). One marker alone, or the end marker first, is an error rather than a guess.
 */
export function replaceGenerated(file: string, generated: string): string {
  const body = generated.replace(/\n+$/, '');
  const begin = file.indexOf(BEGIN_MARKER);
  const end = file.indexOf(END_MARKER);
  if (begin === -1 && end === -1) {
    const block = `${BEGIN_MARKER}\n${body}\n${END_MARKER}\n`;
    const title = /^# .*(\r?\n|$)/m.exec(file);
    if (title === null) return `${block}\n${file}`;
    const at = title.index + title[0].length;
    const eol = title[1] === '' ? '\n' : '';
    return `${file.slice(0, at)}${eol}\n${block}${file.slice(at)}`;
  }
  if (begin === -1 || end === -1 || end < begin) {
    throw new Error(`the file has ${begin === -1 ? `no ${BEGIN_MARKER}` : end === -1 ? `no ${END_MARKER}` : `${END_MARKER} before ${BEGIN_MARKER}`}: fix the markers by hand (both, begin first) or remove both`);
  }
  if (file.indexOf(BEGIN_MARKER, begin + 1) !== -1 || file.indexOf(END_MARKER, end + 1) !== -1) {
    throw new Error(`the file has more than one ${BEGIN_MARKER} or ${END_MARKER}: keep one pair`);
  }
  return `${file.slice(0, begin + BEGIN_MARKER.length)}\n${body}\n${file.slice(end)}`;
}

/**
 * bench/report.ts: the pure rendering behind `npm run bench`, on hand-written JSON with
 * hand-computed expectations. No benchmark runs here.
 */
import { describe, expect, it } from 'vitest';

import {
  BEGIN_MARKER,
  compareRows,
  END_MARKER,
  engineRows,
  formatNumber,
  formatRange,
  formatRatio,
  inferRows,
  median,
  memoryRows,
  renderBench,
  renderComparison,
  renderReport,
  renderRows,
  renderSummary,
  replaceGenerated,
  rowsFor,
  serveRows,
  skillsServeRows,
  skillsTrieRows,
  summarize,
  trainRows,
  type BenchOutcome,
  type Row,
  type EngineJson,
  type InferJson,
  type Machine,
  type MemoryJson,
  type ServeJson,
  type SkillsServeJson,
  type SkillsTrieJson,
  type TrainJson,
} from '../bench/report.js';

describe('statistics', () => {
  it('median of odd and even counts, unsorted input', () => {
    expect(median([5, 1, 3])).toBe(3);
    expect(median([4, 1, 3, 2])).toBe(2.5); // (2 + 3) / 2
    expect(median([7])).toBe(7);
    expect(median([])).toBeNaN();
  });

  it('summarize gives median, min, max and count, ignoring non-finite values', () => {
    expect(summarize([3, 1, 2])).toEqual({ median: 2, min: 1, max: 3, n: 3 });
    expect(summarize([10, Number.NaN, 30])).toEqual({ median: 20, min: 10, max: 30, n: 2 });
    expect(summarize([]).n).toBe(0);
  });

  it('formats numbers to about three significant figures, ranges with an en dash, ratios to three decimals', () => {
    expect(formatNumber(1234.5)).toBe('1235');
    expect(formatNumber(56.78)).toBe('56.8');
    expect(formatNumber(1.2345)).toBe('1.23');
    expect(formatNumber(0.012345)).toBe('0.0123');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(1500)).toBe('1500');
    expect(formatNumber(Number.NaN)).toBe('n/a');
    expect(formatRange(summarize([3.5, 1.25, 2]))).toBe('1.25–3.50');
    expect(formatRange(summarize([3, 1, 2]))).toBe('1–3');
    expect(formatRange(summarize([185.2, 182.4]))).toBe('182–185');
    expect(formatRange(summarize([42]))).toBe('—'); // one sample has no spread
    expect(formatRange(null)).toBe('—');
    expect(formatRatio(0.98123)).toBe('0.981');
    expect(formatRatio(1.0456)).toBe('1.046');
    expect(formatRatio(null)).toBe('—');
    expect(formatRatio(Number.POSITIVE_INFINITY)).toBe('—');
  });
});

describe('rows from each benchmark’s JSON', () => {
  it('engine: per-round medians → median and min–max, ratio of medians, the paired ratio as written', () => {
    const j: EngineJson = {
      config: { rounds: 3 },
      rows: [
        { metric: 'matmul 1024x1024 fp32, 1 thread', unit: 'GFLOP/s', kiln: 185, pytorch: 200, ratio: 0.925, pairedRatio: 0.97, target: 'Kiln/PyTorch >= 0.95', pass: true, kilnRounds: [190, 180, 185], pytorchRounds: [200, 210, 190] },
      ],
    };
    const [row] = engineRows(j);
    expect(row!.kiln).toEqual({ median: 185, min: 180, max: 190, n: 3 });
    expect(row!.reference).toEqual({ median: 200, min: 190, max: 210, n: 3 });
    expect(row!.ratio).toBeCloseTo(0.925, 12); // 185 / 200
    expect(row!.paired).toBe(0.97);
    expect(row!.unit).toBe('GFLOP/s ↑');
    expect(renderRows([row!], 'PyTorch').split('\n')[2]).toBe(
      '| matmul 1024x1024 fp32, 1 thread | GFLOP/s ↑ | 185 | 180–190 | 200 | 190–210 | 0.925 | 0.970 | Kiln/PyTorch >= 0.95 (paired): met |',
    );
  });

  it('train: ms per step over every timed step, paired = median over rounds of the round sums’ ratio, peak RSS', () => {
    const ms = 1e6;
    const j: TrainJson = {
      config: { rounds: 2, threads: [1], precisions: ['fp32'] },
      samples: {
        'fp32:kiln:1': [[900 * ms, 1000 * ms], [1100 * ms, 950 * ms]],
        'fp32:pytorch:1': [[1000 * ms, 1000 * ms], [1000 * ms, 1050 * ms]],
      },
      rss: { 'fp32:kiln': 897, 'fp32:pytorch': 898 },
    };
    const [step, rss] = trainRows(j);
    // Kiln steps 900, 1000, 1100, 950 → median (950 + 1000) / 2 = 975; PyTorch 1000, 1000, 1000, 1050 → 1000.
    expect(step!.kiln).toEqual({ median: 975, min: 900, max: 1100, n: 4 });
    expect(step!.reference).toEqual({ median: 1000, min: 1000, max: 1050, n: 4 });
    expect(step!.ratio).toBeCloseTo(0.975, 12);
    // Rounds: 1900 / 2000 = 0.95 and 2050 / 2050 = 1.0 → median 0.975.
    expect(step!.paired).toBeCloseTo(0.975, 12);
    expect(rss!.metric).toBe('fp32 worker peak RSS');
    expect(rss!.ratio).toBeCloseTo(897 / 898, 12);
  });

  it('serve: the reference columns hold the target', () => {
    const j: ServeJson = {
      model: 'tiny-1@abc',
      settings: { rate: 200, duration: 20, connections: 50 },
      latencyMs: { p50: 43.3, p95: 77.2, p99: 87.3, mean: 45, max: 120 },
      requests: { sent: 4000, completed: 3988, achievedPerSecond: 199.4 },
      errors: 0,
      timeouts: 0,
      non2xx: 0,
      server: { meanBatchSize: 18.4, meanModelCallMs: 15 },
      exitCode: 0,
      target: { p95Ms: 100, rate: 200, minAchievedFraction: 0.95 },
      passed: true,
    };
    const rows = serveRows(j);
    const p95 = rows.find((r) => r.metric === 'latency p95')!;
    expect(p95.reference!.median).toBe(100);
    expect(p95.ratio).toBeCloseTo(0.772, 12);
    const rate = rows.find((r) => r.metric === 'achieved rate')!;
    expect(rate.reference!.median).toBe(190); // 0.95 × 200
    expect(rate.ratio).toBeCloseTo(199.4 / 190, 12);
  });

  it('serve: a sweep has one p95 row per variant and rate against the target, noting the rate achieved', () => {
    const run = (variant: string, rate: number, p95: number, achieved: number, met: boolean) => ({
      variant,
      rate,
      latencyMs: { p50: p95 / 2, p95, p99: p95 + 10, mean: p95 / 2, max: p95 + 20 },
      requests: { sent: rate * 20, completed: achieved * 20, achievedPerSecond: achieved },
      errors: 0,
      timeouts: 0,
      non2xx: 0,
      server: { meanBatchSize: 24.5, modelBusyFraction: 0.81 },
      met,
    });
    const runs = [run('thread', 1000, 40, 1000, true), run('thread', 4000, 250, 3100, false), run('http-thread', 1000, 60, 999, true)];
    const j: ServeJson = {
      model: 'tiny-1@abc',
      settings: { rate: 1000, duration: 20, connections: 50 },
      latencyMs: runs[0]!.latencyMs,
      requests: runs[0]!.requests,
      errors: 0,
      timeouts: 0,
      non2xx: 0,
      exitCode: 0,
      runs,
      target: { p95Ms: 100, rate: 4000, minAchievedFraction: 0.95 },
      passed: false,
    };
    const rows = serveRows(j);
    expect(rows.map((r) => r.metric)).toEqual(['thread at 1000 req/s: p95', 'thread at 4000 req/s: p95', 'http-thread at 1000 req/s: p95']);
    expect(rows[1]!.kiln!.median).toBe(250);
    expect(rows[1]!.ratio).toBeCloseTo(2.5, 12);
    expect(rows[1]!.note).toBe('achieved 3100 req/s (missed); errors 0, non-2xx 0, timeouts 0; 24.5 texts per model call, model busy 81%');
    expect(rowsFor('serve', j).verdict).toBe('p95 < 100 ms with ≥ 95% answered, no errors, at every rate of thread: missed');
  });

  it('memory: steps/s over rounds against PyTorch, RSS growth and live drift as single values', () => {
    const j: MemoryJson = {
      config: { steps: 2000, warmup: 1000, rounds: 4, threads: 1, python: '/usr/bin/python3' },
      kiln: { stepsPerSecond: [1600, 1400, 1500, 1700], rssAfterWarmupMiB: 240, rssGrowthMiB: 0.5, firstLoss: 0.28, lastLoss: 0.01, liveAfterWarmup: 4, liveDrift: 0 },
      pytorch: { stepsPerSecond: [900, 1000, 800, 1100], rssAfterWarmupMiB: 240, rssGrowthMiB: 0, firstLoss: 0.28, lastLoss: 0.01, torchVersion: '1.13.0a0' },
      pairedRatios: [1.6, 1.5, 1.8, 1.7],
      bounded: true,
      rssBoundMiB: 20,
    };
    const [speed, growth, drift] = memoryRows(j);
    expect(speed!.kiln).toEqual({ median: 1550, min: 1400, max: 1700, n: 4 });
    expect(speed!.reference).toEqual({ median: 950, min: 800, max: 1100, n: 4 });
    expect(speed!.ratio).toBeCloseTo(1550 / 950, 12);
    expect(speed!.paired).toBeCloseTo(1.65, 12); // (1.6 + 1.7) / 2
    expect(growth!.kiln!.median).toBe(0.5);
    expect(formatRange(growth!.kiln)).toBe('—');
    expect(drift!.kiln!.median).toBe(0);
    expect(drift!.reference).toBeNull();
    expect(memoryRows({ ...j, pytorch: null, pairedRatios: [] })[0]!.ratio).toBeNull();
  });

  it('skills-trie: sentences/s over repetitions against the target, build, load and size as single values', () => {
    const j: SkillsTrieJson = {
      config: { reps: 5, minSeconds: 2, passes: 3, dataRoot: '/data' },
      sentences: { count: 7974, train: 4800, dev: 3174, meanChars: 100.5 },
      trie: { labels: 83296, buildSeconds: 4.75, loadSeconds: 1.25, jsonBytes: 12_582_912 },
      matchesPerPass: 3000,
      sentencesPerSecond: [12_000, 9_000, 11_000, 14_000, 10_000],
      sentencesPerCpuSecond: [12_500, 12_000, 11_500, 14_000, 13_000],
      cpuShare: [0.96, 0.75, 0.95, 1, 0.77],
      target: { sentencesPerSecond: 10_000 },
      passed: true,
    };
    const [rate, build, load, size] = skillsTrieRows(j);
    expect(rate!.kiln).toEqual({ median: 11_000, min: 9_000, max: 14_000, n: 5 });
    expect(rate!.reference!.median).toBe(10_000);
    expect(rate!.ratio).toBeCloseTo(1.1, 12); // 11,000 / 10,000
    expect(renderRows([rate!], 'target').split('\n')[2]).toBe(
      '| tag SkillSpan train + dev (7974 sentences), 1 thread | sentences/s ↑ | 11000 | 9000–14000 | 10000 | — | 1.100 | — | 3 passes per repetition; CPU/wall 0.950; 12500 sentences per CPU-second |',
    );
    expect(build).toMatchObject({ metric: 'trie build (ESCO + Stack Overflow)', unit: 's ↓', reference: null, note: '83296 labels' });
    expect(build!.kiln!.median).toBe(4.75);
    expect(load!.kiln!.median).toBe(1.25);
    expect(size!.kiln!.median).toBe(12); // 12,582,912 bytes = 12 MiB
    expect(formatRange(size!.kiln)).toBe('—');
  });

  it('skills-serve: one p95 row per fixed-rate run against the target, then the best rate against 200 req/s', () => {
    const rows = skillsServeRows(SKILLS_SERVE);
    expect(rows.map((r) => r.metric)).toEqual([
      'step at 1 req/s (10 s): latency p95',
      'step at 2 req/s (10 s): latency p95',
      'step at 4 req/s (10 s): latency p95',
      'refine at 3 req/s (10 s): latency p95',
      'confirm at 3 req/s (30 s): latency p95',
      'highest rate: p95 < target, nothing dropped',
    ]);
    const failed = rows[2]!;
    expect(failed.kiln!.median).toBe(180);
    expect(failed.reference!.median).toBe(100);
    expect(failed.ratio).toBeCloseTo(1.8, 12); // 180 / 100
    expect(renderRows([failed], 'target').split('\n')[2]).toBe(
      '| step at 4 req/s (10 s): latency p95 | ms ↓ | 180 | — | 100 | — | 1.800 | — | fail; 3.50 req/s achieved; p50 120, p99 250; errors 0, non-2xx 0, timeouts 0; 12.5 sentences per model call |',
    );
    expect(rows[4]!.note).toBe('pass; 3 req/s achieved; p50 61.5, p99 99; errors 0, non-2xx 0, timeouts 0');
    const best = rows[5]!;
    expect(best.unit).toBe('req/s ↑');
    expect(best.kiln!.median).toBe(3);
    expect(best.reference!.median).toBe(200);
    expect(best.ratio).toBeCloseTo(0.015, 12); // 3 / 200
    // ceil(200 / 3) = 67 machines like this one.
    expect(best.note).toBe('58 SkillSpan dev postings, 48.3 sentences each on average; 67 × 2-core machines for 200 edits/s; exit 0');
    // No rate passed: no machine count, and a ratio of 0.
    const none = skillsServeRows({ ...SKILLS_SERVE, runs: [SKILLS_SERVE.runs[2]!], bestRate: 0, machinesNeeded: null }).at(-1)!;
    expect(none.ratio).toBe(0);
    expect(none.note).toContain('no rate passed: no count of machines for 200 edits/s');
  });
});

const SKILLS_SERVE: SkillsServeJson = {
  model: 'twotower@abc',
  skills: { dir: '/tmp/skills', builtHere: false, skills: 13896 },
  cores: 2,
  postings: { count: 58, meanChars: 4576.45, meanSentences: 48.3 },
  settings: { connections: 50, stepDuration: 10, confirmDuration: 30 },
  runs: [
    { phase: 'step', offered: 1, duration: 10, achievedPerSecond: 1, latencyMs: { p50: 30, p95: 40, p99: 45, mean: 31, max: 45 }, sent: 10, completed: 10, errors: 0, timeouts: 0, non2xx: 0, passed: true, server: null },
    { phase: 'step', offered: 2, duration: 10, achievedPerSecond: 2, latencyMs: { p50: 45, p95: 60, p99: 70, mean: 47, max: 70 }, sent: 20, completed: 20, errors: 0, timeouts: 0, non2xx: 0, passed: true, server: null },
    {
      phase: 'step', offered: 4, duration: 10, achievedPerSecond: 3.5, latencyMs: { p50: 120, p95: 180, p99: 250, mean: 130, max: 260 }, sent: 40, completed: 35, errors: 0, timeouts: 0, non2xx: 0, passed: false,
      server: { modelCalls: 28, meanSentencesPerCall: 12.5, meanModelCallMs: 40, meanRequestMs: 125 },
    },
    { phase: 'refine', offered: 3, duration: 10, achievedPerSecond: 3, latencyMs: { p50: 60, p95: 90, p99: 98, mean: 62, max: 98 }, sent: 30, completed: 30, errors: 0, timeouts: 0, non2xx: 0, passed: true, server: null },
    { phase: 'confirm', offered: 3, duration: 30, achievedPerSecond: 3, latencyMs: { p50: 61.5, p95: 95, p99: 99, mean: 63, max: 99 }, sent: 90, completed: 90, errors: 0, timeouts: 0, non2xx: 0, passed: true, server: null },
  ],
  bestRate: 3,
  machinesNeeded: 67,
  exitCode: 0,
  target: { p95Ms: 100, minAchievedFraction: 0.95, rate: 200, caseStudyRate: 200 },
  passed: false,
};

const MACHINE: Machine = {
  cpu: 'AMD EPYC',
  cores: 2,
  memoryGiB: 7.75,
  node: 'v20.20.2',
  libtorch: '1.13.0',
  pytorch: '1.13.0a0 on Python 3.11.2 (/usr/bin/python3)',
  onnxruntime: '1.30.0',
  commit: 'abc1234',
  date: '2026-12-03T10:00:00Z',
};

const MEMORY_OK: BenchOutcome = {
  name: 'memory',
  command: 'node --import tsx bench/memory.ts --json bench/results/memory.json',
  exitCode: 0,
  seconds: 17.4,
  json: {
    config: { steps: 300, warmup: 100, rounds: 2, threads: 1, python: null },
    kiln: { stepsPerSecond: [1000, 2000], rssAfterWarmupMiB: 240, rssGrowthMiB: 1.25, firstLoss: 0.28, lastLoss: 0.01, liveAfterWarmup: 4, liveDrift: 0 },
    pytorch: null,
    pairedRatios: [],
    bounded: true,
    rssBoundMiB: 20,
  } satisfies MemoryJson,
};

const TRAIN_FAILED: BenchOutcome = { name: 'train', command: 'node --import tsx bench/train.ts --json bench/results/train.json', exitCode: 3, seconds: 2.2, json: null };

describe('the generated section', () => {
  it('a failed benchmark is a failed row with its exit code, and its section has no numbers', () => {
    const summary = renderSummary([MEMORY_OK, TRAIN_FAILED]).split('\n');
    expect(summary[0]).toBe('| benchmark | result | wall s | targets |');
    expect(summary[2]).toBe('| memory | ok | 17 | memory bounded: yes |');
    expect(summary[3]).toBe('| train | **failed** (exit 3) | 2 |  |');
    expect(renderBench(TRAIN_FAILED)).toContain('Result: **failed** (exit 3). No numbers from this run.');
    // Exit 0 without its JSON is a failure too, and says why.
    const noJson: BenchOutcome = { ...TRAIN_FAILED, exitCode: 0, error: 'it wrote no bench/results/train.json' };
    expect(renderSummary([noJson])).toContain('| train | **failed** (exit 0): it wrote no bench/results/train.json |');
    const noStart: BenchOutcome = { ...TRAIN_FAILED, exitCode: null };
    expect(renderSummary([noStart])).toContain('**failed** (did not exit normally)');
  });

  it('skills-trie: the verdict is the median sentences/s against the target', () => {
    const json: SkillsTrieJson = {
      config: { reps: 2, minSeconds: 0.25, passes: 1, dataRoot: '/data' },
      sentences: { count: 7974, train: 4800, dev: 3174, meanChars: 100.5 },
      trie: { labels: 83296, buildSeconds: 9.5, loadSeconds: 2.5, jsonBytes: 12_600_849 },
      matchesPerPass: 3000,
      sentencesPerSecond: [4_000, 5_000],
      sentencesPerCpuSecond: [8_000, 9_000],
      cpuShare: [0.5, 0.55],
      target: { sentencesPerSecond: 10_000 },
      passed: false,
    };
    const missed: BenchOutcome = { name: 'skills-trie', command: 'node --import tsx bench/skills-trie.ts --json bench/results/skills-trie.json', exitCode: 0, seconds: 21.2, json };
    // Median (4,000 + 5,000) / 2 = 4,500.
    expect(renderSummary([missed]).split('\n')[2]).toBe('| skills-trie | ok | 21 | ≥ 10000 sentences/s on one core: missed (4500) |');
    const section = renderBench(missed);
    expect(section).toContain('| metric | unit | Kiln median | Kiln min–max | target | target min–max | Kiln / target | paired | notes |');
    expect(section).toContain('| tag SkillSpan train + dev (7974 sentences), 1 thread | sentences/s ↑ | 4500 | 4000–5000 | 10000 | — | 0.450 | — |');
    expect(section).toContain('| saved trie JSON | MiB ↓ | 12.0 | — | — | — | — | — | 12600849 bytes |');
    expect(section).toContain('Targets: ≥ 10000 sentences/s on one core: missed (4500).');
  });

  it('skills-serve: the verdict is the best rate against 200 req/s, with the machines the case study needs', () => {
    const outcome: BenchOutcome = { name: 'skills-serve', command: 'node --import tsx bench/skills-serve.ts --json bench/results/skills-serve.json --skills /tmp/skills', exitCode: 0, seconds: 160.4, json: SKILLS_SERVE, model: 'skills model `/tmp/skills` (--skills)' };
    expect(renderSummary([outcome]).split('\n')[2]).toBe(
      '| skills-serve | ok | 160 | POST /skills at ≥ 200 req/s with p95 < 100 ms, nothing dropped: missed (best 3 req/s; 67 × 2-core machines for 200 edits/s) |',
    );
    const section = renderBench(outcome);
    expect(section).toContain('Model: skills model `/tmp/skills` (--skills)');
    expect(section).toContain('| metric | unit | Kiln median | Kiln min–max | target | target min–max | Kiln / target | paired | notes |');
    expect(section).toContain('| confirm at 3 req/s (30 s): latency p95 | ms ↓ | 95 | — | 100 | — | 0.950 | — | pass; 3 req/s achieved;');
    expect(section).toContain('| highest rate: p95 < target, nothing dropped | req/s ↑ | 3 | — | 200 | — | 0.015 | — | 58 SkillSpan dev postings');
    expect(section).toContain('Targets: POST /skills at ≥ 200 req/s with p95 < 100 ms, nothing dropped: missed (best 3 req/s; 67 × 2-core machines for 200 edits/s).');
  });

  it('renders the machine, the command of each benchmark and its table', () => {
    const text = renderReport({ machine: MACHINE, command: 'npm run bench -- --quick', outcomes: [MEMORY_OK, TRAIN_FAILED] });
    expect(text.startsWith('## Latest `npm run bench`\n')).toBe(true);
    expect(text).toContain('| CPU | AMD EPYC |');
    expect(text).toContain('| memory | 7.8 GiB |');
    expect(text).toContain('| date | 2026-12-03T10:00:00Z |');
    expect(text).toContain('```sh\nnode --import tsx bench/memory.ts --json bench/results/memory.json\n```');
    // steps/s: median (1000 + 2000) / 2 = 1500, range 1000–2000, no PyTorch side.
    expect(text).toContain('| 300 tidy AdamW steps per round | steps/s ↑ | 1500 | 1000–2000 | — | — | — | — |  |');
    expect(text).toContain('| RSS growth after warm-up | MiB ↓ | 1.25 | — | — | — | — | — | bound < 20 MiB (Kiln) |');
    expect(text).toContain('| live tensor drift | handles ↓ | 0 | — |');
    expect(text).not.toContain('Smoke run');
    expect(text.endsWith('\n')).toBe(false);
    expect(renderReport({ machine: MACHINE, command: 'npm run bench -- --quick', outcomes: [], quick: true })).toContain('**Smoke run (`--quick`)**');
  });

  it('unreadable JSON from a benchmark that exited 0 is reported, not thrown', () => {
    const broken: BenchOutcome = { ...MEMORY_OK, json: { unexpected: true } };
    expect(renderBench(broken)).toMatch(/Result: \*\*failed\*\*: the JSON could not be read/);
    expect(renderSummary([broken])).toContain('| memory | ok | 17 |  |');
  });
});

describe('replaceGenerated', () => {
  const before = '# Benchmarks\n\nIntro.\n\n';
  const after = '\n\n## Engine (issue #2)\n\nHand-written | with pipes |\n\n```sh\nnpm run bench:engine\n```\n';
  const file = `${before}${BEGIN_MARKER}\nold table\nmore old\n${END_MARKER}${after}`;

  it('replaces only what is between the markers, keeping every other byte', () => {
    const out = replaceGenerated(file, 'new table\n\n');
    expect(out).toBe(`${before}${BEGIN_MARKER}\nnew table\n${END_MARKER}${after}`);
    expect(out.slice(0, before.length)).toBe(before);
    expect(out.slice(out.indexOf(END_MARKER))).toBe(`${END_MARKER}${after}`);
    // Idempotent: the same tables again give the same file.
    expect(replaceGenerated(out, 'new table')).toBe(out);
  });

  it('adds the markers after the title when absent, leaving the rest as it was', () => {
    const hand = '# Benchmarks\n\n## Engine\n\ntext\n';
    const out = replaceGenerated(hand, 'tables');
    expect(out).toBe(`# Benchmarks\n\n${BEGIN_MARKER}\ntables\n${END_MARKER}\n\n## Engine\n\ntext\n`);
    // Taking the inserted block out gives the original back, byte for byte.
    expect(out.replace(`\n${BEGIN_MARKER}\ntables\n${END_MARKER}\n`, '')).toBe(hand);
    // The next run replaces between the markers it added.
    expect(replaceGenerated(out, 'tables 2')).toBe(`# Benchmarks\n\n${BEGIN_MARKER}\ntables 2\n${END_MARKER}\n\n## Engine\n\ntext\n`);
  });

  it('without a title, puts the block at the top; CRLF text outside is untouched', () => {
    expect(replaceGenerated('plain\r\n', 'x')).toBe(`${BEGIN_MARKER}\nx\n${END_MARKER}\n\nplain\r\n`);
    expect(replaceGenerated('# T\r\n\r\nrest\r\n', 'x')).toBe(`# T\r\n\n${BEGIN_MARKER}\nx\n${END_MARKER}\n\r\nrest\r\n`);
  });

  it('refuses broken markers instead of guessing', () => {
    expect(() => replaceGenerated(`# B\n${BEGIN_MARKER}\nno end\n`, 'x')).toThrow(/no <!-- bench:end -->/);
    expect(() => replaceGenerated(`# B\n${END_MARKER}\n${BEGIN_MARKER}\n`, 'x')).toThrow(/before/);
    expect(() => replaceGenerated(`${BEGIN_MARKER}\n${END_MARKER}\n${BEGIN_MARKER}\n${END_MARKER}\n`, 'x')).toThrow(/more than one/);
  });
});

describe('before and after', () => {
  const stat = (median: number): { median: number; min: number; max: number; n: number } => ({ median, min: median, max: median, n: 1 });
  const row = (metric: string, unit: string, kiln: number, reference: number | null): Row => ({
    metric,
    unit,
    kiln: stat(kiln),
    reference: reference === null ? null : stat(reference),
    ratio: reference === null ? null : kiln / reference,
  });

  it('judges each row by its arrow, within the tolerance, and keeps rows only one run has', () => {
    const before = [row('step', 'ms/step ↓', 100, null), row('throughput', 'texts/s ↑', 1000, null), row('rss', 'MiB ↓', 700, null), row('gone', 'ms ↓', 5, null)];
    const after = [row('step', 'ms/step ↓', 110, null), row('throughput', 'texts/s ↑', 1200, null), row('rss', 'MiB ↓', 720, null), row('new', 'ms ↓', 3, null)];
    const changes = compareRows(before, after);
    expect(changes.map((c) => [c.metric, c.verdict])).toEqual([
      ['step', 'worse'], // 110 / 100: 10% slower, beyond 5%
      ['throughput', 'better'], // 1,200 / 1,000: 20% more
      ['rss', 'level'], // 720 / 700 = 1.029: within 5%
      ['new', 'only after'],
      ['gone', 'only before'],
    ]);
    expect(changes[0]!.change).toBeCloseTo(1.1, 12);
    // A wider tolerance calls the 10% level.
    expect(compareRows(before, after, { tolerance: 0.15 })[0]!.verdict).toBe('level');
  });

  it('does not divide by a median that is not positive: an RSS growth is not judged, an unchanged zero is level', () => {
    const changes = compareRows([row('RSS growth', 'MiB ↓', -8.6, null), row('live drift', 'handles ↓', 0, null)], [row('RSS growth', 'MiB ↓', 0.5, null), row('live drift', 'handles ↓', 0, null)]);
    expect(changes.map((c) => [c.change, c.verdict])).toEqual([
      [null, '—'],
      [null, 'level'],
    ]);
  });

  it('byReference also reads Kiln / PyTorch: drift that moved both sides is level, disagreement is mixed', () => {
    // The machine got 20% slower between the runs: Kiln 100 → 120 ms, PyTorch 100 → 120 ms.
    const before = [row('fp32 step', 'ms/step ↓', 100, 100)];
    const after = [row('fp32 step', 'ms/step ↓', 120, 120)];
    expect(compareRows(before, after)[0]!.verdict).toBe('worse');
    const [c] = compareRows(before, after, { byReference: true });
    expect(c!.verdict).toBe('level'); // raw worse, against PyTorch level
    expect(c!.beforeRatio).toBe(1);
    expect(c!.afterRatio).toBe(1);
    // Kiln slower while PyTorch held: raw 1.08 and ratio 1.08 → worse.
    expect(compareRows(before, [row('fp32 step', 'ms/step ↓', 108, 100)], { byReference: true })[0]!.verdict).toBe('worse');
    // Kiln 10% slower while PyTorch got 60% slower: raw worse, ratio better (1.10 / 1.60) → mixed.
    expect(compareRows(before, [row('fp32 step', 'ms/step ↓', 110, 160)], { byReference: true })[0]!.verdict).toBe('mixed');
    // A row of the reference itself (PyTorch at another thread count) is shown, not judged.
    const pytorchRow = { ...row('pytorch eager fp32 ×2', 'texts/s ↑', 700, 3300), ofReference: true };
    expect(compareRows([{ ...pytorchRow, kiln: stat(900) }], [pytorchRow], { byReference: true })[0]!.verdict).toBe('reference');
    // Both readings better: 80 ms against PyTorch's 100 → better.
    expect(compareRows(before, [row('fp32 step', 'ms/step ↓', 80, 100)], { byReference: true })[0]!.verdict).toBe('better');
  });

  it('byReference reads the paired ratios when both runs paired their rounds, not the ratios of medians', () => {
    // Medians say Kiln went from 1.00× to 1.30× PyTorch's time (worse), but each run's
    // back-to-back rounds say 0.95× before and 0.96× after: the medians came from rounds the
    // machine slowed unevenly. Raw 130 / 100 is worse; the paired reading is level → level.
    const before = [{ ...row('a @ b 4x4', 'µs ↓', 100, 100), paired: 0.95 }];
    const after = [{ ...row('a @ b 4x4', 'µs ↓', 130, 100), paired: 0.96 }];
    const [c] = compareRows(before, after, { byReference: true });
    expect(c!.pairedRatios).toBe(true);
    expect([c!.beforeRatio, c!.afterRatio]).toEqual([0.95, 0.96]);
    expect(c!.verdict).toBe('level');
    // Without the paired ratios the same medians read worse on both counts.
    const [m] = compareRows([row('a @ b 4x4', 'µs ↓', 100, 100)], [row('a @ b 4x4', 'µs ↓', 130, 100)], { byReference: true });
    expect(m!.pairedRatios).toBe(false);
    expect(m!.verdict).toBe('worse');
    // Paired in only one run: the ratios of medians, so like is compared with like.
    const [one] = compareRows([row('a @ b 4x4', 'µs ↓', 100, 100)], after, { byReference: true });
    expect(one!.pairedRatios).toBe(false);
    expect(one!.afterRatio).toBeCloseTo(1.3, 12);
    // A paired reading that moved beyond the tolerance in the raw change's direction is worse.
    expect(compareRows(before, [{ ...row('a @ b 4x4', 'µs ↓', 130, 100), paired: 1.2 }], { byReference: true })[0]!.verdict).toBe('worse');
    // The table names which ratio it shows.
    expect(renderComparison([c!], 'PyTorch')).toContain('| 0.950 (paired) | 0.960 (paired) | level |');
  });

  it('infer: PyTorch at its best thread count is the reference; its other rows are marked as the reference\'s', () => {
    const j: InferJson = {
      run: 'runs/x',
      parameters: 10,
      texts: 2048,
      rounds: 3,
      pytorchReference: 'pytorch eager fp32 ×1',
      results: [
        { engine: 'onnxruntime fp32 ×2', threads: 2, medianMs: 280, textsPerSecond: 7300, speedupVsPytorch: 2.2 },
        { engine: 'pytorch eager fp32 ×1', threads: 1, medianMs: 610, textsPerSecond: 3350, speedupVsPytorch: 1 },
        { engine: 'pytorch eager fp32 ×2', threads: 2, medianMs: 2800, textsPerSecond: 730, speedupVsPytorch: 0.22 },
      ],
    };
    const rows = inferRows(j);
    expect(rows.map((r) => [r.metric, r.ofReference === true])).toEqual([
      ['onnxruntime fp32 ×2', false],
      ['pytorch eager fp32 ×2', true],
    ]);
    expect(rows[0]!.ratio).toBeCloseTo(7300 / 3350, 12);
  });

  it('renders one line per row with both ratios', () => {
    const changes = compareRows([row('step', 'ms/step ↓', 400, 320)], [row('step', 'ms/step ↓', 316, 310)], { byReference: true });
    const lines = renderComparison(changes, 'PyTorch').split('\n');
    expect(lines[0]).toBe('| metric | unit | before | after | after / before | before / PyTorch | after / PyTorch | verdict |');
    // 316 / 400 = 0.790; 400 / 320 = 1.250; 316 / 310 = 1.019; (1.019 / 1.25 = 0.82: 18% better)
    expect(lines[2]).toBe('| step | ms/step ↓ | 400 | 316 | 0.790 | 1.250 | 1.019 | better |');
  });
});

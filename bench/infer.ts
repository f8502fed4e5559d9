/**
 * `npm run bench:infer`: embedding throughput of one trained two-tower model in three
 * engines, on the same machine, in one run, over the same batches:
 *
 *   onnxruntime      the `kiln export` graph (fp32, and int8 unless --no-int8), onnxruntime-node;
 *                    in standard operators (the default export) and, with --fused, also in
 *                    onnxruntime's fused operators (`--operators onnxruntime`, "fused ops")
 *   kiln eager       Kiln's own forward pass on libtorch (fp32, no autograd, eval mode)
 *   pytorch eager    Python PyTorch 1.13 (bench/infer_torch.py: the same BERT in plain torch,
 *                    eval mode, inference_mode, fp32)
 *
 * Inputs: `--texts` real vacancy titles from JobBERT's titles.csv (spread over the file), on
 * the query side (max length from the run's model.json), tokenised once, sorted by length and
 * cut into batches of `--batch`, padded to each batch's longest text; every engine runs these
 * exact padded batches. Tokenisation is outside the timing for all three.
 *
 * Method: every engine runs at each intra-op thread count of `--threads` (default 1 and all
 * cores: libtorch's eager matmuls on OpenBLAS are sometimes faster on one thread, so PyTorch
 * is compared at its best). One untimed warm-up pass each; then `--rounds` rounds, each
 * timing one full pass per (engine, threads) in a rotating order, with a pause between them
 * (OpenBLAS and onnxruntime threads spin-wait briefly after a call). Reported: the median
 * texts/s of each, and its speed-up over PyTorch eager at PyTorch's best thread count: the
 * median over rounds of the per-round ratio. Before timing, the first text's embedding from
 * every engine must agree with PyTorch's (max |Δ| ≤ 1e-4 for fp32 engines, cosine ≥ 0.99 for int8).
 *
 * Student vs teacher (--teacher DIR, a two-tower run; the distillation issue): the teacher is
 * exported the same way (fp32, and int8 unless --no-int8) and its onnxruntime sessions embed
 * the same texts, tokenised with the teacher's tokenizer and query max length (its model.json):
 * the student's batches when that gives the same token ids, else its own, sorted and cut the
 * same way. They are timed in the same rotating rounds at the same thread counts (the teacher
 * has no Kiln or PyTorch eager rows). Before timing, the teacher graphs' first batch must
 * agree with the teacher's Kiln eager forward (the same tolerances). Reported beside the table:
 * texts/s of teacher and student, fp32 and int8, each at its best thread count; both parameter
 * counts and the reduction 1 − student/teacher; the speed-ups over the fp32 teacher (median
 * over rounds of the per-round ratio, as above).
 *
 * Targets: (issue 4) onnxruntime (best thread count) ≥ 2× PyTorch eager (best thread count),
 * reported for the fp32 graph and the int8 graph separately; (distillation, with --teacher)
 * the int8 student in onnxruntime ≥ 5× the fp32 teacher in onnxruntime, each at its best
 * thread count.
 * Options: --run DIR (default: the newest runs/twotower-* with a model), --teacher DIR (both
 * take a run directory or `runs/<name>` for the newest completed run of that name, as configs
 * do), --texts 4096 --batch 64 --rounds 5 --threads 1,2 --no-int8 --fused --json FILE --strict (exit 1
 * when a target is missed; with --teacher it needs the int8 graphs). $KILN_PYTHON picks the
 * interpreter (default /usr/bin/python3, Debian's, with torch).
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync, mkdirSync } from 'node:fs';
import { availableParallelism, cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { parse as parseCsv } from 'csv-parse/sync';
import * as ort from 'onnxruntime-node';

import { fromTypedArray, noGrad, setNumThreads, tidy, type Tensor } from '../src/engine/index.js';
import { padBatch, type PaddedBatch } from '../src/data/batch.js';
import { WordPieceTokenizer } from '../src/data/tokenizer.js';
import { exportModel, loadExportableRun, DEFAULT_OPERATORS, DEFAULT_OPSET, type ExportableModel, type ExportSource } from '../src/export/export.js';
import type { GraphOperators } from '../src/export/bert-graph.js';
import type { TwoTowerModel } from '../src/models/index.js';
import { RunDirectory } from '../src/track/run-dir.js';
import { WorkerProcess } from './worker.js';

const HERE = dirname(fileURLToPath(import.meta.url));
const REPO = join(HERE, '..');

const { values: args } = parseArgs({
  allowNegative: true, // --no-int8
  options: {
    run: { type: 'string' },
    teacher: { type: 'string' },
    texts: { type: 'string', default: '4096' },
    batch: { type: 'string', default: '64' },
    rounds: { type: 'string', default: '5' },
    threads: { type: 'string', default: [...new Set([1, availableParallelism()])].join(',') },
    int8: { type: 'boolean', default: true },
    // Also time the graphs in onnxruntime's fused operators (export --operators onnxruntime), beside the
    // default. Off by default: with their four sessions alive in the process the default graphs' 2-thread
    // passes ran 12% (fp32) to 34% (int8) slower (BENCHMARKS.md, "No regression").
    fused: { type: 'boolean', default: false },
    json: { type: 'string', default: join(REPO, 'bench', 'results', 'infer.json') },
    strict: { type: 'boolean', default: false },
    'data-root': { type: 'string' },
  },
});

const TEXTS = Number(args.texts);
const BATCH = Number(args.batch);
const ROUNDS = Number(args.rounds);
const THREAD_COUNTS = args.threads!.split(',').map(Number);
if (THREAD_COUNTS.some((t) => !Number.isInteger(t) || t < 1)) throw new Error(`--threads ${args.threads}: expected positive integers separated by commas`);
const DATA_ROOT = args['data-root'] ?? process.env.KILN_DATA ?? join(REPO, '..', 'shared', 'datasets');
const PYTHON = process.env.KILN_PYTHON ?? '/usr/bin/python3';
if (args.strict && args.teacher !== undefined && !args.int8) throw new Error('--strict --teacher checks the int8 student against the fp32 teacher: drop --no-int8');
/** The distillation target: int8 student texts/s ≥ this × fp32 teacher texts/s, both in onnxruntime. */
const STUDENT_TARGET = 5;

function newestRun(): string {
  const root = join(REPO, 'runs');
  const runs = existsSync(root) ? readdirSync(root).filter((d) => d.startsWith('twotower-') && existsSync(join(root, d, 'model.safetensors'))) : [];
  if (runs.length === 0) throw new Error('no trained run: pass --run runs/<id> (train one with `npx kiln train --config configs/twotower.yaml`)');
  return join(root, runs.sort((a, b) => statSync(join(root, b)).mtimeMs - statSync(join(root, a)).mtimeMs)[0]!);
}

/** A run directory as given, or `runs/<name>` for the newest completed run of that name (as configs resolve it). */
function resolveRun(reference: string): string {
  return RunDirectory.resolveReference(reference) ?? resolve(reference);
}

function titles(count: number): string[] {
  const rows = parseCsv(readFileSync(join(DATA_ROOT, 'jobbert-titles', 'titles.csv')), { columns: true, skip_empty_lines: true }) as Array<Record<string, string>>;
  const all = rows.map((r) => r['vacancyTitle'] ?? '').filter((t) => t.trim() !== '');
  const step = all.length / count;
  return Array.from({ length: Math.min(count, all.length) }, (_, i) => all[Math.floor(i * step)]!);
}

const median = (xs: readonly number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};

/** `texts` on the query side of `model`, tokenised, sorted by length (then position) and cut into batches of --batch, each padded to its longest text. */
function queryBatches(texts: readonly string[], model: TwoTowerModel, tokenizer: WordPieceTokenizer, maxLength: number): { ids: Int32Array[]; batches: PaddedBatch[] } {
  const ids = texts.map((t) => tokenizer.encode(model.prompt('title', t), maxLength));
  const order = ids.map((_, i) => i).sort((a, b) => ids[a]!.length - ids[b]!.length || a - b);
  const batches: PaddedBatch[] = [];
  for (let s = 0; s < order.length; s += BATCH) batches.push(padBatch(order.slice(s, s + BATCH).map((r) => ids[r]!), { padId: tokenizer.padId, padTo: 'longest' }));
  return { ids, batches };
}

const realTokens = (batches: readonly PaddedBatch[]): number => batches.reduce((n, b) => n + b.attentionMask.reduce((a, v) => a + v, 0), 0);
const paddedTokens = (batches: readonly PaddedBatch[]): number => batches.reduce((n, b) => n + b.batchSize * b.seqLen, 0);

interface Engine {
  name: string;
  /** The engine's family ('onnxruntime fp32', 'pytorch eager fp32', …), across thread counts. */
  family: string;
  threads: number;
  /** One timed pass over every batch, in ns. */
  pass(): Promise<number>;
  /** The first batch's embeddings, row-major. */
  first(): Promise<Float32Array>;
}

/**
 * onnxruntime sessions over `batches` of a run's exported query graph (fp32, and int8 unless
 * --no-int8, exported into `work`), one per thread count. The teacher's families are prefixed
 * 'teacher ' ('teacher onnxruntime fp32'); the student's are as in the table.
 */
/** How a row names the graph that is not the default export. */
const OPERATOR_SUFFIX: Record<GraphOperators, string> = { onnx: ' standard ops', onnxruntime: ' fused ops' };

async function onnxEngines(exportable: ExportableModel, source: ExportSource, batches: readonly PaddedBatch[], work: string, role: 'student' | 'teacher'): Promise<Engine[]> {
  const engines: Engine[] = [];
  const quantizations: Array<'none' | 'int8'> = args.int8 ? ['none', 'int8'] : ['none'];
  const otherOperators: GraphOperators = DEFAULT_OPERATORS === 'onnx' ? 'onnxruntime' : 'onnx';
  const operatorSets: GraphOperators[] = role === 'student' && args.fused ? [DEFAULT_OPERATORS, otherOperators] : [DEFAULT_OPERATORS];
  const variants = quantizations.flatMap((quantize) => operatorSets.map((operators) => ({ quantize, operators })));
  for (const { quantize, operators } of variants) {
    const dir = join(work, role, quantize, operators);
    const card = exportModel(exportable, source, dir, { quantize, opset: DEFAULT_OPSET, operators });
    const graph = card.kind === 'two-tower' ? card.graphs.query : 'model.onnx';
    const feeds = batches.map((b) => ({
      input_ids: new ort.Tensor('int64', BigInt64Array.from(b.inputIds, (v) => BigInt(v)), [b.batchSize, b.seqLen]),
      attention_mask: new ort.Tensor('int64', BigInt64Array.from(b.attentionMask, (v) => BigInt(v)), [b.batchSize, b.seqLen]),
    }));
    for (const threads of THREAD_COUNTS) {
      const session = await ort.InferenceSession.create(join(dir, graph), { intraOpNumThreads: threads, interOpNumThreads: 1, graphOptimizationLevel: 'all', executionMode: 'sequential' });
      const family = `${role === 'teacher' ? 'teacher ' : ''}onnxruntime ${quantize === 'none' ? 'fp32' : 'int8'}${operators === DEFAULT_OPERATORS ? '' : OPERATOR_SUFFIX[operators]}`;
      engines.push({
        name: `${family} ×${threads}`,
        family,
        threads,
        async pass() {
          const t0 = process.hrtime.bigint();
          for (const f of feeds) {
            const out = await session.run(f);
            out['embedding']!.dispose();
          }
          return Number(process.hrtime.bigint() - t0);
        },
        async first() {
          const out = await session.run(feeds[0]!);
          return (out['embedding']!.data as Float32Array).slice();
        },
      });
    }
  }
  return engines;
}

/** The teacher (--teacher): its model, export source and own tokenisation of the benchmark texts. */
interface Teacher {
  model: TwoTowerModel;
  exportable: ExportableModel;
  source: ExportSource;
  maxLength: number;
  batches: PaddedBatch[];
  /** Whether its tokenizer and max length give the student's token ids for every text (then it runs the student's batches). */
  sameTokens: boolean;
}

async function main(): Promise<void> {
  const runPath = args.run === undefined ? newestRun() : resolveRun(args.run);
  const { exportable, source } = loadExportableRun(runPath);
  if (exportable.kind !== 'two-tower') throw new Error(`${runPath}: bench:infer measures two-tower models`);
  const model = exportable.model;
  const config = model.config;
  if (config.towers !== 'shared' || config.pooling !== 'mean' || config.head.type !== 'cosine') {
    throw new Error(`${runPath}: the PyTorch reference implements shared towers, mean pooling and the cosine head (this run has ${config.towers}, ${config.pooling}, ${config.head.type})`);
  }
  const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(source.runPath, 'tokenizer.json'));

  // The same padded batches for every engine.
  const texts = titles(TEXTS);
  const { ids, batches } = queryBatches(texts, model, tokenizer, exportable.maxLength.query);
  const tokens = realTokens(batches);
  const padded = paddedTokens(batches);

  // The teacher: the same texts through its own tokenizer and max length; the student's batches when the ids agree.
  let teacher: Teacher | undefined;
  if (args.teacher !== undefined) {
    const teacherPath = resolveRun(args.teacher);
    const loaded = loadExportableRun(teacherPath);
    if (loaded.exportable.kind !== 'two-tower') {
      loaded.exportable.model.dispose();
      throw new Error(`${teacherPath}: --teacher takes a two-tower run (this one is a ${loaded.exportable.kind})`);
    }
    const teacherModel = loaded.exportable.model;
    const maxLength = loaded.exportable.maxLength.query;
    const own = queryBatches(texts, teacherModel, WordPieceTokenizer.fromTokenizerJson(join(loaded.source.runPath, 'tokenizer.json')), maxLength);
    const sameTokens = own.ids.every((row, i) => row.length === ids[i]!.length && row.every((v, j) => v === ids[i]![j]));
    teacher = { model: teacherModel, exportable: loaded.exportable, source: loaded.source, maxLength, batches: sameTokens ? batches : own.batches, sameTokens };
  }

  const work = mkdtempSync(join(tmpdir(), 'kiln-bench-infer-'));
  const engines: Engine[] = [];
  const teacherEngines: Engine[] = [];
  try {
    // onnxruntime: the exported graph(s), the student's and the teacher's.
    engines.push(...(await onnxEngines(exportable, source, batches, work, 'student')));
    if (teacher !== undefined) teacherEngines.push(...(await onnxEngines(teacher.exportable, teacher.source, teacher.batches, work, 'teacher')));

    // Kiln eager.
    model.eval();
    const tensors = batches.map((b) => tidy(() => ({ inputIds: fromTypedArray(b.inputIds, { shape: [b.batchSize, b.seqLen] }).to('int64'), attentionMask: fromTypedArray(b.attentionMask, { shape: [b.batchSize, b.seqLen] }).to('int64') })));
    const kilnEmbed = (i: number): Tensor => model.embed('query', tensors[i]!);
    for (const threads of THREAD_COUNTS) engines.push({
      name: `kiln eager fp32 ×${threads}`,
      family: 'kiln eager fp32',
      threads,
      async pass() {
        setNumThreads(threads);
        const t0 = process.hrtime.bigint();
        noGrad(() => {
          for (let i = 0; i < tensors.length; i++) tidy(() => void kilnEmbed(i).contiguous().toTypedArray());
        });
        return Number(process.hrtime.bigint() - t0);
      },
      async first() {
        return tidy(() => noGrad(() => (kilnEmbed(0).contiguous().toTypedArray<'float32'>() as Float32Array).slice()));
      },
    });

    // PyTorch eager, in its own process.
    const batchFile = join(work, 'batches.json');
    writeFileSync(batchFile, JSON.stringify(batches.map((b) => ({ rows: b.batchSize, cols: b.seqLen, ids: Array.from(b.inputIds), mask: Array.from(b.attentionMask) }))));
    const weights = join(work, 'weights.safetensors');
    const { saveSafetensors } = await import('../src/engine/index.js');
    saveSafetensors(weights, model.stateDict());
    const torchWorker = new WorkerProcess('pytorch', PYTHON, [join(HERE, 'infer_torch.py'), '--serve'], 'set KILN_PYTHON to a Python with torch');
    const setup = await torchWorker.request<{ params: number; first: number[] }>({ cmd: 'setup', config: config.encoder, weights, prefix: 'encoder.', batches: batchFile, threads: THREAD_COUNTS[0] });
    const torchInfo = await torchWorker.request<{ torchVersion: string; python: string; numThreads: number }>({ cmd: 'info' });
    for (const threads of THREAD_COUNTS) engines.push({
      name: `pytorch eager fp32 ×${threads}`,
      family: 'pytorch eager fp32',
      threads,
      async pass() {
        return (await torchWorker.request<{ ns: number }>({ cmd: 'run', threads })).ns;
      },
      async first() {
        return Float32Array.from(setup.first); // its first row only
      },
    });

    // Agreement on the first batch (row 0 against PyTorch; every row of the fp32 engines against Kiln).
    const width = config.encoder.hiddenSize;
    const reference = Float32Array.from(setup.first);
    for (const engine of engines) {
      const row = (await engine.first()).subarray(0, width);
      let maxAbs = 0;
      let dot = 0;
      for (let j = 0; j < width; j++) {
        maxAbs = Math.max(maxAbs, Math.abs(row[j]! - reference[j]!));
        dot += row[j]! * reference[j]!;
      }
      const ok = engine.name.includes('int8') ? dot >= 0.99 : maxAbs <= 1e-4;
      process.stderr.write(`agreement with pytorch on the first text: ${engine.name}: max |Δ| ${maxAbs.toExponential(2)}, cosine ${dot.toFixed(6)} ${ok ? 'ok' : 'MISMATCH'}\n`);
      if (!ok) throw new Error(`${engine.name} disagrees with PyTorch eager on the first batch`);
    }
    // The teacher's graphs against its Kiln eager forward, every row of its first batch.
    if (teacher !== undefined) {
      const t = teacher;
      const b = t.batches[0]!;
      t.model.eval();
      const expected = tidy(() =>
        noGrad(() => {
          const batch = { inputIds: fromTypedArray(b.inputIds, { shape: [b.batchSize, b.seqLen] }).to('int64'), attentionMask: fromTypedArray(b.attentionMask, { shape: [b.batchSize, b.seqLen] }).to('int64') };
          return (t.model.embed('query', batch).contiguous().toTypedArray<'float32'>() as Float32Array).slice();
        }),
      );
      const teacherWidth = t.model.config.encoder.hiddenSize;
      for (const engine of teacherEngines) {
        const actual = await engine.first();
        let maxAbs = 0;
        let minCosine = 1;
        for (let i = 0; i < b.batchSize; i++) {
          let dot = 0;
          let ne = 0;
          let na = 0;
          for (let j = i * teacherWidth; j < (i + 1) * teacherWidth; j++) {
            maxAbs = Math.max(maxAbs, Math.abs(actual[j]! - expected[j]!));
            dot += actual[j]! * expected[j]!;
            ne += expected[j]! * expected[j]!;
            na += actual[j]! * actual[j]!;
          }
          minCosine = Math.min(minCosine, ne === 0 && na === 0 ? 1 : dot / Math.sqrt(ne * na));
        }
        const ok = engine.name.includes('int8') ? minCosine >= 0.99 : maxAbs <= 1e-4;
        process.stderr.write(`agreement with the teacher's kiln eager on its first batch: ${engine.name}: max |Δ| ${maxAbs.toExponential(2)}, min cosine ${minCosine.toFixed(6)} ${ok ? 'ok' : 'MISMATCH'}\n`);
        if (!ok) throw new Error(`${engine.name} disagrees with the teacher's Kiln eager forward on its first batch`);
      }
    }

    // Warm-up, then rotating rounds (the teacher's sessions, if any, rotate with the rest).
    const timed = [...engines, ...teacherEngines];
    for (const engine of timed) {
      await engine.pass();
      await sleep(150);
    }
    const samples = new Map(timed.map((e) => [e.name, [] as number[]]));
    for (let round = 0; round < ROUNDS; round++) {
      for (let k = 0; k < timed.length; k++) {
        const engine = timed[(round + k) % timed.length]!;
        samples.get(engine.name)!.push(await engine.pass());
        await sleep(150);
      }
      process.stderr.write(`round ${round + 1}/${ROUNDS}: ${timed.map((e) => `${e.name} ${(texts.length / (samples.get(e.name)!.at(-1)! / 1e9)).toFixed(0)}/s`).join(', ')}\n`);
    }
    await torchWorker.close();

    // PyTorch at its best thread count is the reference.
    const bestOf = (family: string): Engine => timed.filter((e) => e.family === family).sort((a, b) => median(samples.get(a.name)!) - median(samples.get(b.name)!))[0]!;
    const torchBest = bestOf('pytorch eager fp32');
    const torchSamples = samples.get(torchBest.name)!;
    const results = engines.map((e) => {
      const ns = samples.get(e.name)!;
      return {
        engine: e.name,
        threads: e.threads,
        medianMs: median(ns) / 1e6,
        textsPerSecond: texts.length / (median(ns) / 1e9),
        speedupVsPytorch: median(ns.map((v, i) => torchSamples[i]! / v)),
      };
    });
    const targets = engines
      .map((e) => e.family)
      // The targets are on the graphs `kiln export` writes by default.
      .filter((f, i, all) => f.startsWith('onnxruntime') && !f.endsWith(' ops') && all.indexOf(f) === i)
      .map((family) => {
        const best = results.find((r) => r.engine === bestOf(family).name)!;
        return { family, engine: best.engine, speedup: best.speedupVsPytorch, passed: best.speedupVsPytorch >= 2 };
      });
    // Student vs teacher in onnxruntime: each family at its best thread count, speed-ups over the fp32 teacher per round.
    const studentVsTeacher = (t: Teacher) => {
      const teacherFp32 = bestOf('teacher onnxruntime fp32');
      const teacherSamples = samples.get(teacherFp32.name)!;
      const best = (role: 'teacher' | 'student', precision: 'fp32' | 'int8') => {
        const family = `${role === 'teacher' ? 'teacher ' : ''}onnxruntime ${precision}`;
        if (!timed.some((e) => e.family === family)) return undefined; // --no-int8
        const e = bestOf(family);
        const ns = samples.get(e.name)!;
        return { model: role, precision, engine: e.name, threads: e.threads, medianMs: median(ns) / 1e6, textsPerSecond: texts.length / (median(ns) / 1e9), speedupVsTeacherFp32: median(ns.map((v, i) => teacherSamples[i]! / v)) };
      };
      const studentFp32 = best('student', 'fp32')!;
      const studentInt8 = best('student', 'int8');
      const rows = [best('teacher', 'fp32'), best('teacher', 'int8'), studentFp32, studentInt8].filter((r) => r !== undefined);
      const parameters = { teacher: t.model.parameterCount(), student: model.parameterCount() };
      return {
        teacher: t.source.runId,
        teacherPath: t.source.runPath,
        /** The teacher the student's summary.json names (distill runs), for comparison with --teacher. */
        recordedTeacher: source.distillation?.teacher ?? null,
        teacherMaxLength: t.maxLength,
        sameTokens: t.sameTokens,
        teacherBatches: t.batches.length,
        teacherRealTokens: realTokens(t.batches),
        teacherPaddedTokens: paddedTokens(t.batches),
        parameters: { ...parameters, reduction: 1 - parameters.student / parameters.teacher },
        results: rows,
        teacherResults: teacherEngines.map((e) => {
          const ns = samples.get(e.name)!;
          return { engine: e.name, threads: e.threads, medianMs: median(ns) / 1e6, textsPerSecond: texts.length / (median(ns) / 1e9) };
        }),
        speedupVsTeacherFp32: { studentFp32: studentFp32.speedupVsTeacherFp32, studentInt8: studentInt8?.speedupVsTeacherFp32 ?? null },
        target: {
          description: `onnxruntime int8 student (best threads) ≥ ${STUDENT_TARGET}× onnxruntime fp32 teacher (best threads)`,
          student: studentInt8?.engine ?? null,
          teacher: teacherFp32.name,
          speedup: studentInt8?.speedupVsTeacherFp32 ?? null,
          /** Null with --no-int8: not measured. */
          passed: studentInt8 === undefined ? null : studentInt8.speedupVsTeacherFp32 >= STUDENT_TARGET,
        },
      };
    };
    const versus = teacher === undefined ? undefined : studentVsTeacher(teacher);
    const passed = targets.every((t) => t.passed) && versus?.target.passed !== false;
    const report = {
      machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: availableParallelism(), node: process.version, onnxruntime: ort.env.versions.node, torch: torchInfo.torchVersion, python: torchInfo.python },
      command: `npm run bench:infer -- ${process.argv.slice(2).join(' ')}`.trim(),
      run: source.runId,
      parameters: model.parameterCount(),
      texts: texts.length,
      batches: batches.length,
      batchSize: BATCH,
      threads: THREAD_COUNTS,
      pytorchReference: torchBest.name,
      realTokens: tokens,
      paddedTokens: padded,
      rounds: ROUNDS,
      results,
      target: { description: 'onnxruntime (best threads) ≥ 2× pytorch eager (best threads)', pytorch: torchBest.name, results: targets },
      ...(versus === undefined ? {} : { studentVsTeacher: versus }),
    };
    mkdirSync(dirname(args.json!), { recursive: true });
    writeFileSync(args.json!, `${JSON.stringify(report, null, 2)}\n`);
    process.stdout.write(`\n${texts.length} JobBERT titles, ${batches.length} batches of ≤${BATCH}, threads ${THREAD_COUNTS.join(' and ')}, ${tokens} tokens (${padded} padded), model ${source.runId} (${model.parameterCount().toLocaleString('en-US')} parameters)\n\n`);
    process.stdout.write(`| engine ×threads | median pass (ms) | texts/s | × ${torchBest.name} |\n|---|---:|---:|---:|\n`);
    for (const r of results) process.stdout.write(`| ${r.engine} | ${r.medianMs.toFixed(1)} | ${r.textsPerSecond.toFixed(0)} | ${r.speedupVsPytorch.toFixed(2)} |\n`);
    process.stdout.write('\ntarget onnxruntime ≥ 2× PyTorch eager, each at its best thread count:\n');
    for (const t of targets) process.stdout.write(`  ${t.family}: ${t.passed ? 'met' : 'MISSED'} (${t.engine}: ${t.speedup.toFixed(2)}× ${torchBest.name})\n`);
    if (versus !== undefined) {
      const p = versus.parameters;
      process.stdout.write(`\nstudent vs teacher (onnxruntime), each at its best thread count: teacher ${versus.teacher}, student ${source.runId}\n`);
      process.stdout.write(`parameters: teacher ${p.teacher.toLocaleString('en-US')}, student ${p.student.toLocaleString('en-US')}, reduction 1 − student/teacher ${(100 * p.reduction).toFixed(1)}%\n`);
      process.stdout.write(versus.sameTokens ? "teacher tokenisation: the student's (same token ids), the same batches\n" : `teacher tokenisation: its own (max length ${versus.teacherMaxLength}), ${versus.teacherBatches} batches of the same texts, ${versus.teacherRealTokens} tokens (${versus.teacherPaddedTokens} padded)\n`);
      if (versus.recordedTeacher !== null) process.stdout.write(`the student's summary.json names its teacher: ${versus.recordedTeacher}\n`);
      process.stdout.write(`\n| onnxruntime ×threads | median pass (ms) | texts/s | × ${versus.target.teacher} |\n|---|---:|---:|---:|\n`);
      for (const r of versus.results) process.stdout.write(`| ${r.model} ${r.precision} ×${r.threads} | ${r.medianMs.toFixed(1)} | ${r.textsPerSecond.toFixed(0)} | ${r.speedupVsTeacherFp32.toFixed(2)} |\n`);
      const t = versus.target;
      process.stdout.write(`\ntarget int8 student ≥ ${STUDENT_TARGET}× fp32 teacher: ${t.passed === null ? 'not measured (--no-int8)' : `${t.passed ? 'met' : 'MISSED'} (${t.student}: ${t.speedup!.toFixed(2)}× ${t.teacher})`}\n`);
    }
    process.stdout.write(`results in ${args.json}\n`);
    for (const t of tensors) {
      t.inputIds.dispose();
      t.attentionMask.dispose();
    }
    if (args.strict && !passed) process.exitCode = 1;
  } finally {
    model.dispose();
    teacher?.model.dispose();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();

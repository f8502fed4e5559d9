/**
 * `npm run bench:train`: one full two-tower training step in Kiln against the same step in
 * Python PyTorch (bench/train_torch.py), on the same machine and the same libtorch.
 *
 * The step (identical on both sides, from identical weights):
 *   BERT encoder, vocab 8000, hidden 256, 4 layers, 4 heads, FFN 1024, 512 positions,
 *   dropout 0.1 (hidden and attention), train mode; 32 queries + 32 documents of 64 tokens
 *   (every token real) through ONE shared encoder, two forwards; mean pooling; cosine head;
 *   InfoNCE with τ = 0.05: cross-entropy of the 32×32 in-batch cosine matrix / τ against the
 *   diagonal; backward; AdamW (lr 1e-4, weight decay 0.01); zero grad (set to none).
 *   Precisions: fp32, and bf16 mixed precision (forward and loss under CPU autocast to
 *   bfloat16, backward outside it, fp32 master weights), as torch.autocast('cpu', bfloat16).
 *
 * Method:
 *   - Both sides run as subprocesses answering JSON lines (Kiln: this file with --worker;
 *     PyTorch: train_torch.py --serve), one process per (side, precision), all alive for the
 *     whole run: idle ones wait blocked on stdin, and each process's peak RSS belongs to one
 *     precision. Kiln's workers write the initial weights; PyTorch's load them, and both
 *     report an eval-mode (dropout off) fp32 loss on the batch that must agree before timing.
 *   - After `--warmup` untimed steps per (precision, side, threads), each round runs one timed
 *     step per combination in a fixed order (fp32: Kiln t1, PyTorch t1, Kiln t2, PyTorch t2;
 *     then bf16 likewise) and then in the reverse order (ABBA); odd rounds start from the other
 *     end. Every combination gets 2 steps per round, and slow drift cancels within a round.
 *     The orchestrator waits `--gap-ms` between steps: OpenBLAS's workers spin-wait after a call
 *     (up to ~0.1 s) and would otherwise take the 2 cores from the next step.
 *   - Reported per combination: median step time, tokens/s (64 texts × 64 tokens per step),
 *     and median per-phase times (forward+loss, backward, optimizer step + zero grad + release).
 *     Paired ratio of two combinations: the median over rounds of the ratio of their summed
 *     step times in that round. The targets use it at each side's best thread count.
 *   - Peak RSS: process.resourceUsage().maxRSS in the Kiln worker, resource.getrusage's
 *     ru_maxrss in the PyTorch worker, read after the last step.
 *   - Minor page faults per timed step: getrusage's ru_minflt before and after each request
 *     of steps, in each worker: pages touched for the first time, or again after being handed
 *     back to the system (glibc's trimming and unmapping, V8's released heap pages).
 *
 * Options: --rounds 6 --warmup 2 --threads 1,2 --precisions fp32,bf16 --gap-ms 150
 *          --json out.json --strict (exit 1 when a target is missed).
 * The interpreter is $KILN_PYTHON, else /usr/bin/python3 (Debian's, torch 1.13).
 */
import { createInterface } from 'node:readline';
import { WorkerProcess } from './worker.js';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

const SCRIPT = fileURLToPath(import.meta.url);

const MODEL = {
  vocabSize: 8000,
  hiddenSize: 256,
  numLayers: 4,
  numHeads: 4,
  intermediateSize: 1024,
  maxPositions: 512,
  typeVocabSize: 2,
  hiddenDropout: 0.1,
  attentionDropout: 0.1,
  layerNormEps: 1e-12,
  initStd: 0.02,
  padId: 0,
};
const BATCH = 32; // queries, and as many documents
const SEQ_LEN = 64;
const TAU = 0.05;
const LR = 1e-4;
const WEIGHT_DECAY = 0.01;
const SEED = 1234;
const TOKENS_PER_STEP = 2 * BATCH * SEQ_LEN;

type Precision = 'fp32' | 'bf16';
type Side = 'kiln' | 'pytorch';

interface StepsReply {
  samples: number[];
  phases: [number, number, number][];
  losses: number[];
  threads: number;
  /** Minor page faults of the worker process over these steps (getrusage ru_minflt). */
  minorFaults: number;
}

const now = (): bigint => process.hrtime.bigint();

function median(values: readonly number[]): number {
  if (values.length === 0) return Number.NaN;
  const s = [...values].sort((x, y) => x - y);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

// =============================================================================================
// Worker: Kiln's side of the step, answering the same JSON-line protocol as train_torch.py
// =============================================================================================
async function worker(): Promise<void> {
  const engine = await import('../src/engine/index.js');
  const models = await import('../src/models/index.js');
  const { AdamW, autocast, crossEntropy, arange, fromTypedArray, getNumThreads, manualSeed, noGrad, saveSafetensors, setNumThreads, tidy, buildInfo, keep } = engine;
  type Tensor = InstanceType<typeof engine.Tensor>;

  let step: (() => { ns: number; phases: [number, number, number]; loss: number }) | null = null;

  const setup = (req: Record<string, unknown>): Record<string, unknown> => {
    manualSeed(Number(req['seed']));
    const encoder = new models.BertEncoder(req['config'] as typeof MODEL);
    saveSafetensors(String(req['weights']), encoder.stateDict());
    const head = models.createHead(MODEL.hiddenSize, { type: 'cosine', mlpHidden: 0 });
    const precision = req['precision'] as Precision;
    const tau = Number(req['tau']);
    const b = Number(req['batch']);
    const l = Number(req['seqLen']);
    const side = (s: { ids: number[]; mask: number[] }): [Tensor, Tensor] => [
      keep(fromTypedArray(BigInt64Array.from(s.ids, BigInt), { shape: [b, l] })),
      keep(fromTypedArray(BigInt64Array.from(s.mask, BigInt), { shape: [b, l] })),
    ];
    const [qIds, qMask] = side(req['queries'] as { ids: number[]; mask: number[] });
    const [dIds, dMask] = side(req['docs'] as { ids: number[]; mask: number[] });
    const targets = keep(arange(0, b));
    const opt = new AdamW([{ params: encoder.parameters(), lr: Number(req['lr']), weightDecay: Number(req['weightDecay']) }]);

    const lossOf = (): Tensor => {
      const q = models.pool('mean', encoder.forward(qIds, qMask), qMask);
      const d = models.pool('mean', encoder.forward(dIds, dMask), dMask);
      return crossEntropy(head.matrix(q, d).div(tau), targets); // InfoNCE over in-batch negatives
    };
    const forward = precision === 'bf16' ? (): Tensor => autocast(lossOf, { device: 'cpu', dtype: 'bfloat16' }) : lossOf;

    step = () => {
      const t0 = now();
      let t1 = t0;
      let t2 = t0;
      const loss = tidy(() => {
        const l = forward();
        t1 = now();
        l.backward();
        t2 = now();
        opt.step();
        opt.zeroGrad();
        return l.item();
      });
      const t3 = now();
      if (!Number.isFinite(loss)) throw new Error(`loss is ${loss}`);
      return { ns: Number(t3 - t0), phases: [Number(t1 - t0), Number(t2 - t1), Number(t3 - t2)], loss };
    };

    encoder.eval();
    const evalLoss = noGrad(() => tidy(() => lossOf().item()));
    encoder.train();
    return { evalLoss, params: encoder.parameterCount() };
  };

  const handle = (req: Record<string, unknown>): Record<string, unknown> => {
    switch (req['cmd']) {
      case 'info': {
        const info = buildInfo();
        return { node: process.version, torchVersion: info.torchVersion, mkldnn: info.mkldnn, numThreads: getNumThreads(), maxRssKiB: process.resourceUsage().maxRSS, pid: process.pid };
      }
      case 'setup':
        return setup(req);
      case 'steps': {
        if (step === null) throw new Error('steps before setup');
        setNumThreads(Number(req['threads'])); // a no-op when unchanged
        const out: StepsReply = { samples: [], phases: [], losses: [], threads: 0, minorFaults: 0 };
        const faultsBefore = process.resourceUsage().minorPageFault;
        for (let i = 0; i < Number(req['n']); i++) {
          const r = step();
          out.samples.push(r.ns);
          out.phases.push(r.phases);
          out.losses.push(r.loss);
        }
        out.threads = getNumThreads();
        out.minorFaults = process.resourceUsage().minorPageFault - faultsBefore;
        return out as unknown as Record<string, unknown>;
      }
      default:
        throw new Error(`unknown command ${String(req['cmd'])}`);
    }
  };

  for await (const line of createInterface({ input: process.stdin })) {
    if (line.trim() === '') continue;
    const req = JSON.parse(line) as Record<string, unknown>;
    if (req['cmd'] === 'quit') break;
    let reply: Record<string, unknown>;
    try {
      reply = handle(req);
    } catch (error) {
      reply = { error: (error as Error).stack ?? String(error) };
    }
    process.stdout.write(JSON.stringify(reply) + '\n');
  }
  process.exit(0);
}

// =============================================================================================
// Orchestrator
// =============================================================================================
/** Deterministic token ids in [1, vocab) (0 is the pad id) from a 32-bit LCG; every token real. */
function makeBatch(salt: number): { ids: number[]; mask: number[] } {
  let state = (0x9e3779b9 ^ salt) >>> 0;
  const ids: number[] = [];
  for (let i = 0; i < BATCH * SEQ_LEN; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    ids.push(1 + (state % (MODEL.vocabSize - 1)));
  }
  return { ids, mask: ids.map(() => 1) };
}

function cpuModel(): string {
  try {
    const line = readFileSync('/proc/cpuinfo', 'utf8').split('\n').find((l) => l.startsWith('model name'));
    if (line !== undefined) return line.slice(line.indexOf(':') + 1).trim();
  } catch {
    // not Linux
  }
  return 'unknown';
}

async function main(): Promise<void> {
  const { values: opts } = parseArgs({
    options: {
      rounds: { type: 'string', default: '6' },
      warmup: { type: 'string', default: '2' },
      threads: { type: 'string', default: '1,2' },
      precisions: { type: 'string', default: 'fp32,bf16' },
      'gap-ms': { type: 'string', default: '150' },
      json: { type: 'string' },
      strict: { type: 'boolean', default: false },
      worker: { type: 'boolean', default: false },
    },
    strict: true,
  });
  const positiveInt = (name: string, text: string | undefined, min = 1): number => {
    const v = Number(text);
    if (!Number.isSafeInteger(v) || v < min) throw new Error(`--${name}: expected an integer >= ${min}, got ${String(text)}`);
    return v;
  };
  const config = {
    rounds: positiveInt('rounds', opts.rounds),
    warmup: positiveInt('warmup', opts.warmup, 0),
    gapMs: positiveInt('gap-ms', opts['gap-ms'], 0),
    threads: (opts.threads ?? '').split(',').filter((t) => t !== '').map((t) => positiveInt('threads', t)),
    precisions: (opts.precisions ?? '').split(',').filter((p) => p !== '') as Precision[],
    python: process.env['KILN_PYTHON'] ?? '/usr/bin/python3',
  };
  for (const p of config.precisions) if (p !== 'fp32' && p !== 'bf16') throw new Error(`--precisions: unknown precision ${p}`);

  const dir = mkdtempSync(join(tmpdir(), 'kiln-bench-train-'));
  const weights = join(dir, 'init.safetensors');
  const queries = makeBatch(1);
  const docs = makeBatch(2);
  const setupRequest = { cmd: 'setup', config: MODEL, weights, seed: SEED, tau: TAU, lr: LR, weightDecay: WEIGHT_DECAY, batch: BATCH, seqLen: SEQ_LEN, queries, docs };

  console.log('Kiln training step vs PyTorch (two-tower, shared BERT encoder, InfoNCE, AdamW)');
  console.log(`  CPU      ${cpuModel()} (${availableParallelism()} cores available)`);
  console.log(`  model    vocab ${MODEL.vocabSize}, hidden ${MODEL.hiddenSize}, ${MODEL.numLayers} layers, ${MODEL.numHeads} heads, FFN ${MODEL.intermediateSize}, dropout ${MODEL.hiddenDropout}`);
  console.log(`  step     ${BATCH} queries + ${BATCH} docs x ${SEQ_LEN} tokens (${TOKENS_PER_STEP} tokens), mean pooling, cosine head, InfoNCE tau=${TAU}, AdamW lr=${LR}`);
  console.log(`  method   one worker process per (side, precision); ${config.warmup} warm-up steps per (side, precision, threads), then ${config.rounds} ABBA rounds of one step per combination, ${config.gapMs} ms between steps`);
  const env = Object.entries(process.env).filter(([k]) => /^(OPENBLAS_|OMP_|MKL_|GOMP_|KMP_)/.test(k));
  console.log(`  env      ${env.map(([k, v]) => `${k}=${v ?? ''}`).join(' ') || '(no OPENBLAS_/OMP_/MKL_/GOMP_/KMP_ variables set)'}`);

  /** samples[precision][side][threads][round] = step ns; phases likewise per step. */
  const samples: Record<string, number[][]> = {};
  const phases: Record<string, [number, number, number][]> = {};
  const losses: Record<string, number[]> = {};
  const rss: Record<string, number> = {};
  /** Minor page faults and timed steps per combination (timed rounds only). */
  const faults: Record<string, { faults: number; steps: number }> = {};
  const evalLoss: Record<string, number> = {};
  const infos: Record<string, unknown> = {};
  const key = (p: Precision, s: Side, t: number): string => `${p}:${s}:${t}`;
  const started = now();

  const servers = new Map<string, WorkerProcess>();
  try {
    // One Kiln and one PyTorch worker per precision, all alive for the whole run (idle ones wait
    // blocked on stdin), so each process's peak RSS belongs to one precision and rounds can
    // interleave every (precision, side, threads) combination.
    for (const precision of config.precisions) {
      const kiln = new WorkerProcess(`kiln ${precision}`, process.execPath, [...process.execArgv, SCRIPT, '--worker']);
      servers.set(`${precision}:kiln`, kiln);
      const pytorch = new WorkerProcess(`pytorch ${precision}`, config.python, [join(dirname(SCRIPT), 'train_torch.py'), '--serve']);
      servers.set(`${precision}:pytorch`, pytorch);
      // Kiln writes the initial weights (the same bytes for every precision: same seed); PyTorch loads them.
      const k = await kiln.request<{ evalLoss: number; params: number }>({ ...setupRequest, precision });
      const p = await pytorch.request<{ evalLoss: number; params: number }>({ ...setupRequest, precision });
      evalLoss[`${precision}:kiln`] = k.evalLoss;
      evalLoss[`${precision}:pytorch`] = p.evalLoss;
      if (k.params !== p.params) throw new Error(`parameter counts differ: Kiln ${k.params}, PyTorch ${p.params}`);
      if (Math.abs(k.evalLoss - p.evalLoss) > 1e-4 * Math.max(1, Math.abs(p.evalLoss))) {
        throw new Error(`the two models differ: eval-mode loss Kiln ${k.evalLoss}, PyTorch ${p.evalLoss}`);
      }
      console.log(`  [${precision}] ${k.params} parameters; eval-mode fp32 loss from the same weights: Kiln ${k.evalLoss.toFixed(6)}, PyTorch ${p.evalLoss.toFixed(6)}`);
    }

    const run = async (precision: Precision, side: Side, threads: number, n: number, r: number | null): Promise<void> => {
      const reply = await servers.get(`${precision}:${side}`)!.request<StepsReply>({ cmd: 'steps', threads, n });
      if (reply.threads !== threads) throw new Error(`${side} ${precision}: asked for ${threads} threads, runs ${reply.threads}`);
      const id = key(precision, side, threads);
      (losses[id] ??= []).push(...reply.losses);
      if (r !== null) {
        const rounds = (samples[id] ??= []);
        while (rounds.length <= r) rounds.push([]);
        rounds[r]!.push(...reply.samples);
        (phases[id] ??= []).push(...reply.phases);
        const f = (faults[id] ??= { faults: 0, steps: 0 });
        f.faults += reply.minorFaults;
        f.steps += reply.samples.length;
      }
      if (config.gapMs > 0) await sleep(config.gapMs);
    };
    const order: [Precision, Side, number][] = config.precisions.flatMap((p) =>
      config.threads.flatMap((t) => [[p, 'kiln', t], [p, 'pytorch', t]] as [Precision, Side, number][]),
    );
    for (const [p, side, t] of order) await run(p, side, t, config.warmup, null);
    for (let r = 0; r < config.rounds; r++) {
      const t0 = now();
      const forward = r % 2 === 0 ? order : [...order].reverse();
      for (const [p, side, t] of [...forward, ...[...forward].reverse()]) await run(p, side, t, 1, r);
      process.stderr.write(`  round ${r + 1}/${config.rounds} in ${(Number(now() - t0) / 1e9).toFixed(0)} s\n`);
    }
    for (const precision of config.precisions) {
      const last = (side: Side): string => {
        const all = config.threads.flatMap((t) => losses[key(precision, side, t)] ?? []);
        return `${all.length} steps on the same batch, last loss ${all.at(-1)?.toFixed(4) ?? 'n/a'}`;
      };
      console.log(`  [${precision}] Kiln ${last('kiln')}; PyTorch ${last('pytorch')}`);
      for (const side of ['kiln', 'pytorch'] as const) {
        const info = await servers.get(`${precision}:${side}`)!.request<{ maxRssKiB: number }>({ cmd: 'info' });
        rss[`${precision}:${side}`] = info.maxRssKiB / 1024;
        infos[`${precision}:${side}`] = info;
      }
    }
  } finally {
    await Promise.all([...servers.values()].map((server) => server.close()));
    rmSync(dir, { recursive: true, force: true });
  }

  // ---- report ----
  const flat = (id: string): number[] => (samples[id] ?? []).flat();
  const ms = (ns: number): number => ns / 1e6;
  /** Median over rounds of (Σ Kiln step ns in round) / (Σ PyTorch step ns in round). */
  const roundRatios = (kId: string, pId: string): number[] => {
    const k = samples[kId] ?? [];
    const p = samples[pId] ?? [];
    return k.map((round, r) => round.reduce((a, b) => a + b, 0) / (p[r] ?? []).reduce((a, b) => a + b, 0)).filter(Number.isFinite);
  };
  const paired = (kId: string, pId: string): number => median(roundRatios(kId, pId));
  const ratioRange = (kId: string, pId: string): string => {
    const v = roundRatios(kId, pId);
    return `${Math.min(...v).toFixed(2)}–${Math.max(...v).toFixed(2)}`;
  };
  const spread = (id: string): string => {
    const v = flat(id);
    return `${ms(Math.min(...v)).toFixed(0)}–${ms(Math.max(...v)).toFixed(0)}`;
  };
  const tokS = (ns: number): number => TOKENS_PER_STEP / (ns / 1e9);
  const faultsPerStep = (id: string): number => (faults[id] === undefined ? Number.NaN : faults[id]!.faults / faults[id]!.steps);

  const table: string[][] = [];
  const best: Record<string, number> = {};
  for (const precision of config.precisions) {
    for (const t of config.threads) {
      const k = median(flat(key(precision, 'kiln', t)));
      const p = median(flat(key(precision, 'pytorch', t)));
      table.push([precision, String(t), ms(k).toFixed(0), ms(p).toFixed(0), `${spread(key(precision, 'kiln', t))} / ${spread(key(precision, 'pytorch', t))}`, tokS(k).toFixed(0), tokS(p).toFixed(0), (k / p).toFixed(3), paired(key(precision, 'kiln', t), key(precision, 'pytorch', t)).toFixed(3), ratioRange(key(precision, 'kiln', t), key(precision, 'pytorch', t))]);
    }
    for (const side of ['kiln', 'pytorch'] as const) {
      best[`${precision}:${side}`] = config.threads.reduce((b, t) => (median(flat(key(precision, side, t))) < median(flat(key(precision, side, b))) ? t : b), config.threads[0]!);
    }
  }
  const bestOf = (p: Precision, s: Side): { t: number; ns: number; id: string } => {
    const t = best[`${p}:${s}`]!;
    return { t, ns: median(flat(key(p, s, t))), id: key(p, s, t) };
  };
  const print = (header: string[], rows: string[][]): void => {
    console.log(`| ${header.join(' | ')} |`);
    console.log(`|${header.map(() => '---').join('|')}|`);
    for (const row of rows) console.log(`| ${row.join(' | ')} |`);
  };

  console.log('');
  console.log(`Per configuration (median of ${config.rounds * 2} timed steps per cell; paired = median over rounds of Kiln/PyTorch round sums); total ${(Number(now() - started) / 1e9).toFixed(0)} s:`);
  console.log('');
  print(['precision', 'intra-op threads', 'Kiln ms/step', 'PyTorch ms/step', 'min–max ms (Kiln / PyTorch)', 'Kiln tokens/s', 'PyTorch tokens/s', 'Kiln/PyTorch', 'paired', 'per-round ratios'], table);

  console.log('');
  console.log('Where the time goes (median ms per phase; forward = both sides + loss, optimizer = AdamW step + zero grad + releasing the step\'s tensors):');
  console.log('');
  const phaseRows: string[][] = [];
  for (const precision of config.precisions) {
    for (const t of config.threads) {
      for (const side of ['kiln', 'pytorch'] as const) {
        const ph = phases[key(precision, side, t)] ?? [];
        phaseRows.push([precision, String(t), side === 'kiln' ? 'Kiln' : 'PyTorch', ...[0, 1, 2].map((i) => ms(median(ph.map((x) => x[i]!))).toFixed(1))]);
      }
    }
  }
  print(['precision', 'threads', 'side', 'forward + loss', 'backward', 'optimizer + release'], phaseRows);

  console.log('');
  console.log('Best thread setting per framework, ratios and peak RSS:');
  console.log('');
  const summary: string[][] = [];
  const targets: { name: string; value: number; target: number; pass: boolean | null }[] = [];
  for (const precision of config.precisions) {
    const k = bestOf(precision, 'kiln');
    const p = bestOf(precision, 'pytorch');
    summary.push([
      precision,
      `${ms(k.ns).toFixed(0)} ms (${k.t} thr), ${tokS(k.ns).toFixed(0)} tok/s`,
      `${ms(p.ns).toFixed(0)} ms (${p.t} thr), ${tokS(p.ns).toFixed(0)} tok/s`,
      (k.ns / p.ns).toFixed(3),
      paired(k.id, p.id).toFixed(3),
      ratioRange(k.id, p.id),
      `${(rss[`${precision}:kiln`] ?? Number.NaN).toFixed(0)} / ${(rss[`${precision}:pytorch`] ?? Number.NaN).toFixed(0)}`,
      `${faultsPerStep(k.id).toFixed(0)} / ${faultsPerStep(p.id).toFixed(0)}`,
    ]);
  }
  print(['precision', 'Kiln best', 'PyTorch best', 'Kiln/PyTorch (same precision)', 'paired', 'per-round ratios', 'peak RSS MiB (Kiln / PyTorch)', 'minor page faults per step (Kiln / PyTorch)'], summary);

  console.log('');
  if (config.precisions.includes('fp32')) {
    const k = bestOf('fp32', 'kiln');
    const p = bestOf('fp32', 'pytorch');
    const value = paired(k.id, p.id);
    targets.push({ name: 'fp32 Kiln / PyTorch fp32', value, target: 1.1, pass: value <= 1.1 });
    if (config.precisions.includes('bf16')) {
      const kb = bestOf('bf16', 'kiln');
      const v = paired(kb.id, p.id);
      targets.push({ name: 'bf16 Kiln / PyTorch fp32', value: v, target: 0.6, pass: v <= 0.6 });
      const pb = bestOf('bf16', 'pytorch');
      targets.push({ name: 'for reference: bf16 PyTorch / PyTorch fp32', value: paired(pb.id, p.id), target: Number.NaN, pass: null });
    }
  }
  print(
    ['target', 'value', 'target', 'met'],
    targets.map((t) => [t.name, t.value.toFixed(3), t.pass === null ? '—' : `≤ ${t.target.toFixed(2)}`, t.pass === null ? '' : t.pass ? 'yes' : 'no']),
  );
  console.log('');
  console.log('(Targets on the paired ratios: median over rounds of the two configurations\' summed step times in that round; each at its best thread setting.)');

  if (opts.json !== undefined) {
    writeFileSync(opts.json, JSON.stringify({ config, model: MODEL, samples, phases, losses, rss, faults, evalLoss, infos, best }, null, 2) + '\n');
    console.log(`Wrote ${opts.json}`);
  }
  if (opts.strict && targets.some((t) => t.pass === false)) process.exitCode = 1;
}

if (process.argv.includes('--worker')) await worker();
else await main();

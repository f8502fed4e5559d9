/**
 * `npm run bench -- --only memory` (or `node --import tsx bench/memory.ts`): speed and memory of
 * a long tidy training loop, the timing side of test/memory.test.ts (which asserts the bounds
 * and nothing about time).
 *
 * The loop (the test's): a small MLP (Linear 64→64, GELU, Linear 64→1), MSE against a
 * learnable, noisy target from fresh random inputs (32 rows), backward, gradient clipping at
 * 1.0, AdamW (lr 1e-3, weight decay 0.01), zero grad; each Kiln step inside `tidy`.
 *
 * Method:
 *   - `--warmup` untimed steps (allocator pools, V8 tier-up, optimizer state), then `--rounds`
 *     rounds of `--steps` timed steps; steps/s per round, reported as the median over rounds
 *     and min–max.
 *   - RSS growth: process RSS after the last round − RSS after warm-up, in MiB (the test's
 *     bound is < 20 MiB over 9,000 steps).
 *   - Live tensor drift: the largest |liveTensorCount() − count after warm-up| seen after any
 *     timed step; it must be 0 (nothing a step creates outlives it).
 *   - PyTorch (unless --no-torch): the same loop in Python PyTorch, in a worker process of its
 *     own (the script is inline below; $KILN_PYTHON, else /usr/bin/python3, Debian's torch
 *     1.13), with its own warm-up and RSS read from /proc/self/statm. Rounds alternate
 *     Kiln, PyTorch, then PyTorch, Kiln (ABBA), and the paired ratio is the median over rounds
 *     of Kiln steps/s ÷ PyTorch steps/s in the same round. While one side runs, the other
 *     waits blocked, so they never compete for the cores.
 *   - Both sides run at `--threads` intra-op threads (default 1: a 32×64 matmul gains nothing
 *     from more).
 *
 * Options: --steps 2000 --rounds 5 --warmup 1000 --threads 1 --no-torch --json FILE
 *          --strict (exit 1 when the live count drifts or RSS grows by 20 MiB or more).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { AdamW, clipGradNorm, liveTensorCount, manualSeed, mseLoss, nn, randn, setNumThreads, tidy } from '../src/engine/index.js';
import type { MemoryJson } from './report.js';
import { median } from './report.js';
import { WorkerProcess } from './worker.js';
import { positiveInt } from './args.js';

const RSS_BOUND_MIB = 20;
const SEED = 7;
const MIB = 2 ** 20;

const { values: opts } = parseArgs({
  allowNegative: true, // --no-torch
  options: {
    steps: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    warmup: { type: 'string', default: '1000' },
    threads: { type: 'string', default: '1' },
    torch: { type: 'boolean', default: true },
    json: { type: 'string' },
    strict: { type: 'boolean', default: false },
  },
  strict: true,
});

const config = {
  steps: positiveInt('steps', opts.steps),
  rounds: positiveInt('rounds', opts.rounds),
  warmup: positiveInt('warmup', opts.warmup, 0),
  threads: positiveInt('threads', opts.threads),
  python: opts.torch ? (process.env['KILN_PYTHON'] ?? '/usr/bin/python3') : null,
};

// The PyTorch side: the same loop, answering one JSON request per stdin line (bench/worker.ts).
const TORCH_WORKER = String.raw`
import json, os, sys, time
import torch
import torch.nn.functional as F

PAGE = os.sysconf('SC_PAGE_SIZE')

def rss():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * PAGE

state = {}

def setup(req):
    torch.manual_seed(req['seed'])
    torch.set_num_threads(req['threads'])
    l1 = torch.nn.Linear(64, 64)
    l2 = torch.nn.Linear(64, 1)
    params = list(l1.parameters()) + list(l2.parameters())
    opt = torch.optim.AdamW(params, lr=1e-3, weight_decay=0.01)

    def step():
        x = torch.randn(32, 64)
        target = x.narrow(1, 0, 1).mul(0.5).add(torch.randn(32, 1).mul(0.1))  # learnable, noisy
        loss = F.mse_loss(l2(F.gelu(l1(x))), target)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        opt.zero_grad(set_to_none=True)
        return loss.item()

    state['step'] = step
    return {'torchVersion': torch.__version__, 'threads': torch.get_num_threads()}

def steps(req):
    step = state['step']
    t0 = time.perf_counter_ns()
    loss = float('nan')
    for _ in range(req['n']):
        loss = step()
    return {'ns': time.perf_counter_ns() - t0, 'rss': rss(), 'loss': loss}

while True:
    line = sys.stdin.readline()
    if not line:
        break
    if not line.strip():
        continue
    req = json.loads(line)
    if req['cmd'] == 'quit':
        break
    try:
        reply = setup(req) if req['cmd'] == 'setup' else steps(req)
    except Exception as e:
        reply = {'error': repr(e)}
    sys.stdout.write(json.dumps(reply) + '\n')
    sys.stdout.flush()
`;

interface StepsReply {
  ns: number;
  rss: number;
  loss: number;
}

// ---- Kiln side ----
setNumThreads(config.threads);
manualSeed(SEED);
const l1 = new nn.Linear(64, 64);
const l2 = new nn.Linear(64, 1);
const params = [...l1.parameters(), ...l2.parameters()];
const opt = new AdamW([{ params, lr: 1e-3, weightDecay: 0.01 }]);

const step = (): number =>
  tidy(() => {
    const x = randn([32, 64]); // (32, 64)
    const target = x.narrow(1, 0, 1).mul(0.5).add(randn([32, 1]).mul(0.1)); // (32, 1), learnable, noisy
    const loss = mseLoss(l2.forward(l1.forward(x).gelu()), target);
    loss.backward();
    clipGradNorm(params, 1.0);
    opt.step();
    opt.zeroGrad();
    return loss.item(); // device sync
  });

let torch: WorkerProcess | null = null;
let torchVersion = '';
try {
  console.log(`memory: ${config.warmup} warm-up steps, then ${config.rounds} rounds of ${config.steps} tidy AdamW steps (MLP 64→64→1, batch 32) at ${config.threads} thread${config.threads === 1 ? '' : 's'}${config.python === null ? '' : `; PyTorch via ${config.python}`}`);
  if (config.python !== null) {
    torch = new WorkerProcess('memory (pytorch)', config.python, ['-c', TORCH_WORKER], 'set KILN_PYTHON to a Python with torch, or pass --no-torch');
    const info = await torch.request<{ torchVersion: string; threads: number }>({ cmd: 'setup', seed: SEED, threads: config.threads });
    torchVersion = info.torchVersion;
  }

  // Warm-up, both sides.
  const kilnFirstLoss = step();
  for (let i = 1; i < config.warmup; i++) step();
  const liveAfterWarmup = liveTensorCount();
  const kilnRssAfterWarmup = process.memoryUsage().rss;
  let torchFirstLoss = Number.NaN;
  let torchRssAfterWarmup = Number.NaN;
  if (torch !== null) {
    torchFirstLoss = (await torch.request<StepsReply>({ cmd: 'steps', n: 1 })).loss;
    const w = await torch.request<StepsReply>({ cmd: 'steps', n: Math.max(0, config.warmup - 1) });
    torchRssAfterWarmup = w.rss;
  }

  // Timed rounds, ABBA.
  const kilnRate: number[] = [];
  const torchRate: number[] = [];
  let liveDrift = 0;
  let kilnLastLoss = Number.NaN;
  let torchLastLoss = Number.NaN;
  let torchRss = torchRssAfterWarmup;
  const kilnRound = (): void => {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < config.steps; i++) {
      kilnLastLoss = step();
      liveDrift = Math.max(liveDrift, Math.abs(liveTensorCount() - liveAfterWarmup));
    }
    kilnRate.push(config.steps / (Number(process.hrtime.bigint() - t0) / 1e9));
  };
  const torchRound = async (): Promise<void> => {
    if (torch === null) return;
    const reply = await torch.request<StepsReply>({ cmd: 'steps', n: config.steps });
    torchRate.push(config.steps / (reply.ns / 1e9));
    torchLastLoss = reply.loss;
    torchRss = reply.rss;
  };
  for (let r = 0; r < config.rounds; r++) {
    if (r % 2 === 0) {
      kilnRound();
      await torchRound();
    } else {
      await torchRound();
      kilnRound();
    }
    process.stderr.write(`  round ${r + 1}/${config.rounds}: Kiln ${kilnRate.at(-1)!.toFixed(0)} steps/s${torch === null ? '' : `, PyTorch ${torchRate.at(-1)!.toFixed(0)} steps/s`}\n`);
  }
  const kilnGrowth = (process.memoryUsage().rss - kilnRssAfterWarmup) / MIB;
  const pairedRatios = torchRate.length === kilnRate.length ? kilnRate.map((k, i) => k / torchRate[i]!) : [];
  const bounded = liveDrift === 0 && liveAfterWarmup === liveTensorCount() && kilnGrowth < RSS_BOUND_MIB;

  const report: MemoryJson = {
    config,
    kiln: {
      stepsPerSecond: kilnRate,
      rssAfterWarmupMiB: kilnRssAfterWarmup / MIB,
      rssGrowthMiB: kilnGrowth,
      firstLoss: kilnFirstLoss,
      lastLoss: kilnLastLoss,
      liveAfterWarmup,
      liveDrift,
    },
    pytorch:
      torch === null
        ? null
        : {
            stepsPerSecond: torchRate,
            rssAfterWarmupMiB: torchRssAfterWarmup / MIB,
            rssGrowthMiB: (torchRss - torchRssAfterWarmup) / MIB,
            firstLoss: torchFirstLoss,
            lastLoss: torchLastLoss,
            torchVersion,
          },
    pairedRatios,
    bounded,
    rssBoundMiB: RSS_BOUND_MIB,
  };

  const range = (xs: number[]): string => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
  console.log('');
  console.log(`| side | steps/s (median) | min–max | RSS after warm-up MiB | RSS growth MiB | loss first → last |`);
  console.log('|---|---:|---:|---:|---:|---|');
  console.log(`| Kiln | ${median(kilnRate).toFixed(0)} | ${range(kilnRate)} | ${report.kiln.rssAfterWarmupMiB.toFixed(1)} | ${kilnGrowth.toFixed(1)} | ${kilnFirstLoss.toFixed(3)} → ${kilnLastLoss.toFixed(3)} |`);
  if (report.pytorch !== null) {
    const p = report.pytorch;
    console.log(`| PyTorch ${torchVersion} | ${median(torchRate).toFixed(0)} | ${range(torchRate)} | ${p.rssAfterWarmupMiB.toFixed(1)} | ${p.rssGrowthMiB.toFixed(1)} | ${p.firstLoss.toFixed(3)} → ${p.lastLoss.toFixed(3)} |`);
    console.log(`\npaired Kiln/PyTorch steps/s (median over rounds): ${median(pairedRatios).toFixed(3)}`);
  }
  console.log(`live tensors ${liveAfterWarmup} after warm-up, max drift ${liveDrift}; Kiln RSS growth ${kilnGrowth.toFixed(1)} MiB (bound < ${RSS_BOUND_MIB}): ${bounded ? 'bounded' : 'NOT BOUNDED'}`);

  if (opts.json !== undefined) {
    const out = resolve(opts.json);
    mkdirSync(dirname(out), { recursive: true });
    writeFileSync(out, `${JSON.stringify(report, null, 2)}\n`);
    console.log(`Wrote ${opts.json}`);
  }
  if (opts.strict && !bounded) process.exitCode = 1;
} finally {
  await torch?.close();
  opt.dispose();
  l1.dispose();
  l2.dispose();
}

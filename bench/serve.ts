/**
 * `npm run bench:serve`: latency and throughput of `kiln serve` under fixed request rates on loopback.
 *
 * Targets: p95 < 100 ms at each offered rate of single-text POST /embed (issue #4: 200
 * requests/s; issue #17: 5,000 requests/s with the int8 model), with ≥ 95% of the rate answered,
 * no errors, timeouts or non-2xx answers, and the service exiting 0 on SIGTERM afterwards.
 *
 * Method:
 *   - The service runs as its own process, exactly as a user starts it:
 *     `node bin/kiln.js serve --model DIR --port 0` (the CLI runs from dist/: build first).
 *     The port is read from its start line; /healthz must answer 200 before anything else.
 *   - Variants (`--variants`, each its own service, measured one after another in this run):
 *     `thread`: the model in its worker thread (the default service) with JSON answers;
 *     `http-thread`: `--no-model-thread`, the model on the HTTP thread (the service before
 *     issue #17); `binary`: the default service, each request sending `Accept:
 *     application/octet-stream` (raw float32 answers). Each may add `+` modifiers, each a serve
 *     flag: `tN` (--threads N), `bN` (--max-batch N), `wN` (--max-wait-ms N), `spin`, `nospin`;
 *     e.g. `binary+t1+nospin`. A modifier's flag replaces the same flag given to the benchmark.
 *   - Warm-up: `--warmup` sequential requests (onnxruntime's first runs allocate).
 *   - Load: for each rate of `--rate` (a comma-separated list), autocannon, `--connections`
 *     connections, `overallRate` that many requests/s, for `--duration` seconds. Each request
 *     embeds one real job title (vacancyTitle of jobbert-titles/titles.csv), cycling through the
 *     file so the texts and their lengths vary. Autocannon paces each connection per second
 *     (rate / connections requests, then a pause until the next second), so the load arrives in
 *     bursts of up to --connections requests: harsher than evenly spaced arrivals, and what
 *     micro-batching is for. Autocannon runs in this process, on the same cores as the service.
 *   - Latency: each response's time from write to last byte, as autocannon measures it,
 *     collected from its 'response' events; percentiles over every response by nearest rank.
 *     (Autocannon's own histogram applies a coordinated-omission correction with a 1 ms
 *     expected interval at these rates, which adds synthetic samples; it is not used.)
 *   - Achieved rate: completed responses / duration. A rate is met with ≥ 95% of it answered.
 *   - The server's view, from its /metrics before and after each rate: texts per model call,
 *     model-call time, and request time inside the server.
 *   - Then SIGTERM, and the exit code must be 0 within 30 s.
 *
 * Options: --model DIR (default $KILN_BENCH_MODEL) --rate 200 (or 1000,2000,4000,6000)
 *          --variants thread (or thread,http-thread,binary) --duration 20 --connections 50
 *          --warmup 50 --max-batch 64 --max-wait-ms 5 --threads N --titles FILE
 *          --json bench/results/serve.json --strict (exit 1 when the first variant misses a rate).
 * A model to run it on: `npx kiln export --run runs/<id> --out exports/twotower`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parse as parseCsv } from 'csv-parse/sync';

import { argumentChecks, REPO_ROOT, round, runLoad, sample, startService, stopService, waitHealthy, type LoadResult } from './http-load.js';

const TARGET_P95_MS = 100;
const TARGET_RATE_FRACTION = 0.95;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    rate: { type: 'string', default: '200' },
    variants: { type: 'string', default: 'thread' },
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '50' },
    'max-batch': { type: 'string', default: '64' },
    'max-wait-ms': { type: 'string', default: '5' },
    threads: { type: 'string' },
    titles: { type: 'string' },
    json: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'serve.json') },
    strict: { type: 'boolean', default: false },
  },
});

const checks = argumentChecks('bench:serve');
// Annotated, so that TypeScript sees the calls end the program.
const fail: (message: string) => never = checks.fail;
const positive = checks.positive;

/** How each variant starts the service and what its requests ask for. */
const VARIANTS = {
  thread: { serveFlags: [] as string[], headers: {} as Record<string, string> },
  'http-thread': { serveFlags: ['--no-model-thread'], headers: {} as Record<string, string> },
  binary: { serveFlags: [] as string[], headers: { accept: 'application/octet-stream' } as Record<string, string> },
};
type BaseVariant = keyof typeof VARIANTS;

/**
 * Modifiers a variant may add after `+` (e.g. `binary+t1+nospin`), each a `kiln serve` flag, so
 * that settings are compared in one run without a variant per combination.
 */
const MODIFIERS: ReadonlyArray<{ pattern: RegExp; flags(match: RegExpMatchArray): string[]; means: string }> = [
  { pattern: /^t(\d+)$/, flags: (m) => ['--threads', m[1]!], means: 'tN: --threads N' },
  { pattern: /^b(\d+)$/, flags: (m) => ['--max-batch', m[1]!], means: 'bN: --max-batch N' },
  { pattern: /^w(\d+)$/, flags: (m) => ['--max-wait-ms', m[1]!], means: 'wN: --max-wait-ms N' },
  { pattern: /^spin$/, flags: () => ['--spin'], means: 'spin: --spin' },
  { pattern: /^nospin$/, flags: () => ['--no-spin'], means: 'nospin: --no-spin' },
];

/** A variant's service flags and request headers, or why the name is not one. */
function parseVariant(name: string): { serveFlags: string[]; headers: Record<string, string> } | string {
  const [base, ...modifiers] = name.split('+');
  if (!(base! in VARIANTS)) return `unknown variant ${JSON.stringify(base)}; expected ${Object.keys(VARIANTS).join(', ')}, optionally followed by +modifiers`;
  const { serveFlags, headers } = VARIANTS[base as BaseVariant];
  const flags = [...serveFlags];
  for (const modifier of modifiers) {
    const known = MODIFIERS.map((m) => ({ m, match: modifier.match(m.pattern) })).find((x) => x.match !== null);
    if (known === undefined) return `${JSON.stringify(name)}: unknown modifier ${JSON.stringify(modifier)}; expected ${MODIFIERS.map((m) => m.means).join(', ')}`;
    flags.push(...known.m.flags(known.match!));
  }
  return { serveFlags: flags, headers };
}
type Variant = string;

/** One variant at one offered rate. */
interface ServeRun {
  variant: Variant;
  rate: number;
  latencyMs: LoadResult['latencyMs'];
  requests: { sent: number; completed: number; achievedPerSecond: number };
  errors: number;
  timeouts: number;
  non2xx: number;
  statusCodes: Record<string, number>;
  server: { modelCalls: number; meanBatchSize: number; meanModelCallMs: number; modelBusyFraction: number; meanRequestMs: number };
  /** p95 under the target, ≥ 95% of the rate answered, no errors, timeouts or non-2xx. */
  met: boolean;
}

function readTitles(file: string): string[] {
  if (!existsSync(file)) fail(`${file} not found; set KILN_DATA to the data root or pass --titles FILE (a CSV with a vacancyTitle column)`);
  const rows = parseCsv(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[];
  const titles = rows.map((r) => (r['vacancyTitle'] ?? '').trim()).filter((t) => t.length > 0);
  if (titles.length === 0) fail(`${file}: no non-empty vacancyTitle values`);
  return titles;
}

async function main(): Promise<void> {
  const modelDir = args.model ?? process.env.KILN_BENCH_MODEL;
  if (modelDir === undefined || modelDir === '') {
    fail('no model: pass --model DIR or set KILN_BENCH_MODEL to an exported model directory; create one with `npx kiln export --run runs/<id> --out exports/twotower`');
  }
  if (!existsSync(join(modelDir, 'model.json'))) fail(`${modelDir}: no model.json; expected a directory written by \`npx kiln export --run runs/<id> --out exports/twotower\``);
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'serve.js'))) fail('dist/ has no serve command; build first: npx tsc -p tsconfig.build.json');
  const card = JSON.parse(readFileSync(join(modelDir, 'model.json'), 'utf8')) as { kind: string };
  if (card.kind !== 'two-tower') fail(`${modelDir} is a ${card.kind}; the benchmark embeds texts and needs a two-tower model`);

  const rates = (args.rate ?? '').split(',').map((r) => positive('rate', r.trim()));
  const variants = (args.variants ?? '').split(',').map((v) => v.trim());
  const variantSetups = new Map<string, { serveFlags: string[]; headers: Record<string, string> }>();
  for (const v of variants) {
    const setup = parseVariant(v);
    if (typeof setup === 'string') fail(`--variants: ${setup}`);
    variantSetups.set(v, setup);
  }
  const duration = positive('duration', args.duration);
  const connections = Math.round(positive('connections', args.connections));
  const warmup = Math.round(Number(args.warmup));
  const titlesFile = args.titles ?? join(process.env.KILN_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'datasets'), 'jobbert-titles', 'titles.csv');
  const titles = readTitles(titlesFile);

  const serveArgs = ['--max-batch', String(args['max-batch']), '--max-wait-ms', String(args['max-wait-ms'])];
  if (args.threads !== undefined) serveArgs.push('--threads', args.threads);
  let next = 0;
  const body = (): string => JSON.stringify({ texts: [titles[next++ % titles.length]!] });
  const runs: ServeRun[] = [];
  const exits: Record<string, number | null> = {};
  let modelId = '';
  for (const variant of variants) {
    const { serveFlags, headers } = variantSetups.get(variant)!;
    const service = await startService(['--model', resolve(modelDir), ...withoutOverridden(serveArgs, serveFlags), ...serveFlags]);
    let exitCode: number | null = null;
    try {
      modelId = await waitHealthy(service.url);
      process.stderr.write(`${variant}: serving ${modelId} at ${service.url}; ${titles.length} titles; warming up\n`);
      for (let i = 0; i < warmup; i++) {
        const reply = await fetch(`${service.url}/embed`, { method: 'POST', headers: { 'content-type': 'application/json', ...headers }, body: body() });
        if (reply.status !== 200) throw new Error(`warm-up request answered ${reply.status}: ${await reply.text()}`);
        await reply.arrayBuffer();
      }
      for (const rate of rates) {
        process.stderr.write(`${variant}: ${rate} requests/s over ${connections} connections for ${duration} s\n`);
        const before = serverCounters(await (await fetch(`${service.url}/metrics`)).text());
        const { result, latencyMs, achievedPerSecond: achieved, latencies } = await runLoad({ url: service.url, path: '/embed', rate, duration, connections, body, headers });
        const after = serverCounters(await (await fetch(`${service.url}/metrics`)).text());
        const calls = after.calls - before.calls;
        const run: ServeRun = {
          variant,
          rate,
          latencyMs,
          requests: { sent: result.requests.sent, completed: latencies.length, achievedPerSecond: round(achieved) },
          errors: result.errors,
          timeouts: result.timeouts,
          non2xx: result.non2xx,
          statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
          // The server's own view of this rate's load: time inside the model, and request to response.
          server: {
            modelCalls: calls,
            meanBatchSize: round((after.texts - before.texts) / calls),
            meanModelCallMs: round((1000 * (after.modelSeconds - before.modelSeconds)) / calls),
            modelBusyFraction: round((after.modelSeconds - before.modelSeconds) / duration),
            meanRequestMs: round((1000 * (after.serverSeconds - before.serverSeconds)) / (after.serverRequests - before.serverRequests)),
          },
          met: latencyMs.p95 < TARGET_P95_MS && achieved >= TARGET_RATE_FRACTION * rate && result.errors === 0 && result.timeouts === 0 && result.non2xx === 0,
        };
        runs.push(run);
        process.stderr.write(`${variant} at ${rate}: achieved ${run.requests.achievedPerSecond}/s, p95 ${latencyMs.p95} ms, ${run.server.meanBatchSize} texts per call, model busy ${Math.round(100 * run.server.modelBusyFraction)}%\n`);
      }
      const stopping = performance.now();
      exitCode = await stopService(service);
      exits[variant] = exitCode;
      process.stderr.write(`${variant}: exit code ${exitCode ?? 'none (killed after 30 s)'} after ${((performance.now() - stopping) / 1000).toFixed(1)} s\n`);
    } finally {
      if (service.child.exitCode === null && exitCode === null) service.child.kill('SIGKILL');
    }
  }

  // The first variant's first rate keeps the fields of the one-rate summary this file used to
  // write (bench/report.ts reads them); `runs` has every variant at every rate.
  const first = runs[0]!;
  const firstVariantRuns = runs.filter((r) => r.variant === first.variant);
  const summary = {
    date: new Date().toISOString(),
    model: modelId,
    modelDir: resolve(modelDir),
    cpus: availableParallelism(),
    node: process.version,
    settings: { rate: first.rate, rates, variants, duration, connections, warmup, maxBatch: Number(args['max-batch']), maxWaitMs: Number(args['max-wait-ms']), threads: args.threads ?? 'default' },
    latencyMs: first.latencyMs,
    requests: first.requests,
    errors: first.errors,
    timeouts: first.timeouts,
    non2xx: first.non2xx,
    statusCodes: first.statusCodes,
    server: first.server,
    exitCode: exits[first.variant] ?? null,
    exitCodes: exits,
    runs,
    /** Per variant, the highest offered rate it met (null: none). */
    highestRateMet: Object.fromEntries(variants.map((v) => [v, Math.max(...runs.filter((r) => r.variant === v && r.met).map((r) => r.rate), -Infinity)]).map(([v, r]) => [v, Number.isFinite(r) ? r : null])),
    target: { p95Ms: TARGET_P95_MS, rate: Math.max(...rates), minAchievedFraction: TARGET_RATE_FRACTION },
    passed: firstVariantRuns.every((r) => r.met) && exits[first.variant] === 0,
  };

  mkdirSync(dirname(resolve(args.json!)), { recursive: true });
  writeFileSync(resolve(args.json!), `${JSON.stringify(summary, null, 2)}\n`);

  process.stdout.write(
    [
      '| variant | offered req/s | achieved | p50 ms | p95 ms | p99 ms | errors / non-2xx / timeouts | texts per model call | model busy | met (p95 < 100 ms, ≥ 95% answered) |',
      '|---|---:|---:|---:|---:|---:|---|---:|---:|---|',
      ...runs.map((r) => {
        const l = r.latencyMs;
        return `| ${r.variant} | ${r.rate} | ${r.requests.achievedPerSecond} | ${l.p50} | ${l.p95} | ${l.p99} | ${r.errors} / ${r.non2xx} / ${r.timeouts} | ${r.server.meanBatchSize} | ${Math.round(100 * r.server.modelBusyFraction)}% | ${r.met ? 'yes' : 'no'} |`;
      }),
    ].join('\n') + `\nexit codes on SIGTERM: ${Object.entries(exits).map(([v, c]) => `${v} ${c ?? 'hung'}`).join(', ')}\n`,
  );
  process.stderr.write(`wrote ${resolve(args.json!)}\n`);
  if (args.strict && !summary.passed) process.exitCode = 1;
}

/** `base` ([flag, value, …] pairs) without the flags that `overrides` sets again: yargs would read a repeated flag as an array. */
function withoutOverridden(base: readonly string[], overrides: readonly string[]): string[] {
  const kept: string[] = [];
  for (let i = 0; i < base.length; i += 2) if (!overrides.includes(base[i]!)) kept.push(base[i]!, base[i + 1]!);
  return kept;
}

/** The /metrics counters one rate's load is measured by (cumulative, so read before and after). */
function serverCounters(metrics: string): { calls: number; texts: number; modelSeconds: number; serverSeconds: number; serverRequests: number } {
  return {
    calls: sample(metrics, 'kiln_batch_size_count{group="embed:doc"}') || 0,
    texts: sample(metrics, 'kiln_batch_size_sum{group="embed:doc"}') || 0,
    modelSeconds: sample(metrics, 'kiln_model_call_duration_seconds_sum{group="embed:doc"}') || 0,
    serverSeconds: sample(metrics, 'kiln_http_request_duration_seconds_sum{route="/embed"}') || 0,
    serverRequests: sample(metrics, 'kiln_http_request_duration_seconds_count{route="/embed"}') || 0,
  };
}

main().catch((error: Error) => {
  process.stderr.write(`bench:serve: ${error.message}\n`);
  process.exitCode = 1;
});

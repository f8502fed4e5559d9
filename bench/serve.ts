/**
 * `npm run bench:serve`: latency of `kiln serve` under a fixed request rate on loopback.
 *
 * Target: p95 < 100 ms at 200 requests/s of single-text POST /embed, with no errors,
 * timeouts or non-2xx answers, and the service exiting 0 on SIGTERM afterwards.
 *
 * Method:
 *   - The service runs as its own process, exactly as a user starts it:
 *     `node bin/kiln.js serve --model DIR --port 0` (the CLI runs from dist/: build first).
 *     The port is read from its start line; /healthz must answer 200 before anything else.
 *   - Warm-up: `--warmup` sequential requests (onnxruntime's first runs allocate).
 *   - Load: autocannon, `--connections` connections, `overallRate` `--rate` requests/s, for
 *     `--duration` seconds. Each request embeds one real job title (vacancyTitle of
 *     jobbert-titles/titles.csv), cycling through the file so the texts and their lengths vary.
 *     Autocannon paces each connection per second (rate / connections requests, then a pause
 *     until the next second), so the load arrives in bursts of up to --connections requests:
 *     harsher than evenly spaced arrivals, and what micro-batching is for.
 *   - Latency: each response's time from write to last byte, as autocannon measures it,
 *     collected from its 'response' events; percentiles over every response by nearest rank.
 *     (Autocannon's own histogram applies a coordinated-omission correction with a 1 ms
 *     expected interval at these rates, which adds synthetic samples; it is not used.)
 *   - Achieved rate: completed responses / duration. The target needs ≥ 95% of --rate.
 *   - The server's view, from its /metrics: mean texts per model call, mean model-call time
 *     and mean request time inside the server (warm-up included).
 *   - Then SIGTERM, and the exit code must be 0 within 30 s.
 *
 * Options: --model DIR (default $KILN_BENCH_MODEL) --rate 200 --duration 20 --connections 50
 *          --warmup 50 --max-batch 64 --max-wait-ms 5 --threads N --titles FILE
 *          --json bench/results/serve.json --strict (exit 1 when the target is missed).
 * A model to run it on: `npx kiln export --run runs/<id> --out exports/twotower`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parse as parseCsv } from 'csv-parse/sync';

import { argumentChecks, REPO_ROOT, round, runLoad, sample, startService, stopService, waitHealthy } from './http-load.js';

const TARGET_P95_MS = 100;
const TARGET_RATE_FRACTION = 0.95;

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    rate: { type: 'string', default: '200' },
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

  const rate = positive('rate', args.rate);
  const duration = positive('duration', args.duration);
  const connections = Math.round(positive('connections', args.connections));
  const warmup = Math.round(Number(args.warmup));
  const titlesFile = args.titles ?? join(process.env.KILN_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'datasets'), 'jobbert-titles', 'titles.csv');
  const titles = readTitles(titlesFile);

  const serveArgs = ['--max-batch', String(args['max-batch']), '--max-wait-ms', String(args['max-wait-ms'])];
  if (args.threads !== undefined) serveArgs.push('--threads', args.threads);
  const service = await startService(['--model', resolve(modelDir), ...serveArgs]);
  let exitCode: number | null = null;
  try {
    const modelId = await waitHealthy(service.url);
    process.stderr.write(`serving ${modelId} at ${service.url}; ${titles.length} titles; warming up\n`);

    let next = 0;
    const body = (): string => JSON.stringify({ texts: [titles[next++ % titles.length]!] });
    for (let i = 0; i < warmup; i++) {
      const reply = await fetch(`${service.url}/embed`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
      if (reply.status !== 200) throw new Error(`warm-up request answered ${reply.status}: ${await reply.text()}`);
    }

    process.stderr.write(`load: ${rate} requests/s over ${connections} connections for ${duration} s\n`);
    const { result, latencyMs, achievedPerSecond: achieved, latencies } = await runLoad({ url: service.url, path: '/embed', rate, duration, connections, body });

    const metrics = await (await fetch(`${service.url}/metrics`)).text();
    const calls = sample(metrics, 'kiln_batch_size_count{group="embed:doc"}');
    const texts = sample(metrics, 'kiln_batch_size_sum{group="embed:doc"}');
    const modelSeconds = sample(metrics, 'kiln_model_call_duration_seconds_sum{group="embed:doc"}');
    const serverSeconds = sample(metrics, 'kiln_http_request_duration_seconds_sum{route="/embed"}');
    const serverRequests = sample(metrics, 'kiln_http_request_duration_seconds_count{route="/embed"}');

    const stopping = performance.now();
    process.stderr.write('SIGTERM\n');
    exitCode = await stopService(service);

    process.stderr.write(`exit code ${exitCode ?? 'none (killed after 30 s)'} after ${((performance.now() - stopping) / 1000).toFixed(1)} s\n`);
    const completed = latencies.length;
    const summary = {
      date: new Date().toISOString(),
      model: modelId,
      modelDir: resolve(modelDir),
      cpus: availableParallelism(),
      node: process.version,
      settings: { rate, duration, connections, warmup, maxBatch: Number(args['max-batch']), maxWaitMs: Number(args['max-wait-ms']), threads: args.threads ?? 'default' },
      latencyMs,
      requests: { sent: result.requests.sent, completed, achievedPerSecond: round(achieved) },
      errors: result.errors,
      timeouts: result.timeouts,
      non2xx: result.non2xx,
      statusCodes: Object.fromEntries(Object.entries(result.statusCodeStats).map(([code, s]) => [code, s.count])),
      // The server's own view (warm-up included): time inside the model, and request to response.
      server: { modelCalls: calls, meanBatchSize: round(texts / calls), meanModelCallMs: round((1000 * modelSeconds) / calls), meanRequestMs: round((1000 * serverSeconds) / serverRequests) },
      exitCode,
      target: { p95Ms: TARGET_P95_MS, rate, minAchievedFraction: TARGET_RATE_FRACTION },
      passed: false,
    };
    summary.passed =
      summary.latencyMs.p95 < TARGET_P95_MS &&
      achieved >= TARGET_RATE_FRACTION * rate &&
      result.errors === 0 &&
      result.timeouts === 0 &&
      result.non2xx === 0 &&
      exitCode === 0;

    mkdirSync(dirname(resolve(args.json!)), { recursive: true });
    writeFileSync(resolve(args.json!), `${JSON.stringify(summary, null, 2)}\n`);

    const l = summary.latencyMs;
    process.stdout.write(
      [
        '| rate (req/s) | achieved | p50 ms | p95 ms | p99 ms | errors | non-2xx | timeouts | mean batch | exit | target |',
        '|---|---|---|---|---|---|---|---|---|---|---|',
        `| ${rate} | ${summary.requests.achievedPerSecond} | ${l.p50} | ${l.p95} | ${l.p99} | ${result.errors} | ${result.non2xx} | ${result.timeouts} | ${summary.server.meanBatchSize} | ${exitCode ?? 'hung'} | ${summary.passed ? 'pass' : 'FAIL'} (p95 < ${TARGET_P95_MS} ms at ${rate} req/s, no errors) |`,
      ].join('\n') + '\n',
    );
    process.stderr.write(`wrote ${resolve(args.json!)}\n`);
    if (args.strict && !summary.passed) process.exitCode = 1;
  } finally {
    if (service.child.exitCode === null && exitCode === null) service.child.kill('SIGKILL');
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:serve: ${error.message}\n`);
  process.exitCode = 1;
});

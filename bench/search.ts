/**
 * `npm run bench:search -- --model EXPORT_DIR --index INDEX_DIR`: latency of POST /search on a
 * search index, in each mode, under a fixed request rate on loopback.
 *
 * Target: hybrid p95 < 50 ms at 200 requests/s, with no errors, timeouts or non-2xx answers.
 *
 * Method (the HTTP plumbing and how latency is measured: bench/http-load.ts):
 *   - The service runs as its own process, as a user starts it:
 *     `node bin/kiln.js serve --model DIR --index INDEX --port 0` (build dist/ first).
 *   - Queries are real job-ad sentences: the distinct `sentence` values of the TECH and HOUSE
 *     skill-extraction validation files, cycled, each request one query with k = 10. They are
 *     what the ESCO skills index is for (a sentence in, the skills it mentions out), and long:
 *     the lexical rankers' cost grows with the query's n-grams.
 *   - For each mode (dense, lexical, hybrid) in turn: `--warmup` sequential requests, then the
 *     load at `--rate` for `--duration` s, with each arrival pattern of `--arrivals`:
 *       paced   open loop, request i sent at i / rate s whether or not earlier ones are answered
 *               (independent clients); the queue a request meets is the service's own backlog
 *       bursts  autocannon over `--connections` connections, as bench:serve: each connection
 *               sends its rate / connections requests at the start of every second, so up to
 *               `--connections` requests arrive at once and the last waits for all before it
 *     The target is judged on paced arrivals; bursts show what a synchronised client does.
 *   - The server's view per mode, from /metrics: mean queries per model call (micro-batching)
 *     and mean time inside the model call (query embedding + dense search).
 *   - Then SIGTERM; the exit code must be 0.
 *
 * The index to run it on (ESCO skills, 13,896 documents, labels and alt labels):
 *   npx kiln index build --model exports/twotower --corpus $KILN_DATA/esco-v1.1.1/skills_en.csv \
 *     --id-field conceptUri --text-field preferredLabel --labels-field altLabels --out indexes/esco-skills
 *
 * Options: --model DIR --index DIR --rate 200 --duration 20 --connections 50 --warmup 50
 *          --modes dense,lexical,hybrid --arrivals paced,bursts --threads N --lexical-threads 1 --max-wait-ms 5
 *          --json bench/results/search.json
 *          --strict (exit 1 when the target is missed).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';

import { parse as parseCsv } from 'csv-parse/sync';

import { argumentChecks, REPO_ROOT, runLoad, runPaced, sample, startService, stopService, waitHealthy, round } from './http-load.js';

const TARGET_P95_MS = 50;
const TARGET_MODE = 'hybrid';
const MODES = ['dense', 'lexical', 'hybrid'] as const;
const ARRIVALS = ['paced', 'bursts'] as const;
const TARGET_ARRIVALS = 'paced';

const { values: args } = parseArgs({
  options: {
    model: { type: 'string' },
    index: { type: 'string' },
    rate: { type: 'string', default: '200' },
    duration: { type: 'string', default: '20' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string', default: '50' },
    modes: { type: 'string', default: MODES.join(',') },
    arrivals: { type: 'string', default: ARRIVALS.join(',') },
    threads: { type: 'string' },
    'lexical-threads': { type: 'string', default: '1' },
    'max-wait-ms': { type: 'string', default: '5' },
    json: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'search.json') },
    strict: { type: 'boolean', default: false },
  },
});

const checks = argumentChecks('bench:search');
// Annotated, so that TypeScript sees the calls end the program.
const fail: (message: string) => never = checks.fail;
const positive = checks.positive;

/** Distinct job-ad sentences of the TECH and HOUSE validation files. */
function readSentences(dataRoot: string): string[] {
  const sentences = new Set<string>();
  for (const subset of ['tech', 'house']) {
    const file = join(dataRoot, 'skill-extraction-benchmark', 'data', `${subset}_validation_annotations.csv`);
    if (!existsSync(file)) fail(`${file} not found; set KILN_DATA to the data root`);
    for (const row of parseCsv(readFileSync(file, 'utf8'), { columns: true, skip_empty_lines: true }) as Record<string, string>[]) {
      const sentence = (row['sentence'] ?? '').replace(/\s+/g, ' ').trim();
      if (sentence !== '') sentences.add(sentence);
    }
  }
  return [...sentences];
}

async function main(): Promise<void> {
  const modelDir = args.model ?? fail('pass --model DIR (an exported two-tower model: npx kiln export --run runs/<id> --out exports/twotower)');
  const indexDir = args.index ?? fail('pass --index DIR (npx kiln index build …; see the header of bench/search.ts)');
  if (!existsSync(join(indexDir, 'index.json'))) fail(`${indexDir}: no index.json; build one with \`npx kiln index build\``);
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'index-build.js'))) fail('dist/ is not built: npx tsc -p tsconfig.build.json');
  const modes = args.modes!.split(',').map((m) => m.trim());
  for (const m of modes) if (!(MODES as readonly string[]).includes(m)) fail(`--modes: ${m} is not one of ${MODES.join(', ')}`);
  const arrivals = args.arrivals!.split(',').map((a) => a.trim());
  for (const a of arrivals) if (!(ARRIVALS as readonly string[]).includes(a)) fail(`--arrivals: ${a} is not one of ${ARRIVALS.join(', ')}`);
  const rate = positive('rate', args.rate);
  const duration = positive('duration', args.duration);
  const connections = Math.round(positive('connections', args.connections));
  const warmup = Math.round(Number(args.warmup));
  const sentences = readSentences(process.env.KILN_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'datasets'));
  const manifest = JSON.parse(readFileSync(join(indexDir, 'index.json'), 'utf8')) as { documents: number; dense: { search: string }; hybrid: object };

  const serveArgs = ['--model', resolve(modelDir), '--index', resolve(indexDir), '--max-wait-ms', String(args['max-wait-ms'])];
  if (args.threads !== undefined) serveArgs.push('--threads', args.threads);
  serveArgs.push('--lexical-threads', String(Math.round(positive('lexical-threads', args['lexical-threads']))));
  const started = performance.now();
  const service = await startService(serveArgs);
  const startSeconds = (performance.now() - started) / 1000;
  let exitCode: number | null = null;
  try {
    const modelId = await waitHealthy(service.url);
    process.stderr.write(`serving ${modelId} with ${manifest.documents} documents at ${service.url} (started in ${startSeconds.toFixed(1)} s); ${sentences.length} query sentences\n`);
    const rows: Array<Record<string, unknown>> = [];
    let previous = { calls: 0, queries: 0, seconds: 0 };
    for (const arrival of arrivals) for (const mode of modes) {
      let next = 0;
      const body = (): string => JSON.stringify({ query: sentences[next++ % sentences.length]!, k: 10, mode });
      for (let i = 0; i < warmup; i++) {
        const reply = await fetch(`${service.url}/search`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
        if (reply.status !== 200) throw new Error(`warm-up request (${mode}) answered ${reply.status}: ${await reply.text()}`);
      }
      process.stderr.write(`${mode}, ${arrival}: ${rate} requests/s for ${duration} s${arrival === 'bursts' ? ` over ${connections} connections` : ''}\n`);
      const load =
        arrival === 'paced'
          ? await runPaced({ url: service.url, path: '/search', rate, duration, body })
          : await (async () => {
              const l = await runLoad({ url: service.url, path: '/search', rate, duration, connections, body });
              return { ...l, errors: l.result.errors, timeouts: l.result.timeouts, non2xx: l.result.non2xx };
            })();
      const metrics = await (await fetch(`${service.url}/metrics`)).text();
      const group = manifestQueryGroup(metrics);
      const now = {
        calls: sample(metrics, `kiln_batch_size_count{group="${group}"}`) || 0,
        queries: sample(metrics, `kiln_batch_size_sum{group="${group}"}`) || 0,
        seconds: sample(metrics, `kiln_model_call_duration_seconds_sum{group="${group}"}`) || 0,
      };
      const calls = now.calls - previous.calls;
      rows.push({
        mode,
        arrivals: arrival,
        latencyMs: load.latencyMs,
        achievedPerSecond: load.achievedPerSecond,
        errors: load.errors,
        timeouts: load.timeouts,
        non2xx: load.non2xx,
        server: calls > 0 ? { modelCalls: calls, meanQueriesPerCall: round((now.queries - previous.queries) / calls), meanModelCallMs: round((1000 * (now.seconds - previous.seconds)) / calls) } : null,
      });
      previous = now;
    }
    exitCode = await stopService(service);

    const target = rows.find((row) => row['mode'] === TARGET_MODE && row['arrivals'] === TARGET_ARRIVALS);
    const passed =
      target !== undefined &&
      (target['latencyMs'] as { p95: number }).p95 < TARGET_P95_MS &&
      rows.every((row) => row['errors'] === 0 && row['timeouts'] === 0 && row['non2xx'] === 0) &&
      exitCode === 0;
    const summary = {
      date: new Date().toISOString(),
      model: modelId,
      index: resolve(indexDir),
      documents: manifest.documents,
      denseSearch: manifest.dense.search,
      hybrid: manifest.hybrid,
      cpu: `${cpus()[0]?.model ?? 'unknown'} × ${availableParallelism()}`,
      node: process.version,
      serviceStartSeconds: round(startSeconds),
      settings: { rate, duration, connections, warmup, k: 10, maxWaitMs: Number(args['max-wait-ms']), threads: args.threads ?? 'default', lexicalThreads: Number(args['lexical-threads']), queries: sentences.length },
      modes: rows,
      exitCode,
      target: { mode: TARGET_MODE, arrivals: TARGET_ARRIVALS, p95Ms: TARGET_P95_MS, rate },
      passed,
    };
    mkdirSync(dirname(resolve(args.json!)), { recursive: true });
    writeFileSync(resolve(args.json!), `${JSON.stringify(summary, null, 2)}\n`);
    const lines = ['| mode | arrivals | rate (req/s) | achieved | p50 ms | p95 ms | p99 ms | errors / non-2xx / timeouts | queries per model call | model call ms |', '|---|---|---|---|---|---|---|---|---|---|'];
    for (const row of rows) {
      const l = row['latencyMs'] as { p50: number; p95: number; p99: number };
      const server = row['server'] as { meanQueriesPerCall: number; meanModelCallMs: number } | null;
      lines.push(`| ${String(row['mode'])} | ${String(row['arrivals'])} | ${rate} | ${String(row['achievedPerSecond'])} | ${l.p50} | ${l.p95} | ${l.p99} | ${String(row['errors'])} / ${String(row['non2xx'])} / ${String(row['timeouts'])} | ${server?.meanQueriesPerCall ?? '-'} | ${server?.meanModelCallMs ?? '-'} |`);
    }
    process.stdout.write(`${lines.join('\n')}\n\nhybrid p95 < ${TARGET_P95_MS} ms at ${rate} req/s (${TARGET_ARRIVALS} arrivals), no errors, exit 0 on SIGTERM (exit ${exitCode ?? 'hung'}): ${passed ? 'met' : 'MISSED'}\n`);
    process.stderr.write(`wrote ${resolve(args.json!)}\n`);
    if (args.strict && !passed) process.exitCode = 1;
  } finally {
    if (service.child.exitCode === null && exitCode === null) service.child.kill('SIGKILL');
  }
}

/** The batch group /search queries run in (`search` or `search:<type>`), read from the metrics. */
function manifestQueryGroup(metrics: string): string {
  return /kiln_batch_size_count\{group="(search[^"]*)"\}/.exec(metrics)?.[1] ?? 'search';
}

main().catch((error: Error) => {
  process.stderr.write(`bench:search: ${error.message}\n`);
  process.exitCode = 1;
});

/**
 * `npm run bench:skills-serve -- --skills SKILLS_DIR` (or `--model EXPORT_DIR`): the highest
 * request rate at which `kiln serve --skills` answers POST /skills on real job postings with p95
 * latency under 100 ms and nothing dropped, on this machine.
 *
 * Aim: 200 postings/s on this machine, the rate of LinkedIn's case study ("Extracting skills from
 * content to fuel the LinkedIn Skills Graph", LinkedIn Engineering, 2023: about 200 global
 * profile edits per second to tag in near real time). The report also says how many machines
 * like this one that rate needs: ceil(200 / best rate).
 *
 * Method (the HTTP plumbing and how latency is measured: bench/http-load.ts):
 *   - The skills model: `--skills DIR`, or built here from `--model EXPORT` with
 *     `buildSkillsModel` (src/skills/model.ts) over $KILN_DATA into a temporary directory that
 *     is removed afterwards (about half a minute on two cores: every ESCO skill is embedded).
 *   - The service runs as its own process, as a user starts it:
 *     `node bin/kiln.js serve --skills DIR --port 0` (build dist/ first); its own copy of the
 *     model is the served one.
 *   - Postings: SkillSpan dev rebuilt into whole postings (`readSkillspanPostings`, src/skills/
 *     postings.ts; 58 postings of about 55 sentences), one posting per request as
 *     {"id", "text"} with the service's defaults (graph expansion on), cycled in file order.
 *   - `--warmup` sequential requests, then fixed-rate runs with autocannon (`runLoad`): each
 *     `overallRate` requests/s over min(`--connections`, rate) connections. Autocannon paces
 *     each connection per second, so requests arrive in bursts at the start of each second:
 *     harsher than evenly spaced arrivals, and what micro-batching is for. A run passes when
 *     p95 < 100 ms, no errors, no non-2xx (a 503 from the queue limit is a drop), no timeouts
 *     (10 s), and achieved ≥ 95% of offered. Between runs the service's queue drains
 *     (kiln_queue_depth 0) and it idles for a second.
 *       1. step     from `--start-rate`, multiplying by `--factor` (rounded up to a whole rate),
 *                   `--step-duration` s each, until a run fails or `--max-rate` has passed;
 *       2. refine   up to `--refine` bisections between the last passing and the first failing
 *                   rate, same duration;
 *       3. confirm  the best rate again for `--confirm-duration` s; should that fail, 80% of
 *                   it (at most two more tries). The best rate is the confirmed one (0: none).
 *   - The server's view of each run, from /metrics differences: sentences per model call
 *     (micro-batching across postings), mean model-call time and mean request time inside
 *     the server.
 *   - Then SIGTERM; the exit code must be 0.
 *
 * Options: --skills DIR | --model DIR  --start-rate 1 --factor 2 --max-rate 400 --refine 3
 *          --step-duration 10 --confirm-duration 30 --connections 50 --warmup 10
 *          --max-batch 64 --max-wait-ms 5 --threads N --lexical-threads 2 --json bench/results/skills-serve.json
 *          --quick (a smoke run: 3 s steps, 5 s confirmation, one bisection, 3 warm-up requests)
 *          --strict (exit 1 when the aim is missed).
 *
 * @example
 * npx kiln skills build --model exports/twotower --out /tmp/skills-twotower
 * KILN_DATA=/data npm run bench:skills-serve -- --skills /tmp/skills-twotower --quick
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { setTimeout as sleep } from 'node:timers/promises';

import { createContext } from '../src/data/files.js';
import { buildSkillsModel } from '../src/skills/model.js';
import { readSkillspanPostings } from '../src/skills/postings.js';
import { segmentPosting } from '../src/skills/sections.js';
import { argumentChecks, REPO_ROOT, round, runLoad, sample, startService, stopService, waitHealthy, type Service } from './http-load.js';
import { cpuModel } from './machine.js';
import type { SkillsServeJson, SkillsServeRun } from './report.js';

const TARGET_P95_MS = 100;
const TARGET_RATE_FRACTION = 0.95;
/** LinkedIn's case study: about 200 profile edits per second to tag. */
const CASE_STUDY_RATE = 200;
const TARGET_RATE = CASE_STUDY_RATE;

const { values: args } = parseArgs({
  options: {
    skills: { type: 'string' },
    model: { type: 'string' },
    'start-rate': { type: 'string', default: '1' },
    factor: { type: 'string', default: '2' },
    'max-rate': { type: 'string', default: '400' },
    refine: { type: 'string' },
    'step-duration': { type: 'string' },
    'confirm-duration': { type: 'string' },
    connections: { type: 'string', default: '50' },
    warmup: { type: 'string' },
    'max-batch': { type: 'string', default: '64' },
    'max-wait-ms': { type: 'string', default: '5' },
    threads: { type: 'string' },
    'lexical-threads': { type: 'string', default: '2' },
    json: { type: 'string', default: join(REPO_ROOT, 'bench', 'results', 'skills-serve.json') },
    quick: { type: 'boolean', default: false },
    strict: { type: 'boolean', default: false },
  },
  strict: true,
});

const checks = argumentChecks('bench:skills-serve');
// Annotated, so that TypeScript sees the calls end the program.
const fail: (message: string) => never = checks.fail;
const positive = checks.positive;
/** A whole number ≥ `min`. */
function integer(name: string, value: string | undefined, min: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min) fail(`--${name} must be an integer ≥ ${min}, got ${String(value)}`);
  return n;
}

// --quick's settings, each overridden by its flag when given.
const QUICK = { refine: '1', 'step-duration': '3', 'confirm-duration': '5', warmup: '3' };
const FULL = { refine: '3', 'step-duration': '10', 'confirm-duration': '30', warmup: '10' };
const setting = (name: keyof typeof FULL): string => args[name] ?? (args.quick ? QUICK : FULL)[name];

interface Counters {
  calls: number;
  sentences: number;
  modelSeconds: number;
  requestSeconds: number;
  requests: number;
}

async function counters(url: string): Promise<Counters & { queued: number }> {
  const metrics = await (await fetch(`${url}/metrics`)).text();
  const value = (name: string): number => sample(metrics, name) || 0;
  return {
    calls: value('kiln_batch_size_count{group="skills"}'),
    sentences: value('kiln_batch_size_sum{group="skills"}'),
    modelSeconds: value('kiln_model_call_duration_seconds_sum{group="skills"}'),
    requestSeconds: value('kiln_http_request_duration_seconds_sum{route="/skills"}'),
    requests: value('kiln_http_request_duration_seconds_count{route="/skills"}'),
    queued: value('kiln_queue_depth'),
  };
}

/** Until the service has nothing queued (requests autocannon left in flight are answered), then a second of idle. */
async function drain(url: string): Promise<void> {
  const deadline = Date.now() + 60_000;
  while ((await counters(url)).queued > 0 && Date.now() < deadline) await sleep(100);
  await sleep(1000);
}

async function main(): Promise<void> {
  if (args.skills === undefined && args.model === undefined) {
    fail('pass --skills DIR (a skills model: npx kiln skills build --model exports/twotower --out DIR) or --model DIR (an exported two-tower model to build one from)');
  }
  if (args.skills !== undefined && !existsSync(join(args.skills, 'skills.json'))) fail(`--skills ${args.skills}: no skills.json; build one with \`npx kiln skills build --model exports/twotower --out ${args.skills}\``);
  if (args.skills === undefined && !existsSync(join(args.model!, 'model.json'))) fail(`--model ${args.model}: no model.json; expected a directory written by \`npx kiln export --run runs/<id> --out exports/twotower\``);
  if (!existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'serve.js'))) fail('dist/ has no serve command; build first: npx tsc -p tsconfig.build.json');
  const startRate = integer('start-rate', args['start-rate'], 1);
  const factor = positive('factor', args.factor);
  if (factor <= 1) fail(`--factor must be > 1, got ${args.factor}`);
  const maxRate = integer('max-rate', args['max-rate'], startRate);
  const refine = integer('refine', setting('refine'), 0);
  const stepDuration = positive('step-duration', setting('step-duration'));
  const confirmDuration = positive('confirm-duration', setting('confirm-duration'));
  const connections = integer('connections', args.connections, 1);
  const warmup = integer('warmup', setting('warmup'), 0);
  if (args.threads !== undefined) integer('threads', args.threads, 1);
  const dataRoot = process.env.KILN_DATA ?? resolve(REPO_ROOT, '..', 'shared', 'datasets');
  const ctx = createContext({ dataRoot, onBadRow: 'fail' });

  // ---- the postings ----
  const postings = await readSkillspanPostings(ctx, 'dev');
  if (postings.length === 0) fail(`${dataRoot}: SkillSpan dev holds no postings`);
  const meanChars = postings.reduce((n, p) => n + p.text.length, 0) / postings.length;
  const meanSentences = postings.reduce((n, p) => n + segmentPosting(p.text).sentences.length, 0) / postings.length;
  process.stderr.write(`${postings.length} SkillSpan dev postings, ${meanChars.toFixed(0)} characters and ${meanSentences.toFixed(1)} sentences each on average\n`);

  // ---- the skills model ----
  let skillsDir = args.skills === undefined ? undefined : resolve(args.skills);
  let tempDir: string | null = null;
  if (skillsDir === undefined) {
    tempDir = mkdtempSync(join(tmpdir(), 'kiln-bench-skills-'));
    skillsDir = join(tempDir, 'skills');
    process.stderr.write(`building a skills model from ${args.model} into ${skillsDir}\n`);
    const built = await buildSkillsModel({ model: args.model!, out: skillsDir, ctx, threads: args.threads === undefined ? undefined : Number(args.threads), log: (line) => process.stderr.write(`  ${line}\n`) });
    process.stderr.write(`built in ${built.seconds.toFixed(1)} s\n`);
  }
  const manifest = JSON.parse(readFileSync(join(skillsDir, 'skills.json'), 'utf8')) as { taxonomy: { skills: number } };

  const serveArgs = ['--skills', skillsDir, '--max-batch', String(args['max-batch']), '--max-wait-ms', String(args['max-wait-ms'])];
  if (args.threads !== undefined) serveArgs.push('--threads', args.threads);
  // Two workers per lexical ranker: a posting's sentences spread over both cores.
  serveArgs.push('--lexical-threads', args['lexical-threads']);
  let service: Service | undefined;
  let exitCode: number | null = null;
  try {
    service = await startService(serveArgs);
    const url = service.url;
    const modelId = await waitHealthy(url);
    process.stderr.write(`serving ${modelId} with ${manifest.taxonomy.skills} skills at ${url}; warming up\n`);

    let next = 0;
    const body = (): string => {
      const p = postings[next++ % postings.length]!;
      return JSON.stringify({ id: p.id, text: p.text });
    };
    for (let i = 0; i < warmup; i++) {
      const reply = await fetch(`${url}/skills`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: body() });
      if (reply.status !== 200) throw new Error(`warm-up request answered ${reply.status}: ${await reply.text()}`);
    }

    const runs: SkillsServeRun[] = [];
    const run = async (phase: SkillsServeRun['phase'], offered: number, duration: number): Promise<boolean> => {
      await drain(url);
      const before = await counters(url);
      const load = await runLoad({ url, path: '/skills', rate: offered, duration, connections: Math.min(connections, offered), body });
      const after = await counters(url);
      const calls = after.calls - before.calls;
      const requests = after.requests - before.requests;
      const r = load.result;
      const passed = load.latencyMs.p95 < TARGET_P95_MS && r.errors === 0 && r.non2xx === 0 && r.timeouts === 0 && load.achievedPerSecond >= TARGET_RATE_FRACTION * offered;
      runs.push({
        phase,
        offered,
        duration,
        achievedPerSecond: load.achievedPerSecond,
        latencyMs: load.latencyMs,
        sent: r.requests.sent,
        completed: load.latencies.length,
        errors: r.errors,
        timeouts: r.timeouts,
        non2xx: r.non2xx,
        passed,
        server:
          calls > 0 && requests > 0
            ? {
                modelCalls: calls,
                meanSentencesPerCall: round((after.sentences - before.sentences) / calls),
                meanModelCallMs: round((1000 * (after.modelSeconds - before.modelSeconds)) / calls),
                meanRequestMs: round((1000 * (after.requestSeconds - before.requestSeconds)) / requests),
              }
            : null,
      });
      const l = load.latencyMs;
      process.stderr.write(`${phase} ${offered} req/s for ${duration} s: achieved ${load.achievedPerSecond}, p50 ${l.p50} ms, p95 ${l.p95} ms, p99 ${l.p99} ms, errors ${r.errors}, non-2xx ${r.non2xx}, timeouts ${r.timeouts}: ${passed ? 'pass' : 'fail'}\n`);
      return passed;
    };

    // 1. step up until a run fails (or the ceiling has passed).
    let lo = 0; // highest passing rate
    let hi: number | null = null; // lowest failing rate
    for (let rate = startRate; ; rate = Math.min(maxRate, Math.max(rate + 1, Math.ceil(rate * factor)))) {
      if (await run('step', rate, stepDuration)) lo = rate;
      else {
        hi = rate;
        break;
      }
      if (rate >= maxRate) break;
    }
    // 2. bisect between them.
    for (let i = 0; i < refine && hi !== null && hi - lo > 1; i++) {
      const mid = Math.round((lo + hi) / 2);
      if (await run('refine', mid, stepDuration)) lo = mid;
      else hi = mid;
    }
    // 3. confirm the best over a longer run; step down on failure.
    let bestRate = 0;
    for (let tries = 0, rate = lo; tries < 3 && rate >= 1; tries++) {
      if (await run('confirm', rate, confirmDuration)) {
        bestRate = rate;
        break;
      }
      rate = Math.floor(rate * 0.8);
    }

    exitCode = await stopService(service);
    const machinesNeeded = bestRate > 0 ? Math.ceil(CASE_STUDY_RATE / bestRate) : null;
    const passed = bestRate >= TARGET_RATE && exitCode === 0;
    const cores = availableParallelism();
    // Every setting, though the report reads only some.
    const settings = { connections, stepDuration, confirmDuration, startRate, factor, maxRate, refine, warmup, maxBatch: Number(args['max-batch']), maxWaitMs: Number(args['max-wait-ms']), threads: args.threads ?? 'default', quick: args.quick };
    const summary: SkillsServeJson & Record<string, unknown> = {
      date: new Date().toISOString(),
      model: modelId,
      skills: { dir: skillsDir, builtHere: tempDir !== null, skills: manifest.taxonomy.skills },
      cpu: cpuModel(),
      cores,
      node: process.version,
      postings: { count: postings.length, meanChars: round(meanChars), meanSentences: round(meanSentences) },
      settings,
      runs,
      bestRate,
      machinesNeeded,
      exitCode,
      target: { p95Ms: TARGET_P95_MS, minAchievedFraction: TARGET_RATE_FRACTION, rate: TARGET_RATE, caseStudyRate: CASE_STUDY_RATE },
      passed,
    };
    mkdirSync(dirname(resolve(args.json!)), { recursive: true });
    writeFileSync(resolve(args.json!), `${JSON.stringify(summary, null, 2)}\n`);

    const lines = [
      '| phase | offered req/s | s | achieved | p50 ms | p95 ms | p99 ms | errors / non-2xx / timeouts | sentences per model call | model call ms | result |',
      '|---|---:|---:|---:|---:|---:|---:|---|---:|---:|---|',
      ...runs.map((r) => {
        const l = r.latencyMs;
        return `| ${r.phase} | ${r.offered} | ${r.duration} | ${r.achievedPerSecond} | ${l.p50} | ${l.p95} | ${l.p99} | ${r.errors} / ${r.non2xx} / ${r.timeouts} | ${r.server?.meanSentencesPerCall ?? '-'} | ${r.server?.meanModelCallMs ?? '-'} | ${r.passed ? 'pass' : 'fail'} |`;
      }),
      '',
      `best rate: ${bestRate} postings/s with p95 < ${TARGET_P95_MS} ms and nothing dropped (${bestRate > 0 ? `confirmed over ${confirmDuration} s` : 'no rate passed'}; ${cores} cores, ${cpuModel()})`,
      `LinkedIn case study, ${CASE_STUDY_RATE} edits/s: ${machinesNeeded === null ? 'no count (no rate passed)' : `ceil(${CASE_STUDY_RATE} / ${bestRate}) = ${machinesNeeded} such ${cores}-core machine${machinesNeeded === 1 ? '' : 's'}`}`,
      `aim ${TARGET_RATE} postings/s on this machine, exit 0 on SIGTERM (exit ${exitCode ?? 'hung'}): ${passed ? 'PASS' : 'MISS'}`,
    ];
    process.stdout.write(`${lines.join('\n')}\n`);
    process.stderr.write(`wrote ${resolve(args.json!)}\n`);
    if (args.strict && !passed) process.exitCode = 1;
  } finally {
    if (service !== undefined && service.child.exitCode === null && exitCode === null) service.child.kill('SIGKILL');
    if (tempDir !== null) rmSync(tempDir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`bench:skills-serve: ${error.message}\n`);
  process.exitCode = 1;
});

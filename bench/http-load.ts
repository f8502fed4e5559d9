/**
 * What the HTTP benchmarks (bench/serve.ts, bench/search.ts) share: starting `kiln serve` as
 * its own process, waiting for /healthz, an autocannon run at a fixed rate whose latencies are
 * collected per response, and the arithmetic on them.
 *
 * Latency is each response's time from write to last byte, as autocannon measures it, collected
 * from its 'response' events; percentiles are nearest rank over every response. (Autocannon's
 * own histogram applies a coordinated-omission correction with a 1 ms expected interval at
 * these rates, which adds synthetic samples; it is not used.) Autocannon paces each connection
 * per second (rate / connections requests, then a pause until the next second), so the load
 * arrives in bursts of up to `connections` requests: harsher than evenly spaced arrivals, and
 * what micro-batching is for.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

// autocannon ships no types; the part of its API used here.
interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest, context: object) => AutocannonRequest;
}
export interface AutocannonResult {
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  requests: { sent: number; total: number; average: number };
  latency: { p50: number; p99: number; average: number; max: number };
  statusCodeStats: Record<string, { count: number }>;
}
interface AutocannonInstance extends PromiseLike<AutocannonResult> {
  on(event: 'response', listener: (client: unknown, statusCode: number, bytes: number, responseTimeMs: number) => void): void;
}
type Autocannon = (options: {
  url: string;
  connections: number;
  duration: number;
  overallRate: number;
  timeout: number;
  requests: AutocannonRequest[];
}) => AutocannonInstance;
const autocannon = createRequire(import.meta.url)('autocannon') as Autocannon;

/** A benchmark's way out on a bad argument (exit 2 with its name), and the check for positive numbers. */
export function argumentChecks(bench: string): { fail: (message: string) => never; positive: (name: string, value: string | undefined) => number } {
  const fail = (message: string): never => {
    process.stderr.write(`${bench}: ${message}\n`);
    process.exit(2);
  };
  const positive = (name: string, value: string | undefined): number => {
    const n = Number(value);
    if (!Number.isFinite(n) || n <= 0) fail(`--${name} must be a positive number, got ${String(value)}`);
    return n;
  };
  return { fail, positive };
}

/** Nearest-rank percentile of sorted values. */
export function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}

export function round(x: number): number {
  return Math.round(x * 100) / 100;
}

export interface Service {
  child: ChildProcess;
  url: string;
  exited: Promise<number | null>;
  stderr: () => string;
}

/** Starts `kiln serve --port 0 …` (the CLI runs from dist/) and resolves once it has printed its start line. */
export function startService(serveArgs: readonly string[]): Promise<Service> {
  const child = spawn(process.execPath, [join(REPO_ROOT, 'bin', 'kiln.js'), 'serve', '--port', '0', ...serveArgs], {
    cwd: REPO_ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stderr!.on('data', (c: Buffer) => (stderr += c.toString()));
  const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
  return new Promise((resolveStart, rejectStart) => {
    const timer = setTimeout(() => rejectStart(new Error(`kiln serve printed no start line within 60 s; stderr:\n${stderr}`)), 60_000);
    child.stdout!.on('data', (c: Buffer) => {
      stdout += c.toString();
      const m = /^listening on (http:\/\/\S+) /m.exec(stdout);
      if (m !== null) {
        clearTimeout(timer);
        resolveStart({ child, url: m[1]!, exited, stderr: () => stderr });
      }
    });
    void exited.then((code) => {
      clearTimeout(timer);
      rejectStart(new Error(`kiln serve exited ${code} before listening:\n${stderr}`));
    });
  });
}

/** Resolves to the served model id once /healthz answers 200. */
export async function waitHealthy(url: string): Promise<string> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const reply = await fetch(`${url}/healthz`);
      if (reply.status === 200) return ((await reply.json()) as { model: string }).model;
    } catch {
      // not accepting yet
    }
    if (Date.now() > deadline) throw new Error(`${url}/healthz did not answer 200 within 30 s`);
    await sleep(100);
  }
}

/** SIGTERM, then the exit code (null when it has not exited within 30 s). */
export async function stopService(service: Service): Promise<number | null> {
  service.child.kill('SIGTERM');
  // An unref'd timer: a pending 30 s sleep must not keep this process alive once the child is gone.
  return Promise.race([service.exited, sleep(30_000, null, { ref: false })]);
}

/** One value of a Prometheus text sample line, or NaN. */
export function sample(metrics: string, name: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? NaN : Number(line.slice(name.length + 1));
}

export interface LoadResult {
  result: AutocannonResult;
  /** Every response's latency in ms, sorted. */
  latencies: number[];
  latencyMs: { p50: number; p95: number; p99: number; mean: number; max: number };
  achievedPerSecond: number;
}

/** POSTs `body()` as JSON to `path` at `rate` requests/s over `connections` connections for `duration` s (with `headers` besides the content type). */
export async function runLoad(options: { url: string; path: string; rate: number; duration: number; connections: number; body: () => string; headers?: Record<string, string> }): Promise<LoadResult> {
  const latencies: number[] = [];
  const instance = autocannon({
    url: options.url,
    connections: options.connections,
    duration: options.duration,
    overallRate: options.rate,
    timeout: 10,
    requests: [{ method: 'POST', path: options.path, headers: { 'content-type': 'application/json', ...options.headers }, setupRequest: (request) => ({ ...request, body: options.body() }) }],
  });
  instance.on('response', (_client, _status, _bytes, ms) => latencies.push(ms));
  const result = await instance;
  return { result, ...summarise(latencies, result.duration) };
}

/** Sorts the latencies and gives their percentiles and the completed rate. */
function summarise(latencies: number[], seconds: number): Omit<LoadResult, 'result'> {
  latencies.sort((a, b) => a - b);
  const completed = latencies.length;
  return {
    latencies,
    latencyMs: {
      p50: round(percentile(latencies, 50)),
      p95: round(percentile(latencies, 95)),
      p99: round(percentile(latencies, 99)),
      mean: round(latencies.reduce((s, x) => s + x, 0) / Math.max(1, completed)),
      max: round(latencies[completed - 1] ?? NaN),
    },
    achievedPerSecond: round(completed / seconds),
  };
}

/**
 * Open-loop load at evenly spaced arrivals: request i is sent at t0 + i / rate whether or not
 * earlier ones have been answered (as independent clients behave), for `duration` s. Latency is
 * from send to the last byte of the body. Unlike autocannon's per-second bursts, the queue a
 * request meets is the service's own backlog at that rate, not a burst the client made.
 */
export async function runPaced(options: { url: string; path: string; rate: number; duration: number; body: () => string; timeoutMs?: number }): Promise<Omit<LoadResult, 'result'> & { errors: number; timeouts: number; non2xx: number; sent: number }> {
  const total = Math.round(options.rate * options.duration);
  const latencies: number[] = [];
  let errors = 0;
  let timeouts = 0;
  let non2xx = 0;
  const started = performance.now();
  const inFlight: Promise<void>[] = [];
  for (let i = 0; i < total; i++) {
    const due = started + (1000 * i) / options.rate;
    const wait = due - performance.now();
    if (wait > 1) await sleep(wait);
    const body = options.body();
    const sent = performance.now();
    inFlight.push(
      fetch(`${options.url}${options.path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body, signal: AbortSignal.timeout(options.timeoutMs ?? 10_000) })
        .then(async (reply) => {
          await reply.arrayBuffer();
          if (reply.status < 200 || reply.status >= 300) non2xx++;
          latencies.push(performance.now() - sent);
        })
        .catch((error: Error) => {
          if (error.name === 'TimeoutError') timeouts++;
          else errors++;
        }),
    );
  }
  await Promise.all(inFlight);
  return { ...summarise(latencies, (performance.now() - started) / 1000), errors, timeouts, non2xx, sent: total };
}

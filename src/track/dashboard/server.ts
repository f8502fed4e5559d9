/**
 * `kiln dashboard`'s HTTP service (fastify) over the run store (src/track/store.ts):
 *
 *   GET /                              the page (./page/index.html, app.js, style.css)
 *   GET /vendor/echarts.min.js         ECharts, served from node_modules: the page works offline
 *   GET /api/runs                      every run with its params, results and tags
 *   GET /api/runs/:id                  one run: record, params, tags, results, artifacts, the
 *                                      evaluations and exports made from it, config.yaml,
 *                                      model.json and the tail of train.log
 *   GET /api/runs/:id/metrics          the metric keys it logged
 *   GET /api/runs/:id/series?key=K&after=S   one metric's points after step S
 *   GET /api/runs/:id/files/<path>     an artifact, as a download
 *   GET /api/compare?run=A&run=B[&diff=1]    params and results side by side (src/track/compare.ts,
 *                                      the same rows `kiln runs compare` prints, with the same
 *                                      formatted strings beside the raw values)
 *   GET /api/events                    server-sent events: `change` whenever a run starts, logs,
 *                                      beats or ends (the store is polled every `pollMs`)
 *
 * Only files inside the runs directory are served: a path that resolves outside the run's
 * directory, or a run outside the runs root, gets 403; an unknown run or file, 404.
 */
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { createReadStream, existsSync, readFileSync, statSync } from 'node:fs';
import { createRequire } from 'node:module';
import { basename, dirname, join, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';

import { compareRuns, formatParam, formatResult } from '../compare.js';
import { RunStore, StoreError } from '../store.js';

export interface DashboardOptions {
  runsRoot: string;
  /** How often the live view checks the store for changes. */
  pollMs?: number;
}

/** The page's files, beside this module in src/ (dist/ resolves to the same source folder). */
const PAGE_DIR = join(dirname(fileURLToPath(import.meta.url)), '..', '..', '..', 'src', 'track', 'dashboard', 'page');
const PAGE_FILES: Record<string, string> = {
  'index.html': 'text/html; charset=utf-8',
  'app.js': 'text/javascript; charset=utf-8',
  'style.css': 'text/css; charset=utf-8',
};
const ECHARTS = createRequire(import.meta.url).resolve('echarts/dist/echarts.min.js');
const LOG_TAIL_BYTES = 256 * 1024;

function isInside(parent: string, child: string): boolean {
  const rel = relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !rel.startsWith(sep) && resolve(parent, rel) === child;
}

function readTail(path: string, bytes: number): string | null {
  if (!existsSync(path)) return null;
  const text = readFileSync(path);
  return text.subarray(Math.max(0, text.length - bytes)).toString('utf8');
}

export function buildDashboard(options: DashboardOptions): { app: FastifyInstance; store: RunStore } {
  const store = RunStore.open(options.runsRoot);
  const pollMs = options.pollMs ?? 1000;
  const app = Fastify({ logger: false, forceCloseConnections: true });
  const streams = new Set<NodeJS.Timeout>();

  app.setErrorHandler((error: Error & { statusCode?: number }, _request, reply) => {
    if (error instanceof StoreError) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: error.message });
    const status = error.statusCode ?? 500;
    return reply.code(status).send({ statusCode: status, error: status >= 500 ? 'Internal Server Error' : 'Bad Request', message: error.message });
  });

  const sendPage = (reply: FastifyReply, name: string): FastifyReply => reply.type(PAGE_FILES[name]!).send(readFileSync(join(PAGE_DIR, name)));
  app.get('/', (_request, reply) => sendPage(reply, 'index.html'));
  app.get<{ Params: { file: string } }>('/static/:file', (request, reply) => {
    if (!(request.params.file in PAGE_FILES)) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `no page file ${request.params.file}` });
    return sendPage(reply, request.params.file);
  });
  app.get('/vendor/echarts.min.js', (_request, reply) => reply.type('text/javascript; charset=utf-8').header('cache-control', 'max-age=86400').send(createReadStream(ECHARTS)));

  app.get('/api/runs', () => {
    const runs = store.listRuns();
    const rows = store.tableRows(runs.map((r) => r.id));
    return { root: store.root, runs: runs.map((run) => ({ ...run, ...rows.get(run.id)! })) };
  });

  const requireRun = (id: string): ReturnType<RunStore['getRun']> => store.getRun(id);

  app.get<{ Params: { id: string } }>('/api/runs/:id', (request) => {
    const run = requireRun(request.params.id);
    const inRoot = run.path === store.root || isInside(store.root, run.path);
    const file = (name: string): string | null => (inRoot && run.kind !== 'eval' ? readTail(join(run.path, name), LOG_TAIL_BYTES) : null);
    const card = file('model.json');
    return {
      ...run,
      config: file('config.yaml'),
      card: card === null ? null : (JSON.parse(card) as unknown),
      log: file('train.log'),
      children: run.children.map((child) => ({ ...child, results: store.results(child.id) })),
    };
  });

  app.get<{ Params: { id: string } }>('/api/runs/:id/metrics', (request) => {
    requireRun(request.params.id);
    return { keys: store.metricKeys(request.params.id) };
  });

  app.get<{ Params: { id: string }; Querystring: { key?: string; after?: string } }>('/api/runs/:id/series', (request, reply) => {
    requireRun(request.params.id);
    const { key, after } = request.query;
    if (key === undefined || key === '') return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'key: expected a metric name, e.g. ?key=train/loss' });
    const afterStep = after === undefined ? -1 : Number(after);
    if (!Number.isInteger(afterStep)) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: `after: expected an integer step, got ${after}` });
    return { key, points: store.metricSeries(request.params.id, key, afterStep) };
  });

  app.get<{ Params: { id: string; '*': string } }>('/api/runs/:id/files/*', (request, reply) => {
    const run = requireRun(request.params.id);
    const forbidden = (message: string): FastifyReply => reply.code(403).send({ statusCode: 403, error: 'Forbidden', message });
    if (!(run.path === store.root || isInside(store.root, run.path))) return forbidden(`run ${run.id} lives outside the runs directory`);
    const target = resolve(run.path, request.params['*']);
    if (!isInside(run.path, target)) return forbidden(`${request.params['*']}: outside the run's directory`);
    if (!existsSync(target) || !statSync(target).isFile()) return reply.code(404).send({ statusCode: 404, error: 'Not Found', message: `${request.params['*']}: no such file in run ${run.id}` });
    return reply
      .type('application/octet-stream')
      .header('content-disposition', `attachment; filename="${basename(target).replace(/"/g, '')}"`)
      .send(createReadStream(target));
  });

  app.get<{ Querystring: { run?: string | string[]; diff?: string } }>('/api/compare', (request, reply) => {
    const ids = request.query.run === undefined ? [] : ([] as string[]).concat(request.query.run);
    if (ids.length < 2) return reply.code(400).send({ statusCode: 400, error: 'Bad Request', message: 'run: give two or more, e.g. ?run=A&run=B' });
    const comparison = compareRuns(store, ids, { onlyDifferences: request.query.diff === '1' || request.query.diff === 'true' });
    return {
      runs: comparison.runs,
      params: comparison.params.map((row) => ({ ...row, display: row.values.map(formatParam) })),
      results: comparison.results.map((row) => ({ ...row, display: row.values.map(formatResult) })),
    };
  });

  app.get('/api/events', (request, reply) => {
    reply.hijack();
    reply.raw.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', connection: 'keep-alive' });
    let last = store.changeToken();
    reply.raw.write(`event: hello\ndata: ${JSON.stringify({ token: last })}\n\n`);
    const timer = setInterval(() => {
      const token = store.changeToken();
      if (token !== last) {
        last = token;
        reply.raw.write(`event: change\ndata: ${JSON.stringify({ token })}\n\n`);
      } else {
        reply.raw.write(': keep-alive\n\n');
      }
    }, pollMs);
    streams.add(timer);
    request.raw.on('close', () => {
      clearInterval(timer);
      streams.delete(timer);
    });
  });

  app.addHook('onClose', (_instance, done) => {
    for (const timer of streams) clearInterval(timer);
    store.close();
    done();
  });
  return { app, store };
}

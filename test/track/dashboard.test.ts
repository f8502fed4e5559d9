/**
 * The dashboard's HTTP API (src/track/dashboard/server.ts) over a store with two runs and an
 * export: the page and its offline scripts, the run list, a run's detail, metric series, the
 * comparison (the same rows as `kiln runs compare`), artifact downloads confined to the runs
 * directory, 4xx for unknown ids and traversal, and a live `change` event when a run logs.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { buildDashboard } from '../../src/track/dashboard/server.js';
import { compareRuns } from '../../src/track/compare.js';
import { RunStore } from '../../src/track/store.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-dash-'));
let dashboard: ReturnType<typeof buildDashboard>;

function makeRun(store: RunStore, id: string, lr: number, mrr: number): void {
  const dir = join(root, id);
  mkdirSync(join(dir, 'onnx'), { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), `name: demo\ntrain:\n  lr: ${lr}\n`);
  writeFileSync(join(dir, 'model.json'), JSON.stringify({ kind: 'two-tower' }));
  writeFileSync(join(dir, 'train.log'), `run ${id}\nstep 10/20 loss 1.0\n`);
  writeFileSync(join(dir, 'onnx', 'model.onnx'), 'onnx bytes');
  store.beginRun({ id, name: 'demo', kind: 'train', task: 'twotower', path: dir, params: { 'train.lr': String(lr), 'model.preset': '"bert-mini"' }, tags: { purpose: 'test' } });
  store.logMetrics(id, [10, 20].map((step) => ({ step, time: step / 10, name: 'train/loss', value: lr * 1000 / step })));
  store.endRun(id, { status: 'finished', message: 'completed 20 steps', results: { 'tech/mrr': mrr }, artifactsFrom: dir });
}

beforeAll(() => {
  const store = RunStore.open(root);
  makeRun(store, 'a-20261201-100000', 0.001, 0.4);
  makeRun(store, 'b-20261201-110000', 0.0005, 0.45);
  store.beginRun({ id: 'a-20261201-100000@export-1', name: 'export of a', kind: 'export', path: join(root, 'a-20261201-100000', 'onnx'), parentId: 'a-20261201-100000' });
  store.endRun('a-20261201-100000@export-1', { status: 'finished', results: { 'parity/maxAbsDiff': 1e-6 }, artifactsFrom: join(root, 'a-20261201-100000', 'onnx') });
  store.close();
  dashboard = buildDashboard({ runsRoot: root, pollMs: 50 });
});

afterAll(async () => {
  await dashboard.app.close();
});

const get = (url: string) => dashboard.app.inject({ method: 'GET', url });

describe('kiln dashboard API', () => {
  it('serves the page and ECharts from Kiln itself, not a CDN', async () => {
    const page = await get('/');
    expect(page.statusCode).toBe(200);
    expect(page.headers['content-type']).toMatch(/text\/html/);
    expect(page.body).toContain('<script src="/vendor/echarts.min.js"></script>');
    expect(page.body).not.toMatch(/https?:\/\//);
    const echarts = await get('/vendor/echarts.min.js');
    expect(echarts.statusCode).toBe(200);
    expect(echarts.body.length).toBeGreaterThan(500_000);
    expect((await get('/static/app.js')).statusCode).toBe(200);
    expect((await get('/static/server.ts')).statusCode).toBe(404);
  });

  it('lists runs with params, results and tags', async () => {
    const { runs } = (await get('/api/runs')).json() as { runs: Array<{ id: string; status: string; params: Record<string, string>; results: Record<string, number>; tags: Record<string, string> }> };
    expect(runs.map((r) => r.id).sort()).toEqual(['a-20261201-100000', 'a-20261201-100000@export-1', 'b-20261201-110000']);
    const b = runs.find((r) => r.id === 'b-20261201-110000')!;
    expect(b).toMatchObject({ status: 'finished', params: { 'train.lr': '0.0005' }, results: { 'tech/mrr': 0.45 }, tags: { purpose: 'test' } });
  });

  it("shows a run's detail: config, card, log, artifacts, and the export made from it", async () => {
    const detail = (await get('/api/runs/a-20261201-100000')).json() as Record<string, unknown>;
    expect(detail.config).toBe('name: demo\ntrain:\n  lr: 0.001\n');
    expect(detail.card).toEqual({ kind: 'two-tower' });
    expect(detail.log).toContain('step 10/20 loss 1.0');
    expect((detail.artifacts as Array<{ path: string }>).map((a) => a.path)).toEqual(['config.yaml', 'model.json', 'onnx/model.onnx', 'train.log']);
    expect(detail.children).toEqual([expect.objectContaining({ id: 'a-20261201-100000@export-1', kind: 'export', results: { 'parity/maxAbsDiff': 1e-6 } })]);
  });

  it('returns metric keys and series, with only newer points after a step', async () => {
    expect((await get('/api/runs/a-20261201-100000/metrics')).json()).toEqual({ keys: ['train/loss'] });
    expect((await get('/api/runs/a-20261201-100000/series?key=train/loss')).json()).toEqual({ key: 'train/loss', points: [{ step: 10, time: 1, value: 0.1 }, { step: 20, time: 2, value: 0.05 }] });
    expect((await get('/api/runs/a-20261201-100000/series?key=train/loss&after=10')).json()).toEqual({ key: 'train/loss', points: [{ step: 20, time: 2, value: 0.05 }] });
    expect((await get('/api/runs/a-20261201-100000/series')).statusCode).toBe(400);
    expect((await get('/api/runs/a-20261201-100000/series?key=x&after=soon')).statusCode).toBe(400);
  });

  it('compares runs with the same rows as kiln runs compare, formatted alike', async () => {
    const body = (await get('/api/compare?run=a-20261201-100000&run=b-20261201-110000&diff=1')).json() as { params: Array<{ key: string; values: string[]; display: string[] }>; results: Array<{ key: string; values: number[]; display: string[] }> };
    const store = RunStore.open(root);
    const reference = compareRuns(store, ['a-20261201-100000', 'b-20261201-110000'], { onlyDifferences: true });
    store.close();
    expect(body.params.map(({ display: _d, ...row }) => row)).toEqual(reference.params);
    expect(body.results.map(({ display: _d, ...row }) => row)).toEqual(reference.results);
    expect(body.params).toEqual([{ key: 'train.lr', values: ['0.001', '0.0005'], differs: true, display: ['0.001', '0.0005'] }]);
    expect(body.results).toEqual([{ key: 'tech/mrr', values: [0.4, 0.45], differs: true, display: ['0.4000', '0.4500'] }]);
    expect((await get('/api/compare?run=a-20261201-100000')).statusCode).toBe(400);
  });

  it('downloads artifacts from inside the run only: traversal is 403, unknown runs and files 404', async () => {
    const file = await get('/api/runs/a-20261201-100000/files/onnx/model.onnx');
    expect(file.statusCode).toBe(200);
    expect(file.body).toBe('onnx bytes');
    expect(file.headers['content-disposition']).toBe('attachment; filename="model.onnx"');
    expect((await get('/api/runs/a-20261201-100000/files/..%2Fb-20261201-110000%2Fconfig.yaml')).statusCode).toBe(403);
    expect((await get('/api/runs/a-20261201-100000/files/%2Fetc%2Fpasswd')).statusCode).toBe(403);
    expect((await get('/api/runs/a-20261201-100000/files/../../../etc/passwd')).statusCode).toBeGreaterThanOrEqual(400);
    expect((await get('/api/runs/a-20261201-100000/files/missing.bin')).statusCode).toBe(404);
    expect((await get('/api/runs/a-20261201-100000/files/onnx')).statusCode).toBe(404);
    expect((await get('/api/runs/nope')).statusCode).toBe(404);
    expect((await get('/api/runs/nope/files/config.yaml')).statusCode).toBe(404);
  });

  it('sends a change event when a run logs a metric', async () => {
    const address = await dashboard.app.listen({ port: 0, host: '127.0.0.1' });
    const events: string[] = [];
    const received = new Promise<void>((resolvePromise, reject) => {
      const req = httpRequest(`${address}/api/events`, (res) => {
        expect(res.headers['content-type']).toBe('text/event-stream');
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => {
          events.push(...chunk.split('\n').filter((line) => line.startsWith('event: ')));
          if (events.includes('event: hello') && events.length === 1) {
            const writer = RunStore.open(root);
            writer.logMetrics('b-20261201-110000', [{ step: 30, time: 3, name: 'train/loss', value: 0.01 }]);
            writer.close();
          }
          if (events.includes('event: change')) {
            req.destroy();
            resolvePromise();
          }
        });
      });
      req.on('error', (error) => (events.includes('event: change') ? undefined : reject(error)));
      req.end();
    });
    await received;
    expect(events.slice(0, 2)).toEqual(['event: hello', 'event: change']);
  });
});

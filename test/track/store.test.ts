/**
 * The SQLite run store (src/track/store.ts): what a run writes reads back, NaN survives as
 * null, dead runs are reconciled to `killed`, the schema version is enforced, run directories
 * made before the store are imported, and two processes writing at once lose nothing.
 */
import Database from 'better-sqlite3';
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

import { flattenParams, RunStore, STALE_HEARTBEAT_MS, STORE_SCHEMA_VERSION, StoreError } from '../../src/track/store.js';
import { REPO_ROOT } from '../helpers/python.js';

const freshRoot = (): string => mkdtempSync(join(tmpdir(), 'kiln-store-'));

describe('RunStore', () => {
  it('reads back a run: params, tags, metric series, results, artifacts and status', () => {
    const root = freshRoot();
    const dir = join(root, 'demo-20261201-120000');
    mkdirSync(dir);
    writeFileSync(join(dir, 'model.safetensors'), Buffer.alloc(100));
    const store = RunStore.open(root);
    store.beginRun({ id: 'demo-20261201-120000', name: 'demo', kind: 'train', task: 'twotower', path: dir, params: { 'train.lr': '0.001', 'model.preset': '"bert-mini"' }, tags: { purpose: 'test' } });
    expect(store.getRun('demo-20261201-120000')).toMatchObject({ status: 'running', pid: process.pid, endedAt: null });
    store.logMetrics('demo-20261201-120000', [
      { step: 10, time: 1.5, name: 'train/loss', value: 2.5 },
      { step: 20, time: 3, name: 'train/loss', value: Number.NaN },
      { step: 20, time: 3, name: 'eval/tech/mrr', value: 0.25 },
    ]);
    // Before the run ends, its results are each metric's latest value.
    expect(store.results('demo-20261201-120000')).toEqual({ 'tech/mrr': 0.25, 'train/loss': null });
    store.endRun('demo-20261201-120000', { status: 'finished', message: 'completed 20 steps', results: { 'tech/mrr': 0.25 }, artifactsFrom: dir });

    const run = store.getRun('demo-20261201-120000');
    expect(run).toMatchObject({ status: 'finished', message: 'completed 20 steps', kind: 'train', task: 'twotower', name: 'demo' });
    expect(run.params).toEqual({ 'model.preset': '"bert-mini"', 'train.lr': '0.001' });
    expect(run.tags).toEqual({ purpose: 'test' });
    expect(run.results).toEqual({ 'tech/mrr': 0.25 });
    expect(run.artifacts).toEqual([{ path: 'model.safetensors', bytes: 100 }]);
    expect(store.metricSeries(run.id, 'train/loss')).toEqual([
      { step: 10, time: 1.5, value: 2.5 },
      { step: 20, time: 3, value: null },
    ]);
    expect(store.metricSeries(run.id, 'train/loss', 10)).toEqual([{ step: 20, time: 3, value: null }]);
    expect(store.metricKeys(run.id)).toEqual(['eval/tech/mrr', 'train/loss']);
    expect(store.resolveId(dir)).toBe(run.id);
    store.close();
  });

  it('a resumed run replaces the metrics of the steps it redoes', () => {
    const store = RunStore.open(freshRoot());
    store.beginRun({ id: 'r', name: 'r', kind: 'train', path: '/tmp/r' });
    store.logMetrics('r', [10, 20, 30].map((step) => ({ step, time: step, name: 'train/loss', value: step })));
    store.truncateMetricsAfter('r', 20);
    store.logMetrics('r', [{ step: 30, time: 31, name: 'train/loss', value: 7 }]);
    expect(store.metricSeries('r', 'train/loss').map((p) => [p.step, p.value])).toEqual([
      [10, 10],
      [20, 20],
      [30, 7],
    ]);
    store.close();
  });

  it('marks a run whose process is gone, or whose remote heartbeat is stale, as killed', () => {
    const root = freshRoot();
    const store = RunStore.open(root);
    store.beginRun({ id: 'alive', name: 'a', kind: 'train', path: '/tmp/a' });
    store.beginRun({ id: 'dead', name: 'd', kind: 'train', path: '/tmp/d' });
    store.beginRun({ id: 'remote-fresh', name: 'rf', kind: 'train', path: '/tmp/rf' });
    store.beginRun({ id: 'remote-stale', name: 'rs', kind: 'train', path: '/tmp/rs' });
    const exited = spawnSync(process.execPath, ['-e', 'process.stdout.write(String(process.pid))'], { encoding: 'utf8' });
    const now = Date.now();
    const db = new Database(join(root, 'kiln.db'));
    db.prepare("UPDATE runs SET pid = ?, pid_start = NULL WHERE id = 'dead'").run(Number(exited.stdout));
    db.prepare("UPDATE runs SET host = 'elsewhere', heartbeat_at = ? WHERE id = 'remote-fresh'").run(now - 60_000);
    db.prepare("UPDATE runs SET host = 'elsewhere', heartbeat_at = ? WHERE id = 'remote-stale'").run(now - STALE_HEARTBEAT_MS - 1000);
    db.close();

    const statuses = Object.fromEntries(store.listRuns().map((r) => [r.id, r.status]));
    expect(statuses).toEqual({ alive: 'running', dead: 'killed', 'remote-fresh': 'running', 'remote-stale': 'killed' });
    expect(store.getRun('dead').message).toBe(`process ${exited.stdout} ended without finishing the run`);
    expect(store.getRun('remote-stale').message).toMatch(/^no heartbeat from elsewhere since /);
    expect(() => store.deleteRun('alive')).toThrow(/run alive is running .*stop it before deleting it/);
    store.close();
  });

  it('refuses a store from a newer Kiln, and a file that is not a store, with a StoreError', () => {
    const root = freshRoot();
    RunStore.open(root).close();
    const db = new Database(join(root, 'kiln.db'));
    db.pragma(`user_version = ${STORE_SCHEMA_VERSION + 1}`);
    db.close();
    expect(() => RunStore.open(root)).toThrow(StoreError);
    expect(() => RunStore.open(root)).toThrow(new RegExp(`schema version ${STORE_SCHEMA_VERSION + 1}, written by a newer Kiln; this Kiln reads up to version ${STORE_SCHEMA_VERSION}`));

    const other = freshRoot();
    writeFileSync(join(other, 'kiln.db'), 'not sqlite at all, just text that is long enough to be read as a header');
    expect(() => RunStore.open(other)).toThrow(/kiln\.db: (not a Kiln run store|cannot open the run store): file is not a database/);
  });

  it('imports run directories made before the store existed, on its first open', () => {
    const root = freshRoot();
    const done = join(root, 'old-20261101-100000');
    mkdirSync(done);
    writeFileSync(join(done, 'config.yaml'), 'name: old\nseed: 3\ntrain:\n  lr: 0.0005\n  steps: 20\ndata:\n  train:\n    - recipe: onet-titles\n');
    writeFileSync(join(done, 'metrics.jsonl'), ['{"step":10,"time":1,"name":"train/loss","value":3}', '{"step":20,"time":2,"name":"train/loss","value":2}', '{"step":20,"time":2,"name":"eval/tech/mrr","value":0.4}'].join('\n') + '\n');
    writeFileSync(join(done, 'summary.json'), JSON.stringify({ status: 'completed', message: 'completed 20 steps', metrics: { 'tech/mrr': 0.4 }, finishedAt: '2026-11-01T10:05:00.000Z' }));
    const cut = join(root, 'cut-20261101-110000');
    mkdirSync(cut);
    writeFileSync(join(cut, 'config.yaml'), 'name: cut\ntask: mlm\n');
    const longAgo = new Date('2026-11-01T11:00:00Z');
    utimesSync(join(cut, 'config.yaml'), longAgo, longAgo);
    // An older Kiln is still training this one: its files are fresh, and it has no summary yet.
    const live = join(root, 'live-20261101-120000');
    mkdirSync(live);
    writeFileSync(join(live, 'config.yaml'), 'name: live\n');
    mkdirSync(join(root, 'not-a-run'));

    const store = RunStore.open(root);
    const runs = store.listRuns();
    expect(runs.map((r) => [r.id, r.status, r.task]).sort()).toEqual([
      ['cut-20261101-110000', 'killed', 'mlm'],
      ['live-20261101-120000', 'running', 'twotower'],
      ['old-20261101-100000', 'finished', 'twotower'],
    ]);
    const old = store.getRun('old-20261101-100000');
    expect(old.params).toEqual({ name: '"old"', seed: '3', 'train.lr': '0.0005', 'train.steps': '20', 'data.train': '[{"recipe":"onet-titles"}]' });
    expect(old.results).toEqual({ 'tech/mrr': 0.4 });
    expect(old.endedAt).toBe(Date.parse('2026-11-01T10:05:00.000Z'));
    expect(old.tags).toEqual({ imported: 'true' });
    expect(store.metricSeries(old.id, 'train/loss').map((p) => p.value)).toEqual([3, 2]);
    expect(store.getRun('cut-20261101-110000').message).toMatch(/interrupted \(kiln train --resume continues it\)/);
    // A second import finds nothing new; once the live run writes its summary, it is imported again.
    expect(store.importDirectories()).toEqual([]);
    writeFileSync(join(live, 'summary.json'), JSON.stringify({ status: 'completed', message: 'completed', metrics: { 'tech/mrr': 0.5 } }));
    store.close();
    // The next open (a list, the dashboard) finds it finished.
    const reopened = RunStore.open(root);
    expect(reopened.getRun('live-20261101-120000')).toMatchObject({ status: 'finished', results: { 'tech/mrr': 0.5 } });
    expect(reopened.importDirectories()).toEqual([]);
    reopened.close();
  });

  it('flattens a config to dotted keys with JSON values, arrays whole', () => {
    expect(flattenParams({ a: { b: 1, c: { d: 'x' } }, e: [1, 2], f: null, g: true })).toEqual({ 'a.b': '1', 'a.c.d': '"x"', e: '[1,2]', f: 'null', g: 'true' });
  });

  it('two processes writing to one new store at once lose nothing', async () => {
    const root = freshRoot();
    const writer = `
      const { RunStore } = await import(${JSON.stringify(join(REPO_ROOT, 'src/track/store.ts'))});
      const id = process.argv[1];
      const store = RunStore.open(${JSON.stringify(root)});
      store.beginRun({ id, name: id, kind: 'train', path: '/tmp/' + id });
      for (let step = 1; step <= 1000; step++) store.logMetrics(id, [{ step, time: step, name: 'train/loss', value: step }, { step, time: step, name: 'train/lr', value: 1 / step }]);
      store.endRun(id, { status: 'finished', results: { last: 1000 } });
      store.close();`;
    const run = (id: string): Promise<number | null> =>
      new Promise((resolvePromise) => {
        const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', writer, id], { cwd: REPO_ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
        child.on('exit', (code) => resolvePromise(code));
      });
    expect(await Promise.all([run('one'), run('two')])).toEqual([0, 0]);
    const store = RunStore.open(root);
    for (const id of ['one', 'two']) {
      expect(store.getRun(id)).toMatchObject({ status: 'finished', results: { last: 1000 } });
      expect(store.metricSeries(id, 'train/loss').map((p) => p.value)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1));
      expect(store.metricSeries(id, 'train/lr')).toHaveLength(1000);
    }
    store.close();
  }, 60_000);
});

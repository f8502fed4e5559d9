/**
 * MLflow interoperability (src/track/mlflow.ts): log-batch splitting within MLflow's limits
 * (hand-counted), the exact REST request bodies against a recording stand-in server (MLflow's
 * own is not installable here), `kiln train --tracking-uri` end to end, and the file-store
 * layout of `kiln runs export --mlflow`.
 */
import Fastify, { type FastifyInstance } from 'fastify';
import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { afterEach, describe, expect, it } from 'vitest';

import { batchesFor, exportMlflowFileStore, logRunToMlflow, mlflowRunId, MlflowRestClient, type LogBatch } from '../../src/track/mlflow.js';
import { RunStore } from '../../src/track/store.js';
import { BIN, ENV, kiln, onlyRun } from '../helpers/cli.js';
import { REPO_ROOT } from '../helpers/python.js';

interface Recorded {
  method: string;
  url: string;
  body: unknown;
}

/** Answers like an MLflow tracking server, and records every request. */
async function recordingServer(): Promise<{ app: FastifyInstance; address: string; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const app = Fastify();
  app.addHook('onRequest', async (request) => void requests.push({ method: request.method, url: request.url, body: null }));
  app.addHook('preHandler', async (request) => void (requests.at(-1)!.body = request.body ?? null));
  app.get('/api/2.0/mlflow/experiments/get-by-name', async (_request, reply) => reply.code(404).send({ error_code: 'RESOURCE_DOES_NOT_EXIST', message: 'Could not find experiment' }));
  app.post('/api/2.0/mlflow/experiments/create', async () => ({ experiment_id: '7' }));
  app.post('/api/2.0/mlflow/runs/create', async () => ({ run: { info: { run_id: 'f00d' } } }));
  app.post('/api/2.0/mlflow/runs/log-batch', async () => ({}));
  app.post('/api/2.0/mlflow/runs/update', async () => ({ run_info: {} }));
  const address = await app.listen({ port: 0, host: '127.0.0.1' });
  return { app, address, requests };
}

let server: Awaited<ReturnType<typeof recordingServer>> | null = null;
afterEach(async () => {
  await server?.app.close();
  server = null;
});

function demoStore(): { root: string; store: RunStore; id: string } {
  const root = mkdtempSync(join(tmpdir(), 'kiln-mlflow-'));
  const dir = join(root, 'demo-20261201-120000');
  // The store is opened first: a run directory already there would be imported instead.
  const store = RunStore.open(root);
  mkdirSync(join(dir, 'checkpoints', 'step-10'), { recursive: true });
  writeFileSync(join(dir, 'config.yaml'), 'name: demo\n');
  writeFileSync(join(dir, 'checkpoints', 'step-10', 'state.bin'), 'x');
  const id = 'demo-20261201-120000';
  store.beginRun({ id, name: 'demo', kind: 'train', task: 'mlm', path: dir, params: { 'train.lr': '0.001', 'model.preset': '"bert-mini"' }, tags: { purpose: 'test' } }, 1_000_000);
  store.logMetrics(id, [
    { step: 10, time: 1.5, name: 'train/loss', value: 2.5 },
    { step: 20, time: 3, name: 'train/loss', value: Number.NaN },
    { step: 20, time: 3, name: 'eval/heldout/mlm_loss', value: 2.25 },
  ]);
  store.endRun(id, { status: 'finished', results: { 'heldout/mlm_loss': 2.25, 'heldout/mlm_accuracy': 0.5 }, artifactsFrom: dir }, 1_010_000);
  return { root, store, id };
}

describe('MLflow log-batch limits', () => {
  it('splits 150 params, 120 tags and 2,500 metrics into requests of at most 100, 100, 1,000 and 1,000 in all', () => {
    const entities: LogBatch = {
      params: Array.from({ length: 150 }, (_, i) => ({ key: `p${i}`, value: String(i) })),
      tags: Array.from({ length: 120 }, (_, i) => ({ key: `t${i}`, value: String(i) })),
      metrics: Array.from({ length: 2500 }, (_, i) => ({ key: 'loss', value: i, timestamp: i, step: i })),
    };
    const batches = batchesFor(entities);
    // 100 + 100 + 800, then 50 + 20 + 930, then 770 metrics.
    expect(batches.map((b) => [b.params.length, b.tags.length, b.metrics.length])).toEqual([
      [100, 100, 800],
      [50, 20, 930],
      [0, 0, 770],
    ]);
    expect(batches.flatMap((b) => b.params)).toEqual(entities.params);
    expect(batches.flatMap((b) => b.tags)).toEqual(entities.tags);
    expect(batches.flatMap((b) => b.metrics)).toEqual(entities.metrics);
    expect(batchesFor({ params: [], tags: [], metrics: [] })).toEqual([]);
  });
});

describe('MLflow REST', () => {
  it('sends exactly the documented requests for a run', async () => {
    server = await recordingServer();
    const { store, id } = demoStore();
    const mlflowId = await logRunToMlflow(new MlflowRestClient(`${server.address}/`), store, id, 'kiln-test');
    store.close();
    expect(mlflowId).toBe('f00d');
    expect(server.requests).toEqual([
      { method: 'GET', url: '/api/2.0/mlflow/experiments/get-by-name?experiment_name=kiln-test', body: null },
      { method: 'POST', url: '/api/2.0/mlflow/experiments/create', body: { name: 'kiln-test' } },
      { method: 'POST', url: '/api/2.0/mlflow/runs/create', body: { experiment_id: '7', run_name: id, start_time: 1_000_000, tags: [{ key: 'mlflow.runName', value: id }] } },
      {
        method: 'POST',
        url: '/api/2.0/mlflow/runs/log-batch',
        body: {
          run_id: 'f00d',
          // The NaN point is left out; the final accuracy has no series, so it is logged once at the last step.
          metrics: [
            { key: 'eval/heldout/mlm_loss', value: 2.25, timestamp: 1_003_000, step: 20 },
            { key: 'train/loss', value: 2.5, timestamp: 1_001_500, step: 10 },
            { key: 'final/heldout/mlm_accuracy', value: 0.5, timestamp: 1_010_000, step: 20 },
          ],
          params: [
            { key: 'model.preset', value: 'bert-mini' },
            { key: 'train.lr', value: '0.001' },
          ],
          tags: [
            { key: 'purpose', value: 'test' },
            { key: 'mlflow.runName', value: id },
            { key: 'kiln.run_id', value: id },
            { key: 'kiln.kind', value: 'train' },
            { key: 'kiln.task', value: 'mlm' },
          ],
        },
      },
      { method: 'POST', url: '/api/2.0/mlflow/runs/update', body: { run_id: 'f00d', status: 'FINISHED', end_time: 1_010_000 } },
    ]);
  });

  it('kiln train --tracking-uri logs the finished run; an unreachable server is a warning, not a lost run', async () => {
    server = await recordingServer();
    const runs = mkdtempSync(join(tmpdir(), 'kiln-runs-'));
    const train = (uri: string): Promise<{ code: number | null; stderr: string }> =>
      new Promise((resolvePromise) => {
        const child = spawn(process.execPath, [BIN, 'train', '--config', 'configs/tiny-mlm.yaml', '--runs', runs, '--quiet', '--tracking-uri', uri, '--experiment', 'tiny'], { cwd: REPO_ROOT, env: ENV });
        let stderr = '';
        child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
        child.on('exit', (code) => resolvePromise({ code, stderr }));
      });
    const ok = await train(server.address);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stderr).toMatch(/logged to MLflow at http:\/\/127\.0\.0\.1:\d+: experiment tiny, run f00d/);
    const batches = server.requests.filter((r) => r.url.endsWith('/runs/log-batch')).map((r) => r.body as LogBatch);
    const run = onlyRun(runs);
    const lines = readFileSync(join(run, 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; name: string; value: number });
    const sent = batches.flatMap((b) => b.metrics);
    expect(sent.filter((m) => m.key === 'train/loss').map((m) => [m.step, m.value])).toEqual(lines.filter((l) => l.name === 'train/loss').map((l) => [l.step, l.value]));
    expect(batches.flatMap((b) => b.params)).toContainEqual({ key: 'train.lr', value: '0.001' });
    expect(server.requests.at(-1)!.body).toMatchObject({ run_id: 'f00d', status: 'FINISHED' });

    await server.app.close();
    server = null;
    const unreachable = await train('http://127.0.0.1:9');
    expect(unreachable.code, unreachable.stderr).toBe(0);
    expect(unreachable.stderr).toMatch(/warning: the run is saved, but logging it to MLflow failed: MLflow at http:\/\/127\.0\.0\.1:9: experiments\/get-by-name failed: .*\(retry: kiln runs export tiny-mlm-\S+ --tracking-uri http:\/\/127\.0\.0\.1:9\)/);
  }, 120_000);

  it('names a bad tracking URI', () => {
    expect(() => new MlflowRestClient('localhost:5000')).toThrow(/tracking URI localhost:5000: expected an http:\/\/ or https:\/\/ address/);
  });
});

describe('MLflow file store (kiln runs export --mlflow)', () => {
  it('writes meta.yaml, metrics, params, tags and artifacts in the mlruns layout', () => {
    const { root, store, id } = demoStore();
    const out = join(root, 'mlruns');
    const [runId] = exportMlflowFileStore(store, [id], out, 'kiln');
    store.close();
    expect(runId).toBe(mlflowRunId(id));
    expect(runId).toMatch(/^[0-9a-f]{32}$/);
    const [experimentId, ...others] = readdirSync(out);
    expect(others).toEqual([]);
    expect(experimentId).toMatch(/^\d+$/);
    const experiment = parseYaml(readFileSync(join(out, experimentId!, 'meta.yaml'), 'utf8')) as Record<string, unknown>;
    expect(experiment).toMatchObject({ experiment_id: experimentId, name: 'kiln', lifecycle_stage: 'active', artifact_location: `file://${join(out, experimentId!)}` });
    const runDir = join(out, experimentId!, runId!);
    expect(parseYaml(readFileSync(join(runDir, 'meta.yaml'), 'utf8'))).toMatchObject({
      run_id: runId,
      run_uuid: runId,
      run_name: id,
      experiment_id: experimentId,
      status: 3,
      start_time: 1_000_000,
      end_time: 1_010_000,
      lifecycle_stage: 'active',
      artifact_uri: `file://${join(runDir, 'artifacts')}`,
    });
    // One file per metric (keys with '/' nest), lines "<timestamp> <value> <step>".
    expect(readFileSync(join(runDir, 'metrics', 'train', 'loss'), 'utf8')).toBe('1001500 2.5 10\n');
    expect(readFileSync(join(runDir, 'metrics', 'eval', 'heldout', 'mlm_loss'), 'utf8')).toBe('1003000 2.25 20\n');
    expect(readFileSync(join(runDir, 'metrics', 'final', 'heldout', 'mlm_accuracy'), 'utf8')).toBe('1010000 0.5 20\n');
    expect(readFileSync(join(runDir, 'params', 'train.lr'), 'utf8')).toBe('0.001');
    expect(readFileSync(join(runDir, 'params', 'model.preset'), 'utf8')).toBe('bert-mini');
    expect(readFileSync(join(runDir, 'tags', 'mlflow.runName'), 'utf8')).toBe(id);
    expect(readFileSync(join(runDir, 'tags', 'purpose'), 'utf8')).toBe('test');
    // Artifacts are the run's files, without its resumable checkpoints.
    expect(readFileSync(join(runDir, 'artifacts', 'config.yaml'), 'utf8')).toBe('name: demo\n');
    expect(existsSync(join(runDir, 'artifacts', 'checkpoints'))).toBe(false);
  });

  it('kiln runs export needs one destination and the runs to export', () => {
    const { root, store } = demoStore();
    store.close();
    expect(kiln(['runs', 'export', '--all', '--runs', root]).status).toBe(2);
    expect(kiln(['runs', 'export', '--mlflow', join(root, 'm'), '--runs', root]).stderr).toMatch(/name the runs to export, or give --all/);
    const ok = kiln(['runs', 'export', '--all', '--mlflow', join(root, 'm'), '--runs', root, '--json']);
    expect(ok.status, ok.stderr).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ experiment: 'kiln', runs: { 'demo-20261201-120000': mlflowRunId('demo-20261201-120000') } });
  });
});

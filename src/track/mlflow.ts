/**
 * MLflow interoperability, written against MLflow's published REST API and file-store layout:
 *
 * - `MlflowRestClient` logs a run to a tracking server over REST 2.0
 *   (https://mlflow.org/docs/latest/rest-api.html): `experiments/get-by-name` (then
 *   `experiments/create` when it does not exist), `runs/create`, `runs/log-batch` and
 *   `runs/update`. A log-batch request may hold at most 1,000 metrics, 100 params, 100 tags and
 *   1,000 items in all; `batchesFor` splits a run into requests within those limits.
 * - `exportMlflowFileStore` writes MLflow's file-store layout (`mlruns/`):
 *   `<experiment id>/meta.yaml`, `<experiment id>/<run id>/{meta.yaml, metrics/, params/, tags/,
 *   artifacts/}`, where each metric file holds `<timestamp ms> <value> <step>` lines; so
 *   `MLFLOW_ALLOW_FILE_STORE=true mlflow ui --backend-store-uri DIR`, or `mlflow migrate-filestore`, reads it.
 *
 * Param values are the store's JSON text with strings unquoted (`train.lr` → `0.0003`,
 * `model.preset` → `bert-mini`), cut at MLflow's 6,000-character limit. NaN and infinite metric
 * values have no JSON number and are left out. The file store is idempotent: a Kiln run maps
 * to the same MLflow run id (a hash of the Kiln id), so exporting again replaces it. Over REST
 * the server assigns the id, so logging a run twice makes two MLflow runs of the same name.
 */
import { createHash } from 'node:crypto';
import { copyFileSync, existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { stringify as toYaml } from 'yaml';

import { formatParam } from './compare.js';
import type { RunDetail, RunStatus, RunStore } from './store.js';

export const MAX_METRICS_PER_BATCH = 1000;
export const MAX_PARAMS_PER_BATCH = 100;
export const MAX_TAGS_PER_BATCH = 100;
export const MAX_ENTITIES_PER_BATCH = 1000;
export const MAX_PARAM_VALUE_LENGTH = 6000;

export interface MlflowMetric {
  key: string;
  value: number;
  timestamp: number;
  step: number;
}
export interface MlflowKeyValue {
  key: string;
  value: string;
}
export interface LogBatch {
  metrics: MlflowMetric[];
  params: MlflowKeyValue[];
  tags: MlflowKeyValue[];
}

/** MLflow's RunStatus enum names, and the numbers its file store writes. */
const STATUS: Record<RunStatus, { name: 'RUNNING' | 'FINISHED' | 'FAILED' | 'KILLED'; code: number }> = {
  running: { name: 'RUNNING', code: 1 },
  finished: { name: 'FINISHED', code: 3 },
  failed: { name: 'FAILED', code: 4 },
  killed: { name: 'KILLED', code: 5 },
};

export class MlflowError extends Error {
  override name = 'MlflowError';
}

/** The 32-hex-digit MLflow run id of a Kiln run: stable, so exporting twice updates one run. */
export function mlflowRunId(kilnRunId: string): string {
  return createHash('sha256').update(`kiln-run:${kilnRunId}`).digest('hex').slice(0, 32);
}

/** A run's params, tags and metric points in MLflow's shapes. */
export function mlflowEntities(store: RunStore, run: RunDetail): LogBatch {
  const params = Object.entries(run.params).map(([key, value]) => ({ key, value: formatParam(value).slice(0, MAX_PARAM_VALUE_LENGTH) }));
  const tags = [
    ...Object.entries(run.tags).map(([key, value]) => ({ key, value })),
    { key: 'mlflow.runName', value: run.id },
    { key: 'kiln.run_id', value: run.id },
    { key: 'kiln.kind', value: run.kind },
    ...(run.task === null ? [] : [{ key: 'kiln.task', value: run.task }]),
    ...(run.parentId === null ? [] : [{ key: 'mlflow.parentRunId', value: mlflowRunId(run.parentId) }]),
  ];
  const metrics: MlflowMetric[] = [];
  for (const key of store.metricKeys(run.id)) {
    for (const point of store.metricSeries(run.id, key)) {
      if (point.value === null) continue;
      metrics.push({ key, value: point.value, timestamp: Math.round(run.startedAt + point.time * 1000), step: point.step });
    }
  }
  // Final results that are not also a logged series (a summary-only metric) at the last step.
  const lastStep = metrics.reduce((max, m) => Math.max(max, m.step), 0);
  const logged = new Set(metrics.map((m) => m.key));
  for (const [key, value] of Object.entries(run.results)) {
    if (value === null || logged.has(key) || logged.has(`eval/${key}`)) continue;
    metrics.push({ key: run.kind === 'train' || run.kind === 'distill' ? `final/${key}` : key, value, timestamp: run.endedAt ?? run.heartbeatAt, step: lastStep });
  }
  return { metrics, params, tags };
}

/** Splits entities into log-batch requests within MLflow's per-request limits, params and tags first. */
export function batchesFor(entities: LogBatch): LogBatch[] {
  const batches: LogBatch[] = [];
  let [p, t, m] = [0, 0, 0];
  while (p < entities.params.length || t < entities.tags.length || m < entities.metrics.length) {
    const params = entities.params.slice(p, p + MAX_PARAMS_PER_BATCH);
    const tags = entities.tags.slice(t, t + MAX_TAGS_PER_BATCH);
    const room = Math.min(MAX_METRICS_PER_BATCH, MAX_ENTITIES_PER_BATCH - params.length - tags.length);
    const metrics = entities.metrics.slice(m, m + room);
    batches.push({ metrics, params, tags });
    [p, t, m] = [p + params.length, t + tags.length, m + metrics.length];
  }
  return batches;
}

type Fetch = typeof fetch;

/** A minimal MLflow REST 2.0 client: the calls Kiln needs, nothing else. */
export class MlflowRestClient {
  readonly baseUrl: string;

  constructor(
    trackingUri: string,
    private readonly fetchImpl: Fetch = fetch,
  ) {
    if (!/^https?:\/\//.test(trackingUri)) throw new MlflowError(`tracking URI ${trackingUri}: expected an http:// or https:// address of an MLflow tracking server`);
    this.baseUrl = trackingUri.replace(/\/+$/, '');
  }

  async #call<T>(method: 'GET' | 'POST', endpoint: string, body: Record<string, unknown> | null, query?: Record<string, string>): Promise<{ status: number; json: T & { error_code?: string; message?: string } }> {
    const url = `${this.baseUrl}/api/2.0/mlflow/${endpoint}${query === undefined ? '' : `?${new URLSearchParams(query).toString()}`}`;
    let response: Response;
    try {
      response = await this.fetchImpl(url, { method, headers: body === null ? {} : { 'content-type': 'application/json' }, body: body === null ? undefined : JSON.stringify(body) });
    } catch (error) {
      throw new MlflowError(`MLflow at ${this.baseUrl}: ${endpoint} failed: ${(error as Error).message}`);
    }
    const text = await response.text();
    let json: T & { error_code?: string; message?: string };
    try {
      json = (text === '' ? {} : JSON.parse(text)) as T & { error_code?: string; message?: string };
    } catch {
      throw new MlflowError(`MLflow at ${this.baseUrl}: ${endpoint} answered ${response.status} with a body that is not JSON: ${text.slice(0, 200)}`);
    }
    return { status: response.status, json };
  }

  async #ok<T>(method: 'GET' | 'POST', endpoint: string, body: Record<string, unknown> | null, query?: Record<string, string>): Promise<T> {
    const { status, json } = await this.#call<T>(method, endpoint, body, query);
    if (status >= 400) throw new MlflowError(`MLflow at ${this.baseUrl}: ${endpoint} answered ${status} ${json.error_code ?? ''}: ${json.message ?? ''}`.trim());
    return json;
  }

  async experimentId(name: string): Promise<string> {
    const found = await this.#call<{ experiment?: { experiment_id: string } }>('GET', 'experiments/get-by-name', null, { experiment_name: name });
    if (found.status < 400 && found.json.experiment !== undefined) return found.json.experiment.experiment_id;
    if (found.status !== 404 && found.json.error_code !== 'RESOURCE_DOES_NOT_EXIST') {
      throw new MlflowError(`MLflow at ${this.baseUrl}: experiments/get-by-name answered ${found.status} ${found.json.error_code ?? ''}: ${found.json.message ?? ''}`.trim());
    }
    return (await this.#ok<{ experiment_id: string }>('POST', 'experiments/create', { name })).experiment_id;
  }

  async createRun(experimentId: string, runName: string, startTime: number, tags: MlflowKeyValue[]): Promise<string> {
    const created = await this.#ok<{ run: { info: { run_id: string } } }>('POST', 'runs/create', { experiment_id: experimentId, run_name: runName, start_time: startTime, tags });
    return created.run.info.run_id;
  }

  async logBatch(runId: string, batch: LogBatch): Promise<void> {
    await this.#ok('POST', 'runs/log-batch', { run_id: runId, metrics: batch.metrics, params: batch.params, tags: batch.tags });
  }

  async updateRun(runId: string, status: RunStatus, endTime: number | null): Promise<void> {
    await this.#ok('POST', 'runs/update', { run_id: runId, status: STATUS[status].name, ...(endTime === null ? {} : { end_time: endTime }) });
  }
}

/**
 * Logs one Kiln run to an MLflow tracking server under `experiment`: creates the run (with the
 * Kiln id as its name), sends params, tags and every metric point in batches within the
 * limits, and sets its status and end time. Returns the MLflow run id.
 */
export async function logRunToMlflow(client: MlflowRestClient, store: RunStore, kilnRunId: string, experiment: string): Promise<string> {
  const run = store.getRun(kilnRunId);
  const experimentId = await client.experimentId(experiment);
  const entities = mlflowEntities(store, run);
  // runs/create takes the tags that name the run; the rest go with the batches.
  const runId = await client.createRun(experimentId, run.id, run.startedAt, [{ key: 'mlflow.runName', value: run.id }]);
  for (const batch of batchesFor(entities)) await client.logBatch(runId, batch);
  await client.updateRun(runId, run.status, run.endedAt);
  return runId;
}

/** Writes runs into an MLflow file store at `dir` (created if missing) under `experiment`; returns the MLflow run ids. */
export function exportMlflowFileStore(store: RunStore, kilnRunIds: readonly string[], dir: string, experiment: string, now = Date.now()): string[] {
  const root = resolve(dir);
  // The file store numbers experiments; Kiln uses a stable id per experiment name.
  const experimentId = String(parseInt(createHash('sha256').update(`kiln-experiment:${experiment}`).digest('hex').slice(0, 8), 16) % 900000000 + 100000000);
  const experimentDir = join(root, experimentId);
  mkdirSync(experimentDir, { recursive: true });
  const metaPath = join(experimentDir, 'meta.yaml');
  if (!existsSync(metaPath)) {
    writeFileSync(metaPath, toYaml({ artifact_location: `file://${experimentDir}`, creation_time: now, experiment_id: experimentId, last_update_time: now, lifecycle_stage: 'active', name: experiment }));
  }
  const ids: string[] = [];
  for (const kilnId of kilnRunIds) {
    const run = store.getRun(kilnId);
    const runId = mlflowRunId(run.id);
    const runDir = join(experimentDir, runId);
    rmSync(runDir, { recursive: true, force: true }); // an earlier export of the same run is replaced whole
    const entities = mlflowEntities(store, run);
    const write = (sub: string, key: string, text: string): void => {
      const path = join(runDir, sub, key);
      mkdirSync(dirname(path), { recursive: true });
      writeFileSync(path, text);
    };
    for (const p of entities.params) write('params', p.key, p.value);
    for (const t of entities.tags) write('tags', t.key, t.value);
    const byKey = new Map<string, MlflowMetric[]>();
    for (const m of entities.metrics) byKey.set(m.key, [...(byKey.get(m.key) ?? []), m]);
    for (const [key, points] of byKey) write('metrics', key, points.map((m) => `${m.timestamp} ${m.value} ${m.step}\n`).join(''));
    mkdirSync(join(runDir, 'artifacts'), { recursive: true });
    if (run.kind !== 'eval') {
      for (const artifact of run.artifacts) {
        if (artifact.path.startsWith('checkpoints/')) continue; // resumable state, not a result
        const source = join(run.path, artifact.path);
        if (!existsSync(source)) continue;
        const target = join(runDir, 'artifacts', artifact.path);
        mkdirSync(dirname(target), { recursive: true });
        copyFileSync(source, target);
      }
    }
    writeFileSync(
      join(runDir, 'meta.yaml'),
      toYaml({
        artifact_uri: `file://${join(runDir, 'artifacts')}`,
        end_time: run.endedAt,
        entry_point_name: '',
        experiment_id: experimentId,
        lifecycle_stage: 'active',
        run_id: runId,
        run_name: run.id,
        run_uuid: runId,
        source_name: '',
        source_type: 4,
        source_version: '',
        start_time: run.startedAt,
        status: STATUS[run.status].code,
        tags: [],
        user_id: process.env.USER ?? 'kiln',
      }),
    );
    ids.push(runId);
  }
  return ids;
}

/**
 * The run store: one SQLite database, `<runs root>/kiln.db`, that indexes every run under that
 * root (train, distill, eval, export): its params, step-wise metrics, tags, status, final
 * results and artifacts. The files under `runs/<id>/` stay the source of truth: the store is
 * written beside them, and a run made before the store existed is imported from its directory
 * (on the store's first open, and by `kiln runs import`).
 *
 * - WAL mode with a busy timeout, and every write is one short transaction, so two trainings
 *   writing at once wait for each other's commits instead of failing or losing rows
 *   (https://www.sqlite.org/wal.html).
 * - A run that dies without saying so (kill -9, power loss) is still `running` in the table. Each
 *   read reconciles: a run whose process is gone (same host: its pid no longer has the start
 *   time it had) or whose heartbeat is older than `STALE_HEARTBEAT_MS` (another host) is marked
 *   `killed`.
 * - The schema is versioned with `PRAGMA user_version`, migrated forward in one immediate
 *   transaction; a database from a newer Kiln is refused with a StoreError, not a crash.
 */
import Database from 'better-sqlite3';
import { existsSync, mkdirSync, readFileSync, readdirSync, statSync } from 'node:fs';
import { hostname } from 'node:os';
import { join, relative, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';

import { RunDirectory, type MetricRecord } from './run-dir.js';

export const STORE_FILE = 'kiln.db';
export const STORE_SCHEMA_VERSION = 1;
/** A run on another host whose last heartbeat is older than this is taken as killed. */
export const STALE_HEARTBEAT_MS = 30 * 60 * 1000;

export type RunKind = 'train' | 'distill' | 'eval' | 'export';
export const RUN_STATUSES = ['running', 'finished', 'failed', 'killed'] as const;
export type RunStatus = (typeof RUN_STATUSES)[number];

/** Migration N takes the schema from version N to N + 1. */
const MIGRATIONS: readonly string[] = [
  `CREATE TABLE runs (
     id           TEXT PRIMARY KEY,
     name         TEXT NOT NULL,
     kind         TEXT NOT NULL,
     task         TEXT,
     status       TEXT NOT NULL,
     message      TEXT,
     path         TEXT NOT NULL,
     parent_id    TEXT,
     started_at   INTEGER NOT NULL,
     ended_at     INTEGER,
     heartbeat_at INTEGER NOT NULL,
     host         TEXT,
     pid          INTEGER,
     pid_start    TEXT
   );
   CREATE INDEX runs_parent ON runs (parent_id);
   CREATE TABLE params (
     run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     key    TEXT NOT NULL,
     value  TEXT NOT NULL,
     PRIMARY KEY (run_id, key)
   ) WITHOUT ROWID;
   CREATE TABLE metrics (
     run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     key    TEXT NOT NULL,
     step   INTEGER NOT NULL,
     time   REAL NOT NULL,
     value  REAL,
     PRIMARY KEY (run_id, key, step)
   ) WITHOUT ROWID;
   CREATE TABLE results (
     run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     key    TEXT NOT NULL,
     value  REAL,
     PRIMARY KEY (run_id, key)
   ) WITHOUT ROWID;
   CREATE TABLE tags (
     run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     key    TEXT NOT NULL,
     value  TEXT NOT NULL,
     PRIMARY KEY (run_id, key)
   ) WITHOUT ROWID;
   CREATE TABLE artifacts (
     run_id TEXT NOT NULL REFERENCES runs (id) ON DELETE CASCADE,
     path   TEXT NOT NULL,
     bytes  INTEGER NOT NULL,
     PRIMARY KEY (run_id, path)
   ) WITHOUT ROWID;`,
];

export class StoreError extends Error {
  override name = 'StoreError';
}

export interface RunRecord {
  id: string;
  name: string;
  kind: RunKind;
  task: string | null;
  status: RunStatus;
  message: string | null;
  /** Absolute path of the run's directory (train, distill) or output (eval, export). */
  path: string;
  /** The run an eval or export was made from. */
  parentId: string | null;
  startedAt: number;
  endedAt: number | null;
  heartbeatAt: number;
  host: string | null;
  pid: number | null;
}

export interface RunDetail extends RunRecord {
  /** Flattened config: dotted keys, values as JSON text (`train.lr` → `0.0003`). */
  params: Record<string, string>;
  tags: Record<string, string>;
  /** Final metrics: the summary's when the run ended, else each metric's latest value. */
  results: Record<string, number | null>;
  artifacts: { path: string; bytes: number }[];
  /** Runs made from this one (evaluations, exports). */
  children: RunRecord[];
}

export interface BeginRun {
  id: string;
  name: string;
  kind: RunKind;
  task?: string | null;
  path: string;
  parentId?: string | null;
  params?: Record<string, string>;
  tags?: Record<string, string>;
}

export interface EndRun {
  status: Exclude<RunStatus, 'running'>;
  message?: string | null;
  results?: Record<string, number>;
  /** Files to list as artifacts, relative to the run's path (directories are walked). */
  artifactsFrom?: string;
  /** Where the run's output ended up, when it was not known at the start (an export's directory). */
  path?: string;
}

/** The runs table's columns under RunRecord's names, so a row reads as a record. */
const RUN_COLUMNS =
  'id, name, kind, task, status, message, path, parent_id AS parentId, started_at AS startedAt, ended_at AS endedAt, heartbeat_at AS heartbeatAt, host, pid';

/** Linux's process start time (field 22 of /proc/<pid>/stat): a pid reused by a later process has another. */
export function processStartTime(pid: number): string | null {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start at field 3.
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ')[22 - 3] ?? null;
  } catch {
    return null;
  }
}

function processAlive(pid: number, startedAs: string | null): boolean {
  if (startedAs !== null) return processStartTime(pid) === startedAs;
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** A config object as dotted keys with JSON values: arrays stay whole (`data.train` → one JSON array). */
export function flattenParams(value: unknown, prefix = ''): Record<string, string> {
  const out: Record<string, string> = {};
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    for (const [key, inner] of Object.entries(value as Record<string, unknown>)) Object.assign(out, flattenParams(inner, prefix === '' ? key : `${prefix}.${key}`));
    return out;
  }
  if (prefix !== '') out[prefix] = JSON.stringify(value ?? null);
  return out;
}

/** Every file under `dir`, relative to it, with its size; checkpoints are listed too. */
function listFiles(dir: string): { path: string; bytes: number }[] {
  const out: { path: string; bytes: number }[] = [];
  const walk = (current: string): void => {
    for (const entry of readdirSync(current, { withFileTypes: true })) {
      const full = join(current, entry.name);
      if (entry.isDirectory()) walk(full);
      else if (entry.isFile() && !entry.name.includes('.tmp')) out.push({ path: relative(dir, full), bytes: statSync(full).size });
    }
  };
  if (existsSync(dir) && statSync(dir).isDirectory()) walk(dir);
  return out.sort((a, b) => a.path.localeCompare(b.path));
}

/** summary.json's status in the store's words. */
function statusOfSummary(status: string | undefined): Exclude<RunStatus, 'running'> {
  return status === 'diverged' ? 'failed' : 'finished';
}

export class RunStore {
  readonly root: string;
  readonly path: string;
  readonly #db: Database.Database;
  readonly #host = hostname();

  private constructor(root: string, db: Database.Database) {
    this.root = root;
    this.path = join(root, STORE_FILE);
    this.#db = db;
  }

  /**
   * Opens (or creates) `<root>/kiln.db`. A new store imports the run directories already under
   * `root`, so runs made before the store existed appear in it.
   */
  static open(root: string): RunStore {
    const absolute = resolve(root);
    const path = join(absolute, STORE_FILE);
    let db: Database.Database;
    try {
      mkdirSync(absolute, { recursive: true }); // a first training creates its runs directory
      db = new Database(path, { timeout: 15_000 });
      db.pragma('journal_mode = WAL');
      db.pragma('synchronous = NORMAL');
      db.pragma('foreign_keys = ON');
    } catch (error) {
      throw new StoreError(`${path}: cannot open the run store: ${(error as Error).message}`);
    }
    const store = new RunStore(absolute, db);
    let created: boolean;
    try {
      created = store.#migrate();
    } catch (error) {
      db.close();
      throw error;
    }
    if (created) store.importDirectories();
    else store.refreshImported();
    return store;
  }

  /** Brings the schema to STORE_SCHEMA_VERSION; true when the store was new. */
  #migrate(): boolean {
    const version = (): number => this.#db.pragma('user_version', { simple: true }) as number;
    const check = (found: number): void => {
      if (found > STORE_SCHEMA_VERSION) {
        throw new StoreError(
          `${this.path}: the run store has schema version ${found}, written by a newer Kiln; this Kiln reads up to version ${STORE_SCHEMA_VERSION}. ` +
            'Upgrade Kiln, or point --runs at another directory (the run directories themselves are unchanged).',
        );
      }
    };
    let found: number;
    try {
      found = version();
    } catch (error) {
      throw new StoreError(`${this.path}: not a Kiln run store: ${(error as Error).message}`);
    }
    check(found);
    if (found === STORE_SCHEMA_VERSION) return false;
    // Two processes may open a new store at once: the immediate transaction makes one migrate
    // while the other waits, then finds the work done.
    return this.#db.transaction(() => {
      const current = version();
      check(current);
      for (let v = current; v < STORE_SCHEMA_VERSION; v++) {
        this.#db.exec(MIGRATIONS[v]!);
        this.#db.pragma(`user_version = ${v + 1}`);
      }
      return current === 0;
    }).immediate();
  }

  close(): void {
    this.#db.close();
  }

  beginRun(run: BeginRun, now = Date.now()): void {
    const { pid } = process;
    this.#db.transaction(() => {
      this.#db
        .prepare(
          `INSERT INTO runs (id, name, kind, task, status, message, path, parent_id, started_at, ended_at, heartbeat_at, host, pid, pid_start)
           VALUES (@id, @name, @kind, @task, 'running', NULL, @path, @parentId, @now, NULL, @now, @host, @pid, @pidStart)
           ON CONFLICT (id) DO UPDATE SET status = 'running', message = NULL, ended_at = NULL, heartbeat_at = @now, host = @host, pid = @pid, pid_start = @pidStart`,
        )
        .run({ id: run.id, name: run.name, kind: run.kind, task: run.task ?? null, path: resolve(run.path), parentId: run.parentId ?? null, now, host: this.#host, pid, pidStart: processStartTime(pid) });
      if (run.params !== undefined) this.#setParams(run.id, run.params);
      if (run.tags !== undefined) this.#setTags(run.id, run.tags);
    })();
  }

  #setParams(runId: string, params: Record<string, string>): void {
    this.#db.prepare('DELETE FROM params WHERE run_id = ?').run(runId);
    const insert = this.#db.prepare('INSERT INTO params (run_id, key, value) VALUES (?, ?, ?)');
    for (const [key, value] of Object.entries(params)) insert.run(runId, key, value);
  }

  #setTags(runId: string, tags: Record<string, string>): void {
    const upsert = this.#db.prepare('INSERT INTO tags (run_id, key, value) VALUES (?, ?, ?) ON CONFLICT (run_id, key) DO UPDATE SET value = excluded.value');
    for (const [key, value] of Object.entries(tags)) upsert.run(runId, key, value);
  }

  setTags(runId: string, tags: Record<string, string>): void {
    this.#requireRun(runId);
    this.#db.transaction(() => this.#setTags(runId, tags))();
  }

  removeTag(runId: string, key: string): void {
    this.#requireRun(runId);
    this.#db.prepare('DELETE FROM tags WHERE run_id = ? AND key = ?').run(runId, key);
  }

  /** Appends metric records (a step logged twice keeps its last value) and beats the heartbeat. */
  logMetrics(runId: string, records: readonly MetricRecord[], now = Date.now()): void {
    const insert = this.#db.prepare(
      'INSERT INTO metrics (run_id, key, step, time, value) VALUES (?, ?, ?, ?, ?) ON CONFLICT (run_id, key, step) DO UPDATE SET time = excluded.time, value = excluded.value',
    );
    this.#db.transaction(() => {
      // NaN and ±Inf have no SQLite REAL: they are stored as NULL ("no number").
      for (const r of records) insert.run(runId, r.name, r.step, r.time, Number.isFinite(r.value) ? r.value : null);
      this.#db.prepare('UPDATE runs SET heartbeat_at = ? WHERE id = ?').run(now, runId);
    })();
  }

  heartbeat(runId: string, now = Date.now()): void {
    this.#db.prepare('UPDATE runs SET heartbeat_at = ? WHERE id = ?').run(now, runId);
  }

  /** A resumed run redoes the steps after its checkpoint: their metrics go first. */
  truncateMetricsAfter(runId: string, step: number): void {
    this.#db.prepare('DELETE FROM metrics WHERE run_id = ? AND step > ?').run(runId, step);
  }

  endRun(runId: string, end: EndRun, now = Date.now()): void {
    const artifacts = end.artifactsFrom === undefined ? null : listFiles(end.artifactsFrom);
    this.#db.transaction(() => {
      this.#db.prepare('UPDATE runs SET status = ?, message = ?, ended_at = ?, heartbeat_at = ?, path = COALESCE(?, path) WHERE id = ?').run(end.status, end.message ?? null, now, now, end.path === undefined ? null : resolve(end.path), runId);
      if (end.results !== undefined) {
        this.#db.prepare('DELETE FROM results WHERE run_id = ?').run(runId);
        const insert = this.#db.prepare('INSERT INTO results (run_id, key, value) VALUES (?, ?, ?)');
        for (const [key, value] of Object.entries(end.results)) insert.run(runId, key, Number.isFinite(value) ? value : null);
      }
      if (artifacts !== null) {
        this.#db.prepare('DELETE FROM artifacts WHERE run_id = ?').run(runId);
        const insert = this.#db.prepare('INSERT INTO artifacts (run_id, path, bytes) VALUES (?, ?, ?)');
        for (const a of artifacts) insert.run(runId, a.path, a.bytes);
      }
    })();
  }

  /** Marks runs whose process is gone as killed (see the header); returns the ids it marked. */
  reconcile(now = Date.now()): string[] {
    const running = this.#db.prepare(`SELECT ${RUN_COLUMNS}, pid_start AS pidStart FROM runs WHERE status = 'running'`).all() as (RunRecord & { pidStart: string | null })[];
    const dead = running.filter((row) => {
      if (row.host === this.#host && row.pid !== null) return !processAlive(row.pid, row.pidStart);
      return now - row.heartbeatAt > STALE_HEARTBEAT_MS;
    });
    if (dead.length === 0) return [];
    const mark = this.#db.prepare("UPDATE runs SET status = 'killed', message = ?, ended_at = heartbeat_at WHERE id = ? AND status = 'running'");
    this.#db.transaction(() => {
      for (const row of dead) mark.run(row.host === this.#host ? `process ${row.pid} ended without finishing the run` : `no heartbeat from ${row.host ?? 'its host'} since ${new Date(row.heartbeatAt).toISOString()}`, row.id);
    })();
    return dead.map((row) => row.id);
  }

  listRuns(): RunRecord[] {
    this.reconcile();
    return this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM runs ORDER BY started_at DESC, id DESC`).all() as RunRecord[];
  }

  #requireRun(id: string): RunRecord {
    const row = this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE id = ?`).get(id) as RunRecord | undefined;
    if (row === undefined) throw new StoreError(`no run '${id}' in ${this.path} (kiln runs list shows the ids)`);
    return row;
  }

  hasRun(id: string): boolean {
    return this.#db.prepare('SELECT 1 FROM runs WHERE id = ?').get(id) !== undefined;
  }

  /** A run by id, or by a path to its directory (`runs/<id>`). */
  resolveId(idOrPath: string): string {
    if (this.hasRun(idOrPath)) return idOrPath;
    const row = this.#db.prepare('SELECT id FROM runs WHERE path = ?').get(resolve(idOrPath)) as { id: string } | undefined;
    if (row !== undefined) return row.id;
    this.#requireRun(idOrPath);
    return idOrPath;
  }

  getRun(id: string): RunDetail {
    this.reconcile();
    const row = this.#requireRun(id);
    const pairs = (sql: string): [string, string | number | null][] =>
      (this.#db.prepare(sql).all(id) as { key: string; value: string | number | null }[]).map((r) => [r.key, r.value]);
    const params = Object.fromEntries(pairs('SELECT key, value FROM params WHERE run_id = ? ORDER BY key')) as Record<string, string>;
    const tags = Object.fromEntries(pairs('SELECT key, value FROM tags WHERE run_id = ? ORDER BY key')) as Record<string, string>;
    return {
      ...row,
      params,
      tags,
      results: this.results(id),
      artifacts: this.#db.prepare('SELECT path, bytes FROM artifacts WHERE run_id = ? ORDER BY path').all(id) as { path: string; bytes: number }[],
      children: this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE parent_id = ? ORDER BY started_at`).all(id) as RunRecord[],
    };
  }

  /** Final metrics: the summary's once the run ended with one, else the latest value of each metric. */
  results(id: string): Record<string, number | null> {
    const final = this.#db.prepare('SELECT key, value FROM results WHERE run_id = ? ORDER BY key').all(id) as { key: string; value: number | null }[];
    if (final.length > 0) return Object.fromEntries(final.map((r) => [r.key, r.value]));
    const latest = this.#db
      .prepare(
        `SELECT m.key, m.value FROM metrics m
         JOIN (SELECT key, MAX(step) AS step FROM metrics WHERE run_id = ? GROUP BY key) last ON last.key = m.key AND last.step = m.step
         WHERE m.run_id = ? ORDER BY m.key`,
      )
      .all(id, id) as { key: string; value: number | null }[];
    return Object.fromEntries(latest.map((r) => [r.key.replace(/^eval\//, ''), r.value]));
  }

  /** Each run's params, tags and results, for tables over many runs (no reconciling, no artifacts). */
  tableRows(ids: readonly string[]): Map<string, { params: Record<string, string>; tags: Record<string, string>; results: Record<string, number | null> }> {
    const out = new Map<string, { params: Record<string, string>; tags: Record<string, string>; results: Record<string, number | null> }>();
    const params = this.#db.prepare('SELECT key, value FROM params WHERE run_id = ?');
    const tags = this.#db.prepare('SELECT key, value FROM tags WHERE run_id = ? ORDER BY key');
    const pairs = (statement: Database.Statement, id: string): Record<string, string> => Object.fromEntries((statement.all(id) as { key: string; value: string }[]).map((r) => [r.key, r.value]));
    for (const id of ids) out.set(id, { params: pairs(params, id), tags: pairs(tags, id), results: this.results(id) });
    return out;
  }

  /**
   * A token that changes whenever any run starts, logs, beats or ends: the dashboard's live
   * view polls it and refreshes only when it moved.
   */
  changeToken(): string {
    this.reconcile();
    const row = this.#db.prepare("SELECT COUNT(*) AS runs, MAX(heartbeat_at) AS beat, MAX(ended_at) AS ended, SUM(status = 'running') AS running FROM runs").get() as Record<string, number | null>;
    return `${row.runs}:${row.beat}:${row.ended}:${row.running}`;
  }

  /** The metric keys a run logged. */
  metricKeys(id: string): string[] {
    return (this.#db.prepare('SELECT DISTINCT key FROM metrics WHERE run_id = ? ORDER BY key').all(id) as { key: string }[]).map((r) => r.key);
  }

  /** One metric's series, ordered by step; `afterStep` returns only newer points (live updates). */
  metricSeries(id: string, key: string, afterStep = -1): { step: number; time: number; value: number | null }[] {
    return this.#db.prepare('SELECT step, time, value FROM metrics WHERE run_id = ? AND key = ? AND step > ? ORDER BY step').all(id, key, afterStep) as {
      step: number;
      time: number;
      value: number | null;
    }[];
  }

  /**
   * Removes a run (and the evaluations and exports made from it) from the store; files are the
   * caller's. A running run is refused unless `force` (its own process withdrawing it).
   */
  deleteRun(id: string, options: { force?: boolean } = {}): RunRecord[] {
    this.reconcile();
    const row = this.#requireRun(id);
    if (row.status === 'running' && options.force !== true) throw new StoreError(`run ${id} is running (pid ${row.pid} on ${row.host}); stop it before deleting it`);
    const children = this.#db.prepare(`SELECT ${RUN_COLUMNS} FROM runs WHERE parent_id = ?`).all(id) as RunRecord[];
    this.#db.transaction(() => {
      for (const child of children) this.#db.prepare('DELETE FROM runs WHERE id = ?').run(child.id);
      this.#db.prepare('DELETE FROM runs WHERE id = ?').run(id);
    })();
    return [row, ...children];
  }

  /**
   * Adds the run directories under the root that the store does not know: params from
   * config.yaml, metrics from metrics.jsonl, status and results from summary.json (a directory
   * without one was interrupted: `killed`, and `kiln train --resume` continues it).
   */
  importDirectories(): string[] {
    if (!existsSync(this.root)) return [];
    const imported = this.refreshImported();
    for (const entry of readdirSync(this.root, { withFileTypes: true })) {
      if (!entry.isDirectory() || this.hasRun(entry.name)) continue;
      const dir = join(this.root, entry.name);
      if (existsSync(join(dir, 'config.yaml')) && this.importDirectory(dir)) imported.push(entry.name);
    }
    return imported;
  }

  /**
   * Imports again the imported runs that had not finished (an older Kiln was still training
   * them, so no process of this Kiln reports their end) once their summary.json exists. Runs
   * on every open, so a list or the dashboard shows them finished.
   */
  refreshImported(): string[] {
    const unfinished = this.#db
      .prepare("SELECT r.id, r.path FROM runs r JOIN tags t ON t.run_id = r.id AND t.key = 'imported' WHERE r.status IN ('running', 'killed')")
      .all() as { id: string; path: string }[];
    const refreshed: string[] = [];
    for (const { id, path } of unfinished) {
      if (!existsSync(join(path, 'summary.json'))) continue;
      this.#db.prepare('DELETE FROM runs WHERE id = ?').run(id);
      if (this.importDirectory(path)) refreshed.push(id);
    }
    return refreshed;
  }

  /** Imports one run directory; false when it is not a readable Kiln run. */
  importDirectory(dir: string): boolean {
    const run = new RunDirectory(dir);
    let config: Record<string, unknown>;
    try {
      config = (parseYaml(readFileSync(run.file('config.yaml'), 'utf8')) ?? {}) as Record<string, unknown>;
    } catch {
      return false;
    }
    let summary: { status?: string; message?: string; metrics?: Record<string, number>; finishedAt?: string } | null = null;
    if (existsSync(run.file('summary.json'))) {
      try {
        summary = run.readJson('summary.json');
      } catch {
        summary = null;
      }
    }
    const started = statSync(run.file('config.yaml')).mtimeMs;
    const metrics = run.readMetrics();
    const name = typeof config.name === 'string' ? config.name : run.id;
    const task = typeof config.task === 'string' ? config.task : 'twotower';
    // Without summary.json the run was interrupted, or an older Kiln is still training it: its
    // last write is its heartbeat, and the next read marks it killed once that is stale.
    const lastWrite = Math.max(started, ...['metrics.jsonl', join('checkpoints', 'latest')].filter((f) => existsSync(run.file(f))).map((f) => statSync(run.file(f)).mtimeMs));
    const ended = summary?.finishedAt !== undefined ? Date.parse(summary.finishedAt) : lastWrite;
    this.#db
      .prepare(
        `INSERT INTO runs (id, name, kind, task, status, message, path, parent_id, started_at, ended_at, heartbeat_at, host, pid, pid_start)
         VALUES (?, ?, ?, ?, 'running', NULL, ?, NULL, ?, NULL, ?, NULL, NULL, NULL)`,
      )
      .run(run.id, name, task === 'distill' ? 'distill' : 'train', task, run.path, Math.round(started), Math.round(ended));
    this.#db.transaction(() => {
      this.#setParams(run.id, flattenParams(config));
      this.#setTags(run.id, { imported: 'true' });
    })();
    this.logMetrics(run.id, metrics, Math.round(ended));
    if (summary !== null) {
      this.endRun(run.id, { status: statusOfSummary(summary.status), message: summary.message ?? null, results: summary.metrics, artifactsFrom: run.path }, Math.round(ended));
    } else if (Date.now() - lastWrite > STALE_HEARTBEAT_MS) {
      this.endRun(run.id, { status: 'killed', message: 'imported without summary.json: interrupted (kiln train --resume continues it)', artifactsFrom: run.path }, Math.round(ended));
    }
    return true;
  }
}

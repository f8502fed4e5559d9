/**
 * `kiln runs list|show|compare|tag|delete|import|export [--runs DIR] [--json]`: the run store
 * (`<runs>/kiln.db`, src/track/store.ts) in the terminal, and its runs exported to MLflow.
 *
 * @example
 * $ kiln runs list --status finished --sort tech/rp@5
 * $ kiln runs show teacher-20261201-203310
 * $ kiln runs compare runs/teacher-20261201-203310 runs/twotower-20261201-171403 --diff
 * $ kiln runs tag teacher-20261201-203310 purpose=baseline
 * $ kiln runs delete tiny-20261201-101500
 * $ kiln runs export --all --mlflow mlruns
 * $ kiln runs export teacher-20261201-203310 --tracking-uri http://127.0.0.1:5000
 */
import { existsSync, rmSync } from 'node:fs';
import { relative, resolve } from 'node:path';
import type { Argv, CommandModule } from 'yargs';

import { compareRuns, formatParam, formatResult } from '../../track/compare.js';
import { exportMlflowFileStore, logRunToMlflow, MlflowError, MlflowRestClient } from '../../track/mlflow.js';
import { RUN_STATUSES, RunStore, StoreError, type RunRecord } from '../../track/store.js';
import { formatTable } from '../table.js';
import { UsageError } from '../usage.js';

interface RunsArgs {
  runs: string;
  json: boolean;
}

const withStore = <T>(args: RunsArgs, body: (store: RunStore) => T): T | undefined => {
  let store: RunStore | undefined;
  try {
    if (!existsSync(args.runs)) throw new StoreError(`--runs ${args.runs}: no such directory (kiln train --runs DIR writes runs there)`);
    store = RunStore.open(args.runs);
    return body(store);
  } catch (error) {
    if (error instanceof StoreError || error instanceof UsageError) {
      process.stderr.write(`${error.message}\n`);
      process.exitCode = 2;
      return undefined;
    }
    throw error;
  } finally {
    store?.close();
  }
};

const print = (args: RunsArgs, json: unknown, text: () => string): void => {
  process.stdout.write(args.json ? `${JSON.stringify(json, null, 2)}\n` : `${text()}\n`);
};

const iso = (ms: number | null): string => (ms === null ? '-' : new Date(ms).toISOString().replace('T', ' ').slice(0, 19));
const duration = (run: RunRecord): string => {
  const seconds = Math.round(((run.endedAt ?? run.heartbeatAt) - run.startedAt) / 1000);
  return seconds >= 3600 ? `${Math.floor(seconds / 3600)}h${String(Math.floor((seconds % 3600) / 60)).padStart(2, '0')}m` : `${Math.floor(seconds / 60)}m${String(seconds % 60).padStart(2, '0')}s`;
};

/** Result keys most runs share, at most `limit`: the default metric columns of `list`. */
function commonResultKeys(results: readonly Record<string, number | null>[], limit: number): string[] {
  const counts = new Map<string, number>();
  for (const r of results) for (const key of Object.keys(r)) if (!key.includes('/hybrid/')) counts.set(key, (counts.get(key) ?? 0) + 1);
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]))
    .slice(0, limit)
    .map(([key]) => key);
}

interface ListArgs extends RunsArgs {
  status?: string;
  task?: string;
  name?: string;
  tag: string[];
  where: string[];
  sort: string;
  asc: boolean;
  metrics?: string[];
}

const keyValue = (text: string, flag: string): [string, string] => {
  const at = text.indexOf('=');
  if (at <= 0) throw new UsageError(`${flag} ${text}: expected key=value`);
  return [text.slice(0, at), text.slice(at + 1)];
};

const listCommand: CommandModule<RunsArgs, ListArgs> = {
  command: 'list',
  describe: 'List runs with their status and main results',
  builder: (y) =>
    y
      .option('status', { type: 'string', choices: RUN_STATUSES, describe: 'Only runs with this status' })
      .option('task', { type: 'string', describe: 'Only runs of this task (twotower, mlm, cross-encoder)' })
      .option('name', { type: 'string', describe: 'Only runs whose name contains this' })
      .option('tag', { type: 'string', array: true, default: [], describe: 'Only runs with this tag: key=value (repeatable)' })
      .option('where', { type: 'string', array: true, default: [], describe: 'Only runs whose param has this value: train.lr=0.0003 (repeatable)' })
      .option('sort', { type: 'string', default: 'started', describe: 'started, name, status, a result (tech/rp@5) or a param (train.lr)' })
      .option('asc', { type: 'boolean', default: false, describe: 'Ascending (default: descending)' })
      .option('metrics', { type: 'string', array: true, describe: 'Result columns (default: the four most runs share)' }),
  handler: (args) =>
    withStore(args, (store) => {
      const tags = args.tag.map((t) => keyValue(t, '--tag'));
      const where = args.where.map((w) => keyValue(w, '--where'));
      const runs = store.listRuns().filter((r) => (args.status === undefined || r.status === args.status) && (args.task === undefined || r.task === args.task) && (args.name === undefined || r.name.includes(args.name)));
      const rows = store.tableRows(runs.map((r) => r.id));
      const details = runs.map((r) => ({ ...r, ...rows.get(r.id)! }));
      const kept = details.filter((d) => tags.every(([k, v]) => d.tags[k] === v) && where.every(([k, v]) => d.params[k] !== undefined && formatParam(d.params[k]!) === v));
      const sortValue = (d: (typeof kept)[number]): number | string | null => {
        if (args.sort === 'started') return d.startedAt;
        if (args.sort === 'name' || args.sort === 'status' || args.sort === 'id') return d[args.sort];
        if (args.sort in d.results) return d.results[args.sort] ?? null;
        const param = d.params[args.sort];
        if (param === undefined) return null;
        const parsed: unknown = JSON.parse(param);
        return typeof parsed === 'number' || typeof parsed === 'string' ? parsed : param;
      };
      if (args.sort !== 'started' && !['name', 'status', 'id'].includes(args.sort) && !kept.some((d) => args.sort in d.results || args.sort in d.params)) {
        throw new UsageError(`--sort ${args.sort}: no run has this result or param`);
      }
      const direction = args.asc ? 1 : -1;
      kept.sort((a, b) => {
        const [x, y] = [sortValue(a), sortValue(b)];
        if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1; // missing values last
        return (x < y ? -1 : x > y ? 1 : 0) * direction;
      });
      const metricKeys = args.metrics ?? commonResultKeys(kept.map((d) => d.results), 4);
      print(
        args,
        kept.map(({ params: _p, ...rest }) => rest),
        () =>
          kept.length === 0
            ? `no runs in ${store.path}`
            : formatTable(
                ['id', 'task', 'status', 'started (UTC)', 'time', ...metricKeys],
                kept.map((d) => [d.id, d.task ?? d.kind, d.status, iso(d.startedAt), duration(d), ...metricKeys.map((k) => formatResult(d.results[k] ?? null))]),
                [false, false, false, false, true, ...metricKeys.map(() => true)],
              ),
      );
    }),
};

const showCommand: CommandModule<RunsArgs, RunsArgs & { run: string }> = {
  command: 'show <run>',
  describe: 'Show one run: status, params, tags, results, artifacts, and the evaluations and exports made from it',
  builder: (y) => y.positional('run', { type: 'string', demandOption: true, describe: 'Run id or runs/<id>' }),
  handler: (args) =>
    withStore(args, (store) => {
      const run = store.getRun(store.resolveId(args.run));
      print(args, run, () => {
        const lines = [
          `run ${run.id} (${run.kind}${run.task === null ? '' : `, ${run.task}`}): ${run.status}${run.message === null ? '' : `: ${run.message}`}`,
          `path     ${run.path}`,
          `started  ${iso(run.startedAt)} UTC, ${run.endedAt === null ? 'still running' : `ended ${iso(run.endedAt)} UTC`} (${duration(run)})`,
        ];
        if (run.parentId !== null) lines.push(`from     ${run.parentId}`);
        const section = (title: string, entries: [string, string][]): void => {
          if (entries.length > 0) lines.push('', title, formatTable(['key', 'value'], entries));
        };
        section('results', Object.entries(run.results).map(([k, v]) => [k, formatResult(v)]));
        section('tags', Object.entries(run.tags));
        section('params', Object.entries(run.params).map(([k, v]) => [k, formatParam(v)]));
        section('artifacts', run.artifacts.map((a) => [a.path, `${a.bytes} bytes`]));
        section('made from it', run.children.map((c) => [c.id, `${c.kind}, ${c.status}`]));
        return lines.join('\n');
      });
    }),
};

const compareCommand: CommandModule<RunsArgs, RunsArgs & { runs_: string[]; diff: boolean }> = {
  command: 'compare <runs_..>',
  describe: 'Compare runs side by side: results and params (--diff: only what differs)',
  builder: (y) =>
    y
      .positional('runs_', { type: 'string', array: true, demandOption: true, describe: 'Two or more run ids or runs/<id>' })
      .option('diff', { type: 'boolean', default: false, describe: 'Only the params and results that differ' }),
  handler: (args) =>
    withStore(args, (store) => {
      if (args.runs_.length < 2) throw new UsageError('compare needs two or more runs');
      const comparison = compareRuns(store, args.runs_, { onlyDifferences: args.diff });
      print(args, comparison, () => {
        const header = ['', ...comparison.runs.map((r) => r.id)];
        const numeric = [false, ...comparison.runs.map(() => true)];
        const results = formatTable(['result', ...header.slice(1)], comparison.results.map((row) => [row.key, ...row.values.map(formatResult)]), numeric);
        const params = formatTable(['param', ...header.slice(1)], comparison.params.map((row) => [row.key, ...row.values.map(formatParam)]));
        return `${results}\n\n${params}`;
      });
    }),
};

const deleteCommand: CommandModule<RunsArgs, RunsArgs & { runs_: string[]; 'keep-files': boolean }> = {
  command: 'delete <runs_..>',
  describe: 'Delete runs from the store, and their directories under --runs unless --keep-files',
  builder: (y) =>
    y
      .positional('runs_', { type: 'string', array: true, demandOption: true, describe: 'Run ids or runs/<id>' })
      .option('keep-files', { type: 'boolean', default: false, describe: 'Keep the run directories (only the store forgets them; `kiln runs import` brings them back)' }),
  handler: (args) =>
    withStore(args, (store) => {
      const ids = args.runs_.map((r) => store.resolveId(r));
      const deleted: string[] = [];
      for (const id of ids) {
        const removed = store.deleteRun(id);
        for (const run of removed) {
          deleted.push(run.id);
          // Only a directory inside the runs root is removed: the store never deletes elsewhere.
          const inside = relative(store.root, run.path);
          if (!args['keep-files'] && run.kind !== 'eval' && inside !== '' && !inside.startsWith('..') && resolve(store.root, inside) === run.path) rmSync(run.path, { recursive: true, force: true });
        }
      }
      print(args, { deleted }, () => deleted.map((id) => `deleted ${id}`).join('\n'));
    }),
};

const tagCommand: CommandModule<RunsArgs, RunsArgs & { run: string; tags: string[]; remove: string[] }> = {
  command: 'tag <run> [tags..]',
  describe: 'Set tags on a run (key=value), or remove them (--remove key)',
  builder: (y) =>
    y
      .positional('run', { type: 'string', demandOption: true, describe: 'Run id or runs/<id>' })
      .positional('tags', { type: 'string', array: true, default: [], describe: 'key=value pairs' })
      .option('remove', { type: 'string', array: true, default: [], describe: 'Tag keys to remove (repeatable)' }),
  handler: (args) =>
    withStore(args, (store) => {
      const id = store.resolveId(args.run);
      const pairs = args.tags.map((t) => keyValue(t, 'tag'));
      if (pairs.length === 0 && args.remove.length === 0) throw new UsageError('give tags to set (key=value) or --remove key');
      store.setTags(id, Object.fromEntries(pairs));
      for (const key of args.remove) store.removeTag(id, key);
      const { tags } = store.getRun(id);
      print(args, { id, tags }, () => `${id}: ${Object.entries(tags).map(([k, v]) => `${k}=${v}`).join(' ') || '(no tags)'}`);
    }),
};

interface ExportArgs extends RunsArgs {
  runs_: string[];
  all: boolean;
  mlflow?: string;
  'tracking-uri'?: string;
  experiment: string;
}

const exportCommand: CommandModule<RunsArgs, ExportArgs> = {
  command: 'export [runs_..]',
  describe: "Export runs to MLflow: its file-store layout (--mlflow DIR) or a tracking server (--tracking-uri URI)",
  builder: (y) =>
    y
      .positional('runs_', { type: 'string', array: true, default: [], describe: 'Run ids or runs/<id> (or --all)' })
      .option('all', { type: 'boolean', default: false, describe: 'Every run in the store' })
      .option('mlflow', { type: 'string', describe: 'Write an MLflow file store here (mlruns layout)' })
      .option('tracking-uri', { type: 'string', describe: 'Log to this MLflow tracking server over REST' })
      .option('experiment', { type: 'string', default: process.env.MLFLOW_EXPERIMENT_NAME ?? 'kiln', describe: 'MLflow experiment name' })
      .check((args) => {
        if ((args.mlflow === undefined) === (args['tracking-uri'] === undefined)) throw new UsageError('give exactly one of --mlflow DIR or --tracking-uri URI');
        if (args.all === (args.runs_.length > 0)) throw new UsageError('name the runs to export, or give --all');
        return true;
      }),
  handler: async (args) => {
    let store: RunStore | undefined;
    try {
      if (!existsSync(args.runs)) throw new StoreError(`--runs ${args.runs}: no such directory (kiln train --runs DIR writes runs there)`);
      store = RunStore.open(args.runs);
      const ids = args.all ? store.listRuns().map((r) => r.id) : args.runs_.map((r) => store!.resolveId(r));
      if (args.mlflow !== undefined) {
        const mlflowIds = exportMlflowFileStore(store, ids, args.mlflow, args.experiment);
        print(args, { experiment: args.experiment, runs: Object.fromEntries(ids.map((id, i) => [id, mlflowIds[i]])) }, () => ids.map((id, i) => `${id} → ${args.mlflow}/…/${mlflowIds[i]}`).join('\n'));
      } else {
        const client = new MlflowRestClient(args['tracking-uri']!);
        const mlflowIds: string[] = [];
        for (const id of ids) mlflowIds.push(await logRunToMlflow(client, store, id, args.experiment));
        print(args, { experiment: args.experiment, runs: Object.fromEntries(ids.map((id, i) => [id, mlflowIds[i]])) }, () => ids.map((id, i) => `${id} → MLflow run ${mlflowIds[i]}`).join('\n'));
      }
    } catch (error) {
      if (error instanceof StoreError || error instanceof MlflowError) {
        process.stderr.write(`${error.message}\n`);
        process.exitCode = error instanceof StoreError ? 2 : 1;
        return;
      }
      throw error;
    } finally {
      store?.close();
    }
  },
};

const importCommand: CommandModule<RunsArgs, RunsArgs> = {
  command: 'import',
  describe: 'Add run directories under --runs that the store does not know (runs made before it existed)',
  handler: (args) =>
    withStore(args, (store) => {
      const imported = store.importDirectories();
      print(args, { imported }, () => (imported.length === 0 ? 'nothing to import' : imported.map((id) => `imported ${id}`).join('\n')));
    }),
};

export const runsCommand: CommandModule<object, RunsArgs> = {
  command: 'runs',
  describe: 'List, show, compare, tag, delete, import and export (to MLflow) runs in the run store (runs/kiln.db)',
  builder: (y: Argv) =>
    y
      .option('runs', { type: 'string', default: 'runs', describe: 'Directory that holds run directories and kiln.db' })
      .option('json', { type: 'boolean', default: false, describe: 'Print JSON' })
      .command(listCommand as unknown as CommandModule<object, never>)
      .command(showCommand as unknown as CommandModule<object, never>)
      .command(compareCommand as unknown as CommandModule<object, never>)
      .command(deleteCommand as unknown as CommandModule<object, never>)
      .command(importCommand as unknown as CommandModule<object, never>)
      .command(tagCommand as unknown as CommandModule<object, never>)
      .command(exportCommand as unknown as CommandModule<object, never>)
      .demandCommand(1, 'Name a subcommand: list, show, compare, delete, import, tag or export') as unknown as Argv<RunsArgs>,
  handler: () => {},
};

/**
 * `kiln runs list|show|compare|delete|import` over a store with three runs: filters, sorting,
 * tables and --json, deletion of the store entry and the directory, and exit 2 with a message
 * for unknown runs and bad flags.
 */
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';

import { RunStore } from '../../src/track/store.js';
import { kiln } from '../helpers/cli.js';

const root = mkdtempSync(join(tmpdir(), 'kiln-cli-runs-'));
const runs = (...args: string[]) => kiln(['runs', ...args, '--runs', root]);

beforeAll(() => {
  const store = RunStore.open(root);
  const add = (id: string, task: string, lr: string, mrr: number | null, status: 'finished' | 'failed', startedAt: number): void => {
    const dir = join(root, id);
    mkdirSync(dir);
    writeFileSync(join(dir, 'config.yaml'), `name: ${id}\n`);
    writeFileSync(join(dir, 'summary.json'), JSON.stringify({ status: status === 'failed' ? 'diverged' : 'completed', metrics: mrr === null ? {} : { 'tech/mrr': mrr } }));
    store.beginRun({ id, name: id.replace(/-\d.*$/, ''), kind: 'train', task, path: dir, params: { 'train.lr': lr, 'model.preset': '"bert-mini"' }, tags: { group: task === 'mlm' ? 'pre' : 'main' } }, startedAt);
    store.logMetrics(id, [{ step: 10, time: 1, name: 'train/loss', value: 1 }], startedAt + 1000);
    store.endRun(id, { status, results: mrr === null ? {} : { 'tech/mrr': mrr }, artifactsFrom: dir }, startedAt + 65_000);
  };
  add('alpha-20261201-100000', 'twotower', '0.001', 0.41, 'finished', Date.parse('2026-12-01T10:00:00Z'));
  add('beta-20261201-110000', 'twotower', '0.0005', 0.47, 'finished', Date.parse('2026-12-01T11:00:00Z'));
  add('gamma-20261201-120000', 'mlm', '0.0007', null, 'failed', Date.parse('2026-12-01T12:00:00Z'));
  store.close();
});

describe('kiln runs', () => {
  it('list: newest first, a table with the shared result column, filters and sorting', () => {
    const table = runs('list');
    expect(table.status, table.stderr).toBe(0);
    const lines = table.stdout.trim().split('\n');
    // gamma ended without results: its latest logged values stand in for them (train/loss).
    expect(lines[0]).toMatch(/^id\s+task\s+status\s+started \(UTC\)\s+time\s+tech\/mrr\s+train\/loss$/);
    expect(lines.slice(2).map((l) => l.split(/\s+/)[0])).toEqual(['gamma-20261201-120000', 'beta-20261201-110000', 'alpha-20261201-100000']);
    expect(lines[3]).toMatch(/^beta-20261201-110000\s+twotower\s+finished\s+2026-12-01 11:00:00\s+1m05s\s+0\.4700\s+-$/);
    const ids = (r: { stdout: string }) => (JSON.parse(r.stdout) as Array<{ id: string }>).map((x) => x.id);
    expect(ids(runs('list', '--json', '--sort', 'tech/mrr'))).toEqual(['beta-20261201-110000', 'alpha-20261201-100000', 'gamma-20261201-120000']);
    expect(ids(runs('list', '--json', '--sort', 'train.lr', '--asc'))).toEqual(['beta-20261201-110000', 'gamma-20261201-120000', 'alpha-20261201-100000']);
    expect(ids(runs('list', '--json', '--status', 'failed'))).toEqual(['gamma-20261201-120000']);
    expect(ids(runs('list', '--json', '--task', 'twotower', '--where', 'train.lr=0.001'))).toEqual(['alpha-20261201-100000']);
    expect(ids(runs('list', '--json', '--tag', 'group=pre'))).toEqual(['gamma-20261201-120000']);
    const bad = runs('list', '--sort', 'nothing');
    expect(bad.status).toBe(2);
    expect(bad.stderr).toMatch(/--sort nothing: no run has this result or param/);
  });

  it('show: one run in words and in JSON; an unknown id exits 2', () => {
    const shown = runs('show', join(root, 'alpha-20261201-100000'));
    expect(shown.status, shown.stderr).toBe(0);
    expect(shown.stdout).toMatch(/^run alpha-20261201-100000 \(train, twotower\): finished/);
    expect(shown.stdout).toMatch(/tech\/mrr\s+0\.4100/);
    expect(shown.stdout).toMatch(/train\.lr\s+0\.001/);
    expect(JSON.parse(runs('show', 'alpha-20261201-100000', '--json').stdout)).toMatchObject({ id: 'alpha-20261201-100000', results: { 'tech/mrr': 0.41 }, tags: { group: 'main' } });
    const missing = kiln(['runs', 'list', '--runs', join(root, 'no-such-dir')]);
    expect(missing.status).toBe(2);
    expect(missing.stderr).toMatch(/--runs .*no-such-dir: no such directory/);
    expect(existsSync(join(root, 'no-such-dir'))).toBe(false);
    const unknown = runs('show', 'nope');
    expect(unknown.status).toBe(2);
    expect(unknown.stderr).toMatch(/no run 'nope' in .*kiln\.db \(kiln runs list shows the ids\)/);
  });

  it('compare: results and params side by side, --diff keeps what differs', () => {
    const all = JSON.parse(runs('compare', 'alpha-20261201-100000', 'beta-20261201-110000', '--json').stdout) as { params: Array<{ key: string; differs: boolean }> };
    expect(all.params.map((p) => [p.key, p.differs])).toEqual([
      ['model.preset', false],
      ['train.lr', true],
    ]);
    const diff = runs('compare', 'alpha-20261201-100000', 'beta-20261201-110000', '--diff');
    expect(diff.stdout).toMatch(/tech\/mrr\s+0\.4100\s+0\.4700/);
    expect(diff.stdout).toMatch(/train\.lr\s+0\.001\s+0\.0005/);
    expect(diff.stdout).not.toMatch(/model\.preset/);
    expect(runs('compare', 'alpha-20261201-100000').status).toBe(2);
  });

  it('tag: sets and removes tags, which list then filters on', () => {
    expect(JSON.parse(runs('tag', 'beta-20261201-110000', 'purpose=baseline', 'owner=ml', '--json').stdout)).toEqual({ id: 'beta-20261201-110000', tags: { group: 'main', owner: 'ml', purpose: 'baseline' } });
    expect((JSON.parse(runs('list', '--json', '--tag', 'purpose=baseline').stdout) as Array<{ id: string }>).map((r) => r.id)).toEqual(['beta-20261201-110000']);
    expect(runs('tag', 'beta-20261201-110000', '--remove', 'owner').stdout.trim()).toBe('beta-20261201-110000: group=main purpose=baseline');
    expect(runs('tag', 'beta-20261201-110000', 'novalue').stderr).toMatch(/tag novalue: expected key=value/);
  });

  it('delete: the store entry and the directory (or --keep-files), and import brings a kept one back', () => {
    const kept = runs('delete', 'gamma-20261201-120000', '--keep-files');
    expect(kept.status, kept.stderr).toBe(0);
    expect(existsSync(join(root, 'gamma-20261201-120000'))).toBe(true);
    expect(runs('show', 'gamma-20261201-120000').status).toBe(2);
    expect(runs('import').stdout.trim()).toBe('imported gamma-20261201-120000');
    const gone = runs('delete', 'gamma-20261201-120000');
    expect(gone.stdout.trim()).toBe('deleted gamma-20261201-120000');
    expect(existsSync(join(root, 'gamma-20261201-120000'))).toBe(false);
  });
});

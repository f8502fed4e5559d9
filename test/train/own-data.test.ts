/**
 * A new user's first hour with their own data, through the built CLI on the shipped examples
 * (configs/examples/): `kiln data inspect` shows the data, `kiln train` trains on a CSV of
 * pairs, `kiln eval` and `kiln export` work on the run; triplets add their negatives to every
 * batch; and a CSV whose columns are not mapped is one line and exit 2, with no run written.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { kiln, onlyRun, runDirs } from '../helpers/cli.js';

const SHORT = ['--quiet', '--set', 'train.steps=6', '--set', 'train.warmup_steps=1', '--set', 'train.eval_every=0', '--set', 'train.checkpoint_every=6', '--set', 'train.log_every=1'];

describe('own data through the CLI', () => {
  it('kiln data inspect prints rows, lengths, truncation and samples after the prompt, and writes nothing', () => {
    const r = kiln(['data', 'inspect', '--config', 'configs/examples/own-pairs.yaml', '--json']);
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const report = JSON.parse(r.stdout) as Array<{ use: string; recipe: string; rowsRead: number; rowsSkipped: number; duplicates: number; sides: Array<{ name: string; lengths: { max: number; truncated: number } }>; samples: Array<Record<string, string>> }>;
    expect(report.map((e) => [e.use, e.recipe])).toEqual([
      ['train[0]', 'pairs'],
      ['eval dev', 'retrieval'],
    ]);
    const train = report[0]!;
    // configs/examples/data/pairs.csv: 40 data rows, none bad, none repeated.
    expect([train.rowsRead, train.rowsSkipped, train.duplicates]).toEqual([40, 0, 0]);
    expect(train.samples).toHaveLength(5);
    // The prompt templates are applied: query: {text} and skill: {text}.
    for (const sample of train.samples) {
      expect(sample.query).toMatch(/^query: /);
      expect(sample.document).toMatch(/^skill: /);
    }
    // "query: pandas and numpy data analysis" is not in pairs.csv; the longest training query is 10 tokens at most.
    expect(train.sides.map((s) => s.name)).toEqual(['query', 'document']);
    expect(train.sides[0]!.lengths.truncated).toBe(0);
    // A max_length of 4 truncates most prompted queries.
    const short = kiln(['data', 'inspect', '--config', 'configs/examples/own-pairs.yaml', '--set', 'data.max_length=4', '--json']);
    const truncated = (JSON.parse(short.stdout) as typeof report)[0]!.sides[0]!.lengths.truncated;
    expect(truncated).toBeGreaterThan(0.9);
    const text = kiln(['data', 'inspect', '--config', 'configs/examples/own-pairs.yaml']);
    expect(text.stdout).toContain('train[0]: recipe pairs (pairs)\n  rows: 40 read, 40 kept, 0 skipped; 0 duplicates');
    expect(text.stdout).toMatch(/query tokens \(40 texts\): p50 \d+, p90 \d+, p99 \d+, max \d+; 0\.0% truncated at 32/);
  });

  it('trains on a CSV of pairs, then evaluates and exports the run', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-own-'));
    const trained = kiln(['train', '--config', 'configs/examples/own-pairs.yaml', '--runs', runs, ...SHORT]);
    expect(trained.stderr).not.toMatch(/\n\s+at /);
    expect(trained.status).toBe(0);
    const run = onlyRun(runs);
    const summary = JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { status: string; metrics: Record<string, number> };
    expect(summary.status).toBe('completed');
    expect(summary.metrics['dev/mrr']).toBeGreaterThan(0);
    // Every data file read is recorded with its SHA-256: the pairs, the BEIR files and the vocabulary.
    const recorded = (JSON.parse(readFileSync(join(run, 'summary.json'), 'utf8')) as { dataFiles: Array<{ path: string; bytes: number; sha256: string }> }).dataFiles;
    const examples = join(process.cwd(), 'configs', 'examples', 'data');
    const expectedFiles = [join(examples, 'beir', 'corpus.jsonl'), join(examples, 'beir', 'qrels', 'dev.tsv'), join(examples, 'beir', 'queries.jsonl'), join(examples, 'pairs.csv')];
    expect(recorded.map((f) => f.path).filter((p) => p.startsWith(examples))).toEqual(expectedFiles);
    expect(recorded.some((f) => f.path.endsWith(join('bert-vocab', 'vocab.txt')))).toBe(true);
    for (const file of recorded) {
      const bytes = readFileSync(file.path);
      expect(file).toEqual({ path: file.path, bytes: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    }
    // The saved config names the CSV by its absolute path: the run resumes and evaluates from anywhere.
    expect(readFileSync(join(run, 'config.yaml'), 'utf8')).toContain(`path: ${join(process.cwd(), 'configs', 'examples', 'data', 'pairs.csv')}`);
    const evaluated = kiln(['eval', '--run', run, '--json']);
    expect(evaluated.status).toBe(0);
    expect(JSON.parse(evaluated.stdout).metrics['dev/mrr']).toBeCloseTo(summary.metrics['dev/mrr']!, 6);
    const out = join(runs, 'export');
    const exported = kiln(['export', '--run', run, '--out', out]);
    expect(exported.status).toBe(0);
    expect(existsSync(join(out, 'model.onnx'))).toBe(true);
  });

  it('a triplets run scores each row’s negative in its batch', () => {
    const runs = mkdtempSync(join(tmpdir(), 'kiln-own-'));
    const trained = kiln(['train', '--config', 'configs/examples/own-triplets.yaml', '--runs', runs, ...SHORT]);
    expect(trained.status).toBe(0);
    const lines = readFileSync(join(onlyRun(runs), 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { step: number; name: string; value: number });
    const negatives = lines.filter((l) => l.name === 'train/explicit_negatives');
    // One negative per row of triplets.jsonl: B extra columns per batch of B, every step.
    expect(negatives.map((l) => l.step)).toEqual([1, 2, 3, 4, 5, 6]);
    for (const line of negatives) expect(line.value).toBe(1);
  });

  it('a CSV whose columns are not mapped is one line naming the file and the columns, exit 2, and no run', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-own-'));
    writeFileSync(join(dir, 'pairs.csv'), 'q,d\na,b\nc,d\n');
    writeFileSync(join(dir, 'own.yaml'), 'name: own\ndata:\n  train:\n    - recipe: pairs\n      options: { path: pairs.csv }\n  eval: []\nmodel: { preset: bert-tiny }\nloss:\n  - { name: infonce }\ntrain: { steps: 2, batch_size: 2 }\n');
    const runs = join(dir, 'runs');
    const r = kiln(['train', '--config', join(dir, 'own.yaml'), '--runs', runs, '--quiet']);
    expect(r.status).toBe(2);
    expect(r.stderr.trim().split('\n')).toEqual([`data error: ${join(dir, 'pairs.csv')}:1: no columns "anchor", "positive" (columns: "q", "d"); map them with options.columns`]);
    expect(runDirs(runs)).toEqual([]);
  });
});

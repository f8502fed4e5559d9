/**
 * The recipes for a user's own files (src/data/recipes/pairs.ts, triplets.ts, scored-pairs.ts,
 * retrieval.ts): column mapping, globs over mixed formats, bad rows under both policies with
 * their file:line (or row) and reason, the BEIR layout, paths relative to the config file, the
 * conversion of each kind into training pairs, and BCE's graded targets checked by hand.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';

import { parseConfigText } from '../../src/config/load.js';
import { ConfigError } from '../../src/config/errors.js';
import { createContext } from '../../src/data/files.js';
import { loadRecipe, RECIPES } from '../../src/data/recipes/index.js';
import { DataError, type PairExample, type RetrievalSplit, type ScoredTextPair } from '../../src/data/types.js';
import { fromTypedArray, tidy } from '../../src/engine/index.js';
import { BceLoss, createLoss } from '../../src/losses/index.js';
import { trainingPairs } from '../../src/train/setup.js';

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kiln-own-data-'));
}

const context = (onBadRow: 'skip' | 'fail' = 'skip') => createContext({ dataRoot: tmpdir(), onBadRow, seed: 3 });

describe('recipe pairs', () => {
  it('maps columns, expands a glob over CSV and Parquet in sorted order, and groups pairs by their positive', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'a.csv'), 'question,answer,extra\nwhat is sql,SQL,x\nquery a database,SQL,y\n');
    writeFileSync(
      join(dir, 'b.parquet'),
      new Uint8Array(
        parquetWriteBuffer({
          columnData: [
            { name: 'question', data: ['build images'], type: 'STRING' },
            { name: 'answer', data: ['Docker'], type: 'STRING' },
          ],
        }),
      ),
    );
    const ctx = context();
    const loaded = await loadRecipe('pairs', ctx, { path: join(dir, '*.{csv,parquet}'), columns: { anchor: 'question', positive: 'answer' }, doc_type: 'skill' });
    expect(loaded.kind).toBe('pairs');
    const pairs = loaded.data as PairExample[];
    expect(pairs.map((p) => [p.query, p.doc, p.queryType, p.docType])).toEqual([
      ['what is sql', 'SQL', 'query', 'skill'],
      ['query a database', 'SQL', 'query', 'skill'],
      ['build images', 'Docker', 'query', 'skill'],
    ]);
    expect(pairs.map((p) => p.source)).toEqual([`${join(dir, 'a.csv')}:2`, `${join(dir, 'a.csv')}:3`, `${join(dir, 'b.parquet')}#1`]);
    // Two anchors of one positive are one group (never each other's in-batch negative).
    expect(pairs[0]!.group).toBe(pairs[1]!.group);
    expect(pairs[0]!.group).not.toBe(pairs[2]!.group);
    expect([...ctx.filesRead!]).toEqual([join(dir, 'a.csv'), join(dir, 'b.parquet')]);
  });

  it('skips bad rows with file:line and the reason under skip, and stops at the first under fail', async () => {
    const dir = tempDir();
    const file = join(dir, 'p.csv');
    writeFileSync(file, 'anchor,positive\ngood,Doc\n  ,Doc\nshort\ngood too,Doc 2\n');
    const ctx = context('skip');
    const pairs = (await loadRecipe('pairs', ctx, { path: file })).data as PairExample[];
    expect(pairs.map((p) => p.query)).toEqual(['good', 'good too']);
    expect(ctx.report.total).toBe(2);
    expect(ctx.report.messages()).toEqual([`${file}:3: column "anchor" is empty; expected a text`, `${file}:4: row has 1 fields; expected 2 (anchor, positive)`]);
    const failing = loadRecipe('pairs', context('fail'), { path: file });
    await expect(failing).rejects.toThrow(DataError);
    await expect(loadRecipe('pairs', context('fail'), { path: file })).rejects.toThrow(`${file}:3: column "anchor" is empty; expected a text`);
  });

  it('refuses a file without a mapped column whatever the policy, and a glob that matches nothing', async () => {
    const dir = tempDir();
    const file = join(dir, 'p.jsonl');
    writeFileSync(file, '{"q": "a", "d": "b"}\n');
    await expect(loadRecipe('pairs', context('skip'), { path: file })).rejects.toThrow(`${file}:1: no keys "anchor", "positive" (keys: "q", "d"); map them with options.columns`);
    await expect(loadRecipe('pairs', context('skip'), { path: join(dir, '*.csv') })).rejects.toThrow(/\*\.csv: pairs\.path: the glob matches no file/);
    await expect(loadRecipe('pairs', context('skip'), { path: join(dir, 'nope.csv') })).rejects.toThrow(`${join(dir, 'nope.csv')}: no such file`);
  });
});

describe('recipe triplets', () => {
  it('reads one or several negative columns, and refuses a negative equal to the positive', async () => {
    const dir = tempDir();
    const file = join(dir, 't.tsv');
    writeFileSync(file, 'anchor\tpositive\tneg1\tneg2\nq1\tP1\tN1\tN2\nq2\tP2\tN3\t\nq3\tP3\tp3\tN4\n');
    const ctx = context('skip');
    const pairs = (await loadRecipe('triplets', ctx, { path: file, columns: { negative: ['neg1', 'neg2'] } })).data as PairExample[];
    expect(pairs.map((p) => [p.query, p.doc, p.negatives])).toEqual([
      ['q1', 'P1', ['N1', 'N2']],
      ['q2', 'P2', ['N3']],
    ]);
    expect(ctx.report.messages()).toEqual([`${file}:4: a negative equals the positive; expected a different text`]);
  });
});

describe('recipe scored-pairs', () => {
  it('rescales score_range into [0, 1], reports out-of-range scores, and trains as pairs with labels', async () => {
    const dir = tempDir();
    const file = join(dir, 's.csv');
    writeFileSync(file, 'sentence1,sentence2,score\na,b,5\nc,d,2.5\ne,f,7\ng,h,zero\n');
    const ctx = context('skip');
    const loaded = await loadRecipe('scored-pairs', ctx, { path: file, score_range: [0, 5], b_side: 'query', b_type: 'sentence' });
    const rows = loaded.data as ScoredTextPair[];
    expect(rows.map((p) => [p.a, p.b, p.score, p.bSide, p.bType])).toEqual([
      ['a', 'b', 1, 'query', 'sentence'],
      ['c', 'd', 0.5, 'query', 'sentence'],
    ]);
    expect(ctx.report.messages()).toEqual([`${file}:4: column "score" is 7; expected a number in [0, 5]`, `${file}:5: column "score" is a string ("zero"); expected a number in [0, 5]`]);
    const asPairs = trainingPairs(loaded);
    expect(asPairs.map((p) => [p.query, p.doc, p.label])).toEqual([
      ['a', 'b', 1],
      ['c', 'd', 0.5],
    ]);
    // STS-B's raw 0..5 scores cannot be graded targets.
    const raw = { recipe: 'stsb', kind: 'scored-pairs', data: [{ a: 'x', b: 'y', score: 3.2, source: 'sts-dev.csv:9' }] } as const;
    expect(() => trainingPairs({ ...raw, data: [...raw.data] })).toThrow("sts-dev.csv:9: recipe 'stsb' gives a score of 3.2; training on scored pairs needs scores in [0, 1]");
  });
});

describe('recipe retrieval (BEIR layout)', () => {
  function beir(): string {
    const dir = tempDir();
    mkdirSync(join(dir, 'qrels'));
    writeFileSync(join(dir, 'corpus.jsonl'), ['{"_id": "d1", "title": "Python", "text": "A language."}', '{"_id": "d2", "title": "", "text": "Containers."}', '{"_id": "d3", "title": "SQL", "text": ""}'].join('\n'));
    writeFileSync(join(dir, 'queries.jsonl'), ['{"_id": "q1", "text": "python dev"}', '{"_id": "q2", "text": "docker"}', '{"_id": "q3", "text": "unjudged"}', '{"_id": "q4", "text": "weak"}'].join('\n'));
    writeFileSync(join(dir, 'qrels', 'test.tsv'), 'query-id\tcorpus-id\tscore\nq1\td1\t1\nq2\td2\t2\nq2\td3\t1\nq4\td3\t0\nq9\td1\t1\nq1\td7\t1\n');
    return dir;
  }

  it('joins title and text, keeps judgements with score ≥ min_score, drops unjudged queries, and reports unknown ids', async () => {
    const dir = beir();
    const ctx = context('skip');
    const split = (await loadRecipe('retrieval', ctx, { dir, name: 'mine' })).data as RetrievalSplit;
    expect(split.corpus).toEqual([
      { id: 'd1', text: 'Python A language.' },
      { id: 'd2', text: 'Containers.' },
      { id: 'd3', text: 'SQL' },
    ]);
    expect(split.queries.map((q) => [q.id, q.text, q.relevant])).toEqual([
      ['q1', 'python dev', [0]],
      ['q2', 'docker', [1, 2]],
    ]);
    const qrels = join(dir, 'qrels', 'test.tsv');
    expect(ctx.report.messages()).toEqual([`${qrels}:6: query id "q9" is not in the queries file`, `${qrels}:7: document id "d7" is not in the corpus`]);
    // Each query's positives and as many seeded negatives, for ROC-AUC.
    expect(split.labelledPairs.filter((p) => p.label === 1)).toHaveLength(3);
    // As training data: one pair per judgement, grouped by document.
    const pairs = trainingPairs({ recipe: 'retrieval', kind: 'retrieval', data: split });
    expect(pairs.map((p) => [p.query, p.doc, p.group])).toEqual([
      ['python dev', 'Python A language.', 'mine:d1'],
      ['docker', 'Containers.', 'mine:d2'],
      ['docker', 'SQL', 'mine:d3'],
    ]);
    // min_score 0 counts q4's zero-score judgement; title: ignore leaves d3 with no text (a bad row).
    const lenient = (await loadRecipe('retrieval', context('skip'), { dir, min_score: 0 })).data as RetrievalSplit;
    expect(lenient.queries.map((q) => q.id)).toEqual(['q1', 'q2', 'q4']);
    const noTitles = context('skip');
    const untitled = (await loadRecipe('retrieval', noTitles, { dir, title: 'ignore' })).data as RetrievalSplit;
    expect(untitled.corpus.map((d) => d.text)).toEqual(['A language.', 'Containers.']);
    expect(noTitles.report.messages()[0]).toBe(`${join(dir, 'corpus.jsonl')}:3: document "d3" has no text (column "text" is empty)`);
  });

  it('takes explicit corpus, queries and qrels files, and needs either dir or all three', async () => {
    const dir = beir();
    const split = (await loadRecipe('retrieval', context(), { corpus: join(dir, 'corpus.jsonl'), queries: join(dir, 'queries.jsonl'), qrels: join(dir, 'qrels', 'test.tsv') })).data as RetrievalSplit;
    expect(split.queries).toHaveLength(2);
    expect(() => RECIPES.retrieval.parseOptions({ corpus: 'c.jsonl' })).toThrow(/give dir \(a BEIR folder\), or all of corpus, queries and qrels/);
  });
});

describe('paths in a config', () => {
  const config = (train: string, loss = 'infonce') => `name: own\ndata:\n  train:\n${train}\n  eval: []\nmodel: { preset: bert-tiny }\nloss:\n  - { name: ${loss} }\ntrain: { steps: 2, batch_size: 2 }\n`;

  it('are made absolute against the config file, so the saved config reads the same files from anywhere', () => {
    const loaded = parseConfigText(config('    - recipe: pairs\n      options: { path: data/*.csv }\n    - recipe: retrieval\n      options: { dir: ../beir, split: train }'), '/home/me/project/configs/own.yaml');
    expect(loaded.config.data.train[0]!.options.path).toBe('/home/me/project/configs/data/*.csv');
    expect(loaded.config.data.train[1]!.options.dir).toBe('/home/me/project/beir');
    expect(loaded.resolvedYaml).toContain('path: /home/me/project/configs/data/*.csv');
    // Absolute paths stay as they are.
    expect(parseConfigText(config('    - recipe: pairs\n      options: { path: [/data/a.csv, b.csv] }'), 'conf/own.yaml').config.data.train[0]!.options.path).toEqual(['/data/a.csv', join(process.cwd(), 'conf', 'b.csv')]);
  });

  it('a loss that takes every pair as a positive is refused on scored pairs, naming the entry and the losses that fit', () => {
    const scored = '    - recipe: scored-pairs\n      options: { path: s.csv }';
    const attempt = (): unknown => parseConfigText(config(scored), 'own.yaml');
    expect(attempt).toThrow(ConfigError);
    expect(attempt).toThrow(/loss\[0\]\.name: loss infonce takes every training pair as a positive, but data\.train\[0\] \(recipe 'scored-pairs'\) yields scored pairs with labels; use a loss that learns graded targets: bce/);
    expect(() => parseConfigText(config(scored, 'bce'), 'own.yaml')).not.toThrow();
  });
});

describe('bce with graded targets (scored pairs)', () => {
  it('uses each positive column’s target y_i in −[y log σ(z) + (1 − y) log(1 − σ(z))], by hand', () => {
    // Scale 1, bias 0, fixed: z = s. Two queries, two candidates; positives on the diagonal.
    const s = [0.5, -1, 2, 0.25];
    const targets = [0.25, 1];
    const loss = createLoss({ name: 'bce', scale: 1, bias: 0, learnable_scale: false, learnable_bias: false });
    const value = tidy(() => (loss as BceLoss).forward({ scores: fromTypedArray(Float32Array.from(s), { shape: [2, 2] }), positiveTarget: fromTypedArray(Float32Array.from(targets), { shape: [2] }) }).item());
    const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
    const y = [targets[0]!, 0, 0, targets[1]!];
    const expected = s.reduce((sum, z, i) => sum - (y[i]! * Math.log(sigmoid(z)) + (1 - y[i]!) * Math.log(1 - sigmoid(z))), 0) / 4;
    expect(value).toBeCloseTo(expected, 6);
    // Without targets the positives are 1: a different number.
    const plain = tidy(() => (loss as BceLoss).forward({ scores: fromTypedArray(Float32Array.from(s), { shape: [2, 2] }) }).item());
    expect(Math.abs(plain - value)).toBeGreaterThan(0.05);
  });
});

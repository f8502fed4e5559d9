/**
 * `kiln embed` (src/serve/embed.ts, src/serve/arrow-io.ts, src/cli/commands/embed.ts).
 *
 * The pure parts are checked against values computed independently here (node:crypto on
 * hand-normalised strings); the run's bookkeeping (bad rows with their exact lines, reuse,
 * deduplication, shards, atomic replacement) with a stand-in model whose vectors are a hash of
 * the text, so every count is exact and a failure can be injected; and the whole path with a
 * tiny exported ONNX model (test/helpers/exported-model.ts) against `ExportedModel.embed`, on
 * small files and on the two real CSVs the issue names, plus the CLI's exit codes.
 */
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Table, tableFromArrays, tableToIPC, Utf8, vectorFromArray } from 'apache-arrow';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { DataError } from '../../src/data/types.js';
import { META, readEmbeddings } from '../../src/serve/arrow-io.js';
import {
  contentHash,
  EmbedError,
  embedFile,
  formatSummary,
  normaliseText,
  NORMALISATION_RULE,
  openInput,
  parseShard,
  shardOf,
  type EmbedOptions,
  type EmbeddingModel,
} from '../../src/serve/embed.js';
import type { EmbedRequest } from '../../src/serve/exported-model.js';
import { ExportedModel } from '../../src/serve/exported-model.js';
import { KILN_VERSION } from '../../src/version.js';
import { DATA_ROOT } from '../data/root.js';
import { exportedTinyModels } from '../helpers/exported-model.js';
import { REPO_ROOT } from '../helpers/python.js';

const sha256 = (s: string): string => createHash('sha256').update(s, 'utf8').digest('hex');

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kiln-embed-test-'));
}

function write(dir: string, name: string, content: string): string {
  const path = join(dir, name);
  writeFileSync(path, content);
  return path;
}

function jsonl(rows: object[]): string {
  return rows.map((r) => JSON.stringify(r)).join('\n') + '\n';
}

/** A stand-in model: the vector of a text is bytes of SHA-256(side|type|text) scaled to [0, 1]; it records every call. */
class FakeModel implements EmbeddingModel {
  readonly calls: string[][] = [];
  failOnCall: number | null = null;
  constructor(
    readonly modelId = 'fake-run@0123456789ab',
    readonly dimension = 4,
  ) {}
  static vector(text: string, request: EmbedRequest = {}, dimension = 4): Float32Array {
    const digest = createHash('sha256').update(`${request.side ?? 'doc'}|${request.inputType ?? ''}|${text}`).digest();
    return Float32Array.from({ length: dimension }, (_, i) => digest[i]! / 255);
  }
  async embed(texts: readonly string[], request: EmbedRequest = {}): Promise<Float32Array[]> {
    this.calls.push([...texts]);
    if (this.failOnCall === this.calls.length) throw new Error('injected failure');
    return texts.map((t) => FakeModel.vector(t, request, this.dimension));
  }
}

/** embedFile with bad rows and notes collected instead of printed. */
async function run(options: EmbedOptions): Promise<{ summary: Awaited<ReturnType<typeof embedFile>>; bad: string[]; notes: string[] }> {
  const bad: string[] = [];
  const notes: string[] = [];
  const summary = await embedFile({ log: (l) => notes.push(l), onBadRow: (e) => bad.push(e.message), ...options });
  return { summary, bad, notes };
}

function vectorsById(path: string): Map<string, Float32Array> {
  const file = readEmbeddings(path);
  return new Map(file.ids.map((id, i) => [id, file.vectors[i]!]));
}

function bytesOf(v: Float32Array): Buffer {
  return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
}

describe('normaliseText / contentHash', () => {
  it('applies NFKC, collapses whitespace runs, trims, keeps case', () => {
    // ﬁ (U+FB01) → "fi", full-width Ｆ → F, NBSP and tabs/newlines → one space, ² → 2.
    expect(normaliseText('  \uFB01rst\u00A0\u00A0Ｆull\t\n Time²  ')).toBe('first Full Time2');
    expect(normaliseText('Data   SCIENTIST')).toBe('Data SCIENTIST');
    // A precomposed and a decomposed é normalise to the same string.
    expect(normaliseText('Caf\u0065\u0301')).toBe('Caf\u00e9');
    expect(normaliseText(' \t\n ')).toBe('');
  });

  it('hashes the normalised text as hex SHA-256 of its UTF-8 bytes', () => {
    expect(contentHash('  Senior   Data\u00A0Engineer ')).toBe(sha256('Senior Data Engineer'));
    expect(contentHash('Café')).toBe(sha256('Caf\u00e9'));
    expect(contentHash('café')).not.toBe(contentHash('Café'));
  });
});

describe('parseShard / shardOf', () => {
  it('parses i/n and rejects anything else with what was expected', () => {
    expect(parseShard('0/2')).toEqual({ index: 0, count: 2 });
    expect(parseShard('3/4')).toEqual({ index: 3, count: 4 });
    expect(parseShard('0/1')).toEqual({ index: 0, count: 1 });
    for (const bad of ['2/2', '5/4', '1/0', '0/0', 'a/b', '1', '-1/2', '1/2/3', '']) {
      expect(() => parseShard(bad), bad).toThrow(EmbedError);
    }
    expect(() => parseShard('2/2')).toThrow(/index i must be in 0\.\.1/);
    expect(() => parseShard('x')).toThrow(/expected i\/n, e\.g\. 0\/4/);
  });

  it('is the first 8 bytes of SHA-256(id), big-endian, mod n', () => {
    for (const id of ['1', 'abc', 'http://data.europa.eu/esco/occupation/00030d09-2b3a-4efd-87cc-c4ea39d27c34', 'ünï']) {
      const first8 = createHash('sha256').update(id, 'utf8').digest().subarray(0, 8);
      const value = BigInt(`0x${first8.toString('hex')}`);
      for (const n of [1, 2, 3, 7, 1000]) expect(shardOf(id, n)).toBe(Number(value % BigInt(n)));
    }
  });

  it('depends on the id alone (adding rows moves no other row) and splits evenly', () => {
    const ids = Array.from({ length: 2000 }, (_, i) => `row-${i}`);
    const before = ids.slice(0, 1000).map((id) => shardOf(id, 4));
    const after = ids.map((id) => shardOf(id, 4));
    expect(after.slice(0, 1000)).toEqual(before);
    for (let s = 0; s < 4; s++) {
      const n = after.filter((x) => x === s).length;
      expect(n).toBeGreaterThan(400);
      expect(n).toBeLessThan(600);
    }
  });
});

describe('embedFile with a stand-in model', () => {
  it('reports each bad JSONL row as FILE:LINE: reason and skips it', async () => {
    const dir = tempDir();
    const input = write(
      dir,
      'rows.jsonl',
      [
        '{"id": "a", "text": "Data engineer"}', // 1
        '', // 2 (empty lines are not rows)
        '{"id": "b", "text": "Nurse"', // 3 invalid JSON
        '{"id": "c"}', // 4 no text
        '{"id": "d", "text": 42}', // 5 text not a string
        '{"id": "e", "text": "  \\t "}', // 6 empty after normalisation
        '{"text": "Welder"}', // 7 no id
        '{"id": "a", "text": "Baker"}', // 8 repeated id
        '[1, 2]', // 9 not an object
        '{"id": 17, "text": "Cook"}', // 10 numeric id is fine
        '{"id": "f", "text": "Data   engineer"}', // 11 same text as line 1
      ].join('\n') + '\n',
    );
    const model = new FakeModel();
    const out = join(dir, 'out.arrow');
    const { summary, bad } = await run({ model, input, out });
    expect(bad).toEqual([
      `${input}:3: invalid JSON: ${(() => {
        try {
          JSON.parse('{"id": "b", "text": "Nurse"');
        } catch (e) {
          return (e as Error).message;
        }
        return '';
      })()}`,
      `${input}:4: no "text" key (keys: "id")`,
      `${input}:5: "text" is a number (42); expected a string`,
      `${input}:6: the text ("text") is empty after normalisation; expected some text`,
      `${input}:7: no "id" key (keys: "text"); expected an id`,
      `${input}:8: id "a" repeated (first at line 1); ids must be unique`,
      `${input}:9: a JSON array; expected an object`,
    ]);
    expect(summary).toMatchObject({ read: 10, skipped: 7, written: 3, reused: 0, deduplicated: 1, computed: 2, idsFromRowNumbers: false });
    expect(summary.badRows).toEqual(bad);
    expect(model.calls).toEqual([['Data engineer', 'Cook']]);
    const file = readEmbeddings(out);
    expect(file.ids).toEqual(['a', '17', 'f']);
    expect(file.hashes).toEqual([sha256('Data engineer'), sha256('Cook'), sha256('Data engineer')]);
    expect(file.modelIds).toEqual([model.modelId, model.modelId, model.modelId]);
    expect([...file.vectors[2]!]).toEqual([...FakeModel.vector('Data engineer')]);
  });

  it('reports CSV rows at the line they start on, past quoted multi-line fields', async () => {
    const dir = tempDir();
    const input = write(
      dir,
      'rows.csv',
      [
        'id,text,note', // 1
        'a,Plumber,"one', // 2
        'two', // 3
        'three"', // 4
        'b,,empty text', // 5
        'c,Welder', // 6 two fields
        ',Cook,no id', // 7
        'a,Baker,repeat', // 8
        'd,"Tree\nsurgeon",x', // 9-10
        'e,Chef,ok', // 11
      ].join('\n'),
    );
    const { summary, bad } = await run({ model: new FakeModel(), input, out: join(dir, 'o.arrow') });
    expect(bad).toEqual([
      `${input}:5: the text ("text") is empty; expected some text`,
      `${input}:6: row has 2 fields; expected 3 (id, text, note)`,
      `${input}:7: column "id" is empty; expected an id`,
      `${input}:8: id "a" repeated (first at line 2); ids must be unique`,
    ]);
    expect(summary).toMatchObject({ read: 7, skipped: 4, written: 3 });
    const file = readEmbeddings(join(dir, 'o.arrow'));
    expect(file.ids).toEqual(['a', 'd', 'e']);
    expect(file.hashes[1]).toBe(sha256('Tree surgeon'));
  });

  it('numbers the rows when there is no id column, and says so', async () => {
    const dir = tempDir();
    const input = write(dir, 't.csv', ',vacancyTitle,conceptUri\n0,Marketing Executive,x\n1,MARKETING STAFF,x\n2,Marketing Executive,y\n');
    const model = new FakeModel();
    const { summary, notes } = await run({ model, input, textField: 'vacancyTitle', out: join(dir, 'o.arrow') });
    expect(notes[0]).toBe('t.csv has no "id" column: ids are the 1-based data row numbers (pass --id-field NAME to use a column)');
    expect(summary).toMatchObject({ read: 3, written: 3, computed: 2, deduplicated: 1, idsFromRowNumbers: true });
    expect(readEmbeddings(join(dir, 'o.arrow')).ids).toEqual(['1', '2', '3']);
    expect(formatSummary(summary)[0]).toBe('read 3 rows from t.csv (ids: data row numbers)');
    expect(formatSummary(summary)[1]).toBe('embedded 3 rows: 0 reused, 1 deduplicated, 2 computed');
  });

  it('refuses a missing file, an unknown extension or a missing column before writing anything', async () => {
    const dir = tempDir();
    const out = join(dir, 'o.arrow');
    const model = new FakeModel();
    const csv = write(dir, 'a.csv', 'id,title\n1,Nurse\n');
    await expect(run({ model, input: csv, out })).rejects.toThrow(`${csv}:1: no column "text" for the text (columns: "id", "title"); pass --text-field NAME`);
    await expect(run({ model, input: csv, out, textField: 'title', idField: 'uri' })).rejects.toThrow(/a\.csv:1: no column "uri" for the id/);
    await expect(run({ model, input: join(dir, 'nope.jsonl'), out })).rejects.toThrow(`${join(dir, 'nope.jsonl')}: no such file`);
    const txt = write(dir, 'a.txt', 'x');
    await expect(run({ model, input: txt, out })).rejects.toThrow(/unknown extension "\.txt"; expected \.jsonl .*\.csv .*\.arrow/);
    const json = write(dir, 'a.jsonl', '\n{"id": 1, "title": "Nurse"}\n');
    await expect(run({ model, input: json, out })).rejects.toThrow(`${json}:2: no key "text" for the text (keys: "id", "title"); pass --text-field NAME`);
    await expect(run({ model, input: write(dir, 'e.csv', ''), out })).rejects.toThrow(/the file is empty; expected a header line/);
    for (const p of [csv, txt, json]) await expect(run({ model, input: p, out, textField: 'text' })).rejects.toBeInstanceOf(DataError);
    expect(model.calls).toEqual([]);
    expect(readdirSync(dir).filter((f) => f.endsWith('.arrow') || f.endsWith('.tmp'))).toEqual([]);
  });

  it('reuses unchanged vectors from --previous byte for byte and computes repeated texts once', async () => {
    const dir = tempDir();
    const v1 = write(dir, 'v1.jsonl', jsonl([{ id: 'a', text: 'Nurse' }, { id: 'b', text: 'Welder' }, { id: 'c', text: 'Cook' }, { id: 'd', text: 'Baker' }]));
    const first = join(dir, 'v1.arrow');
    const model = new FakeModel();
    expect((await run({ model, input: v1, out: first })).summary).toMatchObject({ reused: 0, deduplicated: 0, computed: 4 });
    // b edited, c removed, e new, f a copy of a new text, g = old text under a new id, a re-spaced.
    const v2 = write(
      dir,
      'v2.jsonl',
      jsonl([
        { id: 'a', text: '  Nurse ' },
        { id: 'b', text: 'Welder (MIG)' },
        { id: 'd', text: 'Baker' },
        { id: 'e', text: 'Pilot' },
        { id: 'f', text: 'Pilot' },
        { id: 'g', text: 'Cook' },
      ]),
    );
    model.calls.length = 0;
    const second = join(dir, 'v2.arrow');
    const { summary } = await run({ model, input: v2, out: second, previous: first, chunkRows: 2 });
    expect(summary).toMatchObject({ read: 6, skipped: 0, written: 6, reused: 3, deduplicated: 1, computed: 2, reuseRefused: null });
    expect(model.calls.flat()).toEqual(['Welder (MIG)', 'Pilot']);
    const old = vectorsById(first);
    const now = vectorsById(second);
    for (const [id, was] of [['a', 'a'], ['d', 'd'], ['g', 'c']] as const) expect(bytesOf(now.get(id)!).equals(bytesOf(old.get(was)!))).toBe(true);
    expect(bytesOf(now.get('f')!).equals(bytesOf(now.get('e')!))).toBe(true);
  });

  it('reuses nothing, and says why, when the previous file was made for another side, type or model', async () => {
    const dir = tempDir();
    const input = write(dir, 'r.jsonl', jsonl([{ id: 'a', text: 'Nurse' }, { id: 'b', text: 'Nurse' }]));
    const prev = join(dir, 'p.arrow');
    await run({ model: new FakeModel(), input, out: prev });
    const side = await run({ model: new FakeModel(), input, out: join(dir, 'q.arrow'), previous: prev, side: 'query' });
    expect(side.summary).toMatchObject({ reused: 0, deduplicated: 1, computed: 1 });
    expect(side.summary.reuseRefused).toBe('reusing nothing from p.arrow: it was made with side doc (now query)');
    expect(side.notes).toContain(side.summary.reuseRefused);
    const type = await run({ model: new FakeModel(), input, out: join(dir, 't.arrow'), previous: prev, inputType: 'title' });
    expect(type.summary.reuseRefused).toBe('reusing nothing from p.arrow: it was made with input type "none" (now "title")');
    const other = await run({ model: new FakeModel('other@ffffffffffff'), input, out: join(dir, 'm.arrow'), previous: prev });
    expect(other.summary.reuseRefused).toBe('reusing nothing from p.arrow: it was made with model "fake-run@0123456789ab" (now "other@ffffffffffff")');
    expect(other.summary.reused).toBe(0);
    // The query side's vectors are the query side's: the model was asked with side 'query'.
    expect([...vectorsById(join(dir, 'q.arrow')).get('a')!]).toEqual([...FakeModel.vector('Nurse', { side: 'query' })]);
    expect([...vectorsById(join(dir, 't.arrow')).get('a')!]).toEqual([...FakeModel.vector('Nurse', { side: 'doc', inputType: 'title' })]);
  });

  it('records the side, input type, model, dimension, version and rules in the schema metadata', async () => {
    const dir = tempDir();
    const input = write(dir, 'r.jsonl', jsonl([{ id: 'a', text: 'Nurse' }]));
    await run({ model: new FakeModel('m@1', 8), input, out: join(dir, 'o.arrow'), side: 'query', inputType: 'title', shard: '0/1' });
    const file = readEmbeddings(join(dir, 'o.arrow'));
    expect(file.metadata).toMatchObject({ modelId: 'm@1', dimension: 8, side: 'query', inputType: 'title', kilnVersion: KILN_VERSION, normalisation: NORMALISATION_RULE, shard: '0/1' });
    expect(file.rawMetadata[META.format]).toBe('kiln-embeddings-1');
    expect(file.rawMetadata[META.contentHash]).toMatch(/SHA-256/);
    expect(file.vectors[0]!.length).toBe(8);
  });

  it('leaves an existing output untouched and removes its temp file when a run fails midway', async () => {
    const dir = tempDir();
    const input = write(dir, 'r.jsonl', jsonl(Array.from({ length: 10 }, (_, i) => ({ id: `r${i}`, text: `text ${i}` }))));
    const out = join(dir, 'o.arrow');
    await run({ model: new FakeModel(), input, out });
    const before = readFileSync(out);
    const failing = new FakeModel();
    failing.failOnCall = 2; // the second chunk
    await expect(run({ model: failing, input: write(dir, 's.jsonl', jsonl([{ id: 'x', text: 'a' }, { id: 'y', text: 'b' }, { id: 'z', text: 'c' }])), out, chunkRows: 2 })).rejects.toThrow('injected failure');
    expect(readFileSync(out).equals(before)).toBe(true);
    expect(readdirSync(dir).sort()).toEqual(['o.arrow', 'r.jsonl', 's.jsonl']);
    // A run without an old output leaves nothing behind either.
    const fresh = join(dir, 'fresh.arrow');
    const failing2 = new FakeModel();
    failing2.failOnCall = 1;
    await expect(run({ model: failing2, input, out: fresh })).rejects.toThrow('injected failure');
    expect(existsSync(fresh)).toBe(false);
    expect(readdirSync(dir).filter((f) => f.endsWith('.tmp'))).toEqual([]);
  });

  it('accepts --out equal to --previous', async () => {
    const dir = tempDir();
    const out = join(dir, 'o.arrow');
    await run({ model: new FakeModel(), input: write(dir, 'a.jsonl', jsonl([{ id: 'a', text: 'Nurse' }, { id: 'b', text: 'Cook' }])), out });
    const old = vectorsById(out);
    const model = new FakeModel();
    const { summary } = await run({ model, input: write(dir, 'b.jsonl', jsonl([{ id: 'a', text: 'Nurse' }, { id: 'c', text: 'Chef' }])), out, previous: out, chunkRows: 1 });
    expect(summary).toMatchObject({ reused: 1, computed: 1, written: 2 });
    const now = vectorsById(out);
    expect([...now.keys()]).toEqual(['a', 'c']);
    expect(bytesOf(now.get('a')!).equals(bytesOf(old.get('a')!))).toBe(true);
  });

  it('splits rows across shards by id: the shards together are the unsharded output', async () => {
    const dir = tempDir();
    const rows = Array.from({ length: 50 }, (_, i) => ({ id: `id-${i}`, text: `title ${i % 20}` }));
    const input = write(dir, 'r.jsonl', jsonl(rows));
    const all = vectorsById((await run({ model: new FakeModel(), input, out: join(dir, 'all.arrow') })).summary.out);
    const parts = new Map<string, Float32Array>();
    let other = 0;
    for (let s = 0; s < 3; s++) {
      const { summary } = await run({ model: new FakeModel(), input, out: join(dir, `s${s}.arrow`), shard: `${s}/3`, chunkRows: 7 });
      expect(summary.read).toBe(50);
      other += summary.otherShards;
      const ids = readEmbeddings(summary.out).ids;
      expect(ids.every((id) => shardOf(id, 3) === s)).toBe(true);
      for (const [id, v] of vectorsById(summary.out)) parts.set(id, v);
    }
    expect(other).toBe(100);
    expect(parts.size).toBe(50);
    for (const [id, v] of all) expect(bytesOf(parts.get(id)!).equals(bytesOf(v))).toBe(true);
  });

  it('reads Arrow inputs (file or stream; string, dictionary or integer columns) and reports null texts at their row', async () => {
    const dir = tempDir();
    // tableFromArrays makes the text column a dictionary (as pandas categoricals are); row 2 is null.
    const table = tableFromArrays({ id: Int32Array.from([10, 11, 12]), text: ['Nurse', null, 'Baker'] });
    const input = join(dir, 'in.arrow');
    writeFileSync(input, tableToIPC(table, 'file'));
    const { summary, bad } = await run({ model: new FakeModel(), input, out: join(dir, 'o.arrow') });
    expect(bad).toEqual([`${input}:2: "text" is null; expected a string`]);
    expect(summary).toMatchObject({ read: 3, skipped: 1, written: 2, computed: 2 });
    expect(readEmbeddings(join(dir, 'o.arrow')).ids).toEqual(['10', '12']);
    // Plain Utf8 columns, given as an Arrow stream.
    const utf8 = new Table({ uri: vectorFromArray(['u1', 'u2'], new Utf8()), label: vectorFromArray(['Cook', 'Cook'], new Utf8()) });
    const streamed = join(dir, 'in2.arrow');
    writeFileSync(streamed, tableToIPC(utf8, 'stream'));
    const second = await run({ model: new FakeModel(), input: streamed, idField: 'uri', textField: 'label', out: join(dir, 'o2.arrow') });
    expect(second.summary).toMatchObject({ read: 2, written: 2, computed: 1, deduplicated: 1 });
    expect(readEmbeddings(join(dir, 'o2.arrow')).ids).toEqual(['u1', 'u2']);
    const src = await openInput(input, { textField: 'id' }).catch((e: Error) => e);
    expect(String(src)).toMatch(/column "id" is Int32; expected a string column/);
  });
});

describe('embedFile with an exported ONNX model', () => {
  let dirs: { twoTower: string; crossEncoder: string };
  let model: ExportedModel;
  beforeAll(async () => {
    dirs = await exportedTinyModels();
    model = await ExportedModel.load(dirs.twoTower);
  });
  afterAll(async () => {
    await model?.release();
  });

  const maxAbsDiff = (a: Float32Array, b: Float32Array): number => a.reduce((m, x, i) => Math.max(m, Math.abs(x - b[i]!)), 0);

  it('writes the vectors ExportedModel.embed computes, then reuses them after an edit', async () => {
    const dir = tempDir();
    const texts = ['Senior Data Engineer', 'registered  nurse', 'Software developer (Java)', 'Chef de partie', 'Welder', 'Welder'];
    const input = write(dir, 'a.jsonl', jsonl(texts.map((text, i) => ({ id: `r${i}`, text }))));
    const first = join(dir, 'a.arrow');
    const { summary } = await run({ model: dirs.twoTower, input, out: first, side: 'query', inputType: 'title', batchSize: 4 });
    expect(summary).toMatchObject({ read: 6, written: 6, reused: 0, deduplicated: 1, computed: 5, dimension: model.dimension, modelId: model.modelId });
    const expected = await model.embed(texts.map(normaliseText), { side: 'query', inputType: 'title' });
    const file = readEmbeddings(first);
    expect(file.ids).toEqual(texts.map((_, i) => `r${i}`));
    file.vectors.forEach((v, i) => expect(maxAbsDiff(v, expected[i]!)).toBeLessThanOrEqual(1e-6));
    // The prompt matters: without the input type the vectors differ.
    const plain = await model.embed([texts[0]!], { side: 'query' });
    expect(maxAbsDiff(plain[0]!, expected[0]!)).toBeGreaterThan(1e-4);

    // Edit r1, drop r3, add r6 (new) and r7 (a copy of r0's text).
    const edited = [
      { id: 'r0', text: texts[0] },
      { id: 'r1', text: 'Registered nurse (ICU)' },
      { id: 'r2', text: texts[2] },
      { id: 'r4', text: texts[4] },
      { id: 'r5', text: texts[5] },
      { id: 'r6', text: 'Barista' },
      { id: 'r7', text: 'Senior  Data Engineer' },
      { id: 'r8', text: 'Barista' },
    ];
    const second = join(dir, 'b.arrow');
    const again = await run({ model, input: write(dir, 'b.jsonl', jsonl(edited)), out: second, previous: first, side: 'query', inputType: 'title', chunkRows: 3 });
    expect(again.summary).toMatchObject({ read: 8, written: 8, reused: 5, deduplicated: 1, computed: 2, reuseRefused: null });
    const old = vectorsById(first);
    const now = vectorsById(second);
    for (const [id, was] of [['r0', 'r0'], ['r2', 'r2'], ['r4', 'r4'], ['r5', 'r5'], ['r7', 'r0']] as const) expect(bytesOf(now.get(id)!).equals(bytesOf(old.get(was)!))).toBe(true);
    const fresh = await model.embed(['Registered nurse (ICU)', 'Barista'], { side: 'query', inputType: 'title' });
    expect(maxAbsDiff(now.get('r1')!, fresh[0]!)).toBeLessThanOrEqual(1e-6);
    expect(maxAbsDiff(now.get('r8')!, fresh[1]!)).toBeLessThanOrEqual(1e-6);
  });

  it('embeds the real JobBERT titles (unnamed first column) and ESCO occupations (conceptUri ids)', async () => {
    const dir = tempDir();
    const titles = await run({ model, input: join(DATA_ROOT, 'jobbert-titles', 'titles.csv'), textField: 'vacancyTitle', out: join(dir, 'titles.arrow') });
    expect(titles.summary.idsFromRowNumbers).toBe(true);
    expect(titles.summary.skipped).toBe(0);
    expect(titles.summary.written).toBe(titles.summary.read);
    expect(titles.summary.computed + titles.summary.deduplicated).toBe(titles.summary.written);
    const t = readEmbeddings(join(dir, 'titles.arrow'));
    expect(t.ids.slice(0, 3)).toEqual(['1', '2', '3']);
    expect(t.hashes[0]).toBe(sha256('Internship Digital Marketer'));

    const occ = await run({ model, input: join(DATA_ROOT, 'esco-v1.1.1', 'occupations_en.csv'), idField: 'conceptUri', textField: 'preferredLabel', out: join(dir, 'occ.arrow'), shard: '1/2' });
    expect(occ.summary.skipped).toBe(0);
    expect(occ.summary.written + occ.summary.otherShards).toBe(occ.summary.read);
    const o = readEmbeddings(join(dir, 'occ.arrow'));
    expect(o.ids.every((id) => id.startsWith('http://data.europa.eu/esco/occupation/') && shardOf(id, 2) === 1)).toBe(true);
  });

  it('refuses a cross-encoder with a clear error and writes nothing', async () => {
    const dir = tempDir();
    const input = write(dir, 'a.jsonl', jsonl([{ id: 'a', text: 'Nurse' }]));
    await expect(run({ model: dirs.crossEncoder, input, out: join(dir, 'o.arrow') })).rejects.toThrow(/is a cross-encoder: it scores \(query, doc\) pairs and has no embeddings/);
    expect(readdirSync(dir)).toEqual(['a.jsonl']);
  });

  describe('the kiln embed CLI', () => {
    // The CLI runs from dist/ (`npm test` builds it first; alone: npx tsc -p tsconfig.build.json).
    beforeAll(() => {
      expect(existsSync(join(REPO_ROOT, 'dist', 'cli', 'commands', 'embed.js')), 'build dist/ first: npx tsc -p tsconfig.build.json').toBe(true);
    });
    const kiln = (args: string[]): { status: number | null; stdout: string; stderr: string } => {
      const r = spawnSync(process.execPath, [join(REPO_ROOT, 'bin', 'kiln.js'), 'embed', ...args], { cwd: REPO_ROOT, encoding: 'utf8' });
      return { status: r.status, stdout: r.stdout, stderr: r.stderr };
    };

    it('exits 0 with the counts, and 2 with no output for a missing column', () => {
      const dir = tempDir();
      const input = write(dir, 'a.csv', 'uri,label\nu1,Nurse\nu2,Welder\nu3,Cook\n');
      const out = join(dir, 'o.arrow');
      const ok = kiln(['--model', dirs.twoTower, '--input', input, '--id-field', 'uri', '--text-field', 'label', '--out', out, '--quiet']);
      expect(ok.status, ok.stderr).toBe(0);
      expect(ok.stdout).toContain('read 3 rows from a.csv');
      expect(ok.stdout).toContain('embedded 3 rows: 0 reused, 0 deduplicated, 3 computed');
      expect(readEmbeddings(out).ids).toEqual(['u1', 'u2', 'u3']);

      const missing = join(dir, 'missing.arrow');
      const noColumn = kiln(['--model', dirs.twoTower, '--input', input, '--out', missing]);
      expect(noColumn.status).toBe(2);
      expect(noColumn.stderr).toContain(`${input}:1: no column "text" for the text (columns: "uri", "label"); pass --text-field NAME`);
      expect(existsSync(missing)).toBe(false);

      const badShard = kiln(['--model', dirs.twoTower, '--input', input, '--id-field', 'uri', '--text-field', 'label', '--out', missing, '--shard', '2/2']);
      expect(badShard.status).toBe(2);
      expect(badShard.stderr).toContain('--shard 2/2: the shard index i must be in 0..1');
      expect(existsSync(missing)).toBe(false);

      expect(readdirSync(dir).sort()).toEqual(['a.csv', 'o.arrow']);
    });
  });
});

/**
 * src/data/records.ts: the same table in CSV, TSV, JSON Lines, Arrow and Parquet reads back as
 * the same records, and each format's bad rows come back as `DataError`s naming where they are.
 * The Parquet file is written by `hyparquet-writer` (an independent writer), with three row
 * groups so that the row-group loop and row numbering across groups are exercised.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { tableFromArrays, tableToIPC } from 'apache-arrow';
import { parquetWriteBuffer } from 'hyparquet-writer';
import { describe, expect, it } from 'vitest';

import { openRecords, recordsOf, type DataRecord } from '../../src/data/records.js';
import { DataError } from '../../src/data/types.js';

const ROWS = [
  { anchor: 'python developer', positive: 'Python', score: 1 },
  { anchor: 'write "quoted" sql, with commas', positive: 'SQL', score: 0 },
  { anchor: 'build containers', positive: 'Docker', score: 1 },
  { anchor: 'orchestrate pods', positive: 'Kubernetes', score: 0.5 },
  { anchor: 'merge branches', positive: 'Git', score: 0 },
];

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'kiln-records-'));
}

async function readAll(path: string): Promise<Array<DataRecord | DataError>> {
  const out: Array<DataRecord | DataError> = [];
  for await (const r of recordsOf(await openRecords(path))) out.push(r);
  return out;
}

/** The records' values with every value as text (text formats have no types). */
function asText(records: Array<DataRecord | DataError>): Array<Record<string, string>> {
  return records.map((r) => {
    if (r instanceof DataError) throw r;
    return Object.fromEntries(Object.entries(r.values).map(([k, v]) => [k, String(v)]));
  });
}

const csvField = (v: string | number): string => (typeof v === 'string' && /[",\n]/.test(v) ? `"${v.replace(/"/g, '""')}"` : String(v));

describe('openRecords', () => {
  it('reads the same records from CSV, TSV, JSONL, Arrow and Parquet (three row groups)', async () => {
    const dir = tempDir();
    const expected = ROWS.map((r) => ({ anchor: r.anchor, positive: r.positive, score: String(r.score) }));
    const files = {
      csv: join(dir, 't.csv'),
      tsv: join(dir, 't.tsv'),
      jsonl: join(dir, 't.jsonl'),
      arrow: join(dir, 't.arrow'),
      parquet: join(dir, 't.parquet'),
    };
    writeFileSync(files.csv, `anchor,positive,score\n${ROWS.map((r) => [r.anchor, r.positive, r.score].map(csvField).join(',')).join('\n')}\n`);
    // TSV has no quoting: the '"' inside a field is an ordinary character.
    writeFileSync(files.tsv, `anchor\tpositive\tscore\n${ROWS.map((r) => `${r.anchor}\t${r.positive}\t${r.score}`).join('\n')}\n`);
    writeFileSync(files.jsonl, `${ROWS.map((r) => JSON.stringify(r)).join('\n')}\n`);
    writeFileSync(files.arrow, tableToIPC(tableFromArrays({ anchor: ROWS.map((r) => r.anchor), positive: ROWS.map((r) => r.positive), score: Float64Array.from(ROWS, (r) => r.score) }), 'file'));
    const parquet = parquetWriteBuffer({
      columnData: [
        { name: 'anchor', data: ROWS.map((r) => r.anchor), type: 'STRING' },
        { name: 'positive', data: ROWS.map((r) => r.positive), type: 'STRING' },
        { name: 'score', data: ROWS.map((r) => r.score), type: 'DOUBLE' },
      ],
      rowGroupSize: 2,
    });
    writeFileSync(files.parquet, new Uint8Array(parquet));

    for (const [format, file] of Object.entries(files)) {
      const source = await openRecords(file);
      expect(source.format, file).toBe(format);
      expect(source.columns, file).toEqual(['anchor', 'positive', 'score']);
      await source.close();
      const records = await readAll(file);
      expect(asText(records), format).toEqual(expected);
      // CSV and TSV count lines after the header line; JSON Lines has no header; Arrow and
      // Parquet count data rows.
      const where = (records as DataRecord[]).map((r) => r.line);
      expect(where, format).toEqual(format === 'csv' || format === 'tsv' ? [2, 3, 4, 5, 6] : [1, 2, 3, 4, 5]);
    }
    // The binary formats declare their types.
    const parquetSource = await openRecords(files.parquet);
    expect(parquetSource.columnTypes?.get('anchor')?.kind).toBe('string');
    expect(parquetSource.columnTypes?.get('score')?.kind).toBe('other');
    await parquetSource.close();
  });

  it('gives the line a multi-line CSV record starts on, and reports bad rows as DataErrors at their line', async () => {
    const dir = tempDir();
    const csv = join(dir, 'bad.csv');
    writeFileSync(csv, 'a,b\n"one\ntwo",x\nonly-one-field\nfine,y\n');
    const records = await readAll(csv);
    expect(records[0]).toMatchObject({ line: 2, values: { a: 'one\ntwo', b: 'x' } });
    expect(String(records[1])).toBe(`DataError: ${csv}:4: row has 1 fields; expected 2 (a, b)`);
    expect(records[2]).toMatchObject({ line: 5, values: { a: 'fine', b: 'y' } });

    const jsonl = join(dir, 'bad.jsonl');
    writeFileSync(jsonl, '{"a": 1}\n\n{not json}\n[1, 2]\n{"a": 2}\n');
    const json = await readAll(jsonl);
    expect(json.map((r) => (r instanceof DataError ? r.message : r.line))).toEqual([1, expect.stringMatching(new RegExp(`^${jsonl}:3: invalid JSON`)), `${jsonl}:4: a JSON array; expected an object`, 5]);
  });

  it('refuses a missing file, an unknown extension, an empty CSV and a file that is not Parquet, naming the file', async () => {
    const dir = tempDir();
    await expect(openRecords(join(dir, 'nope.csv'))).rejects.toThrow(`${join(dir, 'nope.csv')}: no such file`);
    writeFileSync(join(dir, 'a.txt'), 'x');
    await expect(openRecords(join(dir, 'a.txt'))).rejects.toThrow(/a\.txt: unknown extension "\.txt"; expected \.jsonl .*\.csv or \.tsv .*\.parquet/);
    writeFileSync(join(dir, 'empty.csv'), '');
    await expect(openRecords(join(dir, 'empty.csv'))).rejects.toThrow('empty.csv: the file is empty; expected a header line');
    writeFileSync(join(dir, 'fake.parquet'), 'definitely not parquet');
    await expect(openRecords(join(dir, 'fake.parquet'))).rejects.toThrow(/fake\.parquet: not a readable Parquet file/);
    // An explicit format overrides the extension.
    writeFileSync(join(dir, 'rows.txt'), '{"text": "a"}\n');
    const source = await openRecords(join(dir, 'rows.txt'), { format: 'jsonl' });
    expect(source.columns).toEqual(['text']);
    await source.close();
  });
});

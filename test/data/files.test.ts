/**
 * Data-root resolution, missing-file errors (one error naming every missing file and the
 * download page), CSV/TSV readers reporting the right file:line (also after quoted multi-line
 * ESCO fields), and the fail/skip bad-row policies.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import { createContext, forEachRow, readCsv, readTsv, requireFiles, resolveDataRoot } from '../../src/data/files.js';
import { RECIPES } from '../../src/data/recipes/index.js';
import { BadRowReport, DataError } from '../../src/data/types.js';
import { DATA_ROOT, tempRoot } from './root.js';

const OCC_HEADER = 'conceptType,conceptUri,iscoGroup,preferredLabel,altLabels,hiddenLabels,status,modifiedDate,regulatedProfessionNote,scopeNote,definition,inScheme,description,code\n';
const occRow = (uri: string, label: string, alts: string, description: string): string =>
  `Occupation,http://data.europa.eu/esco/occupation/${uri},2654,${label},"${alts}",,released,2016-07-05T13:58:41Z,,,,"a,\nb","${description}",2654.1\n`;

describe('resolveDataRoot', () => {
  it('prefers the flag, then KILN_DATA, and errors clearly otherwise', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kiln-root-'));
    expect(resolveDataRoot(dir, { KILN_DATA: '/nonexistent' })).toBe(dir);
    expect(resolveDataRoot(undefined, { KILN_DATA: dir })).toBe(dir);
    expect(() => resolveDataRoot(undefined, {})).toThrow(/--data-root DIR or set KILN_DATA/);
    expect(() => resolveDataRoot(join(dir, 'nope'), {})).toThrow(/.*nope: the data root \(from --data-root\) does not exist/);
    const file = join(dir, 'f.txt');
    writeFileSync(file, 'x');
    expect(() => resolveDataRoot(undefined, { KILN_DATA: file })).toThrow(/the data root \(from KILN_DATA\) is not a directory/);
  });
});

describe('missing files', () => {
  it('one error names every missing file and the download page', () => {
    const root = tempRoot({ 'esco-v1.1.1/occupations_en.csv': OCC_HEADER });
    let message = '';
    try {
      requireFiles(root, 'esco', ['esco-v1.1.1/occupations_en.csv', 'esco-v1.1.1/skills_en.csv', 'esco-v1.1.1/ISCOGroups_en.csv']);
    } catch (error) {
      message = (error as Error).message;
    }
    // One line (a DataError: the CLI prints it without a stack trace), naming the root, each missing file and the download page.
    expect(message).toBe(
      `${root}: missing data files for ESCO v1.1.1 classification, English CSV: esco-v1.1.1/skills_en.csv, esco-v1.1.1/ISCOGroups_en.csv; ` +
        `download it from https://esco.ec.europa.eu/en/use-esco/download and place it under ${join(root, 'esco-v1.1.1')}/ (layout: datasets/README.md)`,
    );
  });

  it('a recipe over a partial data root names the missing file and its download page', async () => {
    const root = tempRoot({}, ['esco-v1.1.1']); // ESCO present, JobBERT absent
    const ctx = createContext({ dataRoot: root });
    await expect(RECIPES['jobbert-titles'].load(ctx, {})).rejects.toThrow(/jobbert-titles\/titles\.csv[\s\S]*https:\/\/github\.com\/jensjorisdecorte\/JobBERT-evaluation-dataset/);
  });

  it('withheld test splits are missing-file errors with the download page', async () => {
    const ctx = createContext({ dataRoot: DATA_ROOT });
    await expect(RECIPES['jobbert-titles'].load(ctx, { split: 'test' })).rejects.toThrow(/titles\.test\.csv[\s\S]*JobBERT-evaluation-dataset/);
    await expect(RECIPES['skill-extraction'].load(ctx, { subset: 'tech', split: 'test' })).rejects.toThrow(
      /tech_test_annotations\.csv[\s\S]*https:\/\/github\.com\/jensjorisdecorte\/Skill-Extraction-benchmark/,
    );
    await expect(RECIPES.stsb.load(ctx, { split: 'test' })).rejects.toThrow(/sts-test\.csv[\s\S]*stswiki/);
    await expect(RECIPES.skillspan.load(ctx, { split: 'test' })).rejects.toThrow(/skillspan\/json\/test\.json[\s\S]*github\.com\/kris927b\/SkillSpan/);
  });
});

describe('CSV reader', () => {
  it('reports the first line of a record after quoted multi-line fields', async () => {
    // Lines: 1 header; 2-5 record A (alts span 3 lines, inScheme 2); 6-8 record B (bad: empty label).
    const csv = OCC_HEADER + occRow('a', 'chef', 'cook\nhead cook\nchef', 'Cooks food.') + occRow('b', '', 'x', 'No label.');
    const root = tempRoot({ 'esco-v1.1.1/occupations_en.csv': csv });
    const rows = [];
    for await (const row of readCsv(root, 'esco-v1.1.1/occupations_en.csv')) rows.push(row);
    expect(rows.map((r) => r.line)).toEqual([2, 6]);
    expect(rows[0]?.source).toBe('esco-v1.1.1/occupations_en.csv:2');
    expect(rows[0]?.text('altLabels')).toBe('cook\nhead cook\nchef');

    const ctx = createContext({ dataRoot: root });
    const error = await RECIPES['esco-occupations'].load(ctx, {}).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DataError);
    expect((error as DataError).message).toBe(`${join(root, 'esco-v1.1.1/occupations_en.csv')}:6: column "preferredLabel" is empty; expected a non-empty value`);
  });

  it("skip policy counts bad rows and keeps the good ones", async () => {
    // Lines: 1 header; 2-4 A (2 alt lines, 2 inScheme lines); 5-6 B (empty label); 7-8 A again; 9 too short.
    const csv = OCC_HEADER + occRow('a', 'chef', 'cook\nhead cook', 'Cooks food.') + occRow('b', '', 'x', 'No label.') + occRow('a', 'chef again', '', '') + 'Occupation,too,few\n';
    const root = tempRoot({ 'esco-v1.1.1/occupations_en.csv': csv });
    const ctx = createContext({ dataRoot: root, onBadRow: 'skip' });
    const pairs = await RECIPES['esco-occupations'].load(ctx, {});
    expect(pairs.map((p) => p.query)).toEqual(['cook', 'head cook', 'Cooks food.']);
    const file = join(root, 'esco-v1.1.1/occupations_en.csv');
    expect(ctx.report.total).toBe(3);
    expect(ctx.report.counts()).toEqual({ [file]: 3 });
    const messages = ctx.report.messages(file);
    expect(messages[0]).toMatch(/:5: column "preferredLabel" is empty/);
    expect(messages[1]).toMatch(/:7: conceptUri http:\/\/data\.europa\.eu\/esco\/occupation\/a repeats the concept at esco-v1\.1\.1\/occupations_en\.csv:2/);
    expect(messages[2]).toMatch(/:9: row has 3 fields; expected 14/);

    // A second load (served from the parse cache) reports the same bad rows under its own policy.
    const again = createContext({ dataRoot: root, onBadRow: 'skip' });
    expect((await RECIPES['esco-occupations'].load(again, {})).length).toBe(3);
    expect(again.report.messages(file)).toEqual(messages);
    await expect(RECIPES['esco-occupations'].load(createContext({ dataRoot: root }), {})).rejects.toThrow(/:5: column "preferredLabel" is empty/);
  });

  it('a missing column is a file-level error naming the header', async () => {
    const root = tempRoot({ 'esco-v1.1.1/occupations_en.csv': 'conceptUri,altLabels\nx,y\n' });
    const ctx = createContext({ dataRoot: root, onBadRow: 'skip' });
    await expect(RECIPES['esco-occupations'].load(ctx, {})).rejects.toThrow(/occupations_en\.csv:1: missing columns "preferredLabel", "hiddenLabels", "description"; the header has "conceptUri", "altLabels"/);
  });

  it('an unterminated quote is a DataError with a line', async () => {
    const root = tempRoot({ 'bad.csv': 'a,b\n1,2\n3,"oops\n' });
    const read = async (): Promise<void> => {
      for await (const row of readCsv(root, 'bad.csv')) void row;
    };
    await expect(read()).rejects.toThrow(/bad\.csv:\d+: unreadable CSV: .*quote/i);
  });
});

describe('TSV reader', () => {
  it('does no quote handling and reports bad values at file:line', async () => {
    const tsv = 'main\tf\t2012\t1\t5.000\tHe said "hi.\tShe said "hi".\n\nmain\tf\t2012\t2\tfive\ta\tb\nmain\tf\t2012\t3\t4.0\tonly one\n';
    const root = tempRoot({ 'stsbenchmark/sts-dev.csv': tsv });
    const failing = RECIPES.stsb.load(createContext({ dataRoot: root }), { split: 'dev' });
    await expect(failing).rejects.toThrow(/sts-dev\.csv:3: column "score" is "five"; expected a number/);

    const ctx = createContext({ dataRoot: root, onBadRow: 'skip' });
    const pairs = await RECIPES.stsb.load(ctx, { split: 'dev', scale: 'unit' });
    expect(pairs).toEqual([{ a: 'He said "hi.', b: 'She said "hi".', score: 1, source: 'stsbenchmark/sts-dev.csv:1' }]);
    expect(ctx.report.messages()).toEqual([
      expect.stringMatching(/sts-dev\.csv:3: column "score" is "five"/),
      expect.stringMatching(/sts-dev\.csv:4: row has 6 tab-separated fields; expected at least 7/),
    ]);
  });

  it('reads headers and CRLF line ends', async () => {
    const root = tempRoot({ 't.txt': 'code\tTitle\r\n1\tA "b\r\n' });
    const got: string[] = [];
    await forEachRow(createContext({ dataRoot: root }), readTsv(root, 't.txt', { columns: 'header', required: ['code', 'Title'] }), (row) => {
      got.push(`${row.line}:${row.text('code')}:${row.text('Title')}`);
    });
    expect(got).toEqual(['2:1:A "b']);
  });
});

describe('BadRowReport', () => {
  it('keeps counts past the message limit', () => {
    const report = new BadRowReport(2);
    for (let i = 1; i <= 4; i++) report.add(new DataError('f.csv', i, 'bad'));
    report.add(new DataError('g.csv', 9, 'worse'));
    expect(report.total).toBe(5);
    expect(report.counts()).toEqual({ 'f.csv': 4, 'g.csv': 1 });
    expect(report.messages()).toEqual(['f.csv:1: bad', 'f.csv:2: bad', 'g.csv:9: worse']);
    expect(report.summary()).toContain('skipped 4 bad row(s) in f.csv; first: f.csv:1: bad');
  });
});

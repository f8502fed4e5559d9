/**
 * Finding and reading the public data files that recipes use.
 *
 * Kiln never downloads data and the repository holds none: every file is read from a data
 * root given by `--data-root` (flag) or `KILN_DATA` (environment), in that order. This module
 * owns the one table of datasets and their official download pages, so a missing file is
 * reported with the page to fetch it from.
 *
 * Readers stream their files and yield `TableRow`s that know their `file:line`:
 * - CSV through `csv-parse` (RFC 4180 quoting; ESCO fields hold quoted multi-line values, so a
 *   record's first line is computed from the parser's `info.lines`, the line the record ends
 *   on, minus the newlines inside its fields);
 * - TSV split on tabs with no quote handling (O*NET, STS-B: STS-B sentences contain bare `"`);
 * - JSON Lines (SkillSpan).
 * A row that lacks a required value or has one of the wrong type raises a `DataError`
 * (`file:line: reason`); `forEachRow` either rethrows it (`onBadRow: 'fail'`) or counts it in
 * the context's `BadRowReport` (`'skip'`).
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { isAbsolute, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';

import { parse } from 'csv-parse';

import { BadRowReport, DataError, type BadRowPolicy, type RecipeContext } from './types.js';

/** The datasets Kiln's recipes read: folder under the data root and official download page. */
export const DATASETS = {
  esco: {
    folder: 'esco-v1.1.1',
    title: 'ESCO v1.1.1 classification, English CSV',
    download: 'https://esco.ec.europa.eu/en/use-esco/download',
  },
  onet: {
    folder: 'onet-29.2',
    title: 'O*NET 29.2 database, text files',
    download: 'https://www.onetcenter.org/database.html',
  },
  jobbert: {
    folder: 'jobbert-titles',
    title: 'JobBERT evaluation set (vacancy titles → ESCO occupations)',
    download: 'https://github.com/jensjorisdecorte/JobBERT-evaluation-dataset',
  },
  'skill-extraction': {
    folder: 'skill-extraction-benchmark',
    title: 'Skill-extraction benchmark (TECH / HOUSE / TECHWOLF sentences → ESCO skills)',
    download: 'https://github.com/jensjorisdecorte/Skill-Extraction-benchmark',
  },
  skillspan: {
    folder: 'skillspan',
    title: 'SkillSpan job-posting skill and knowledge spans',
    download: 'https://github.com/kris927b/SkillSpan',
  },
  stsb: {
    folder: 'stsbenchmark',
    title: 'STS Benchmark',
    download: 'https://ixa2.si.ehu.eus/stswiki/index.php/STSbenchmark',
  },
  'stackoverflow-tags': {
    folder: 'stackoverflow-tags',
    title: 'Stack Overflow tags and tag synonyms (Stack Exchange data dump)',
    download: 'https://github.com/CatherineLE/Stackoverflow (commit 60d7e5d; Stack Exchange Data Explorer export, Aug 2021)',
  },
  'bert-vocab': {
    folder: 'bert-vocab',
    title: 'BERT uncased WordPiece vocabulary (vocab.txt)',
    download: 'https://huggingface.co/bert-base-uncased/blob/main/vocab.txt',
  },
} as const satisfies Record<string, { folder: string; title: string; download: string }>;

export type DatasetKey = keyof typeof DATASETS;

/**
 * The data root: the `--data-root` flag, else `KILN_DATA`, else an error. The directory must
 * exist. Relative paths resolve against the working directory.
 */
export function resolveDataRoot(flag?: string, env: NodeJS.ProcessEnv = process.env): string {
  const fromFlag = flag !== undefined && flag !== '';
  const chosen = fromFlag ? flag : env.KILN_DATA;
  if (chosen === undefined || chosen === '') {
    throw new DataError(
      '--data-root',
      undefined,
      'no data root: pass --data-root DIR or set KILN_DATA=DIR (the folder holding esco-v1.1.1/, onet-29.2/, …; see datasets/README.md for the layout and download pages)',
    );
  }
  const root = resolve(chosen);
  const origin = fromFlag ? '--data-root' : 'KILN_DATA';
  if (!existsSync(root)) throw new DataError(root, undefined, `the data root (from ${origin}) does not exist`);
  if (!statSync(root).isDirectory()) throw new DataError(root, undefined, `the data root (from ${origin}) is not a directory`);
  return root;
}

/**
 * Absolute paths of `relativePaths` (relative to the data root). If any is missing, throws ONE
 * error naming every missing file and where to download the dataset.
 */
export function requireFiles(rootOrContext: string | Pick<RecipeContext, 'dataRoot' | 'filesRead'>, datasetKey: DatasetKey, relativePaths: readonly string[]): string[] {
  const root = typeof rootOrContext === 'string' ? rootOrContext : rootOrContext.dataRoot;
  const absolute = relativePaths.map((p) => (isAbsolute(p) ? p : join(root, p)));
  const missing = relativePaths.filter((_, i) => !existsSync(absolute[i] as string));
  if (missing.length > 0) {
    const ds = DATASETS[datasetKey];
    throw new DataError(
      root,
      undefined,
      `missing data file${missing.length > 1 ? 's' : ''} for ${ds.title}: ` +
        missing.join(', ') +
        `; download it from ${ds.download} and place it under ${join(root, ds.folder)}/ (layout: datasets/README.md)`,
    );
  }
  // A context records what it read, for the run summary's data hashes.
  if (typeof rootOrContext !== 'string') for (const file of absolute) rootOrContext.filesRead?.add(file);
  return absolute;
}

/** A fresh recipe context; `onBadRow` defaults to 'fail', `seed` to 0. */
export function createContext(options: { dataRoot: string; onBadRow?: BadRowPolicy; seed?: number }): RecipeContext {
  return { dataRoot: options.dataRoot, onBadRow: options.onBadRow ?? 'fail', seed: options.seed ?? 0, report: new BadRowReport(), filesRead: new Set() };
}

/** A row of a table file, with typed, checked accessors that raise `DataError` naming `file:line`. */
export class TableRow {
  constructor(
    /** Absolute path of the file. */
    readonly file: string,
    /** Path relative to the data root, used in `source`. */
    readonly relFile: string,
    /** 1-based line the row starts on. */
    readonly line: number,
    readonly fields: readonly string[],
    private readonly columns: ReadonlyMap<string, number>,
  ) {}

  /** 'relative/file:line', the `source` of examples made from this row. */
  get source(): string {
    return `${this.relFile}:${this.line}`;
  }

  /** A DataError for this row. */
  error(reason: string): DataError {
    return new DataError(this.file, this.line, reason);
  }

  private index(column: string): number {
    const i = this.columns.get(column);
    if (i === undefined) throw new Error(`${this.file}: no column "${column}" (columns: ${[...this.columns.keys()].join(', ')})`);
    return i;
  }

  /** The raw value, or undefined when the row is too short to have it. */
  raw(column: string): string | undefined {
    return this.fields[this.index(column)];
  }

  /** A required value, trimmed; empty or absent is a bad row. */
  text(column: string): string {
    const value = this.raw(column);
    if (value === undefined) throw this.error(`row has ${this.fields.length} fields, so no value for column "${column}" (field ${this.index(column) + 1})`);
    const trimmed = value.trim();
    if (trimmed === '') throw this.error(`column "${column}" is empty; expected a non-empty value`);
    return trimmed;
  }

  /** An optional value, trimmed ('' when empty or absent). */
  optional(column: string): string {
    return (this.raw(column) ?? '').trim();
  }

  /** A required finite number within [min, max]. */
  number(column: string, range: { min?: number; max?: number } = {}): number {
    const text = this.text(column);
    const value = Number(text);
    if (!Number.isFinite(value)) throw this.error(`column "${column}" is ${JSON.stringify(text)}; expected a number`);
    const { min = -Infinity, max = Infinity } = range;
    if (value < min || value > max) throw this.error(`column "${column}" is ${value}; expected a number in [${min}, ${max}]`);
    return value;
  }
}

/** Runs `fn` on one row; a DataError is rethrown (`fail`) or counted in the report (`skip`). */
export function handleRow<T>(ctx: Pick<RecipeContext, 'onBadRow' | 'report'>, fn: () => T): T | undefined {
  try {
    return fn();
  } catch (error) {
    if (error instanceof DataError && ctx.onBadRow === 'skip') {
      ctx.report.add(error);
      return undefined;
    }
    throw error;
  }
}

/** `handleRow` over every row of an async row source. */
export async function forEachRow(
  ctx: Pick<RecipeContext, 'onBadRow' | 'report'>,
  rows: AsyncIterable<TableRow>,
  fn: (row: TableRow) => void,
): Promise<void> {
  for await (const row of rows) handleRow(ctx, () => fn(row));
}

function columnMap(names: readonly string[]): Map<string, number> {
  const map = new Map<string, number>();
  names.forEach((name, i) => {
    if (!map.has(name)) map.set(name, i);
  });
  return map;
}

function checkHeader(file: string, header: readonly string[], required: readonly string[]): void {
  const missing = required.filter((c) => !header.includes(c));
  if (missing.length > 0) {
    throw new DataError(
      file,
      1,
      `missing column${missing.length > 1 ? 's' : ''} ${missing.map((c) => JSON.stringify(c)).join(', ')}; the header has ${header.map((c) => JSON.stringify(c)).join(', ')}`,
    );
  }
}

export interface TableOptions {
  /** Columns the header must have (checked once, before any row). */
  required?: readonly string[];
}

/** One parsed CSV/TSV record and the 1-based line it starts on. */
export interface DelimitedRecord {
  record: string[];
  line: number;
}

/**
 * Streams the records of a delimited file through `csv-parse` (BOM stripped, empty lines
 * skipped), each with the line it starts on: the parser reports the line a record ENDS on, and
 * a quoted field may span lines, so the start is that minus the newlines inside the fields.
 * `quote: false` reads TSV-style files where `"` is an ordinary character. A quoting error the
 * parser cannot recover from is a `DataError` at the line it names. `progress.bytesRead` follows
 * the file as it is read (for progress bars).
 */
export async function* readDelimitedRecords(
  file: string,
  options: { delimiter?: string; quote?: boolean; progress?: { bytesRead: number } } = {},
): AsyncGenerator<DelimitedRecord> {
  const parser = parse({
    bom: true,
    info: true,
    skip_empty_lines: true,
    relax_column_count: true,
    delimiter: options.delimiter ?? ',',
    quote: options.quote === false ? false : '"',
  });
  const stream = createReadStream(file);
  stream.on('error', (error) => parser.destroy(error)).pipe(parser);
  const progress = options.progress;
  try {
    for await (const item of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const { record, info } = item;
      let inner = 0;
      for (const field of record) {
        for (let i = field.indexOf('\n'); i !== -1; i = field.indexOf('\n', i + 1)) inner++;
      }
      if (progress !== undefined) progress.bytesRead = stream.bytesRead;
      yield { record, line: info.lines - inner };
    }
  } catch (error) {
    if (error instanceof DataError) throw error;
    const e = error as Error & { code?: string; lines?: number };
    if (e.code === 'ENOENT') throw new DataError(file, undefined, 'no such file');
    if (typeof e.code === 'string' && e.code.startsWith('CSV_')) throw new DataError(file, e.lines, `unreadable ${options.delimiter === '\t' ? 'TSV' : 'CSV'}: ${e.message}`);
    throw error;
  } finally {
    parser.destroy();
    stream.destroy();
  }
}

/**
 * Streams a CSV file with a header line (RFC 4180 quotes, through `readDelimitedRecords`). A
 * record with a different number of fields than the header is a bad row.
 */
export async function* readCsv(root: string, relPath: string, options: TableOptions = {}): AsyncGenerator<TableRow> {
  const file = join(root, relPath);
  let header: string[] | undefined;
  let columns: Map<string, number> = new Map();
  for await (const { record, line } of readDelimitedRecords(file)) {
    if (header === undefined) {
      header = record.map((c) => c.trim());
      checkHeader(file, header, options.required ?? []);
      columns = columnMap(header);
      continue;
    }
    const row = new TableRow(file, relPath, line, record, columns);
    if (record.length !== header.length) {
      yield new BadShapeRow(row, `row has ${record.length} fields; expected ${header.length} (${header.join(', ')})`);
      continue;
    }
    yield row;
  }
  if (header === undefined) throw new DataError(file, undefined, 'the file is empty; expected a header line');
}

/**
 * A row whose shape is wrong (field count): any accessor raises the stored reason, so the
 * recipe's bad-row policy applies to it like to any other bad value.
 */
class BadShapeRow extends TableRow {
  readonly #reason: string;
  constructor(row: TableRow, reason: string) {
    super(row.file, row.relFile, row.line, row.fields, new Map());
    this.#reason = reason;
  }
  override raw(): string | undefined {
    throw this.error(this.#reason);
  }
}

/** Streams a file's lines with 1-based numbers (`\r\n` or `\n`), skipping nothing. */
export async function* readLines(file: string): AsyncGenerator<{ line: number; text: string }> {
  const stream = createReadStream(file, { encoding: 'utf8' });
  const lines = createInterface({ input: stream, crlfDelay: Infinity });
  let n = 0;
  try {
    for await (const text of lines) {
      n++;
      yield { line: n, text: n === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text };
    }
  } finally {
    lines.close();
    stream.destroy();
  }
}

/**
 * Streams a tab-separated file with no quote handling (a `"` is an ordinary character).
 * `columns: 'header'` takes the names from the first line; an array names the columns of a
 * header-less file. Empty lines are skipped. Rows with fewer fields than `minFields` (default:
 * the number of columns) are bad rows; extra trailing fields are allowed (STS-B attributions).
 */
export async function* readTsv(
  root: string,
  relPath: string,
  options: TableOptions & { columns: 'header' | readonly string[]; minFields?: number },
): AsyncGenerator<TableRow> {
  const file = join(root, relPath);
  let names: readonly string[] | undefined = options.columns === 'header' ? undefined : options.columns;
  let columns = names === undefined ? new Map<string, number>() : columnMap(names);
  if (names !== undefined) checkHeader(file, names, options.required ?? []);
  let sawHeader = false;
  for await (const { line, text } of readLines(file)) {
    if (names === undefined) {
      names = text.split('\t').map((c) => c.trim());
      checkHeader(file, names, options.required ?? []);
      columns = columnMap(names);
      sawHeader = true;
      continue;
    }
    if (text.trim() === '') continue;
    const fields = text.split('\t');
    const row = new TableRow(file, relPath, line, fields, columns);
    const min = options.minFields ?? names.length;
    if (fields.length < min) {
      yield new BadShapeRow(row, `row has ${fields.length} tab-separated fields; expected at least ${min} (${names.join(', ')})`);
      continue;
    }
    yield row;
  }
  if (options.columns === 'header' && !sawHeader) throw new DataError(file, undefined, 'the file is empty; expected a header line');
}

/** One JSON Lines record: its parsed value, the line, and the bytes the line took (for progress). */
export interface JsonLine {
  file: string;
  line: number;
  value: unknown;
  bytes: number;
}

/** Streams a JSON Lines file (absolute path): one parsed value per non-empty line; invalid JSON is a DataError at its line. */
export async function* readJsonLinesFile(file: string): AsyncGenerator<JsonLine | DataError> {
  if (!existsSync(file)) throw new DataError(file, undefined, 'no such file');
  for await (const { line, text } of readLines(file)) {
    const bytes = Buffer.byteLength(text, 'utf8') + 1;
    if (text.trim() === '') continue;
    try {
      yield { file, line, value: JSON.parse(text) as unknown, bytes };
    } catch (error) {
      yield new DataError(file, line, `invalid JSON: ${(error as Error).message}`);
    }
  }
}

/** `readJsonLinesFile` for a file under the data root, with its relative path for `source`. */
export async function* readJsonLines(root: string, relPath: string): AsyncGenerator<{ file: string; relFile: string; line: number; value: unknown } | DataError> {
  for await (const item of readJsonLinesFile(join(root, relPath))) {
    yield item instanceof DataError ? item : { file: item.file, relFile: relPath, line: item.line, value: item.value };
  }
}

/**
 * Reading a user's table files: CSV, TSV, JSON Lines, Arrow IPC and Parquet, one record at a
 * time, each record a plain object keyed by column name and tagged with where it came from.
 * `kiln embed`, `kiln index build`, `kiln skills extract` and the generic dataset recipes
 * (pairs, triplets, scored-pairs, retrieval) all read through here, so a file that one command
 * accepts every other accepts too, and a bad row is reported the same way everywhere.
 *
 * Formats (picked from the extension unless given):
 * - `.csv`: RFC 4180 through `csv-parse`, a header line; a record whose field count differs from
 *   the header's is a bad row.
 * - `.tsv`/`.tab`: tab-separated, a header line, no quoting (`"` is an ordinary character, as
 *   in BEIR's qrels and most TSV exports).
 * - `.jsonl`/`.ndjson`: one JSON object per line; the first object's keys play the header's part.
 * - `.arrow`/`.feather`/`.ipc`: Arrow IPC (file or stream format) through `apache-arrow`, streamed
 *   batch by batch.
 * - `.parquet`/`.pq`: Parquet through `hyparquet` (pure JavaScript, maintained by Hyperparam),
 *   read one row group at a time; `hyparquet-compressors` adds gzip, brotli, zstd and LZ4 to the
 *   built-in Snappy. Spec: https://parquet.apache.org/docs/file-format/
 *
 * Where a record came from: `line` is the 1-based line a text record starts on (CSV, TSV,
 * JSONL), or the 1-based data row for the binary formats; `where` says which, so messages read
 * `file:line` or `file: row N`.
 */
import { existsSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { extname, resolve } from 'node:path';

import { DataType, RecordBatchReader, type RecordBatch, type Schema } from 'apache-arrow';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects, parquetSchema } from 'hyparquet';
import { compressors } from 'hyparquet-compressors';

import { readDelimitedRecords, readJsonLinesFile } from './files.js';
import { DataError } from './types.js';

export type RecordFormat = 'csv' | 'tsv' | 'jsonl' | 'arrow' | 'parquet';
export const RECORD_FORMATS: readonly RecordFormat[] = ['csv', 'tsv', 'jsonl', 'arrow', 'parquet'];

const FORMAT_BY_EXTENSION: Readonly<Record<string, RecordFormat>> = {
  '.csv': 'csv',
  '.tsv': 'tsv',
  '.tab': 'tsv',
  '.jsonl': 'jsonl',
  '.ndjson': 'jsonl',
  '.arrow': 'arrow',
  '.feather': 'arrow',
  '.ipc': 'arrow',
  '.parquet': 'parquet',
  '.pq': 'parquet',
};

/** What `openRecords` accepts, for messages. */
export const FORMATS_EXPECTED = '.jsonl (one JSON object per line), .csv or .tsv (with a header line), .arrow (Arrow IPC) or .parquet';

/** One record: its values by column, and the line (text formats) or row (binary formats) it came from. */
export interface DataRecord {
  line: number;
  values: Readonly<Record<string, unknown>>;
}

/** A declared column type, reduced to what readers check: strings, integers, or something else (named). */
export interface ColumnType {
  kind: 'string' | 'integer' | 'other';
  /** The format's own name for it, for messages ('Int32', 'Dictionary<Int32, Utf8>', 'DOUBLE'). */
  name: string;
}

export interface RecordSource {
  /** Absolute path. */
  file: string;
  format: RecordFormat;
  /** Column names: the header, the schema, or the first JSON object's keys. */
  columns: readonly string[];
  /** 'line' for text formats, 'row' for Arrow and Parquet: how `DataRecord.line` counts. */
  where: 'line' | 'row';
  /** The line the header stands on (the CSV/TSV header, the first JSON object); undefined for binary formats. */
  headerLine: number | undefined;
  /** The binary formats' declared column types (Arrow, Parquet), for checks before any record; undefined for text formats. */
  columnTypes: ReadonlyMap<string, ColumnType> | undefined;
  /** Every record in order, or a `DataError` (`file:line: reason`) for one that cannot be read. */
  records: AsyncIterable<DataRecord | DataError>;
  /** How far reading has got, 0..1 (for progress). */
  fraction(): number;
  close(): Promise<void>;
}

/** The format of `file` from its extension; `undefined` when the extension is not a known one. */
export function formatOf(file: string): RecordFormat | undefined {
  return FORMAT_BY_EXTENSION[extname(file).toLowerCase()];
}

/**
 * Opens a table file and reads its header (or schema, or first JSON object) before any record.
 * A missing file, an unknown extension, or an empty file is a `DataError` naming the file.
 */
export async function openRecords(path: string, options: { format?: RecordFormat } = {}): Promise<RecordSource> {
  const file = resolve(path);
  const format = options.format ?? formatOf(file);
  if (format === undefined) throw new DataError(file, undefined, `unknown extension ${JSON.stringify(extname(file))}; expected ${FORMATS_EXPECTED}`);
  if (!existsSync(file)) throw new DataError(file, undefined, 'no such file');
  if (!statSync(file).isFile()) throw new DataError(file, undefined, 'not a file');
  if (format === 'csv' || format === 'tsv') return openDelimited(file, format);
  if (format === 'jsonl') return openJsonl(file);
  if (format === 'arrow') return openArrow(file);
  return openParquet(file);
}

/** Reads every record of `source` and closes it, also when the consumer stops early or throws. */
export async function* recordsOf(source: RecordSource): AsyncGenerator<DataRecord | DataError> {
  try {
    yield* source.records;
  } finally {
    await source.close();
  }
}

/** Describes a JSON value for messages: `a number (5)`, `null`, `an array`. */
export function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (value === undefined) return 'missing';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'bigint') return `an integer (${value})`;
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value} (${JSON.stringify(value)})`;
}

async function openDelimited(file: string, format: 'csv' | 'tsv'): Promise<RecordSource> {
  const size = statSync(file).size;
  const progress = { bytesRead: 0 };
  const iterator = readDelimitedRecords(file, { delimiter: format === 'tsv' ? '\t' : ',', quote: format === 'csv', progress })[Symbol.asyncIterator]();
  const close = async (): Promise<void> => {
    await iterator.return?.(undefined);
  };
  let header: string[];
  let headerLine: number;
  try {
    const first = await iterator.next();
    if (first.done === true) throw new DataError(file, undefined, 'the file is empty; expected a header line');
    header = first.value.record.map((c) => c.trim());
    headerLine = first.value.line;
  } catch (error) {
    await close();
    throw error;
  }
  async function* records(): AsyncGenerator<DataRecord | DataError> {
    for (;;) {
      const item = await iterator.next();
      if (item.done === true) return;
      const { record, line } = item.value;
      if (record.length !== header.length) {
        yield new DataError(file, line, `row has ${record.length} fields; expected ${header.length} (${header.join(', ')})`);
        continue;
      }
      const values: Record<string, unknown> = {};
      header.forEach((name, i) => {
        if (!Object.hasOwn(values, name)) values[name] = record[i];
      });
      yield { line, values };
    }
  }
  return { file, format, columns: header, where: 'line', headerLine, columnTypes: undefined, records: records(), fraction: () => (size === 0 ? 1 : Math.min(1, progress.bytesRead / size)), close };
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);

async function openJsonl(file: string): Promise<RecordSource> {
  const size = statSync(file).size;
  let bytesRead = 0;
  const iterator = readJsonLinesFile(file)[Symbol.asyncIterator]();
  const close = async (): Promise<void> => {
    await iterator.return?.(undefined);
  };
  // JSONL has no header: the first JSON object's keys stand in for it.
  const pending: Array<Awaited<ReturnType<typeof iterator.next>>['value']> = [];
  let columns: string[] = [];
  let headerLine: number | undefined;
  try {
    for (;;) {
      const item = await iterator.next();
      if (item.done === true) break;
      pending.push(item.value);
      if (!(item.value instanceof DataError) && isObject(item.value.value)) {
        columns = Object.keys(item.value.value);
        headerLine = item.value.line;
        break;
      }
    }
  } catch (error) {
    await close();
    throw error;
  }
  async function* records(): AsyncGenerator<DataRecord | DataError> {
    for (;;) {
      let item = pending.shift();
      if (item === undefined) {
        const next = await iterator.next();
        if (next.done === true) return;
        item = next.value;
      }
      if (item instanceof DataError) {
        yield item;
        continue;
      }
      bytesRead += item.bytes;
      if (!isObject(item.value)) {
        yield new DataError(file, item.line, `a JSON ${Array.isArray(item.value) ? 'array' : item.value === null ? 'null' : typeof item.value}; expected an object`);
        continue;
      }
      yield { line: item.line, values: item.value };
    }
  }
  return { file, format: 'jsonl', columns, where: 'line', headerLine, columnTypes: undefined, records: records(), fraction: () => (size === 0 ? 1 : Math.min(1, bytesRead / size)), close };
}

/** Utf8, LargeUtf8, or a dictionary of either (pandas categoricals) read as strings; any Int as an integer. */
function arrowColumnType(type: DataType): ColumnType {
  const values = DataType.isDictionary(type) ? type.dictionary : type;
  if (DataType.isUtf8(values) || DataType.isLargeUtf8(values)) return { kind: 'string', name: String(type) };
  if (DataType.isInt(type)) return { kind: 'integer', name: String(type) };
  return { kind: 'other', name: String(type) };
}

/** A Parquet column's type: BYTE_ARRAY annotated as UTF8/STRING is a string; INT32/INT64 (not decimals) an integer. */
function parquetColumnType(element: { type?: string; converted_type?: string; logical_type?: { type: string } }): ColumnType {
  const name = [element.type, element.logical_type?.type ?? element.converted_type].filter((v) => v !== undefined).join(' ');
  const annotation = element.logical_type?.type ?? element.converted_type;
  if (element.type === 'BYTE_ARRAY' && (annotation === 'STRING' || annotation === 'UTF8' || annotation === 'JSON' || annotation === 'ENUM')) return { kind: 'string', name };
  if ((element.type === 'INT32' || element.type === 'INT64') && (annotation === undefined || annotation === 'INTEGER' || /^U?INT_/.test(annotation))) return { kind: 'integer', name };
  return { kind: 'other', name: name || 'a group' };
}

/** An Arrow cell as a plain value: List vectors become arrays, everything else is kept. */
function arrowValue(cell: unknown): unknown {
  if (cell !== null && typeof cell === 'object' && 'toArray' in cell) return Array.from((cell as { toArray(): ArrayLike<unknown> }).toArray());
  return cell;
}

/**
 * Streams an Arrow IPC file's record batches (file or stream format) without reading it whole;
 * `schema` is available before the first batch.
 */
export async function openArrowBatches(
  path: string,
): Promise<{ schema: Schema; batches: AsyncIterableIterator<RecordBatch>; numBatches: number | undefined; close: () => Promise<void> }> {
  const handle = await open(path, 'r');
  try {
    const reader = await RecordBatchReader.from(handle);
    await reader.open();
    return {
      schema: reader.schema,
      batches: reader[Symbol.asyncIterator](),
      numBatches: reader.isFile() ? reader.numRecordBatches : undefined,
      close: async () => {
        await reader.cancel().catch(() => undefined);
        await handle.close().catch(() => undefined);
      },
    };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw new DataError(path, undefined, `not a readable Arrow IPC file (${(error as Error).message})`);
  }
}

async function openArrow(file: string): Promise<RecordSource> {
  const source = await openArrowBatches(file);
  const columns = source.schema.fields.map((f) => f.name);
  const columnTypes = new Map(source.schema.fields.map((f) => [f.name, arrowColumnType(f.type)] as const));
  let batchesDone = 0;
  async function* records(): AsyncGenerator<DataRecord | DataError> {
    let row = 0;
    for await (const batch of { [Symbol.asyncIterator]: () => source.batches }) {
      const children = columns.map((name) => batch.getChild(name));
      for (let r = 0; r < batch.numRows; r++) {
        row++;
        const values: Record<string, unknown> = {};
        columns.forEach((name, c) => {
          values[name] = arrowValue(children[c]?.get(r) ?? null);
        });
        yield { line: row, values };
      }
      batchesDone++;
    }
  }
  const total = source.numBatches;
  return {
    file,
    format: 'arrow',
    columns,
    where: 'row',
    headerLine: undefined,
    columnTypes,
    records: records(),
    fraction: () => (total === undefined ? 0 : total === 0 ? 1 : batchesDone / total),
    close: source.close,
  };
}

async function openParquet(file: string): Promise<RecordSource> {
  let buffer: Awaited<ReturnType<typeof asyncBufferFromFile>>;
  let metadata: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    buffer = await asyncBufferFromFile(file);
    metadata = await parquetMetadataAsync(buffer);
  } catch (error) {
    throw new DataError(file, undefined, `not a readable Parquet file (${(error as Error).message})`);
  }
  const children = parquetSchema(metadata).children;
  const columns = children.map((child) => child.element.name);
  const columnTypes = new Map(children.map((child) => [child.element.name, parquetColumnType(child.element as Parameters<typeof parquetColumnType>[0])] as const));
  const totalRows = Number(metadata.num_rows);
  let rowsDone = 0;
  async function* records(): AsyncGenerator<DataRecord | DataError> {
    // One row group at a time: a Parquet file's row groups are its unit of independent decoding,
    // so memory holds one group's rows, not the whole file's.
    let rowStart = 0;
    for (const group of metadata.row_groups) {
      const rowEnd = rowStart + Number(group.num_rows);
      let rows: Record<string, unknown>[];
      try {
        rows = await parquetReadObjects({ file: buffer, metadata, rowStart, rowEnd, compressors });
      } catch (error) {
        throw new DataError(file, undefined, `unreadable Parquet rows ${rowStart + 1}..${rowEnd}: ${(error as Error).message}`);
      }
      for (const [i, values] of rows.entries()) {
        rowsDone = rowStart + i + 1;
        yield { line: rowStart + i + 1, values };
      }
      rowStart = rowEnd;
    }
  }
  return {
    file,
    format: 'parquet',
    columns,
    where: 'row',
    headerLine: undefined,
    columnTypes,
    records: records(),
    fraction: () => (totalRows === 0 ? 1 : rowsDone / totalRows),
    close: async () => {},
  };
}

/**
 * What the generic recipes (`pairs`, `triplets`, `scored-pairs`, `retrieval`) share: the files
 * option (one path, a glob, or a list of either), the format option, column mapping, and the
 * reading loop that applies `on_bad_row` to every record.
 *
 * Paths: absolute, or relative to the directory of the config file that names them. The config
 * loader makes them absolute (`resolvePaths`) before the config is validated and saved, so the
 * run's resolved config.yaml, and `--resume` from any directory, read the same files.
 *
 * Bad rows: a record that lacks a mapped column, has an empty text, or a score out of range is
 * a `DataError` naming `file:line` (text formats) or `file: row N` (Arrow, Parquet) with the
 * reason; `on_bad_row: skip` counts it in the run's bad-row report, `fail` stops the load. A
 * file whose header lacks a mapped column fails whatever the policy: every row would be bad.
 */
import { isAbsolute, resolve } from 'node:path';

import { globSync, isDynamicPattern } from 'tinyglobby';
import { z } from 'zod';

import { describeValue, formatOf, openRecords, RECORD_FORMATS, recordsOf, type DataRecord, type RecordFormat } from '../records.js';
import { handleRow } from '../files.js';
import { DataError, type RecipeContext } from '../types.js';

export const pathOption = z
  .union([z.string().min(1), z.array(z.string().min(1)).min(1)])
  .describe('A file, a glob (data/*.parquet), or a list of them; relative paths are relative to the config file');

export const formatOption = z
  .enum(['auto', ...RECORD_FORMATS])
  .default('auto')
  .describe('File format; auto picks it from the extension (.csv, .tsv, .jsonl, .arrow, .parquet)');

/** Makes the path option's entries absolute against `baseDir` (see the header). */
export function resolvePathOption(value: unknown, baseDir: string): unknown {
  const one = (p: unknown): unknown => (typeof p === 'string' && p !== '' && !isAbsolute(p) ? resolve(baseDir, p) : p);
  return Array.isArray(value) ? value.map(one) : one(value);
}

/** The files a path option names, globs expanded (sorted, so the order does not depend on the file system). */
export function expandPaths(option: string | readonly string[], key: string): string[] {
  const files: string[] = [];
  for (const entry of typeof option === 'string' ? [option] : option) {
    if (!isDynamicPattern(entry)) {
      files.push(resolve(entry));
      continue;
    }
    const matches = globSync(entry, { absolute: true, onlyFiles: true, expandDirectories: false }).sort();
    if (matches.length === 0) throw new DataError(entry, undefined, `${key}: the glob matches no file`);
    files.push(...matches);
  }
  return files;
}

/** Where a record came from, for `source` and messages: `file:line`, or `file#row` for the binary formats. */
function recordSource(file: string, where: 'line' | 'row', n: number): string {
  return where === 'line' ? `${file}:${n}` : `${file}#${n}`;
}

/** Accessors over one record that raise the bad-row errors of the header. */
export class MappedRecord {
  constructor(
    readonly file: string,
    readonly where: 'line' | 'row',
    readonly record: DataRecord,
  ) {}

  get source(): string {
    return recordSource(this.file, this.where, this.record.line);
  }

  error(reason: string): DataError {
    return this.where === 'line' ? new DataError(this.file, this.record.line, reason) : new DataError(this.file, undefined, `row ${this.record.line}: ${reason}`);
  }

  /** A required text: a string (numbers are accepted as their decimal text), non-empty after trimming. */
  text(column: string): string {
    const value = this.record.values[column];
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (typeof value !== 'string') throw this.error(`column "${column}" is ${describeValue(value)}; expected a text`);
    const trimmed = value.trim();
    if (trimmed === '') throw this.error(`column "${column}" is empty; expected a text`);
    return trimmed;
  }

  /** An optional text: '' when missing, null or empty. */
  optionalText(column: string): string {
    const value = this.record.values[column];
    if (value === undefined || value === null) return '';
    if (typeof value === 'number' || typeof value === 'bigint') return String(value);
    if (typeof value !== 'string') throw this.error(`column "${column}" is ${describeValue(value)}; expected a text`);
    return value.trim();
  }

  /** A required finite number (a number, or a string that parses as one) in [min, max]. */
  number(column: string, range: { min: number; max: number }): number {
    const raw = this.record.values[column];
    const value = typeof raw === 'number' ? raw : typeof raw === 'bigint' ? Number(raw) : typeof raw === 'boolean' ? Number(raw) : typeof raw === 'string' && raw.trim() !== '' ? Number(raw) : NaN;
    if (!Number.isFinite(value)) throw this.error(`column "${column}" is ${describeValue(raw)}; expected a number in [${range.min}, ${range.max}]`);
    if (value < range.min || value > range.max) throw this.error(`column "${column}" is ${value}; expected a number in [${range.min}, ${range.max}]`);
    return value;
  }
}

/**
 * Reads every record of the files named by `path`, checks that each file has the `required`
 * columns, and calls `fn` on each record under the context's bad-row policy. Every file read is
 * recorded in `ctx.filesRead`.
 */
export async function forEachRecord(
  ctx: RecipeContext,
  options: { path: string | readonly string[]; format: 'auto' | RecordFormat; key: string },
  required: readonly string[],
  fn: (record: MappedRecord) => void,
): Promise<{ files: string[]; records: number }> {
  const files = expandPaths(options.path, options.key);
  let records = 0;
  for (const file of files) {
    const format = options.format === 'auto' ? formatOf(file) : options.format;
    const source = await openRecords(file, format === undefined ? {} : { format });
    ctx.filesRead?.add(source.file);
    const missing = required.filter((c) => !source.columns.includes(c));
    if (missing.length > 0) {
      await source.close();
      const what = source.format === 'jsonl' ? 'key' : 'column';
      throw new DataError(
        source.file,
        source.headerLine,
        `no ${what}${missing.length > 1 ? 's' : ''} ${missing.map((c) => JSON.stringify(c)).join(', ')} (${what}s: ${source.columns.map((c) => JSON.stringify(c)).join(', ') || 'none'}); map ${missing.length > 1 ? 'them' : 'it'} with options.columns`,
      );
    }
    for await (const record of recordsOf(source)) {
      records++;
      if (record instanceof DataError) {
        handleRow(ctx, () => {
          throw record;
        });
        continue;
      }
      handleRow(ctx, () => fn(new MappedRecord(source.file, source.where, record)));
    }
  }
  return { files, records };
}

/** A column name option with its default, described by the role it plays. */
export function column(role: string, fallback: string) {
  return z.string().min(1).default(fallback).describe(`Column (or JSON key) holding the ${role}`);
}

/** Where the column mapping is documented, for `columns` options. */
export const COLUMNS_DESCRIPTION = 'Which column holds each part (CSV/TSV header names, JSON keys, Arrow/Parquet columns); unnamed parts keep their defaults';

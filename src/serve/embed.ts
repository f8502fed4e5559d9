/**
 * `kiln embed`: embeds every row of a JSONL, CSV or Arrow file with an exported model and
 * writes the vectors to an Arrow file (layout: ./arrow-io.ts), doing as little inference as it
 * can:
 *
 * 1. Each text is normalised (Unicode NFKC, whitespace runs collapsed to one space, trimmed;
 *    case is kept, the model's tokenizer decides it) and hashed (SHA-256). The model sees the
 *    normalised text, so two rows with the same hash get the same vector.
 * 2. With `--previous FILE.arrow` (an earlier output), a row whose hash is in that file, under
 *    the same model id, side and input type, takes the old vector as is (byte-identical):
 *    "reused". When the model, side or input type differ nothing is reused and the reason is
 *    printed.
 * 3. A text that appears again in this input is computed once: "deduplicated".
 * 4. The rest goes to onnxruntime in batches ("computed").
 *
 * Input is read and written in chunks of `chunkRows` rows (4096), so only the current chunk,
 * the ids seen so far and the vectors computed so far (for deduplication) stay in memory; the
 * output streams into a temporary file that is renamed over `--out` only when the run succeeds
 * (an interrupted or failed run leaves the old output untouched and removes the temp file).
 * `--previous` is read whole before anything is written, so it may be the same file as `--out`.
 *
 * `--shard i/n` keeps only the rows with `shardOf(id, n) === i`: the first 8 bytes of SHA-256 of
 * the id, big-endian, modulo n. A row's shard depends on its id alone, so adding or removing
 * rows never moves another row to a different shard, and every machine can read the same file.
 * Every shard checks every row (a bad row is reported by each shard), so each shard's counts
 * of rows read and skipped are those of the whole file.
 *
 * Bad rows (invalid JSON, a missing, non-string or empty text, a missing id, an id seen before)
 * are reported as `FILE:LINE: reason` and skipped. For an Arrow input LINE is the 1-based row.
 * A missing file, an unknown extension or a header without the text column is an error before
 * anything is computed or written.
 *
 * @example
 *   const summary = await embedFile({ model: 'exports/jobbert', input: 'titles.csv', textField: 'vacancyTitle', out: 'titles.arrow' });
 *   // summary: { read: 15463, skipped: 0, written: 15463, reused: 0, deduplicated: 1804, computed: 13659, … }
 */
import { createHash } from 'node:crypto';
import { basename, resolve } from 'node:path';

import { SingleBar } from 'cli-progress';

import { DataError } from '../data/types.js';
import { describeValue, openRecords, type DataRecord, type RecordFormat, type RecordSource } from '../data/records.js';
import type { ModelCard } from '../export/card.js';
import { KILN_VERSION } from '../version.js';
import { formatDuration } from '../util/format.js';
import { EmbeddingsWriter, embeddingsSchema, readEmbeddings, type EmbeddingsFile, type EmbeddingsMetadata } from './arrow-io.js';
import { ExportedModel, type EmbedRequest, type Side } from './exported-model.js';

// ---------------------------------------------------------------------------------------------
// Pure helpers

/** The normalisation rule, as recorded in the output's schema metadata. */
export const NORMALISATION_RULE = 'unicode NFKC; runs of whitespace collapsed to one space; trimmed; case kept';
/** What `content_hash` is, as recorded in the output's schema metadata. */
export const CONTENT_HASH_RULE = 'hex SHA-256 of the UTF-8 bytes of the normalised text; a vector is reused only under the same kiln.model_id, kiln.side and kiln.input_type';

/** NFKC, whitespace runs (any Unicode white space) to one space, trimmed; case is kept. */
export function normaliseText(text: string): string {
  return text.normalize('NFKC').replace(/\s+/gu, ' ').trim();
}

/** Hex SHA-256 of `normaliseText(text)`. */
export function contentHash(text: string): string {
  return hashNormalised(normaliseText(text));
}

function hashNormalised(normalised: string): string {
  return createHash('sha256').update(normalised, 'utf8').digest('hex');
}

/** Errors in the options of a run (shard syntax, model directory, `--out`): exit code 2 in the CLI. */
export class EmbedError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'EmbedError';
  }
}

export interface Shard {
  index: number;
  count: number;
}

/** Parses `i/n` with 0 ≤ i < n (e.g. `0/4`); anything else is an `EmbedError` saying what was expected. */
export function parseShard(spec: string): Shard {
  const match = /^\s*(\d+)\s*\/\s*(\d+)\s*$/.exec(spec);
  if (match === null) throw new EmbedError(`--shard ${JSON.stringify(spec)}: expected i/n, e.g. 0/4 (this machine's shard i of n, 0 ≤ i < n)`);
  const index = Number(match[1]);
  const count = Number(match[2]);
  if (!Number.isSafeInteger(count) || count < 1) throw new EmbedError(`--shard ${spec}: the shard count n must be at least 1`);
  if (!Number.isSafeInteger(index) || index >= count) throw new EmbedError(`--shard ${spec}: the shard index i must be in 0..${count - 1} (0 ≤ i < n)`);
  return { index, count };
}

/** The shard (0..count-1) of a row id: the first 8 bytes of SHA-256(id), big-endian, mod count. */
export function shardOf(id: string, count: number): number {
  const digest = createHash('sha256').update(id, 'utf8').digest();
  return Number(digest.readBigUInt64BE(0) % BigInt(count));
}

// ---------------------------------------------------------------------------------------------
// Input readers

export type InputFormat = RecordFormat;

/** One input row: its id (the id field, or the data row number) and its text as given. */
export interface InputRow {
  /** 1-based line the row starts on (for Arrow and Parquet: the 1-based row). */
  line: number;
  id: string;
  text: string;
  /** With `labelsField`: the row's other names (alternative labels), empty ones dropped. */
  labels?: string[];
}

export interface InputSource {
  file: string;
  format: InputFormat;
  /** True when the input has no id field and rows are numbered instead (1-based data rows). */
  idFromRowNumber: boolean;
  /** Every data row, in order: a row, or a DataError (`file:line: reason`) for a bad one. */
  rows: AsyncIterable<InputRow | DataError>;
  /** How far reading has got, 0..1 (for progress). */
  fraction(): number;
  close(): Promise<void>;
}

export interface InputFields {
  /** Column/key of the text (default 'text'). */
  textField?: string;
  /** Column/key of the id; when not given and there is no 'id' column, rows are numbered. */
  idField?: string;
  /**
   * Column/key of a document's other names (a search index's lexical labels): a JSON array of
   * strings, or one string with a label per line (as ESCO's altLabels cells); Arrow: List<Utf8>
   * or Utf8. An empty or null cell means no labels.
   */
  labelsField?: string;
}

/**
 * Opens an input file (any format of src/data/records.ts) and checks its header (CSV/TSV header
 * line, Arrow or Parquet schema, or for JSONL the first JSON object) before any row is read. A
 * missing file, an unknown extension or a missing column is a `DataError` naming the file and
 * what was expected.
 */
export async function openInput(path: string, fields: InputFields = {}): Promise<InputSource> {
  const source = await openRecords(path);
  const { file } = source;
  const spec: FieldSpec = { textField: fields.textField ?? 'text', idField: fields.idField ?? 'id', idExplicit: fields.idField !== undefined, labelsField: fields.labelsField };
  const what = source.format === 'jsonl' ? 'key' : 'column';
  let idFromRowNumber: boolean;
  try {
    ({ idFromRowNumber } = checkFields(file, source.headerLine, source.columns, spec, what));
    checkColumnTypes(source, spec, idFromRowNumber);
  } catch (error) {
    await source.close();
    throw error;
  }
  async function* rows(): AsyncGenerator<InputRow | DataError> {
    let row = 0;
    for await (const record of source.records) {
      if (record instanceof DataError) {
        yield record;
        continue;
      }
      row++;
      const parsed = inputRow(file, record, spec, idFromRowNumber ? String(row) : undefined, what);
      yield parsed;
    }
  }
  return { file, format: source.format, idFromRowNumber, rows: rows(), fraction: () => source.fraction(), close: () => source.close() };
}

interface FieldSpec {
  textField: string;
  idField: string;
  idExplicit: boolean;
  labelsField: string | undefined;
}

/** The binary formats declare their types: a text column that is not a string is refused before any row. */
function checkColumnTypes(source: RecordSource, spec: FieldSpec, idFromRowNumber: boolean): void {
  if (source.columnTypes === undefined) return;
  const textType = source.columnTypes.get(spec.textField);
  if (textType !== undefined && textType.kind !== 'string') {
    throw new DataError(source.file, undefined, `column ${JSON.stringify(spec.textField)} is ${textType.name}; expected a string column (Utf8)`);
  }
  const idType = idFromRowNumber ? undefined : source.columnTypes.get(spec.idField);
  if (idType !== undefined && idType.kind === 'other') {
    throw new DataError(source.file, undefined, `column ${JSON.stringify(spec.idField)} is ${idType.name}; expected a string or integer column`);
  }
}

/** One record as an input row, or the reason it is not one. */
function inputRow(file: string, record: DataRecord, spec: FieldSpec, rowId: string | undefined, what: 'key' | 'column'): InputRow | DataError {
  const { line, values } = record;
  const text = values[spec.textField];
  if (text === undefined && what === 'key') return new DataError(file, line, `no ${JSON.stringify(spec.textField)} key (keys: ${listNames(Object.keys(values))})`);
  if (typeof text !== 'string') return new DataError(file, line, `${JSON.stringify(spec.textField)} is ${describeValue(text)}; expected a string`);
  let id = rowId;
  if (id === undefined) {
    const raw = values[spec.idField];
    if (raw === undefined || raw === null) {
      return new DataError(file, line, what === 'key' ? `no ${JSON.stringify(spec.idField)} key (keys: ${listNames(Object.keys(values))}); expected an id` : `${JSON.stringify(spec.idField)} is null; expected an id`);
    }
    if (typeof raw === 'string') id = raw.trim();
    else if ((typeof raw === 'number' && Number.isFinite(raw)) || typeof raw === 'bigint') id = String(raw);
    else return new DataError(file, line, `${JSON.stringify(spec.idField)} is ${describeValue(raw)}; expected a string or a number`);
    if (id === '') return new DataError(file, line, `${named(spec.idField, what)} is empty; expected an id`);
  }
  if (spec.labelsField === undefined) return { line, id, text };
  const labels = parseLabels(values[spec.labelsField]);
  if (typeof labels === 'string') return new DataError(file, line, `${named(spec.labelsField, what)} ${labels}`);
  return { line, id, text, labels };
}

/** A field as messages name it: `column "id"` in a table, plain `"id"` for a JSON key. */
function named(field: string, what: 'key' | 'column'): string {
  return what === 'column' ? `column ${JSON.stringify(field)}` : JSON.stringify(field);
}

/** A labels cell as a list (see `InputFields.labelsField`), or the reason it is not one. */
function parseLabels(value: unknown): string[] | string {
  if (value === undefined || value === null) return [];
  if (Array.isArray(value)) {
    const bad = value.findIndex((v) => typeof v !== 'string');
    if (bad !== -1) return `item ${bad} is ${describeValue(value[bad])}; expected an array of strings`;
    return (value as string[]).map((v) => v.trim()).filter((v) => v !== '');
  }
  if (typeof value !== 'string') return `is ${describeValue(value)}; expected an array of strings or a string with one label per line`;
  const trimmed = value.trim();
  if (trimmed.startsWith('[')) {
    try {
      return parseLabels(JSON.parse(trimmed));
    } catch {
      // Not JSON: a label that happens to start with '['.
    }
  }
  return trimmed.split('\n').map((v) => v.trim()).filter((v) => v !== '');
}

function listNames(names: readonly string[]): string {
  return names.map((n) => JSON.stringify(n)).join(', ') || 'none';
}

/** The header check shared by every format: which of the fields exist decides the id rule. */
function checkFields(file: string, line: number | undefined, names: readonly string[], spec: FieldSpec, what: string): { idFromRowNumber: boolean } {
  if (!names.includes(spec.textField)) {
    throw new DataError(file, line, `no ${what} ${JSON.stringify(spec.textField)} for the text (${what}s: ${listNames(names)}); pass --text-field NAME`);
  }
  if (spec.labelsField !== undefined && !names.includes(spec.labelsField)) {
    throw new DataError(file, line, `no ${what} ${JSON.stringify(spec.labelsField)} for the labels (${what}s: ${listNames(names)}); pass --labels-field NAME, or leave it out`);
  }
  if (names.includes(spec.idField)) return { idFromRowNumber: false };
  if (spec.idExplicit) throw new DataError(file, line, `no ${what} ${JSON.stringify(spec.idField)} for the id (${what}s: ${listNames(names)}); pass --id-field NAME, or leave it out to number the rows`);
  return { idFromRowNumber: true };
}

// ---------------------------------------------------------------------------------------------
// Change detection

/** What a model must be for a vector of a previous file to be reused. */
export interface ReuseKey {
  modelId: string;
  dimension: number;
  side: Side;
  /** '' for none. */
  inputType: string;
}

/**
 * The vectors of `previous` that this run may reuse, by content hash: all rows made under the
 * same model id, side and input type (and the row's own model id matches). When the file was
 * made differently, no vectors and the reason.
 */
export function reusableVectors(previous: EmbeddingsFile, key: ReuseKey): { vectors: Map<string, Float32Array>; refused: string | null } {
  const meta = previous.metadata;
  const name = basename(previous.path);
  const differs: string[] = [];
  if (meta.modelId !== key.modelId) differs.push(`model ${JSON.stringify(meta.modelId)} (now ${JSON.stringify(key.modelId)})`);
  if (meta.dimension !== key.dimension) differs.push(`dimension ${meta.dimension} (now ${key.dimension})`);
  if (meta.side !== key.side) differs.push(`side ${meta.side} (now ${key.side})`);
  if (meta.inputType !== key.inputType) differs.push(`input type ${JSON.stringify(meta.inputType || 'none')} (now ${JSON.stringify(key.inputType || 'none')})`);
  if (meta.normalisation !== NORMALISATION_RULE) differs.push(`normalisation "${meta.normalisation}" (now "${NORMALISATION_RULE}")`);
  const vectors = new Map<string, Float32Array>();
  if (differs.length > 0) return { vectors, refused: `reusing nothing from ${name}: it was made with ${differs.join(', ')}` };
  for (let i = 0; i < previous.hashes.length; i++) {
    if (previous.modelIds[i] === key.modelId && !vectors.has(previous.hashes[i]!)) vectors.set(previous.hashes[i]!, previous.vectors[i]!);
  }
  return { vectors, refused: null };
}

// ---------------------------------------------------------------------------------------------
// The run

/** What `embedFile` needs of a model: `ExportedModel` (or a stand-in in tests). */
export interface EmbeddingModel {
  readonly modelId: string;
  readonly dimension: number;
  readonly card?: ModelCard;
  embed(texts: readonly string[], request?: EmbedRequest): Promise<Float32Array[]>;
}

export type ProgressMode = 'bar' | 'plain' | 'none';

export interface EmbedOptions extends InputFields {
  /** An exported model directory (loaded with `threads`, `batchSize`) or a loaded model. */
  model: string | EmbeddingModel;
  input: string;
  out: string;
  /** An earlier output whose vectors may be reused (may equal `out`). */
  previous?: string;
  /** `i/n` or parsed: keep only this shard's rows. */
  shard?: string | Shard;
  side?: Side;
  /** Input type whose prompt the model applies (the card's `prompts`). */
  inputType?: string;
  batchSize?: number;
  threads?: number;
  /** Rows read, looked up and written at a time (default 4096). */
  chunkRows?: number;
  /** Progress display (default 'none'). */
  progress?: ProgressMode;
  /** Notes and plain progress lines (default: stderr). */
  log?: (line: string) => void;
  /** Each bad row (default: its message on stderr). */
  onBadRow?: (error: DataError) => void;
}

export interface EmbedSummary {
  input: string;
  out: string;
  modelId: string;
  dimension: number;
  side: Side;
  inputType: string;
  shard: string | null;
  /** Data rows in the input, bad ones and other shards' included. */
  read: number;
  /** Bad rows skipped. */
  skipped: number;
  /** Good rows that belong to another shard. */
  otherShards: number;
  /** Rows in the output: reused + deduplicated + computed. */
  written: number;
  reused: number;
  deduplicated: number;
  computed: number;
  /** The ids are 1-based data row numbers (no id field). */
  idsFromRowNumbers: boolean;
  /** Why nothing from `previous` was reused; null when it could be (or none was given). */
  reuseRefused: string | null;
  /** The first 100 bad-row messages. */
  badRows: string[];
  seconds: number;
}

const MAX_KEPT_BAD_ROWS = 100;

/** Embeds `options.input` into `options.out`; see the file header for what is reused and when. */
export async function embedFile(options: EmbedOptions): Promise<EmbedSummary> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const reportBadRow = options.onBadRow ?? ((error: DataError) => process.stderr.write(`${error.message}\n`));
  const shard = typeof options.shard === 'string' ? parseShard(options.shard) : options.shard;
  if (shard !== undefined) parseShard(`${shard.index}/${shard.count}`);
  const side: Side = options.side ?? 'doc';
  const inputType = options.inputType ?? '';
  const chunkRows = options.chunkRows ?? 4096;
  if (!Number.isInteger(chunkRows) || chunkRows < 1) throw new EmbedError(`chunkRows is ${chunkRows}; expected a positive integer`);
  const out = resolve(options.out);
  if (out === resolve(options.input)) throw new EmbedError(`--out ${options.out} is the input file; write the embeddings to another file`);

  // Everything that can be wrong with the options is checked before the first row is embedded.
  const source = await openInput(options.input, options);
  let ownModel: ExportedModel | undefined;
  let writer: EmbeddingsWriter | undefined;
  let progress: EmbedProgress | undefined;
  try {
    if (source.idFromRowNumber) {
      log(`${basename(source.file)} has no ${JSON.stringify(options.idField ?? 'id')} ${source.format === 'jsonl' ? 'key' : 'column'}: ids are the 1-based data row numbers (pass --id-field NAME to use a ${source.format === 'jsonl' ? 'key' : 'column'})`);
    }
    // Read the previous output whole before anything is written: it may be `out` itself.
    const previous = options.previous !== undefined ? readEmbeddings(options.previous) : undefined;
    let model: EmbeddingModel;
    if (typeof options.model === 'string') {
      try {
        ownModel = await ExportedModel.load(options.model, { threads: options.threads, batchSize: options.batchSize });
      } catch (error) {
        throw new EmbedError(`--model ${options.model}: ${(error as Error).message}`);
      }
      model = ownModel;
    } else {
      model = options.model;
    }
    if (model.dimension <= 0 || model.card?.kind === 'cross-encoder') {
      throw new EmbedError(`--model: ${model.modelId} is a cross-encoder: it scores (query, doc) pairs and has no embeddings; embed with a two-tower export`);
    }
    if (inputType !== '' && model.card?.kind === 'two-tower' && model.card.prompts[inputType] === undefined) {
      const known = Object.keys(model.card.prompts);
      log(`note: the model card has no prompt for input type ${JSON.stringify(inputType)} (${known.length > 0 ? `prompts: ${known.join(', ')}` : 'it has no prompts'}); texts are embedded as they are`);
    }
    const dimension = model.dimension;
    const key: ReuseKey = { modelId: model.modelId, dimension, side, inputType };
    let reuse = new Map<string, Float32Array>();
    let reuseRefused: string | null = null;
    if (previous !== undefined) {
      ({ vectors: reuse, refused: reuseRefused } = reusableVectors(previous, key));
      if (reuseRefused !== null) log(reuseRefused);
    }

    const metadata: EmbeddingsMetadata = {
      kilnVersion: KILN_VERSION,
      modelId: model.modelId,
      dimension,
      side,
      inputType,
      normalisation: NORMALISATION_RULE,
      contentHash: CONTENT_HASH_RULE,
      ...(shard !== undefined ? { shard: `${shard.index}/${shard.count}` } : {}),
    };
    writer = await EmbeddingsWriter.open(out, embeddingsSchema(metadata));

    const counts = { read: 0, skipped: 0, otherShards: 0, reused: 0, deduplicated: 0, computed: 0 };
    const badRows: string[] = [];
    const firstLineOfId = new Map<string, number>();
    // Vectors computed in this run, by hash: later duplicates copy them.
    const computed = new Map<string, Float32Array>();
    const shown = new EmbedProgress(options.progress ?? 'none', log);
    progress = shown;
    const bad = (error: DataError): void => {
      counts.skipped++;
      if (badRows.length < MAX_KEPT_BAD_ROWS) badRows.push(error.message);
      shown.interrupt(() => reportBadRow(error));
    };

    let chunk: Array<{ id: string; text: string }> = [];
    const flush = async (): Promise<void> => {
      if (chunk.length === 0) return;
      const rows = chunk;
      chunk = [];
      const hashes = rows.map((r) => hashNormalised(r.text));
      // Texts to compute, once each: not in the previous file, not computed earlier in this run.
      const todoTexts: string[] = [];
      const todoHashes: string[] = [];
      const queued = new Set<string>();
      hashes.forEach((hash, i) => {
        if (reuse.has(hash)) counts.reused++;
        else if (computed.has(hash) || queued.has(hash)) counts.deduplicated++;
        else {
          queued.add(hash);
          todoHashes.push(hash);
          todoTexts.push(rows[i]!.text);
        }
      });
      if (todoTexts.length > 0) {
        const vectors = await model.embed(todoTexts, { side, ...(inputType !== '' ? { inputType } : {}) });
        if (vectors.length !== todoTexts.length) throw new Error(`${model.modelId}: embed returned ${vectors.length} vectors for ${todoTexts.length} texts`);
        todoHashes.forEach((hash, i) => {
          const v = vectors[i]!;
          if (v.length !== dimension) throw new Error(`${model.modelId}: embed returned a vector of width ${v.length}; the model card says ${dimension}`);
          computed.set(hash, v);
        });
        counts.computed += todoTexts.length;
      }
      const flat = new Float32Array(rows.length * dimension);
      hashes.forEach((hash, i) => flat.set(reuse.get(hash) ?? computed.get(hash)!, i * dimension));
      writer!.write({ ids: rows.map((r) => r.id), hashes, modelId: model.modelId, vectors: flat });
      shown.update(writer!.rows, source.fraction());
    };

    shown.start();
    for await (const item of source.rows) {
      counts.read++;
      if (item instanceof DataError) {
        bad(item);
        continue;
      }
      const text = normaliseText(item.text);
      if (text === '') {
        bad(new DataError(source.file, item.line, `the text (${JSON.stringify(options.textField ?? 'text')}) is empty${item.text === '' ? '' : ' after normalisation'}; expected some text`));
        continue;
      }
      const firstLine = firstLineOfId.get(item.id);
      if (firstLine !== undefined) {
        bad(new DataError(source.file, item.line, `id ${JSON.stringify(item.id)} repeated (first at ${source.format === 'arrow' ? 'row' : 'line'} ${firstLine}); ids must be unique`));
        continue;
      }
      firstLineOfId.set(item.id, item.line);
      if (shard !== undefined && shardOf(item.id, shard.count) !== shard.index) {
        counts.otherShards++;
        continue;
      }
      chunk.push({ id: item.id, text });
      if (chunk.length >= chunkRows) await flush();
    }
    await flush();
    shown.stop();
    await writer.commit();
    return {
      input: source.file,
      out,
      modelId: model.modelId,
      dimension,
      side,
      inputType,
      shard: metadata.shard ?? null,
      ...counts,
      written: writer.rows,
      idsFromRowNumbers: source.idFromRowNumber,
      reuseRefused,
      badRows,
      seconds: (performance.now() - started) / 1000,
    };
  } catch (error) {
    progress?.stop();
    await writer?.abort();
    throw error;
  } finally {
    await source.close();
    await ownModel?.release();
  }
}

/** The run's summary for people: counts first, then where it went. */
export function formatSummary(s: EmbedSummary): string[] {
  const lines: string[] = [];
  const extra: string[] = [];
  if (s.skipped > 0) extra.push(`skipped ${s.skipped} bad`);
  if (s.shard !== null) extra.push(`${s.otherShards} in other shards (this is shard ${s.shard})`);
  lines.push(`read ${s.read} rows from ${basename(s.input)}${extra.length > 0 ? `: ${extra.join(', ')}` : ''}${s.idsFromRowNumbers ? ' (ids: data row numbers)' : ''}`);
  lines.push(`embedded ${s.written} rows: ${s.reused} reused, ${s.deduplicated} deduplicated, ${s.computed} computed`);
  lines.push(`wrote ${s.out} (${s.modelId}, ${s.side}${s.inputType !== '' ? `, input type ${s.inputType}` : ''}, dimension ${s.dimension}) in ${s.seconds.toFixed(1)} s`);
  return lines;
}

// ---------------------------------------------------------------------------------------------
// Progress

/**
 * A `cli-progress` bar (share of the input read, rows written, rows/s, time remaining) on a
 * TTY, or a plain line at most every 10 s without one (as src/train/progress.ts does). The
 * share comes from bytes read (JSONL, CSV) or record batches (Arrow), so no pre-count is needed.
 */
class EmbedProgress {
  #bar: SingleBar | null = null;
  #started = 0;
  #lastLine = 0;

  constructor(
    private readonly mode: ProgressMode,
    private readonly write: (line: string) => void,
  ) {}

  start(): void {
    this.#started = performance.now();
    this.#lastLine = this.#started;
    if (this.mode === 'bar') {
      this.#bar = new SingleBar({ format: 'embed |{bar}| {percentage}% | {rows} rows | {rate} rows/s | eta {remaining}', hideCursor: true, clearOnComplete: false, fps: 5 });
      this.#bar.start(1000, 0, { rows: 0, rate: '-', remaining: '-' });
    }
  }

  update(rows: number, fraction: number): void {
    if (this.mode === 'none') return;
    const now = performance.now();
    const seconds = (now - this.#started) / 1000;
    const rate = rows / Math.max(seconds, 1e-9);
    const remaining = fraction > 0 ? formatDuration((seconds * (1 - fraction)) / fraction) : '?';
    if (this.#bar !== null) {
      this.#bar.update(Math.round(1000 * fraction), { rows, rate: rate.toFixed(0), remaining });
    } else if (now - this.#lastLine >= 10_000) {
      this.#lastLine = now;
      this.write(`embedded ${rows} rows (${(100 * fraction).toFixed(0)}% of the input) ${rate.toFixed(0)} rows/s eta ${remaining}`);
    }
  }

  /** Writes a line above the bar without tearing it. */
  interrupt(fn: () => void): void {
    if (this.#bar === null) return fn();
    process.stderr.write('\r\x1b[K');
    fn();
  }

  stop(): void {
    if (this.#bar !== null) {
      this.#bar.update(1000);
      this.#bar.stop();
      this.#bar = null;
    }
  }
}

/**
 * The Arrow IPC files of `kiln embed`: the output layout, a writer that streams record batches
 * into a temporary file and renames it over the target only when every batch is written, and a
 * reader that a later run (change detection), tests and users' scripts share.
 *
 * Output layout (Arrow IPC *file* format, readable by pyarrow `pa.ipc.open_file`, polars, DuckDB):
 *
 *   column        type                               value
 *   id            Utf8                               the input row's id
 *   content_hash  Utf8                               hex SHA-256 of the normalised text (UTF-8)
 *   model_id      Utf8                               the model card's `modelId`
 *   vector        FixedSizeList<Float32>[dimension]  the embedding
 *
 * Schema metadata (all strings) under `kiln.*` keys: see `EmbeddingsMetadata`. A reader decides
 * whether a vector may be reused from the metadata (model, side, input type) and the row's
 * content hash; a file without them is not an embeddings file and is refused.
 *
 * Why stream: an output of a million 768-wide vectors is 3 GB; building it as one table before
 * writing would hold it twice. The writer appends each chunk's record batch as soon as it is
 * computed, and the atomic rename means an interrupted run never leaves a torn or truncated
 * file where a good one was.
 */
import { existsSync, readFileSync } from 'node:fs';
import { resolve } from 'node:path';

import {
  DataType,
  Field,
  FixedSizeList,
  Float32,
  makeData,
  Precision,
  RecordBatch,
  RecordBatchFileWriter,
  Schema,
  Struct,
  Utf8,
  tableFromIPC,
  vectorFromArray,
  type Data,
  type Table,
  type TypeMap,
} from 'apache-arrow';

import { DataError } from '../data/types.js';
import { AtomicFileStream } from '../util/atomic-write.js';

/** The output's columns, in order. */
export const EMBEDDING_COLUMNS = ['id', 'content_hash', 'model_id', 'vector'] as const;

/** Schema metadata keys of an embeddings file. */
export const META = {
  format: 'kiln.format',
  kilnVersion: 'kiln.version',
  modelId: 'kiln.model_id',
  dimension: 'kiln.dimension',
  side: 'kiln.side',
  /** The input type whose prompt was applied; '' when none. */
  inputType: 'kiln.input_type',
  normalisation: 'kiln.normalisation',
  contentHash: 'kiln.content_hash',
  /** 'i/n' when the file is one shard of an input; absent otherwise. */
  shard: 'kiln.shard',
} as const;

export const EMBEDDINGS_FORMAT = 'kiln-embeddings-1';

export interface EmbeddingsMetadata {
  kilnVersion: string;
  modelId: string;
  dimension: number;
  side: 'query' | 'doc';
  /** '' when no input type (no prompt) was used. */
  inputType: string;
  normalisation: string;
  contentHash: string;
  shard?: string;
}

/** The Arrow schema of an embeddings file of width `metadata.dimension`. */
export function embeddingsSchema(metadata: EmbeddingsMetadata): Schema {
  const meta = new Map<string, string>([
    [META.format, EMBEDDINGS_FORMAT],
    [META.kilnVersion, metadata.kilnVersion],
    [META.modelId, metadata.modelId],
    [META.dimension, String(metadata.dimension)],
    [META.side, metadata.side],
    [META.inputType, metadata.inputType],
    [META.normalisation, metadata.normalisation],
    [META.contentHash, metadata.contentHash],
  ]);
  if (metadata.shard !== undefined) meta.set(META.shard, metadata.shard);
  return new Schema(
    [
      new Field('id', new Utf8(), false),
      new Field('content_hash', new Utf8(), false),
      new Field('model_id', new Utf8(), false),
      new Field('vector', new FixedSizeList(metadata.dimension, new Field('item', new Float32(), false)), false),
    ],
    meta,
  );
}

/** One chunk of output rows; `vectors` is row-major, `ids.length * dimension` floats. */
export interface EmbeddingRows {
  ids: readonly string[];
  hashes: readonly string[];
  modelId: string;
  vectors: Float32Array;
}

/** A record batch of `rows` under `schema` (from `embeddingsSchema`). */
export function embeddingsBatch(schema: Schema, rows: EmbeddingRows): RecordBatch {
  const n = rows.ids.length;
  const vectorType = schema.fields[3]!.type as FixedSizeList<Float32>;
  const dimension = vectorType.listSize;
  if (rows.hashes.length !== n) throw new Error(`embeddingsBatch: ${n} ids but ${rows.hashes.length} hashes`);
  if (rows.vectors.length !== n * dimension) throw new Error(`embeddingsBatch: ${n} rows of width ${dimension} need ${n * dimension} floats, got ${rows.vectors.length}`);
  const utf8 = (values: readonly string[]): Data<Utf8> => vectorFromArray(values as string[], new Utf8()).data[0]!;
  const children: Data[] = [
    utf8(rows.ids),
    utf8(rows.hashes),
    utf8(new Array<string>(n).fill(rows.modelId)),
    makeData({ type: vectorType, length: n, nullCount: 0, child: makeData({ type: new Float32(), length: n * dimension, nullCount: 0, data: rows.vectors }) }),
  ];
  const struct = makeData({ type: new Struct<TypeMap>(schema.fields), length: n, nullCount: 0, children });
  return new RecordBatch(schema, struct);
}

/**
 * Streams record batches into a hidden temporary file beside `path` (`AtomicFileStream`);
 * `commit()` finishes the Arrow footer and renames the file over `path`, `abort()` removes it,
 * and so does a process exit before either. Until commit, whatever was at `path` is untouched.
 */
export class EmbeddingsWriter {
  readonly #writer: RecordBatchFileWriter;
  readonly #file: AtomicFileStream;
  readonly #pump: Promise<void>;
  #done = false;
  rows = 0;

  private constructor(
    file: AtomicFileStream,
    readonly schema: Schema,
  ) {
    this.#file = file;
    const writer = new RecordBatchFileWriter();
    writer.reset(undefined, schema);
    this.#writer = writer;
    // The writer queues encoded bytes; this loop drains them into the file while the caller
    // computes the next chunk. It ends when the writer is finished or aborted.
    this.#pump = (async () => {
      for await (const chunk of writer) await file.write(chunk);
    })();
    // Failures surface from commit()/abort(); never as an unhandled rejection in between.
    this.#pump.catch(() => undefined);
  }

  static async open(path: string, schema: Schema): Promise<EmbeddingsWriter> {
    return new EmbeddingsWriter(await AtomicFileStream.open(path), schema);
  }

  get path(): string {
    return this.#file.path;
  }

  get temp(): string {
    return this.#file.temp;
  }

  write(rows: EmbeddingRows): void {
    if (this.#done) throw new Error(`${this.path}: write after commit/abort`);
    if (rows.ids.length === 0) return;
    this.#writer.write(embeddingsBatch(this.schema, rows));
    this.rows += rows.ids.length;
  }

  /** Finishes the file (footer), fsyncs, and renames it over the target. */
  async commit(): Promise<void> {
    if (this.#done) throw new Error(`${this.path}: commit after commit/abort`);
    this.#done = true;
    try {
      this.#writer.finish();
      await this.#pump;
    } catch (error) {
      await this.#file.abort();
      throw error;
    }
    await this.#file.commit();
  }

  /** Drops the temporary file; the target keeps its old content (or stays absent). */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    this.#writer.abort();
    await this.#pump.catch(() => undefined);
    await this.#file.abort();
  }
}

/** An embeddings file read back whole. `vectors[i]` are views into the file's buffer (no copies). */
export interface EmbeddingsFile {
  path: string;
  metadata: EmbeddingsMetadata;
  /** Every schema metadata entry, `kiln.*` and any other. */
  rawMetadata: Record<string, string>;
  /** The file-level model id (metadata); each row's own is in `modelIds`. */
  modelId: string;
  dimension: number;
  ids: string[];
  hashes: string[];
  modelIds: string[];
  vectors: Float32Array[];
}

/**
 * Reads an embeddings file written by `kiln embed`. Anything else (a missing file, another
 * Arrow layout, missing `kiln.*` metadata) is a `DataError` naming the file and what was expected.
 */
export function readEmbeddings(path: string): EmbeddingsFile {
  const file = resolve(path);
  if (!existsSync(file)) throw new DataError(file, undefined, 'no such file; expected an Arrow file written by `kiln embed`');
  let table: Table;
  try {
    table = tableFromIPC(readFileSync(file));
  } catch (error) {
    throw new DataError(file, undefined, `not a readable Arrow IPC file (${(error as Error).message}); expected a file written by \`kiln embed\``);
  }
  const raw = Object.fromEntries(table.schema.metadata);
  const expected = `expected a file written by \`kiln embed\` (columns ${EMBEDDING_COLUMNS.join(', ')}; schema metadata ${Object.values(META).filter((k) => k !== META.shard).join(', ')})`;
  const names = table.schema.fields.map((f) => f.name);
  for (const name of EMBEDDING_COLUMNS) {
    if (!names.includes(name)) throw new DataError(file, undefined, `no column "${name}" (columns: ${names.join(', ') || 'none'}); ${expected}`);
  }
  for (const key of Object.values(META)) {
    if (key !== META.shard && raw[key] === undefined) throw new DataError(file, undefined, `no schema metadata "${key}"; ${expected}`);
  }
  const vectorField = table.schema.fields.find((f) => f.name === 'vector')!;
  const vectorType = vectorField.type as FixedSizeList;
  // Types read from a file are the generic classes (Float with a precision), not Float32.
  const itemType = DataType.isFixedSizeList(vectorType) ? vectorType.children[0]!.type : undefined;
  if (itemType === undefined || !DataType.isFloat(itemType) || itemType.precision !== Precision.SINGLE) {
    throw new DataError(file, undefined, `column "vector" is ${String(vectorField.type)}; ${expected}`);
  }
  const dimension = vectorType.listSize;
  const side = raw[META.side];
  if (side !== 'query' && side !== 'doc') throw new DataError(file, undefined, `schema metadata ${META.side} is ${JSON.stringify(side)}; expected "query" or "doc"`);
  const metadata: EmbeddingsMetadata = {
    kilnVersion: raw[META.kilnVersion]!,
    modelId: raw[META.modelId]!,
    dimension: Number(raw[META.dimension]),
    side,
    inputType: raw[META.inputType]!,
    normalisation: raw[META.normalisation]!,
    contentHash: raw[META.contentHash]!,
    ...(raw[META.shard] !== undefined ? { shard: raw[META.shard] } : {}),
  };
  if (metadata.dimension !== dimension) {
    throw new DataError(file, undefined, `schema metadata ${META.dimension} is ${raw[META.dimension]} but column "vector" has width ${dimension}`);
  }
  const strings = (name: string): string[] => {
    const column = table.getChild(name)!;
    const out = new Array<string>(table.numRows);
    for (let i = 0; i < table.numRows; i++) out[i] = column.get(i) as string;
    return out;
  };
  const vectors: Float32Array[] = [];
  for (const data of table.getChild('vector')!.data) {
    const child = data.children[0] as Data<Float32>;
    // Row r of this chunk starts at (chunk offset + r) rows into the child, which has its own offset in floats.
    const base = data.offset * dimension + child.offset;
    const values = child.values;
    for (let r = 0; r < data.length; r++) vectors.push(values.subarray(base + r * dimension, base + (r + 1) * dimension));
  }
  return {
    path: file,
    metadata,
    rawMetadata: raw,
    modelId: metadata.modelId,
    dimension,
    ids: strings('id'),
    hashes: strings('content_hash'),
    modelIds: strings('model_id'),
    vectors,
  };
}

/**
 * A search index over a corpus (`kiln index build`), and the three ways `kiln serve` ranks it.
 *
 * An index directory holds:
 *   index.json       the manifest: model id and dimension, the corpus file and its SHA-256, the
 *                    prompt types, the lexical and fusion settings, the dense search method
 *                    (and for HNSW its parameters and measured recall)
 *   vectors.arrow    the corpus vectors, written by `kiln embed` (src/serve/embed.ts): a rebuild
 *                    reuses every vector whose text is unchanged under the same model
 *   documents.jsonl  one {"id", "text", "labels"} per vector, in the same order: the lexical
 *                    index's source. The inverted index (postings with precomputed weights,
 *                    src/eval/lexical.ts) is rebuilt from it at load, deterministically from the
 *                    same documents and settings (0.4 s for BM25 over 14k ESCO skills and their
 *                    99k labels, 5.4 s for character TF-IDF), so no serialised postings can
 *                    drift from the code that scores them
 *   hnsw.bin         with more than `annThreshold` documents: an HNSW graph (src/serve/ann.ts)
 *
 * The directory is written into a staging sibling and renamed into place whole, so a failed or
 * interrupted build leaves an earlier index untouched.
 *
 * Dense search is exact by default: an onnxruntime matrix product and TopK over every vector
 * (./dense-search.ts). Above the threshold, HNSW; the build measures its recall@window against
 * exact search on queries made from a seeded sample of documents (their texts through the query
 * side), raises efSearch until recall reaches `annRecallTarget` (or the corpus size), and
 * records what it measured.
 *
 * Modes: `dense` (the model's top k), `lexical` (the index's lexical ranker), `hybrid` (both
 * fused as in evaluation: src/eval/fusion.ts, with the index's fusion settings).
 */
import { createHash } from 'node:crypto';
import { createReadStream, existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import { checkFusionOptions, DEFAULT_HYBRID, fuse, type FusedHit, type HybridOptions } from '../eval/fusion.js';
import { DEFAULT_LEXICAL_SETTINGS, documentStrings, LEXICAL_NAMES, LEXICAL_RANKERS, type Candidates, type LexicalSettings } from '../eval/lexical.js';
import { Rng } from '../data/rng.js';
import { DataError } from '../data/types.js';
import { KILN_VERSION } from '../version.js';
import { buildDirectoryAtomic, writeFileAtomic } from '../util/atomic-write.js';
import { readEmbeddings } from './arrow-io.js';
import { annRecall, HnswIndex } from './ann.js';
import { ExactDenseSearch } from './dense-search.js';
import { LexicalWorkerPool } from './lexical-worker.js';
import { EmbedError, embedFile, normaliseText, openInput, type EmbedSummary, type InputFields } from './embed.js';
import { ExportedModel } from './exported-model.js';

export const INDEX_FORMAT = 'kiln-search-index';
export const INDEX_FORMAT_VERSION = 1;
/** Above this many documents, dense search goes through HNSW instead of an exact scan. */
export const DEFAULT_ANN_THRESHOLD = 100_000;
export const DEFAULT_ANN_RECALL_TARGET = 0.98;
const RECALL_QUERIES = 200;

export type SearchMode = 'dense' | 'lexical' | 'hybrid';
export const SEARCH_MODES = ['dense', 'lexical', 'hybrid'] as const satisfies readonly SearchMode[];

export interface IndexDocument {
  id: string;
  text: string;
  labels: string[];
}

export interface AnnManifest {
  search: 'hnsw';
  file: string;
  m: number;
  efConstruction: number;
  efSearch: number;
  /** Mean recall@k of HNSW against exact search at the chosen efSearch, on `queries` queries. */
  recall: { k: number; value: number; queries: number; target: number; byEfSearch: Array<{ efSearch: number; recall: number }> };
}

export interface SearchIndexManifest {
  format: typeof INDEX_FORMAT;
  formatVersion: number;
  kilnVersion: string;
  createdAt: string;
  modelId: string;
  dimension: number;
  /** Prompt types: documents were embedded with `docType`; queries use `queryType` unless a request names one. */
  docType: string;
  queryType: string;
  corpus: { file: string; sha256: string; rows: number; skipped: number };
  documents: number;
  lexical: LexicalSettings;
  hybrid: HybridOptions;
  annThreshold: number;
  dense: { search: 'exact' } | AnnManifest;
  embedding: Pick<EmbedSummary, 'reused' | 'deduplicated' | 'computed'>;
}

export interface BuildIndexOptions extends InputFields {
  /** An exported two-tower model directory, or the loaded model. */
  model: string | ExportedModel;
  corpus: string;
  out: string;
  docType?: string;
  queryType?: string;
  lexical?: LexicalSettings;
  hybrid?: HybridOptions;
  annThreshold?: number;
  annRecallTarget?: number;
  threads?: number;
  log?: (line: string) => void;
  onBadRow?: (error: DataError) => void;
}

export interface BuildIndexSummary {
  out: string;
  manifest: SearchIndexManifest;
  seconds: number;
}

function sha256File(path: string): Promise<string> {
  return new Promise((resolvePromise, reject) => {
    const hash = createHash('sha256');
    createReadStream(path)
      .on('data', (chunk) => hash.update(chunk))
      .on('error', reject)
      .on('end', () => resolvePromise(hash.digest('hex')));
  });
}

/** Reads the corpus rows (id, text, labels); bad rows are reported and skipped, as `kiln embed` skips them. */
async function readDocuments(path: string, fields: InputFields): Promise<Map<string, IndexDocument>> {
  const source = await openInput(path, fields);
  const documents = new Map<string, IndexDocument>();
  try {
    for await (const row of source.rows) {
      // The rows `kiln embed` keeps: good ones with a non-empty text, the first of each id.
      if (row instanceof DataError || normaliseText(row.text) === '' || documents.has(row.id)) continue;
      documents.set(row.id, { id: row.id, text: row.text, labels: row.labels ?? [] });
    }
  } finally {
    await source.close();
  }
  return documents;
}

/** Builds (or rebuilds, reusing unchanged vectors) an index directory; see the header. */
export async function buildSearchIndex(options: BuildIndexOptions): Promise<BuildIndexSummary> {
  const started = performance.now();
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  const out = resolve(options.out);
  const hybrid = options.hybrid ?? DEFAULT_HYBRID;
  const lexical = options.lexical ?? DEFAULT_LEXICAL_SETTINGS;
  const annThreshold = options.annThreshold ?? DEFAULT_ANN_THRESHOLD;
  const recallTarget = options.annRecallTarget ?? DEFAULT_ANN_RECALL_TARGET;
  checkBuildOptions(hybrid, lexical, annThreshold, recallTarget);
  let model: ExportedModel;
  try {
    model = typeof options.model === 'string' ? await ExportedModel.load(options.model, { threads: options.threads }) : options.model;
  } catch (error) {
    throw new EmbedError(`--model ${String(options.model)}: ${(error as Error).message}`);
  }
  try {
    // Built in a staging sibling; Ctrl-C or a failure removes it, and the old index stays.
    const manifest = await buildDirectoryAtomic(out, async (staging) => {
      const card = model.card;
      if (card.kind !== 'two-tower') throw new EmbedError(`--model ${model.dir}: ${model.modelId} is a cross-encoder; a search index needs a two-tower export (kiln export of a two-tower run)`);
      for (const [flag, type] of [['--doc-type', options.docType], ['--query-type', options.queryType]] as const) {
        if (type !== undefined && !Object.hasOwn(card.prompts, type)) {
          const known = Object.keys(card.prompts);
          throw new EmbedError(`${flag} ${JSON.stringify(type)} is not a prompt type of ${model.modelId}; expected ${known.length > 0 ? `one of ${known.map((k) => JSON.stringify(k)).join(', ')}` : 'none (the model has no prompts)'}, or leave it out`);
        }
      }
      const fields: InputFields = { textField: options.textField, idField: options.idField, labelsField: options.labelsField };
      const previous = join(out, 'vectors.arrow');
      const embedded = await embedFile({
        ...fields,
        model,
        input: options.corpus,
        out: join(staging, 'vectors.arrow'),
        previous: existsSync(previous) ? previous : undefined,
        side: 'doc',
        inputType: options.docType,
        log,
        onBadRow: options.onBadRow,
    });
    log(`vectors: ${embedded.written} documents (${embedded.reused} reused, ${embedded.deduplicated} deduplicated, ${embedded.computed} computed)${embedded.skipped > 0 ? `; ${embedded.skipped} bad row(s) skipped` : ''}`);
    if (embedded.written === 0) throw new DataError(resolve(options.corpus), undefined, 'no usable rows: an index needs at least one document');

    // Documents in the order of the vectors (the embed output keeps input order, bad rows dropped).
    const vectors = readEmbeddings(join(staging, 'vectors.arrow'));
    const byId = await readDocuments(options.corpus, fields);
    const documents = vectors.ids.map((id) => {
      const doc = byId.get(id);
      if (doc === undefined) throw new Error(`${options.corpus}: row ${id} has a vector but could not be read back`);
      return doc;
    });
    writeFileAtomic(join(staging, 'documents.jsonl'), documents.map((d) => Buffer.from(`${JSON.stringify(d)}\n`, 'utf8')));
    // The inverted index itself is built where it is used (each service's lexical workers).
    const units = lexical.match === 'joined' ? documents.length : documents.reduce((n, d) => n + documentStrings(d, lexical.fields).length, 0);
    log(`lexical: ${hybrid.lexical} over ${lexical.fields.join(' and ')} (${lexical.match} label): ${units} strings to index`);

    let dense: SearchIndexManifest['dense'] = { search: 'exact' };
    if (documents.length > annThreshold) {
      dense = await buildAnn(model, documents, vectors.vectors, vectors.dimension, hybrid.window, recallTarget, options.queryType, staging, log);
    } else {
      log(`dense: exact search (${documents.length} documents ≤ --ann-threshold ${annThreshold})`);
    }

    const manifest: SearchIndexManifest = {
      format: INDEX_FORMAT,
      formatVersion: INDEX_FORMAT_VERSION,
      kilnVersion: KILN_VERSION,
      createdAt: new Date().toISOString(),
      modelId: model.modelId,
      dimension: vectors.dimension,
      docType: options.docType ?? '',
      queryType: options.queryType ?? '',
      corpus: { file: resolve(options.corpus), sha256: await sha256File(options.corpus), rows: embedded.read, skipped: embedded.skipped },
      documents: documents.length,
      lexical,
      hybrid,
      annThreshold,
      dense,
      embedding: { reused: embedded.reused, deduplicated: embedded.deduplicated, computed: embedded.computed },
    };
    writeFileAtomic(join(staging, 'index.json'), [Buffer.from(`${JSON.stringify(manifest, null, 2)}\n`, 'utf8')]);
    return manifest;
    });
    return { out, manifest, seconds: (performance.now() - started) / 1000 };
  } finally {
    if (typeof options.model === 'string') await model.release();
  }
}

function checkBuildOptions(hybrid: HybridOptions, lexical: LexicalSettings, annThreshold: number, recallTarget: number): void {
  try {
    checkFusionOptions(hybrid);
  } catch (error) {
    throw new EmbedError((error as Error).message);
  }
  if (!Object.hasOwn(LEXICAL_RANKERS, hybrid.lexical)) throw new EmbedError(`lexical ranker ${JSON.stringify(hybrid.lexical)}: expected one of ${LEXICAL_NAMES.join(', ')}`);
  if (!Number.isInteger(hybrid.window) || hybrid.window < 1) throw new EmbedError(`window ${hybrid.window}: expected an integer ≥ 1`);
  if (lexical.fields.length === 0 || lexical.fields.some((f) => f !== 'text' && f !== 'labels')) throw new EmbedError(`lexical fields ${JSON.stringify(lexical.fields)}: expected text, labels or both`);
  if (lexical.match !== 'best' && lexical.match !== 'joined') throw new EmbedError(`label match ${JSON.stringify(lexical.match)}: expected best or joined`);
  if (!Number.isInteger(annThreshold) || annThreshold < 0) throw new EmbedError(`annThreshold ${annThreshold}: expected an integer ≥ 0`);
  if (!(recallTarget > 0 && recallTarget <= 1)) throw new EmbedError(`annRecallTarget ${recallTarget}: expected a number in (0, 1]`);
}

/** Builds the HNSW graph and tunes efSearch to the recall target, measured against exact search. */
async function buildAnn(
  model: ExportedModel,
  documents: readonly IndexDocument[],
  rows: readonly Float32Array[],
  dim: number,
  k: number,
  target: number,
  queryType: string | undefined,
  staging: string,
  log: (line: string) => void,
): Promise<AnnManifest> {
  const matrix = new Float32Array(rows.length * dim);
  rows.forEach((v, i) => matrix.set(v, i * dim));
  const m = 16;
  const efConstruction = 200;
  const started = performance.now();
  const index = HnswIndex.build(matrix, dim, { m, efConstruction });
  log(`dense: HNSW over ${rows.length} documents (m ${m}, efConstruction ${efConstruction}) in ${((performance.now() - started) / 1000).toFixed(1)} s`);
  // Queries as a user sends them: document texts through the query side.
  const rng = Rng.derive(0, 'ann-recall');
  // Distinct documents, by a partial Fisher–Yates shuffle.
  const order = documents.map((_, i) => i);
  const count = Math.min(RECALL_QUERIES, documents.length);
  for (let i = 0; i < count; i++) {
    const j = i + rng.int(order.length - i);
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const sample = order.slice(0, count);
  const queries = await model.embed(sample.map((i) => documents[i]!.text), { side: 'query', inputType: queryType === '' ? undefined : queryType });
  const byEfSearch: Array<{ efSearch: number; recall: number }> = [];
  let efSearch = Math.max(64, k);
  for (;;) {
    index.setEfSearch(efSearch);
    const recall = annRecall(index, matrix, queries, k);
    byEfSearch.push({ efSearch, recall });
    log(`dense: HNSW recall@${k} ${recall.toFixed(4)} at efSearch ${efSearch} (${queries.length} queries, against exact search)`);
    if (recall >= target || efSearch >= rows.length) break;
    efSearch = Math.min(rows.length, efSearch * 2);
  }
  index.save(join(staging, 'hnsw.bin'));
  const chosen = byEfSearch[byEfSearch.length - 1]!;
  return { search: 'hnsw', file: 'hnsw.bin', m, efConstruction, efSearch: chosen.efSearch, recall: { k, value: chosen.recall, queries: queries.length, target, byEfSearch } };
}

export interface LoadIndexOptions {
  /** onnxruntime intra-op threads of the exact dense search (default: its own choice). */
  threads?: number;
  /** Worker threads that run the lexical ranker (default 1; ./lexical-worker.ts). */
  lexicalThreads?: number;
}

/** A loaded index: documents, dense search (exact or HNSW) and the lexical ranker (in worker threads). */
export class SearchIndex {
  private constructor(
    readonly dir: string,
    readonly manifest: SearchIndexManifest,
    readonly documents: readonly IndexDocument[],
    readonly lexical: LexicalWorkerPool,
    readonly exact: ExactDenseSearch | null,
    readonly ann: HnswIndex | null,
  ) {}

  static async load(dir: string, options: LoadIndexOptions = {}): Promise<SearchIndex> {
    const root = resolve(dir);
    const manifestPath = join(root, 'index.json');
    let manifest: SearchIndexManifest;
    try {
      manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as SearchIndexManifest;
    } catch (error) {
      throw new DataError(manifestPath, undefined, `cannot read the index manifest (${(error as Error).message}); expected a directory written by \`kiln index build\``);
    }
    if (manifest.format !== INDEX_FORMAT || manifest.formatVersion !== INDEX_FORMAT_VERSION) {
      throw new DataError(manifestPath, undefined, `format ${JSON.stringify(manifest.format)} version ${String(manifest.formatVersion)}; expected ${INDEX_FORMAT} version ${INDEX_FORMAT_VERSION} (rebuild it with this Kiln's \`kiln index build\`)`);
    }
    const documents = readFileSync(join(root, 'documents.jsonl'), 'utf8')
      .split('\n')
      .filter((line) => line !== '')
      .map((line) => JSON.parse(line) as IndexDocument);
    const vectors = readEmbeddings(join(root, 'vectors.arrow'));
    if (vectors.ids.length !== documents.length || vectors.ids.some((id, i) => documents[i]!.id !== id)) {
      throw new DataError(root, undefined, `vectors.arrow and documents.jsonl do not list the same documents in the same order (${vectors.ids.length} vs ${documents.length}); rebuild the index`);
    }
    const lexical = await LexicalWorkerPool.start(manifest.hybrid.lexical, documents, manifest.lexical, options.lexicalThreads ?? 1);
    try {
      if (manifest.dense.search === 'hnsw') {
        const ann = HnswIndex.load(join(root, manifest.dense.file), manifest.dimension, { efSearch: manifest.dense.efSearch });
        return new SearchIndex(root, manifest, documents, lexical, null, ann);
      }
      const exact = await ExactDenseSearch.create(vectors.vectors, manifest.dimension, { threads: options.threads });
      return new SearchIndex(root, manifest, documents, lexical, exact, null);
    } catch (error) {
      await lexical.close();
      throw error;
    }
  }

  /** Each query vector's `window` best documents by inner product. */
  async denseCandidates(queryVectors: readonly Float32Array[], window: number): Promise<Candidates[]> {
    if (this.exact !== null) return this.exact.search(queryVectors, window);
    return queryVectors.map((q) => this.ann!.search(q, window));
  }

  /** The lexical ranker's `window` best documents, computed in a worker thread. */
  lexicalCandidates(query: string, window: number): Promise<Candidates> {
    return this.lexical.candidates(query, window);
  }

  /** The fused list (every candidate of either part), best first. */
  fuse(dense: Candidates, lexical: Candidates): FusedHit[] {
    return fuse(dense, lexical, this.manifest.hybrid);
  }

  async release(): Promise<void> {
    await this.lexical.close();
    await this.exact?.release();
  }
}

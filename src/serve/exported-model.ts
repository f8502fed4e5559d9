/**
 * An exported model (`kiln export`'s directory) run by onnxruntime: the tokenizer and prompts
 * from the card, batches sorted by length so padding stays small, and the graph's own pooling
 * and normalisation. This is the only inference path of `kiln embed` and `kiln serve`: no
 * libtorch, so a serving machine needs nothing but Node and onnxruntime.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';

import * as ort from 'onnxruntime-node';

import { WordPieceTokenizer } from '../data/tokenizer.js';
import { padBatch } from '../data/batch.js';
import { applyPrompt } from '../models/config.js';
import { parseModelCard, type ModelCard, type TwoTowerCard } from '../export/card.js';
import { planRuns } from './batch-plan.js';

/** One onnxruntime run's cost beyond its tokens, in token positions (./batch-plan.ts; measured in BENCHMARKS.md, "Serving"). */
export const RUN_OVERHEAD_TOKENS = 16;

export type Side = 'query' | 'doc';

export interface LoadOptions {
  /** onnxruntime intra-op threads (default: its own choice, all cores). */
  threads?: number;
  /**
   * Whether onnxruntime's idle intra-op threads spin-wait for the next run (its default, true).
   * Spinning saves a wake-up per run when the cores are the model's alone; beside an HTTP thread
   * on the same cores, the spinning threads take the time that thread needs (`kiln serve`).
   */
  spinning?: boolean;
  /** Most rows per onnxruntime run; texts are sorted by length and cut where padding costs more than a run (./batch-plan.ts; default 64). */
  batchSize?: number;
  /** What one onnxruntime run costs beyond its tokens, in token positions (default RUN_OVERHEAD_TOKENS). */
  runOverheadTokens?: number;
}

export interface EmbedRequest {
  /** Which tower (two-tower models; default 'doc'). */
  side?: Side;
  /** Input type whose prompt template applies (the card's `prompts`); none: the text as is. */
  inputType?: string;
}

export class ExportedModel {
  readonly #sessions: Map<string, ort.InferenceSession>;
  readonly #batchSize: number;
  readonly #runOverheadTokens: number;

  private constructor(
    readonly dir: string,
    readonly card: ModelCard,
    readonly tokenizer: WordPieceTokenizer,
    sessions: Map<string, ort.InferenceSession>,
    batchSize: number,
    runOverheadTokens: number,
  ) {
    this.#sessions = sessions;
    this.#batchSize = batchSize;
    this.#runOverheadTokens = runOverheadTokens;
  }

  static async load(dir: string, options: LoadOptions = {}): Promise<ExportedModel> {
    const { root, card, tokenizer } = readExport(dir);
    const sessionOptions: ort.InferenceSession.SessionOptions = { graphOptimizationLevel: 'all', interOpNumThreads: 1, executionMode: 'sequential' };
    if (options.threads !== undefined) sessionOptions.intraOpNumThreads = options.threads;
    // Session config keys (onnxruntime_session_options_config_keys.h); the Node binding takes
    // them nested, as strings.
    if (options.spinning === false) sessionOptions.extra = { session: { intra_op: { allow_spinning: '0' } } };
    const sessions = new Map<string, ort.InferenceSession>();
    for (const file of new Set(Object.values(card.graphs))) {
      try {
        sessions.set(file, await ort.InferenceSession.create(join(root, file), sessionOptions));
      } catch (error) {
        throw new Error(`${join(root, file)}: onnxruntime cannot load the graph: ${(error as Error).message}`);
      }
    }
    return new ExportedModel(root, card, tokenizer, sessions, options.batchSize ?? 64, options.runOverheadTokens ?? RUN_OVERHEAD_TOKENS);
  }

  get modelId(): string {
    return this.card.modelId;
  }

  /** Width of an embedding (0 for a cross-encoder, which has none). */
  get dimension(): number {
    return this.card.kind === 'two-tower' ? this.card.dimension : 0;
  }

  /** One vector per text, in input order (unit-norm when `card.normalized`). */
  async embed(texts: readonly string[], request: EmbedRequest = {}): Promise<Float32Array[]> {
    const card = twoTowerCard(this.dir, this.card, 'embeddings', 'use score()');
    const side = request.side ?? 'doc';
    const ids = this.#encode(texts, request);
    const session = this.#sessions.get(card.graphs[side])!;
    const out: Float32Array[] = new Array<Float32Array>(texts.length);
    for (const rows of this.#runs(ids)) {
      const padded = padBatch(rows.map((r) => ids[r]!), { padId: card.encoder.padId, padTo: 'longest' });
      const feeds = {
        input_ids: int64Tensor(padded.inputIds, padded.batchSize, padded.seqLen),
        attention_mask: int64Tensor(padded.attentionMask, padded.batchSize, padded.seqLen),
      };
      const result = await session.run(feeds);
      const embedding = result['embedding']!;
      const data = embedding.data as Float32Array;
      const width = card.dimension;
      rows.forEach((row, k) => (out[row] = data.slice(k * width, (k + 1) * width)));
      for (const t of Object.values(result)) t.dispose();
    }
    return out;
  }

  /**
   * How many token ids `embed` feeds the model for each text, with the same request: the prompt
   * template applied, [CLS] and [SEP] included, after truncation to the side's maxLength, padding
   * excluded (what POST /v1/embeddings reports as usage).
   */
  tokenCounts(texts: readonly string[], request: EmbedRequest = {}): number[] {
    return embeddingTokenCounts(this.dir, this.card, this.tokenizer, texts, request);
  }

  /** Token ids per text as the model gets them (see `embeddingTokenIds`). */
  #encode(texts: readonly string[], request: EmbedRequest): Int32Array[] {
    return embeddingTokenIds(this.dir, this.card, this.tokenizer, texts, request, 'embeddings', 'use score()');
  }

  /** A cross-encoder's score (a logit; sigmoid for a probability) per (query, doc) pair, in input order. */
  async score(pairs: ReadonlyArray<readonly [string, string]>): Promise<Float32Array> {
    const card = this.card;
    if (card.kind !== 'cross-encoder') throw new Error(`${this.dir}: a ${card.kind} model has no pair score graph; embed both sides and compare the vectors`);
    const encoded = pairs.map(([a, b]) => this.tokenizer.encodePair(a, b, card.maxLength.pair));
    const session = this.#sessions.get(card.graphs.score)!;
    const out = new Float32Array(pairs.length);
    for (const rows of this.#runs(encoded.map((e) => e.ids))) {
      const padded = padBatch(rows.map((r) => encoded[r]!.ids), { padId: card.encoder.padId, padTo: 'longest' });
      const types = padBatch(rows.map((r) => encoded[r]!.typeIds), { padId: 0, padTo: padded.seqLen });
      const result = await session.run({
        input_ids: int64Tensor(padded.inputIds, padded.batchSize, padded.seqLen),
        attention_mask: int64Tensor(padded.attentionMask, padded.batchSize, padded.seqLen),
        token_type_ids: int64Tensor(types.inputIds, padded.batchSize, padded.seqLen),
      });
      const scores = result['score']!.data as Float32Array;
      rows.forEach((row, k) => (out[row] = scores[k]!));
      for (const t of Object.values(result)) t.dispose();
    }
    return out;
  }

  async release(): Promise<void> {
    for (const session of this.#sessions.values()) await session.release();
    this.#sessions.clear();
  }

  /** Row indices per onnxruntime run: sorted by length, cut where padding costs more than a run. */
  #runs(seqs: readonly Int32Array[]): number[][] {
    return planRuns(seqs.map((s) => s.length), this.#batchSize, this.#runOverheadTokens);
  }
}

/** An export directory's model card and tokenizer, without onnxruntime: what a process needs to tokenize like the model. */
export function readExport(dir: string): { root: string; card: ModelCard; tokenizer: WordPieceTokenizer } {
  const root = resolve(dir);
  const cardPath = join(root, 'model.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(cardPath, 'utf8'));
  } catch (error) {
    throw new Error(`${cardPath}: cannot read the model card (${(error as Error).message}); expected a directory written by \`kiln export\``);
  }
  const card = parseModelCard(raw, cardPath);
  // A server sees unbounded distinct texts: no per-text cache.
  const tokenizer = WordPieceTokenizer.fromTokenizerJson(join(root, card.tokenizer), { cache: false });
  return { root, card, tokenizer };
}

/**
 * How many token ids the model is fed for each text with `request`: the prompt template
 * applied, [CLS] and [SEP] included, after truncation to the side's maxLength, padding excluded
 * (what POST /v1/embeddings reports as usage). Shared by ExportedModel and the model thread
 * (./model-thread.ts), which counts on the HTTP thread.
 */
export function embeddingTokenCounts(dir: string, card: ModelCard, tokenizer: WordPieceTokenizer, texts: readonly string[], request: EmbedRequest = {}): number[] {
  return embeddingTokenIds(dir, card, tokenizer, texts, request, 'token counts', 'count pairs with the tokenizer').map((ids) => ids.length);
}

/** Token ids per text as the model gets them: the prompt applied, `[CLS] … [SEP]`, truncated to the side's maxLength. */
function embeddingTokenIds(dir: string, card: ModelCard, tokenizer: WordPieceTokenizer, texts: readonly string[], request: EmbedRequest, what: string, instead: string): Int32Array[] {
  const twoTower = twoTowerCard(dir, card, what, instead);
  const side = request.side ?? 'doc';
  const prompted = request.inputType === undefined ? texts : texts.map((t) => applyPrompt(twoTower.prompts, request.inputType!, t));
  return prompted.map((t) => tokenizer.encode(t, twoTower.maxLength[side]));
}

/** The two-tower card, or an error saying a cross-encoder has no `what`. */
export function twoTowerCard(dir: string, card: ModelCard, what: string, instead: string): TwoTowerCard {
  if (card.kind !== 'two-tower') throw new Error(`${dir}: a ${card.kind} scores pairs and has no ${what}; ${instead}`);
  return card;
}

function int64Tensor(values: Int32Array, rows: number, cols: number): ort.Tensor {
  const data = new BigInt64Array(values.length);
  for (let i = 0; i < values.length; i++) data[i] = BigInt(values[i]!);
  return new ort.Tensor('int64', data, [rows, cols]);
}

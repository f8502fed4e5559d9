/**
 * Embedding texts with a two-tower model for evaluation and mining: prompts applied per input
 * type, WordPiece ids, batches sorted by length (little padding), no autograd, the model in
 * eval mode (dropout off), optional bf16 autocast; the result is returned in input order.
 */
import { cat, fromTypedArray, noGrad, tidy, keep, autocast, type Tensor } from '../engine/index.js';
import { padToTensors } from '../models/inputs.js';
import type { TwoTowerModel, Side } from '../models/index.js';
import type { RetrievalScorer } from './evaluate.js';
import type { SplitEmbedder } from './splits.js';

export interface TextTokenizer {
  readonly padId: number;
  encodeBatch(texts: readonly string[], maxLength: number): Int32Array[];
}

export interface EmbedOptions {
  maxLength: { query: number; doc: number };
  batchSize: number;
  precision: 'fp32' | 'bf16';
  device: 'cpu' | 'cuda';
}

export class ModelEmbedder implements SplitEmbedder {
  readonly #cache = new Map<string, Int32Array>();

  constructor(
    readonly model: TwoTowerModel,
    readonly tokenizer: TextTokenizer,
    readonly options: EmbedOptions,
  ) {}

  /** [N, D] float32 embeddings (`model.embed`: unit-norm for the cosine head), in the order of `texts`. */
  embed(side: Side, inputType: string, texts: readonly string[]): Tensor {
    const maxLength = side === 'query' ? this.options.maxLength.query : this.options.maxLength.doc;
    const ids = this.#encode(texts.map((t) => this.model.prompt(inputType, t)), maxLength);
    const order = ids.map((_, i) => i).sort((a, b) => ids[a]!.length - ids[b]!.length || a - b);
    const wasTraining = this.model.training;
    this.model.eval();
    try {
      return tidy(() =>
        noGrad(() => {
          const parts: Tensor[] = [];
          for (let start = 0; start < order.length; start += this.options.batchSize) {
            const rows = order.slice(start, start + this.options.batchSize);
            parts.push(
              keep(
                tidy(() => {
                  const batch = padToTensors(rows.map((r) => ids[r]!), this.tokenizer.padId, this.options.device);
                  const run = (): Tensor => this.model.embed(side, batch).float();
                  return this.options.precision === 'bf16' ? autocast(run, { device: this.options.device, dtype: 'bfloat16' }) : run();
                }),
              ),
            );
          }
          if (parts.length === 0) return fromTypedArray(new Float32Array(0), { shape: [0, this.model.config.encoder.hiddenSize] });
          const sorted = cat(parts, 0);
          for (const p of parts) p.dispose();
          // Row k of `sorted` is text order[k]: scatter back with the inverse permutation.
          const inverse = new BigInt64Array(order.length);
          order.forEach((original, k) => (inverse[original] = BigInt(k)));
          return sorted.indexSelect(0, fromTypedArray(inverse, { shape: [order.length] }));
        }),
      );
    } finally {
      this.model.train(wasTraining);
    }
  }

  /** Token ids, cached per (text, length): evaluation embeds the same corpus every time. */
  #encode(texts: readonly string[], maxLength: number): Int32Array[] {
    const key = (t: string): string => `${maxLength}\u0000${t}`;
    const missing = [...new Set(texts.filter((t) => !this.#cache.has(key(t))))];
    const encoded = this.tokenizer.encodeBatch(missing, maxLength);
    missing.forEach((t, i) => this.#cache.set(key(t), encoded[i]!));
    return texts.map((t) => this.#cache.get(key(t))!);
  }

  /** The head's score of aligned rows (STS pairs). */
  pairScores(a: Tensor, b: Tensor): Float32Array {
    return tidy(() => noGrad(() => this.model.head.pairs(a, b).float().toTypedArray<'float32'>() as Float32Array));
  }

  /** A scorer over precomputed query and corpus embeddings (the caller owns and disposes both). */
  scorer(queries: Tensor, corpus: Tensor): RetrievalScorer {
    return {
      scoreRows: (start, end) =>
        tidy(() => noGrad(() => this.model.head.matrix(queries.narrow(0, start, end - start), corpus).float().contiguous().toTypedArray<'float32'>() as Float32Array)),
    };
  }
}

/**
 * Embeds texts of several input types, each type with its own prompt, and returns the rows in
 * the order given (an ANCE negative pool mixes occupations and skills).
 */
export function embedTyped(embedder: Pick<ModelEmbedder, 'embed'>, side: Side, types: readonly string[], texts: readonly string[]): Tensor {
  const distinct = [...new Set(types)];
  if (distinct.length === 1) return embedder.embed(side, distinct[0]!, texts);
  return tidy(() => {
    const rowOf = new Int32Array(texts.length);
    const parts: Tensor[] = [];
    let row = 0;
    for (const type of distinct) {
      const members = types.flatMap((t, i) => (t === type ? [i] : []));
      parts.push(embedder.embed(side, type, members.map((i) => texts[i]!)));
      for (const i of members) rowOf[i] = row++;
    }
    const order = BigInt64Array.from(rowOf, (r) => BigInt(r));
    return cat(parts, 0).indexSelect(0, fromTypedArray(order, { shape: [order.length] }));
  });
}

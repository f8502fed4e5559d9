/**
 * Cross-encoder: both texts go through one encoder together, `[CLS] query [SEP] doc [SEP]`
 * with segment ids 0/1, so every query token attends to every document token; a linear layer
 * turns the pooled vector into one relevance logit (Nogueira & Cho 2019, "Passage Re-ranking
 * with BERT", arXiv 1901.04085; sentence-transformers' CrossEncoder).
 *
 *   s(q, d) = wᵀ pool(BERT([CLS] q [SEP] d [SEP])) + b      (σ(s) is the probability of relevance)
 *
 * Slower than a two-tower model (no precomputed document vectors) and more accurate: the
 * teacher JUDE distils into its dual encoder. Parameters: `encoder.*` (Hugging Face BERT names)
 * and `classifier.{weight,bias}`.
 */
import { Module, Linear } from '../engine/nn/index.js';
import type { Tensor } from '../engine/index.js';
import { BertEncoder } from './bert.js';
import { pool } from './pooling.js';
import type { EncoderConfig, PoolingMode } from './config.js';

export interface CrossEncoderConfig {
  encoder: EncoderConfig;
  /** BERT's sequence classifiers read [CLS]: 'cls' is the usual choice. */
  pooling: PoolingMode;
}

/** A padded batch of text pairs: int64 [B, L] ids, 0/1 mask and segment ids. */
export interface EncodedPairBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  tokenTypeIds: Tensor;
}

export class CrossEncoderModel extends Module {
  readonly encoder: BertEncoder;
  readonly classifier: Linear;

  constructor(readonly config: CrossEncoderConfig) {
    super();
    this.encoder = this.registerModule('encoder', new BertEncoder(config.encoder));
    this.classifier = this.registerModule('classifier', new Linear(config.encoder.hiddenSize, 1, { initStd: config.encoder.initStd }));
  }

  /** Relevance logits [B]. */
  score(batch: EncodedPairBatch): Tensor {
    const hidden = this.encoder.forward(batch.inputIds, batch.attentionMask, batch.tokenTypeIds);
    return this.classifier.forward(pool(this.config.pooling, hidden, batch.attentionMask)).squeeze(-1);
  }
}

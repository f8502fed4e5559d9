/**
 * BERT's masked language model: the encoder plus a prediction head whose output layer is the
 * word embedding matrix itself (weight tying, Press & Wolf 2017; Devlin et al. 2019,
 * arXiv 1810.04805, as in Hugging Face's `BertForMaskedLM`).
 *
 *   h      = BERT(x)[positions]                        [N, H], only the N predicted positions
 *   t      = LayerNorm(GELU(h W_t + b_t))              (cls.predictions.transform)
 *   logits = t Eᵀ + b                                  [N, V], E = embeddings.word_embeddings.weight
 *
 * Predicting only at the chosen positions (15% of tokens) skips 85% of the [·, V] output
 * matmul, the largest one in the model for a 30k vocabulary. Parameter names are Hugging Face's
 * with `bert.` read as `encoder.`: `encoder.embeddings.*`, `encoder.encoder.layer.N.*`,
 * `cls.predictions.transform.*`, `cls.predictions.bias`. The tied decoder is registered as
 * `cls.predictions.decoder.weight` too, and `namedParameters` lists the shared tensor once,
 * under its embedding name, so the optimizer updates it once per step.
 */
import { Module, Linear, LayerNorm } from '../engine/nn/index.js';
import { linear } from '../engine/functional.js';
import { zeros, type Tensor } from '../engine/index.js';
import { BertEncoder } from './bert.js';
import type { EncoderConfig } from './config.js';
import type { EncodedBatch } from './two-tower.js';

export interface MaskedLmConfig {
  encoder: EncoderConfig;
}

class PredictionTransform extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;

  constructor(config: EncoderConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hiddenSize, config.hiddenSize, { initStd: config.initStd }));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm([config.hiddenSize], config.layerNormEps));
  }

  forward(hidden: Tensor): Tensor {
    return this.layerNorm.forward(this.dense.forward(hidden).gelu());
  }
}

/** The output layer, holding the word embedding matrix as its (tied) weight. */
class TiedDecoder extends Module {
  constructor(readonly weight: Tensor) {
    super();
    this.registerParameter('weight', weight);
  }
}

class PredictionHead extends Module {
  readonly transform: PredictionTransform;
  readonly decoder: TiedDecoder;
  readonly bias: Tensor;

  constructor(config: EncoderConfig, wordEmbeddings: Tensor) {
    super();
    this.transform = this.registerModule('transform', new PredictionTransform(config));
    this.decoder = this.registerModule('decoder', new TiedDecoder(wordEmbeddings));
    this.bias = this.registerParameter('bias', zeros([config.vocabSize]))!;
  }

  forward(hidden: Tensor): Tensor {
    return linear(this.transform.forward(hidden), this.decoder.weight, this.bias);
  }
}

class PretrainingHeads extends Module {
  readonly predictions: PredictionHead;

  constructor(config: EncoderConfig, wordEmbeddings: Tensor) {
    super();
    this.predictions = this.registerModule('predictions', new PredictionHead(config, wordEmbeddings));
  }
}

export class MaskedLanguageModel extends Module {
  readonly encoder: BertEncoder;
  readonly cls: PretrainingHeads;

  constructor(readonly config: MaskedLmConfig) {
    super();
    this.encoder = this.registerModule('encoder', new BertEncoder(config.encoder));
    this.cls = this.registerModule('cls', new PretrainingHeads(config.encoder, this.encoder.embeddings.wordEmbeddings.weight));
  }

  /**
   * Vocabulary logits [N, V] at `positions`: int64 [N] indices into the flattened [B·L] tokens
   * of `batch` (row-major, so position b·L + t is token t of sequence b).
   */
  predict(batch: EncodedBatch, positions: Tensor): Tensor {
    const hidden = this.encoder.forward(batch.inputIds, batch.attentionMask);
    const [b, l, h] = hidden.shape as [number, number, number];
    return this.cls.predictions.forward(hidden.reshape(b * l, h).indexSelect(0, positions));
  }
}

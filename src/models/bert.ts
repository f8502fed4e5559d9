/**
 * A BERT-architecture text encoder (Devlin et al. 2019, "BERT: Pre-training of Deep
 * Bidirectional Transformers", arXiv 1810.04805; Vaswani et al. 2017 for the layer).
 *
 *   h₀ = LayerNorm(E_token[x] + E_pos[0..L) + E_type[0]) → dropout
 *   per layer (post-LN):
 *     a = softmax(Q Kᵀ / √d_head + mask) V, per head, Q/K/V = h Wq/Wk/Wv
 *     h = LayerNorm(h + dropout(a Wo))
 *     h = LayerNorm(h + dropout(GELU(h W₁) W₂))
 *
 * Parameter names follow Hugging Face's `BertModel` (`embeddings.word_embeddings.weight`,
 * `encoder.layer.0.attention.self.query.weight`, …) so a checkpoint imports by name. The
 * padding mask is additive (−1e9 at padded keys) and computed once per forward.
 */
import { Module, Linear, LayerNorm, Embedding, Dropout } from '../engine/nn/index.js';
import { arange, tidy, type Tensor } from '../engine/index.js';
import type { EncoderConfig } from './config.js';

class BertEmbeddings extends Module {
  readonly wordEmbeddings: Embedding;
  readonly positionEmbeddings: Embedding;
  readonly tokenTypeEmbeddings: Embedding;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(config: EncoderConfig) {
    super();
    const init = { initStd: config.initStd };
    this.wordEmbeddings = this.registerModule('word_embeddings', new Embedding(config.vocabSize, config.hiddenSize, { ...init, paddingIdx: config.padId }));
    this.positionEmbeddings = this.registerModule('position_embeddings', new Embedding(config.maxPositions, config.hiddenSize, init));
    this.tokenTypeEmbeddings = this.registerModule('token_type_embeddings', new Embedding(config.typeVocabSize, config.hiddenSize, init));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm([config.hiddenSize], config.layerNormEps));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropout));
  }

  /**
   * inputIds: int64 [B, L] → [B, L, H]. Without `tokenTypeIds` every token is segment 0 (a
   * single text); a cross-encoder passes its pair's segment ids (0 for the first text, 1 for the second).
   */
  forward(inputIds: Tensor, tokenTypeIds?: Tensor): Tensor {
    const seqLen = inputIds.shape[1]!;
    const positions = arange(0, seqLen, 1, { dtype: 'int64', device: inputIds.device });
    const segments = tokenTypeIds === undefined ? this.tokenTypeEmbeddings.weight.select(0, 0) /* [H], broadcast */ : this.tokenTypeEmbeddings.forward(tokenTypeIds);
    const summed = this.wordEmbeddings.forward(inputIds).add(this.positionEmbeddings.forward(positions)).add(segments);
    return this.dropout.forward(this.layerNorm.forward(summed));
  }
}

class BertSelfAttention extends Module {
  readonly query: Linear;
  readonly key: Linear;
  readonly value: Linear;
  readonly dropout: Dropout;
  readonly headDim: number;

  constructor(private readonly config: EncoderConfig) {
    super();
    if (config.hiddenSize % config.numHeads !== 0) {
      throw new Error(`hidden size ${config.hiddenSize} is not divisible by the number of heads ${config.numHeads}`);
    }
    this.headDim = config.hiddenSize / config.numHeads;
    const init = { initStd: config.initStd };
    this.query = this.registerModule('query', new Linear(config.hiddenSize, config.hiddenSize, init));
    this.key = this.registerModule('key', new Linear(config.hiddenSize, config.hiddenSize, init));
    this.value = this.registerModule('value', new Linear(config.hiddenSize, config.hiddenSize, init));
    this.dropout = this.registerModule('dropout', new Dropout(config.attentionDropout));
  }

  /** [B, L, H] → [B, heads, L, d_head] */
  private splitHeads(x: Tensor): Tensor {
    const [batch, seqLen] = x.shape as [number, number, number];
    return x.view(batch, seqLen, this.config.numHeads, this.headDim).permute(0, 2, 1, 3);
  }

  /** hidden [B, L, H], maskBias [B, 1, 1, L] (0 or −1e9) → context [B, L, H]; `attentions` collects the probabilities [B, heads, L, L] (before dropout). */
  forward(hidden: Tensor, maskBias: Tensor, attentions?: Tensor[]): Tensor {
    const [batch, seqLen] = hidden.shape as [number, number, number];
    const q = this.splitHeads(this.query.forward(hidden));
    const k = this.splitHeads(this.key.forward(hidden));
    const v = this.splitHeads(this.value.forward(hidden));
    const scores = q.matmul(k.transpose(-1, -2)).mul(1 / Math.sqrt(this.headDim)).add(maskBias);
    const attention = scores.softmax(-1);
    attentions?.push(attention);
    const context = this.dropout.forward(attention).matmul(v); // [B, heads, L, d_head]
    return context.permute(0, 2, 1, 3).reshape(batch, seqLen, this.config.hiddenSize);
  }
}

/** A projection back to the hidden size, dropout, residual and LayerNorm (BertSelfOutput / BertOutput). */
class BertResidualOutput extends Module {
  readonly dense: Linear;
  readonly layerNorm: LayerNorm;
  readonly dropout: Dropout;

  constructor(config: EncoderConfig, inFeatures: number) {
    super();
    this.dense = this.registerModule('dense', new Linear(inFeatures, config.hiddenSize, { initStd: config.initStd }));
    this.layerNorm = this.registerModule('LayerNorm', new LayerNorm([config.hiddenSize], config.layerNormEps));
    this.dropout = this.registerModule('dropout', new Dropout(config.hiddenDropout));
  }

  forward(x: Tensor, residual: Tensor): Tensor {
    return this.layerNorm.forward(this.dropout.forward(this.dense.forward(x)).add(residual));
  }
}

class BertAttention extends Module {
  readonly self: BertSelfAttention;
  readonly output: BertResidualOutput;

  constructor(config: EncoderConfig) {
    super();
    this.self = this.registerModule('self', new BertSelfAttention(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.hiddenSize));
  }

  forward(hidden: Tensor, maskBias: Tensor, attentions?: Tensor[]): Tensor {
    return this.output.forward(this.self.forward(hidden, maskBias, attentions), hidden);
  }
}

class BertIntermediate extends Module {
  readonly dense: Linear;

  constructor(config: EncoderConfig) {
    super();
    this.dense = this.registerModule('dense', new Linear(config.hiddenSize, config.intermediateSize, { initStd: config.initStd }));
  }

  forward(hidden: Tensor): Tensor {
    return this.dense.forward(hidden).gelu();
  }
}

class BertLayer extends Module {
  readonly attention: BertAttention;
  readonly intermediate: BertIntermediate;
  readonly output: BertResidualOutput;

  constructor(config: EncoderConfig) {
    super();
    this.attention = this.registerModule('attention', new BertAttention(config));
    this.intermediate = this.registerModule('intermediate', new BertIntermediate(config));
    this.output = this.registerModule('output', new BertResidualOutput(config, config.intermediateSize));
  }

  forward(hidden: Tensor, maskBias: Tensor, attentions?: Tensor[]): Tensor {
    const attended = this.attention.forward(hidden, maskBias, attentions);
    return this.output.forward(this.intermediate.forward(attended), attended);
  }
}

/** Per-layer outputs collected by `BertEncoder.forward`: L + 1 hidden states [B, T, H] and L attention maps [B, heads, T, T]. */
export interface EncoderStates {
  hidden: Tensor[];
  attentions: Tensor[];
}

class BertLayerStack extends Module {
  readonly layers: BertLayer[] = [];

  constructor(config: EncoderConfig) {
    super();
    const container = this.registerModule('layer', new ModuleList());
    for (let i = 0; i < config.numLayers; i++) this.layers.push(container.add(new BertLayer(config)));
  }

  forward(hidden: Tensor, maskBias: Tensor, states?: EncoderStates): Tensor {
    let h = hidden;
    states?.hidden.push(h);
    // Each layer's temporaries are released as soon as the layer is done (autograd keeps what
    // backward needs), as PyTorch's reference counting would: a smaller working set measured
    // 15-20% faster than holding every layer's temporaries until the step's scope ends.
    for (const layer of this.layers) {
      const input = h;
      if (states === undefined) {
        h = tidy(() => layer.forward(input, maskBias));
      } else {
        const out = tidy(() => {
          const attentions: Tensor[] = [];
          return { hidden: layer.forward(input, maskBias, attentions), attention: attentions[0]! };
        });
        h = out.hidden;
        states.hidden.push(h);
        states.attentions.push(out.attention);
      }
    }
    return h;
  }
}

/** Children named 0, 1, 2, … (torch.nn.ModuleList), for Hugging Face's `encoder.layer.N.` names. */
export class ModuleList extends Module {
  #count = 0;

  add<M extends Module>(module: M): M {
    return this.registerModule(String(this.#count++), module);
  }
}

export class BertEncoder extends Module {
  readonly embeddings: BertEmbeddings;
  readonly encoder: BertLayerStack;

  constructor(readonly config: EncoderConfig) {
    super();
    this.embeddings = this.registerModule('embeddings', new BertEmbeddings(config));
    this.encoder = this.registerModule('encoder', new BertLayerStack(config));
  }

  /**
   * inputIds int64 [B, L], attentionMask [B, L] (1 = token, 0 = padding), optional segment ids
   * [B, L] → hidden states [B, L, H]. `states`, when given, collects every layer's output
   * (index 0 = the embeddings' output, as Hugging Face's `output_hidden_states`) and attention
   * probabilities (`output_attentions`), for layer-wise distillation.
   */
  forward(inputIds: Tensor, attentionMask: Tensor, tokenTypeIds?: Tensor, states?: EncoderStates): Tensor {
    const seqLen = inputIds.shape[1]!;
    if (seqLen > this.config.maxPositions) {
      throw new Error(`sequence length ${seqLen} exceeds the encoder's ${this.config.maxPositions} positions`);
    }
    // 0 where attended, −1e9 at padding; [B, 1, 1, L] broadcasts over heads and query positions.
    const maskBias = attentionMask.float().rsub(1).mul(-1e9).unsqueeze(1).unsqueeze(1);
    return this.encoder.forward(this.embeddings.forward(inputIds, tokenTypeIds), maskBias, states);
  }

  override extraRepr(): string {
    const c = this.config;
    return `vocab=${c.vocabSize}, hidden=${c.hiddenSize}, layers=${c.numLayers}, heads=${c.numHeads}, ffn=${c.intermediateSize}`;
  }
}

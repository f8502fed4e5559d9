/**
 * What `kiln export` does per model kind: the graphs it emits, the card fields that describe
 * them, and how parity compares the exported outputs with the eager model. `buildExport` and
 * `checkParity` look the kind up here instead of switching on it; a kind absent from this
 * registry (a masked LM) has no serving graph.
 *
 *   two-tower      (input_ids, attention_mask) → embedding [batch, H]; one graph for shared
 *                  towers, query.onnx and doc.onnx for separate ones; parity per vector
 *                  (max |Δ|, cosine)
 *   cross-encoder  (input_ids, attention_mask, token_type_ids) → score [batch], a logit;
 *                  parity on the logits
 */
import { tidy } from '../engine/index.js';
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import { ModelEmbedder } from '../eval/embedder.js';
import { CrossEncoderScorer } from '../eval/rerank.js';
import type { CrossEncoderModel, EncoderConfig, TwoTowerModel } from '../models/index.js';
import type { ExportedModel } from '../serve/exported-model.js';
import { OnnxGraphBuilder } from './onnx-graph.js';
import { emitBertEncoder, emitL2Normalize, emitLinear, emitMaskFloat, emitPooling, type EncoderGraphOptions } from './bert-graph.js';
import type { ModelCard } from './card.js';

/** A run's model that has a serving graph. */
export type ExportableModel = { kind: 'two-tower'; model: TwoTowerModel; maxLength: { query: number; doc: number } } | { kind: 'cross-encoder'; model: CrossEncoderModel; maxLength: { pair: number } };
export type ExportableKind = ExportableModel['kind'];

/** Texts to run through both models: per side for embeddings, as pairs for scores. */
export interface ParityInputs {
  query?: { inputType: string; texts: readonly string[] };
  doc?: { inputType: string; texts: readonly string[] };
  pairs?: ReadonlyArray<readonly [string, string]>;
}

/** Running comparison of eager and exported outputs. */
export interface ParityStats {
  maxAbs: number;
  /** Cosine of each output vector with its eager counterpart (empty for scalar outputs). */
  cosines: number[];
  outputs: number;
}

/** The card fields every kind shares (ModelCard minus its kind-specific part). */
type KindCardFields = { [K in ModelCard['kind']]: Omit<Extract<ModelCard, { kind: K }>, keyof BaseCard> };
type BaseCard = Omit<Extract<ModelCard, { kind: 'two-tower' }>, 'kind' | 'encoder' | 'pooling' | 'towers' | 'head' | 'normalized' | 'dimension' | 'prompts' | 'maxLength' | 'graphs'>;

export interface ExportKind<K extends ExportableKind> {
  /** Each graph file and its builder. */
  graphs(exportable: Extract<ExportableModel, { kind: K }>, options: GraphOptions): Array<[file: string, graph: OnnxGraphBuilder]>;
  /** The card's kind-specific fields (graphs named by role). */
  card(exportable: Extract<ExportableModel, { kind: K }>): KindCardFields[K];
  /** Runs both models on the inputs and accumulates the differences. */
  compare(exportable: Extract<ExportableModel, { kind: K }>, exported: ExportedModel, tokenizer: WordPieceTokenizer, inputs: ParityInputs, stats: ParityStats): Promise<void>;
  /** The int8 tolerance: what passes, in words. */
  int8: { passed(stats: ParityStats, minCosine: number): boolean; criterion: string };
}

/** What a graph is built with: the opset, the quantisation and the operator set. */
export type GraphOptions = { opset: number } & EncoderGraphOptions;

export const INT8_MIN_COSINE = 0.99;
/** A cross-encoder's int8 score has no vector to take a cosine of: its tolerance is on the logit. */
export const INT8_MAX_LOGIT_DIFF = 0.1;

function encoderCardFields(encoder: EncoderConfig): ModelCard['encoder'] {
  const { vocabSize, hiddenSize, numLayers, numHeads, intermediateSize, maxPositions, typeVocabSize, layerNormEps, padId } = encoder;
  return { vocabSize, hiddenSize, numLayers, numHeads, intermediateSize, maxPositions, typeVocabSize, layerNormEps, padId };
}

/**
 * What a tower's graph outputs:
 *   embedding          (input_ids, attention_mask) → embedding [batch, H], pooled and passed
 *                      through the head's `embed` (Kiln's own format, run by `kiln embed`/`serve`)
 *   last_hidden_state  (input_ids, attention_mask, token_type_ids) → last_hidden_state
 *                      [batch, sequence, H], the encoder's output before pooling: Hugging Face
 *                      BertModel's ONNX signature, which transformers.js feature extraction runs
 *                      and then pools itself
 */
export type TowerGraphOutput = 'embedding' | 'last_hidden_state';

/** One tower's graph (see TowerGraphOutput). */
export function twoTowerGraph(model: TwoTowerModel, side: 'query' | 'doc', options: GraphOptions, output: TowerGraphOutput = 'embedding'): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder(options.opset);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  // Hugging Face's signature takes segment ids (all 0 for one text, as Kiln's towers assume).
  const tokenTypeIds = output === 'last_hidden_state' ? g.input('token_type_ids', 'int64', ['batch', 'sequence']) : undefined;
  const encoder = side === 'query' ? model.queryEncoder : model.docEncoder;
  const prefix = model.config.towers === 'shared' ? 'encoder' : `${side}_encoder`;
  const maskFloat = emitMaskFloat(g, attentionMask);
  const hidden = emitBertEncoder(g, encoder, { inputIds, attentionMask, tokenTypeIds }, maskFloat, prefix, options);
  if (output === 'last_hidden_state') {
    g.output(hidden, 'last_hidden_state', 'float32', ['batch', 'sequence', model.config.encoder.hiddenSize]);
    return g;
  }
  const pooled = emitPooling(g, model.config.pooling, hidden, maskFloat, inputIds);
  // The head's `embed`: the cosine head stores unit vectors; dot and Hadamard-MLP heads store the pooled vector.
  const embedding = model.config.head.type === 'cosine' ? emitL2Normalize(g, pooled) : pooled;
  g.output(embedding, 'embedding', 'float32', ['batch', model.config.encoder.hiddenSize]);
  return g;
}

/** (input_ids, attention_mask, token_type_ids) → score [batch] (a logit). */
function crossEncoderGraph(model: CrossEncoderModel, options: GraphOptions): OnnxGraphBuilder {
  const g = new OnnxGraphBuilder(options.opset);
  const inputIds = g.input('input_ids', 'int64', ['batch', 'sequence']);
  const attentionMask = g.input('attention_mask', 'int64', ['batch', 'sequence']);
  const tokenTypeIds = g.input('token_type_ids', 'int64', ['batch', 'sequence']);
  const maskFloat = emitMaskFloat(g, attentionMask);
  const hidden = emitBertEncoder(g, model.encoder, { inputIds, attentionMask, tokenTypeIds }, maskFloat, 'encoder', options);
  const pooled = emitPooling(g, model.config.pooling, hidden, maskFloat, inputIds);
  // The one-column classifier stays fp32 even in int8 graphs: it is H weights, and the score's last layer.
  const logits = g.scoped('classifier', () => emitLinear(g, pooled, model.classifier, 'classifier', 'none'));
  g.output(g.squeeze(logits, [1]), 'score', 'float32', ['batch']);
  return g;
}

function compareRows(expected: Float32Array, actual: readonly Float32Array[], stats: ParityStats): void {
  const width = actual[0]?.length ?? 0;
  actual.forEach((row, i) => {
    let dot = 0;
    let ne = 0;
    let na = 0;
    for (let j = 0; j < width; j++) {
      const e = expected[i * width + j]!;
      const a = row[j]!;
      stats.maxAbs = Math.max(stats.maxAbs, Math.abs(e - a));
      dot += e * a;
      ne += e * e;
      na += a * a;
    }
    stats.cosines.push(ne === 0 && na === 0 ? 1 : dot / Math.sqrt(ne * na));
    stats.outputs++;
  });
}

export const EXPORT_KINDS: { [K in ExportableKind]: ExportKind<K> } = {
  'two-tower': {
    graphs: ({ model }, options) =>
      model.config.towers === 'shared'
        ? [['model.onnx', twoTowerGraph(model, 'doc', options)]]
        : [
            ['query.onnx', twoTowerGraph(model, 'query', options)],
            ['doc.onnx', twoTowerGraph(model, 'doc', options)],
          ],
    card: ({ model, maxLength }) => ({
      kind: 'two-tower',
      encoder: encoderCardFields(model.config.encoder),
      pooling: model.config.pooling,
      towers: model.config.towers,
      head: model.config.head.type,
      normalized: model.config.head.type === 'cosine',
      dimension: model.config.encoder.hiddenSize,
      prompts: model.config.prompts,
      maxLength,
      graphs: model.config.towers === 'shared' ? { query: 'model.onnx', doc: 'model.onnx' } : { query: 'query.onnx', doc: 'doc.onnx' },
    }),
    async compare({ model, maxLength }, exported, tokenizer, inputs, stats) {
      const embedder = new ModelEmbedder(model, tokenizer, { maxLength, batchSize: 64, precision: 'fp32', device: 'cpu' });
      for (const side of ['query', 'doc'] as const) {
        const input = inputs[side];
        if (input === undefined || input.texts.length === 0) continue;
        const expected = tidy(() => (embedder.embed(side, input.inputType, input.texts).contiguous().toTypedArray<'float32'>() as Float32Array).slice());
        compareRows(expected, await exported.embed(input.texts, { side, inputType: input.inputType }), stats);
      }
    },
    int8: { passed: (_stats, minCosine) => minCosine >= INT8_MIN_COSINE, criterion: `cosine ≥ ${INT8_MIN_COSINE} per vector` },
  },
  'cross-encoder': {
    graphs: ({ model }, options) => [['model.onnx', crossEncoderGraph(model, options)]],
    card: ({ model, maxLength }) => ({ kind: 'cross-encoder', encoder: encoderCardFields(model.config.encoder), pooling: model.config.pooling, maxLength, graphs: { score: 'model.onnx' } }),
    async compare({ model, maxLength }, exported, tokenizer, inputs, stats) {
      const pairs = inputs.pairs ?? [];
      const scorer = new CrossEncoderScorer(model, tokenizer, { maxLength: maxLength.pair, batchSize: 64, precision: 'fp32', device: 'cpu' });
      const expected = scorer.scorePairs(pairs.map(([a]) => a), pairs.map(([, b]) => b));
      for (let start = 0; start < pairs.length; start += 64) {
        const actual = await exported.score(pairs.slice(start, start + 64));
        actual.forEach((value, i) => (stats.maxAbs = Math.max(stats.maxAbs, Math.abs(expected[start + i]! - value))));
      }
      stats.outputs += pairs.length;
    },
    int8: { passed: (stats) => stats.maxAbs <= INT8_MAX_LOGIT_DIFF, criterion: `max |Δ logit| ≤ ${INT8_MAX_LOGIT_DIFF}` },
  },
};

/** The registry entry of an exportable model, typed for it. */
export function exportKindOf<M extends ExportableModel>(exportable: M): ExportKind<M['kind']> {
  return EXPORT_KINDS[exportable.kind] as unknown as ExportKind<M['kind']>;
}

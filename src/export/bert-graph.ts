/**
 * ONNX graphs of Kiln's models, emitted from the modules' own weights: the BERT encoder
 * (src/models/bert.ts), pooling (src/models/pooling.ts), the two-tower embedding (pooled, then
 * the head's `embed`: L2 normalisation for the cosine head) and the cross-encoder's score.
 * Each emitter mirrors the eager forward pass line by line, so parity is by construction and
 * checked by test against onnxruntime (max |Δ| ≤ 1e-4 in fp32):
 *
 *   embeddings   Gather(word, ids) + Gather(position, 0..L−1) + segment → LayerNorm
 *   mask bias    (1 − mask)·(−1e9), [B, 1, 1, L]
 *   attention    softmax(Q Kᵀ/√d + bias) V per head; Reshape/Transpose split and merge heads
 *   FFN          GELU(x W₁ + b₁) W₂ + b₂ with GELU(x) = x·½(1 + erf(x/√2)) (the Gelu op from opset 20)
 *   LayerNorm    LayerNormalization from opset 17; before it, (x − μ)/√(σ² + ε)·γ + β
 *
 * Dropout is absent (inference). Without token types (a single text), the position table and
 * segment 0's row are summed into one initializer, saving an Add per forward.
 *
 * `operators: 'onnxruntime'` writes the same computation in onnxruntime's fused contrib
 * operators (domain com.microsoft, the ones its transformer optimiser produces; spec:
 * onnxruntime docs/ContribOperators.md), which its core optimiser cannot form itself while the
 * sequence axis is dynamic:
 *
 *   EmbedLayerNormalization  the three gathers, their sum and the LayerNorm (int32 ids)
 *   Attention                Q, K, V from one packed [H, 3H] product, softmax(QKᵀ/√d + mask) V
 *                            with the raw 0/1 mask [B, L] (masked scores filled with −10000)
 *   SkipLayerNormalization   LayerNorm(x + residual + bias) after each sub-layer
 *   BiasGelu                 GELU(x + b₁), the exact (erf) GELU
 *
 * int8 keeps its quantised Q/K/V and word-embedding paths unfused and fuses the rest.
 * `operators: 'onnx'` keeps to standard operators, for runtimes other than onnxruntime.
 *
 * int8 (`quantize: 'int8'`) is dynamic quantisation in the manner of onnxruntime's
 * `quantize_dynamic`: every Linear becomes DynamicQuantizeLinear(x) → MatMulInteger with
 * int8 weights (symmetric, one scale per output column) → Cast → × (scale_x · scale_w) + b,
 * and the word-embedding table is stored as int8 with one scale per row. Attention's
 * activation-by-activation products stay in fp32. (ONNX operators: DynamicQuantizeLinear,
 * MatMulInteger; Jacob et al. 2018, "Quantization and Training of Neural Networks for
 * Efficient Integer-Arithmetic-Only Inference", arXiv 1712.05877.)
 */
import { tidy, type Tensor } from '../engine/index.js';
import type { BertEncoder } from '../models/bert.js';
import type { PoolingMode } from '../models/config.js';
import type { Linear, LayerNorm } from '../engine/nn/index.js';
import type { OnnxGraphBuilder } from './onnx-graph.js';

export type Quantization = 'none' | 'int8';

/**
 * Which operators a graph is written in: `onnx`, the standard operator set only (any runtime);
 * `onnxruntime`, onnxruntime's fused contrib operators where they apply (the header).
 */
export const GRAPH_OPERATORS = ['onnx', 'onnxruntime'] as const;
export type GraphOperators = (typeof GRAPH_OPERATORS)[number];

export interface EncoderGraphOptions {
  quantize: Quantization;
  operators: GraphOperators;
}

export interface GraphInputs {
  inputIds: string;
  attentionMask: string;
  tokenTypeIds?: string;
}

/** A copy of a float tensor's values (row-major). */
export function floatValues(t: Tensor): Float32Array {
  return tidy(() => (t.float().contiguous().toTypedArray<'float32'>() as Float32Array).slice());
}

/** Symmetric int8 with one scale per column of a row-major [rows, cols] matrix: W ≈ q · scale[col]. */
export function quantizeColumns(values: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(cols);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) scale[c] = Math.max(scale[c]!, Math.abs(values[r * cols + c]!));
  for (let c = 0; c < cols; c++) scale[c] = scale[c]! > 0 ? scale[c]! / 127 : 1;
  const q = new Int8Array(values.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) q[r * cols + c] = Math.round(values[r * cols + c]! / scale[c]!);
  return { q, scale };
}

/** Symmetric int8 with one scale per row: W ≈ q · scale[row] (an embedding table, read by row). */
export function quantizeRows(values: Float32Array, rows: number, cols: number): { q: Int8Array; scale: Float32Array } {
  const scale = new Float32Array(rows);
  const q = new Int8Array(values.length);
  for (let r = 0; r < rows; r++) {
    let max = 0;
    for (let c = 0; c < cols; c++) max = Math.max(max, Math.abs(values[r * cols + c]!));
    const s = max > 0 ? max / 127 : 1;
    scale[r] = s;
    for (let c = 0; c < cols; c++) q[r * cols + c] = Math.round(values[r * cols + c]! / s);
  }
  return { q, scale };
}

/** y = x Wᵀ + b for a Linear module (weight [out, in]); `name` prefixes its initializers. */
export function emitLinear(g: OnnxGraphBuilder, x: string, linear: Linear, name: string, quantize: Quantization): string {
  const y = emitLinearProduct(g, x, linear, name, quantize);
  const bias = emitLinearBias(g, linear, name);
  return bias === null ? y : g.op('Add', [y, bias]);
}

/** A Linear's bias as an initializer (null without one): a fused operator adds it itself. */
function emitLinearBias(g: OnnxGraphBuilder, linear: Linear, name: string): string | null {
  const bias = linear.bias;
  return bias === undefined || bias === null ? null : g.initializer(`${name}.bias`, floatValues(bias), [bias.shape[0]!]);
}

/** x Wᵀ without the bias (fp32 MatMul, or the int8 product dequantised). */
function emitLinearProduct(g: OnnxGraphBuilder, x: string, linear: Linear, name: string, quantize: Quantization): string {
  const [outFeatures, inFeatures] = linear.weight.shape as [number, number];
  const weightT = tidy(() => floatValues(linear.weight.transpose(0, 1))); // [in, out] for MatMul
  let y: string;
  if (quantize === 'int8') {
    const { q, scale } = quantizeColumns(weightT, inFeatures, outFeatures);
    const wq = g.initializer(`${name}.weight_quantized`, q, [inFeatures, outFeatures]);
    const ws = g.initializer(`${name}.weight_scale`, scale, [outFeatures]);
    const [xq, xScale, xZero] = g.node('DynamicQuantizeLinear', [x], {}, 3) as [string, string, string];
    const accumulated = g.op('MatMulInteger', [xq, wq, xZero]);
    y = g.op('Mul', [g.op('Cast', [accumulated], { to: 1 /* FLOAT */ }), g.op('Mul', [xScale, ws])]);
  } else {
    y = g.op('MatMul', [x, g.initializer(`${name}.weight`, weightT, [inFeatures, outFeatures])]);
  }
  return y;
}

/**
 * LayerNorm(x + skip + bias) in one onnxruntime SkipLayerNormalization: the residual add, the
 * Linear's bias and the norm of a BERT sub-layer's output.
 */
function emitSkipLayerNorm(g: OnnxGraphBuilder, x: string, skip: string, bias: string | null, norm: LayerNorm, eps: number, name: string): string {
  const width = norm.weight!.shape[0]!;
  const gamma = g.initializer(`${name}.weight`, floatValues(norm.weight!), [width]);
  const beta = g.initializer(`${name}.bias`, floatValues(norm.bias!), [width]);
  return g.contrib('SkipLayerNormalization', [x, skip, gamma, beta, ...(bias === null ? [] : [bias])], { epsilon: { float: eps } })[0]!;
}

export function emitLayerNorm(g: OnnxGraphBuilder, x: string, norm: LayerNorm, eps: number, name: string): string {
  const width = norm.weight!.shape[0]!;
  const gamma = g.initializer(`${name}.weight`, floatValues(norm.weight!), [width]);
  const beta = g.initializer(`${name}.bias`, floatValues(norm.bias!), [width]);
  if (g.opset >= 17) return g.op('LayerNormalization', [x, gamma, beta], { axis: -1, epsilon: { float: eps } });
  const centred = g.op('Sub', [x, g.reduce('ReduceMean', x, [-1], true)]);
  const variance = g.reduce('ReduceMean', g.op('Mul', [centred, centred]), [-1], true);
  const normalised = g.op('Div', [centred, g.op('Sqrt', [g.op('Add', [variance, g.scalarFloat(eps)])])]);
  return g.op('Add', [g.op('Mul', [normalised, gamma]), beta]);
}

/**
 * Exact GELU. Below opset 20 it is spelled Div → Erf → Add(1) → Mul(x) → Mul(0.5), the order
 * onnxruntime's GeluFusion recognises, so the session runs one Gelu kernel instead of five ops.
 */
function emitGelu(g: OnnxGraphBuilder, x: string): string {
  if (g.opset >= 20) return g.op('Gelu', [x]);
  const erf = g.op('Erf', [g.op('Div', [x, g.scalarFloat(Math.SQRT2)])]);
  return g.op('Mul', [g.op('Mul', [x, g.op('Add', [erf, g.scalarFloat(1)])]), g.scalarFloat(0.5)]);
}

/** The float 0/1 mask [B, L] (shared by attention and pooling). */
export function emitMaskFloat(g: OnnxGraphBuilder, attentionMask: string): string {
  return g.op('Cast', [attentionMask], { to: 1 /* FLOAT */ });
}

/**
 * The encoder's hidden states [B, L, H]. `prefix` names the initializers after the module's
 * parameters (`encoder.embeddings.word_embeddings.weight`, …).
 */
export function emitBertEncoder(g: OnnxGraphBuilder, encoder: BertEncoder, inputs: GraphInputs, maskFloat: string, prefix: string, options: EncoderGraphOptions): string {
  const { quantize } = options;
  const fused = options.operators === 'onnxruntime';
  // The embeddings and attention fuse only in fp32: int8 keeps its quantised tables and products.
  const fusedFp32 = fused && quantize === 'none';
  const config = encoder.config;
  const emb = encoder.embeddings;
  const hidden = config.hiddenSize;
  const eps = config.layerNormEps;
  const p = (name: string): string => `${prefix}.${name}`;

  let h = g.scoped(p('embeddings'), () => {
    const positionValues = floatValues(emb.positionEmbeddings.weight);
    const typeValues = floatValues(emb.tokenTypeEmbeddings.weight);
    // Single text: segment 0 everywhere, folded into the position table.
    const folded = (): string => g.initializer(p('embeddings.position_plus_segment0'), positionValues.map((v, i) => v + typeValues[i % hidden]!), [config.maxPositions, hidden]);
    if (fusedFp32) {
      // Gathers, sums and normalises in one EmbedLayerNormalization (positions 0..L−1 by default).
      const int32 = (x: string): string => g.op('Cast', [x], { to: 6 /* INT32 */ });
      const words = g.initializer(p('embeddings.word_embeddings.weight'), floatValues(emb.wordEmbeddings.weight), [config.vocabSize, hidden]);
      const gamma = g.initializer(p('embeddings.LayerNorm.weight'), floatValues(emb.layerNorm.weight!), [hidden]);
      const beta = g.initializer(p('embeddings.LayerNorm.bias'), floatValues(emb.layerNorm.bias!), [hidden]);
      const segments =
        inputs.tokenTypeIds === undefined
          ? { ids: '', positions: folded(), table: '' }
          : {
              ids: int32(inputs.tokenTypeIds),
              positions: g.initializer(p('embeddings.position_embeddings.weight'), positionValues, [config.maxPositions, hidden]),
              table: g.initializer(p('embeddings.token_type_embeddings.weight'), typeValues, [config.typeVocabSize, hidden]),
            };
      return g.contrib('EmbedLayerNormalization', [int32(inputs.inputIds), segments.ids, words, segments.positions, segments.table, gamma, beta], { epsilon: { float: eps } }, 2)[0]!;
    }
    // Word pieces.
    let words: string;
    if (quantize === 'int8') {
      const { q, scale } = quantizeRows(floatValues(emb.wordEmbeddings.weight), config.vocabSize, hidden);
      const table = g.initializer(p('embeddings.word_embeddings.weight_quantized'), q, [config.vocabSize, hidden]);
      const scales = g.initializer(p('embeddings.word_embeddings.weight_scale'), scale, [config.vocabSize, 1]);
      const rows = g.op('Cast', [g.op('Gather', [table, inputs.inputIds], { axis: 0 })], { to: 1 });
      words = g.op('Mul', [rows, g.op('Gather', [scales, inputs.inputIds], { axis: 0 })]);
    } else {
      words = g.op('Gather', [g.initializer(p('embeddings.word_embeddings.weight'), floatValues(emb.wordEmbeddings.weight), [config.vocabSize, hidden]), inputs.inputIds], { axis: 0 });
    }
    // Positions 0..L−1, L read from the input's shape at run time.
    const seqLen = g.op('Gather', [g.op('Shape', [inputs.inputIds]), g.scalarInt64(1)], { axis: 0 });
    const positions = g.op('Range', [g.scalarInt64(0), seqLen, g.scalarInt64(1)]);
    let summed: string;
    if (inputs.tokenTypeIds === undefined) {
      summed = g.op('Add', [words, g.op('Gather', [folded(), positions], { axis: 0 })]);
    } else {
      const positionTable = g.initializer(p('embeddings.position_embeddings.weight'), positionValues, [config.maxPositions, hidden]);
      const typeTable = g.initializer(p('embeddings.token_type_embeddings.weight'), typeValues, [config.typeVocabSize, hidden]);
      const withPositions = g.op('Add', [words, g.op('Gather', [positionTable, positions], { axis: 0 })]);
      summed = g.op('Add', [withPositions, g.op('Gather', [typeTable, inputs.tokenTypeIds], { axis: 0 })]);
    }
    return emitLayerNorm(g, summed, emb.layerNorm, eps, p('embeddings.LayerNorm'));
  });

  const headDim = hidden / config.numHeads;
  // Standard operators: (1 − mask)·(−1e9) as [B, 1, 1, L], added to every head's scores.
  // onnxruntime's Attention takes the raw 0/1 mask [B, L] as int32 instead (it fills −10000).
  const mask = g.scoped(p('mask'), () =>
    fusedFp32
      ? g.op('Cast', [inputs.attentionMask], { to: 6 /* INT32 */ })
      : g.unsqueeze(g.op('Mul', [g.op('Sub', [g.scalarFloat(1), maskFloat]), g.scalarFloat(-1e9)]), [1, 2]),
  );

  encoder.encoder.layers.forEach((layer, index) => {
    const name = p(`encoder.layer.${index}`);
    h = g.scoped(name, () => {
      const self = layer.attention.self;
      let merged: string;
      if (fusedFp32) {
        // Q, K and V projections packed into one [H, 3H] product inside Attention.
        const columns = [self.query, self.key, self.value].map((linear) => tidy(() => floatValues(linear.weight.transpose(0, 1))));
        const packed = new Float32Array(hidden * 3 * hidden);
        for (let r = 0; r < hidden; r++) columns.forEach((w, part) => packed.set(w.subarray(r * hidden, (r + 1) * hidden), (3 * r + part) * hidden));
        const weights = g.initializer(`${name}.attention.self.qkv.weight`, packed, [hidden, 3 * hidden]);
        const biases = [self.query, self.key, self.value].map((linear) => (linear.bias === undefined || linear.bias === null ? new Float32Array(hidden) : floatValues(linear.bias)));
        const bias = g.initializer(`${name}.attention.self.qkv.bias`, Float32Array.from(biases.flatMap((b) => [...b])), [3 * hidden]);
        merged = g.contrib('Attention', [h, weights, bias, mask], { num_heads: config.numHeads })[0]!;
      } else {
        // Constants are shared across layers (the builder keeps one of each).
        const splitShape = g.int64s([0, 0, config.numHeads, headDim]);
        const mergeShape = g.int64s([0, 0, hidden]);
        const scale = g.scalarFloat(1 / Math.sqrt(headDim));
        const heads = (x: string, perm: number[]): string => g.op('Transpose', [g.op('Reshape', [x, splitShape])], { perm });
        const q = heads(emitLinear(g, h, self.query, `${name}.attention.self.query`, quantize), [0, 2, 1, 3]); // [B, h, L, d]
        const kT = heads(emitLinear(g, h, self.key, `${name}.attention.self.key`, quantize), [0, 2, 3, 1]); // [B, h, d, L]
        const v = heads(emitLinear(g, h, self.value, `${name}.attention.self.value`, quantize), [0, 2, 1, 3]);
        const scores = g.op('Add', [g.op('Mul', [g.op('MatMul', [q, kT]), scale]), mask]);
        const context = g.op('MatMul', [g.op('Softmax', [scores], { axis: -1 }), v]);
        merged = g.op('Reshape', [g.op('Transpose', [context], { perm: [0, 2, 1, 3] }), mergeShape]);
      }
      const attentionOut = layer.attention.output;
      const outputName = `${name}.attention.output`;
      if (!fused) {
        const projected = emitLinear(g, merged, attentionOut.dense, `${outputName}.dense`, quantize);
        const attended = emitLayerNorm(g, g.op('Add', [projected, h]), attentionOut.layerNorm, eps, `${outputName}.LayerNorm`);
        const inner = emitGelu(g, emitLinear(g, attended, layer.intermediate.dense, `${name}.intermediate.dense`, quantize));
        const outer = emitLinear(g, inner, layer.output.dense, `${name}.output.dense`, quantize);
        return emitLayerNorm(g, g.op('Add', [outer, attended]), layer.output.layerNorm, eps, `${name}.output.LayerNorm`);
      }
      // Each sub-layer's bias, residual and LayerNorm in one SkipLayerNormalization; the FFN's
      // bias and GELU in one BiasGelu.
      const projected = emitLinearProduct(g, merged, attentionOut.dense, `${outputName}.dense`, quantize);
      const attended = emitSkipLayerNorm(g, projected, h, emitLinearBias(g, attentionOut.dense, `${outputName}.dense`), attentionOut.layerNorm, eps, `${outputName}.LayerNorm`);
      const intermediate = layer.intermediate.dense;
      const innerProduct = emitLinearProduct(g, attended, intermediate, `${name}.intermediate.dense`, quantize);
      const innerBias = emitLinearBias(g, intermediate, `${name}.intermediate.dense`);
      const inner = innerBias === null ? emitGelu(g, innerProduct) : g.contrib('BiasGelu', [innerProduct, innerBias])[0]!;
      const outer = emitLinearProduct(g, inner, layer.output.dense, `${name}.output.dense`, quantize);
      return emitSkipLayerNorm(g, outer, attended, emitLinearBias(g, layer.output.dense, `${name}.output.dense`), layer.output.layerNorm, eps, `${name}.output.LayerNorm`);
    });
  });
  return h;
}

/** Pooled vectors [B, H], as src/models/pooling.ts computes them. */
export function emitPooling(g: OnnxGraphBuilder, mode: PoolingMode, hidden: string, maskFloat: string, inputIds: string): string {
  return g.scoped(`pooling.${mode}`, () => {
    if (mode === 'cls') return g.op('Gather', [hidden, g.scalarInt64(0)], { axis: 1 });
    if (mode === 'mean') {
      const mask = g.unsqueeze(maskFloat, [2]); // [B, L, 1]
      const summed = g.reduce('ReduceSum', g.op('Mul', [hidden, mask]), [1], false); // [B, H]
      const counts = g.op('Max', [g.reduce('ReduceSum', mask, [1], false), g.scalarFloat(1)]); // [B, 1]
      return g.op('Div', [summed, counts]);
    }
    // last: the token at index max(Σ mask − 1, 0), selected with a one-hot row.
    const lastIndex = g.op('Max', [g.op('Sub', [g.reduce('ReduceSum', maskFloat, [1], true), g.scalarFloat(1)]), g.scalarFloat(0)]); // [B, 1]
    const seqLen = g.op('Gather', [g.op('Shape', [inputIds]), g.scalarInt64(1)], { axis: 0 });
    const positions = g.op('Cast', [g.op('Range', [g.scalarInt64(0), seqLen, g.scalarInt64(1)])], { to: 1 }); // [L]
    const oneHot = g.op('Cast', [g.op('Equal', [g.unsqueeze(positions, [0]), lastIndex])], { to: 1 }); // [B, L]
    return g.reduce('ReduceSum', g.op('Mul', [hidden, g.unsqueeze(oneHot, [2])]), [1], false);
  });
}

/** x / max(‖x‖₂, 1e-12) along the last axis (torch.nn.functional.normalize). */
export function emitL2Normalize(g: OnnxGraphBuilder, x: string): string {
  return g.scoped('normalize', () => g.op('Div', [x, g.op('Max', [g.reduce('ReduceL2', x, [-1], true), g.scalarFloat(1e-12)])]));
}

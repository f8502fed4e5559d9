/**
 * Parity of an exported model with Kiln's eager forward pass on the same texts: the largest
 * absolute difference of any output value, and the cosine of each output vector with its
 * eager counterpart. fp32 exports must agree to 1e-4 (float rounding of a different operator
 * order); int8 exports to a cosine of 0.99 per vector (quantisation error).
 */
import { fromTypedArray, noGrad, tidy } from '../engine/index.js';
import { padBatch } from '../data/batch.js';
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import { ModelEmbedder } from '../eval/embedder.js';
import type { ExportedModel } from '../serve/exported-model.js';
import type { ExportableModel } from './export.js';

export const FP32_MAX_ABS_DIFF = 1e-4;
export const INT8_MIN_COSINE = 0.99;

export interface ParityInputs {
  /** Two-tower: texts per side, with the input type whose prompt applies. */
  query?: { inputType: string; texts: readonly string[] };
  doc?: { inputType: string; texts: readonly string[] };
  /** Cross-encoder: (query, doc) pairs. */
  pairs?: ReadonlyArray<readonly [string, string]>;
}

export interface ParityReport {
  outputs: number;
  maxAbsDiff: number;
  /** Smallest cosine between an exported vector and the eager one (two-tower only; 1 for scores). */
  minCosine: number;
  meanCosine: number;
  quantization: 'none' | 'int8';
  passed: boolean;
  /** What was required, in words. */
  criterion: string;
}

function compareRows(expected: Float32Array, actual: readonly Float32Array[], width: number, stats: { maxAbs: number; cosines: number[] }): void {
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
  });
}

/** Runs the eager model (fp32, eval mode) and the exported one on `inputs` and compares them. */
export async function checkParity(exportable: ExportableModel, exported: ExportedModel, tokenizer: WordPieceTokenizer, inputs: ParityInputs): Promise<ParityReport> {
  const stats = { maxAbs: 0, cosines: [] as number[] };
  if (exportable.kind === 'two-tower') {
    const embedder = new ModelEmbedder(exportable.model, tokenizer, { maxLength: exportable.maxLength, batchSize: 64, precision: 'fp32', device: 'cpu' });
    for (const side of ['query', 'doc'] as const) {
      const input = inputs[side];
      if (input === undefined || input.texts.length === 0) continue;
      const expected = tidy(() => (embedder.embed(side, input.inputType, input.texts).contiguous().toTypedArray<'float32'>() as Float32Array).slice());
      const actual = await exported.embed(input.texts, { side, inputType: input.inputType });
      compareRows(expected, actual, exported.dimension, stats);
    }
  } else {
    const pairs = inputs.pairs ?? [];
    const model = exportable.model;
    const wasTraining = model.training;
    model.eval();
    try {
      for (let start = 0; start < pairs.length; start += 64) {
        const chunk = pairs.slice(start, start + 64);
        const encoded = chunk.map(([a, b]) => tokenizer.encodePair(a, b, exportable.maxLength.pair));
        const ids = padBatch(encoded.map((e) => e.ids), { padId: tokenizer.padId, padTo: 'longest' });
        const types = padBatch(encoded.map((e) => e.typeIds), { padId: 0, padTo: ids.seqLen });
        const shape = [ids.batchSize, ids.seqLen];
        const expected = tidy(() =>
          noGrad(() => {
            const scores = model.score({
              inputIds: fromTypedArray(ids.inputIds, { shape }).to('int64'),
              attentionMask: fromTypedArray(ids.attentionMask, { shape }).to('int64'),
              tokenTypeIds: fromTypedArray(types.inputIds, { shape }).to('int64'),
            });
            return (scores.float().contiguous().toTypedArray<'float32'>() as Float32Array).slice();
          }),
        );
        const actual = await exported.score(chunk);
        for (let i = 0; i < chunk.length; i++) stats.maxAbs = Math.max(stats.maxAbs, Math.abs(expected[i]! - actual[i]!));
      }
    } finally {
      model.train(wasTraining);
    }
  }
  const outputs = exportable.kind === 'two-tower' ? stats.cosines.length : (inputs.pairs ?? []).length;
  const minCosine = stats.cosines.length === 0 ? 1 : Math.min(...stats.cosines);
  const meanCosine = stats.cosines.length === 0 ? 1 : stats.cosines.reduce((a, b) => a + b, 0) / stats.cosines.length;
  const quantization = exported.card.quantization;
  // A cross-encoder's int8 score has no vector to take a cosine of: its tolerance is on the logit.
  const passed = quantization === 'none' ? stats.maxAbs <= FP32_MAX_ABS_DIFF : exportable.kind === 'two-tower' ? minCosine >= INT8_MIN_COSINE : stats.maxAbs <= 0.1;
  const criterion = quantization === 'none' ? `max |Δ| ≤ ${FP32_MAX_ABS_DIFF}` : exportable.kind === 'two-tower' ? `cosine ≥ ${INT8_MIN_COSINE} per vector` : 'max |Δ logit| ≤ 0.1';
  return { outputs, maxAbsDiff: stats.maxAbs, minCosine, meanCosine, quantization, passed, criterion };
}

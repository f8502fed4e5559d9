/**
 * Parity of an exported model with Kiln's eager forward pass on the same texts: the largest
 * absolute difference of any output value, and the cosine of each output vector with its
 * eager counterpart. fp32 exports must agree to 1e-4 (float rounding of a different operator
 * order); int8 exports to a cosine of 0.99 per vector (quantisation error).
 */
import type { WordPieceTokenizer } from '../data/tokenizer.js';
import type { ExportedModel } from '../serve/exported-model.js';
import { exportKindOf, type ExportableModel, type ParityInputs, type ParityStats } from './kinds.js';

export const FP32_MAX_ABS_DIFF = 1e-4;
export { INT8_MIN_COSINE, type ParityInputs } from './kinds.js';

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

/** Runs the eager model (fp32, eval mode) and the exported one on `inputs` and compares them. */
export async function checkParity(exportable: ExportableModel, exported: ExportedModel, tokenizer: WordPieceTokenizer, inputs: ParityInputs): Promise<ParityReport> {
  const stats: ParityStats = { maxAbs: 0, cosines: [], outputs: 0 };
  const kind = exportKindOf(exportable);
  await kind.compare(exportable as never, exported, tokenizer, inputs, stats);
  const minCosine = stats.cosines.length === 0 ? 1 : Math.min(...stats.cosines);
  const meanCosine = stats.cosines.length === 0 ? 1 : stats.cosines.reduce((a, b) => a + b, 0) / stats.cosines.length;
  const quantization = exported.card.quantization;
  const passed = quantization === 'none' ? stats.maxAbs <= FP32_MAX_ABS_DIFF : kind.int8.passed(stats, minCosine);
  const criterion = quantization === 'none' ? `max |Δ| ≤ ${FP32_MAX_ABS_DIFF}` : kind.int8.criterion;
  return { outputs: stats.outputs, maxAbsDiff: stats.maxAbs, minCosine, meanCosine, quantization, passed, criterion };
}

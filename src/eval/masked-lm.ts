/**
 * Held-out masked-language-model metrics: the MLM loss and masked-token accuracy on sequences
 * that training never sees, masked once with a fixed seed so every evaluation of a run (and of
 * runs with the same seed) predicts the same tokens.
 *
 *   mlm_loss      = −(1/N) Σ_i log softmax(z_i)[y_i]       over all N chosen positions
 *   mlm_accuracy  = (1/N) Σ_i [argmax z_i = y_i]
 *
 * (Devlin et al. 2019, arXiv:1810.04805, report masked LM accuracy the same way, appendix C.1.)
 */
import { autocast, crossEntropy, fromTypedArray, noGrad, tidy, type Tensor } from '../engine/index.js';
import { IGNORE_INDEX, maskTokens, type MaskOptions } from '../data/mlm.js';
import { Rng } from '../data/rng.js';
import { padToTensors, type MaskedLanguageModel } from '../models/index.js';

export interface MaskedHeldOut {
  /** The masked inputs, one per sequence. */
  inputIds: Int32Array[];
  labels: Int32Array[];
  padId: number;
}

/** Masks the held-out sequences once, from `Rng.derive(seed, 'mlm-heldout-mask')`. */
export function maskHeldOut(sequences: readonly Int32Array[], mask: MaskOptions, seed: number): MaskedHeldOut {
  const rng = Rng.derive(seed, 'mlm-heldout-mask');
  const masked = sequences.map((s) => maskTokens(s, mask, rng));
  return { inputIds: masked.map((m) => m.inputIds), labels: masked.map((m) => m.labels), padId: mask.padId };
}

export function evaluateMaskedLm(
  model: MaskedLanguageModel,
  heldOut: MaskedHeldOut,
  options: { batchSize: number; precision: 'fp32' | 'bf16'; device: 'cpu' | 'cuda' },
): { mlm_loss: number; mlm_accuracy: number } {
  let lossSum = 0;
  let correct = 0;
  let count = 0;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let start = 0; start < heldOut.inputIds.length; start += options.batchSize) {
      const rows = heldOut.inputIds.slice(start, start + options.batchSize);
      const labelRows = heldOut.labels.slice(start, start + options.batchSize);
      tidy(() =>
        noGrad(() => {
          const batch = padToTensors(rows, heldOut.padId, options.device);
          const width = batch.inputIds.shape[1]!;
          const positions: bigint[] = [];
          const labels: bigint[] = [];
          labelRows.forEach((row, r) => row.forEach((label, t) => {
            if (label !== IGNORE_INDEX) {
              positions.push(BigInt(r * width + t));
              labels.push(BigInt(label));
            }
          }));
          if (positions.length === 0) return;
          const pos = fromTypedArray(BigInt64Array.from(positions), { shape: [positions.length], device: options.device });
          const target = fromTypedArray(BigInt64Array.from(labels), { shape: [labels.length], device: options.device });
          const run = (): Tensor => model.predict(batch, pos).float();
          const logits = options.precision === 'bf16' ? autocast(run, { device: options.device, dtype: 'bfloat16' }) : run();
          lossSum += crossEntropy(logits, target, { reduction: 'sum' }).item();
          correct += logits.argmax(-1).eq(target).sum().item();
          count += labels.length;
        }),
      );
    }
  } finally {
    model.train(wasTraining);
  }
  if (count === 0) throw new Error('the held-out MLM slice has no masked tokens');
  return { mlm_loss: lossSum / count, mlm_accuracy: correct / count };
}

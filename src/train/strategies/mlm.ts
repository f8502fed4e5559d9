/**
 * The masked-language-model strategy: a micro-batch of B packed sequences (src/data/mlm.ts)
 * is masked BERT's way and the model predicts the original tokens at the chosen positions.
 *
 *   x          B packed sequences [CLS] d₁ [SEP] d₂ [SEP] …, L = max_length tokens
 *   x̃, y       maskTokens(x): 15% of tokens chosen; 80% [MASK], 10% random, 10% kept
 *   positions  flat indices b·L + t where y ≠ −100
 *   loss       masked_lm(model.predict(x̃, positions), y[positions])
 *
 * The masking of step s, batch slice k is drawn from Rng.derive(seed, `mlm:s:k`), a pure
 * function of the step: a resumed run masks exactly as the uninterrupted one, with nothing but
 * the batch position in the checkpoint.
 */
import { fromTypedArray, noGrad, tidy, type Tensor } from '../../engine/index.js';
import { IGNORE_INDEX, maskTokens, type MaskOptions } from '../../data/mlm.js';
import { Rng } from '../../data/rng.js';
import type { BatchSource } from '../../data/step-slices.js';
import { padToTensors, type MaskedLanguageModel } from '../../models/index.js';
import type { WeightedLoss } from '../../losses/index.js';
import type { StepContext, StepOutput, TrainStrategy } from '../strategy.js';

/** Seeded epochs over N items: a fresh permutation per epoch, resumable from {epoch, position}. */
export class ShuffledBatches {
  #epoch = 0;
  #position = 0;
  #order: Int32Array;

  constructor(
    readonly size: number,
    readonly batchSize: number,
    readonly seed: number,
  ) {
    if (size < batchSize) throw new Error(`${size} training sequences cannot fill one batch of ${batchSize}`);
    this.#order = this.#permutation(0);
  }

  #permutation(epoch: number): Int32Array {
    return Rng.derive(this.seed, `shuffled-batches:${epoch}`).permutation(this.size);
  }

  /** The next batch's item indices; every batch is full (the epoch's remainder is dropped). */
  next(): Int32Array {
    if (this.#position + this.batchSize > this.size) {
      this.#epoch++;
      this.#position = 0;
      this.#order = this.#permutation(this.#epoch);
    }
    const items = this.#order.slice(this.#position, this.#position + this.batchSize);
    this.#position += this.batchSize;
    return items;
  }

  state(): { epoch: number; position: number; size: number } {
    return { epoch: this.#epoch, position: this.#position, size: this.size };
  }

  restore(state: unknown): void {
    const s = state as { epoch: number; position: number; size: number };
    if (s.size !== this.size) throw new Error(`the checkpoint was taken over ${s.size} training sequences; this corpus has ${this.size} (resume with the same data)`);
    this.#epoch = s.epoch;
    this.#position = s.position;
    this.#order = this.#permutation(s.epoch);
  }
}

/** One masked batch as tensors: inputs, flat positions to predict and their labels. */
export interface MaskedBatch {
  inputIds: Tensor;
  attentionMask: Tensor;
  positions: Tensor;
  labels: Tensor;
  tokens: number;
}

/** Masks each sequence with `rng` and builds the tensors (inside the caller's scope). */
export function maskBatch(sequences: readonly Int32Array[], mask: MaskOptions, rng: Rng, device: 'cpu' | 'cuda'): MaskedBatch {
  const masked = sequences.map((seq) => maskTokens(seq, mask, rng));
  const { inputIds, attentionMask } = padToTensors(
    masked.map((m) => m.inputIds),
    mask.padId,
    device,
  );
  const width = inputIds.shape[1]!;
  const positions: number[] = [];
  const labels: number[] = [];
  masked.forEach((m, row) => {
    m.labels.forEach((label, t) => {
      if (label !== IGNORE_INDEX) {
        positions.push(row * width + t);
        labels.push(label);
      }
    });
  });
  return {
    inputIds,
    attentionMask,
    positions: fromTypedArray(BigInt64Array.from(positions, BigInt), { shape: [positions.length], device }),
    labels: fromTypedArray(BigInt64Array.from(labels, BigInt), { shape: [labels.length], device }),
    tokens: inputIds.numel,
  };
}

export interface MlmStrategyOptions {
  model: MaskedLanguageModel;
  loss: WeightedLoss;
  sequences: readonly Int32Array[];
  batches: BatchSource;
  mask: MaskOptions;
  seed: number;
  device: 'cpu' | 'cuda';
}

export class MlmStrategy implements TrainStrategy {
  readonly modules;

  constructor(private readonly o: MlmStrategyOptions) {
    this.modules = [
      { name: 'model', module: o.model },
      { name: 'loss', module: o.loss },
    ];
  }

  step(context: StepContext): StepOutput {
    const items = this.o.batches.next();
    const rng = Rng.derive(this.o.seed, `mlm:${context.step}:${context.slice}`);
    const batch = maskBatch([...items].map((i) => this.o.sequences[i]!), this.o.mask, rng, this.o.device);
    const logits = this.o.model.predict(batch, batch.positions);
    const { total, parts } = this.o.loss.forward({ tokens: { logits, labels: batch.labels } });
    const logs: Record<string, number> = {};
    for (const [name, value] of Object.entries(parts)) logs[`loss_${name}`] = value.item();
    logs.mlm_accuracy = noGrad(() => tidy(() => logits.argmax(-1).eq(batch.labels).float().mean().item()));
    logs.masked_tokens = batch.positions.numel / items.length;
    return { loss: total, logs, examples: items.length, tokens: batch.tokens };
  }

  state(): unknown {
    return { batches: this.o.batches.state() };
  }

  restore(state: unknown): void {
    this.o.batches.restore((state as { batches: unknown }).batches);
  }

  dispose(): void {}
}

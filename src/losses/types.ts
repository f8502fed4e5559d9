/**
 * The inputs of Kiln's training losses, and the base classes they share.
 *
 * A strategy hands the losses a `LossInputs`: whatever its task produces. Each loss declares
 * the one input it reads (`static input`), as sentence-transformers splits its losses into
 * those computed from scores and those computed from embeddings; the config loader checks that
 * a run's task provides every input its losses declare, so a mismatch is a config error, not a
 * crash at step 0.
 *
 *   scores  a `ScoredBatch`: every query scored against every candidate (the two-tower
 *           strategy's [B, C] matrix of positives and mined negatives; a cross-encoder's
 *           [B, 1+k] logits of each query's positive and its k negatives)
 *   tokens  a `TokenPredictionBatch`: vocabulary logits at the masked positions (MLM)
 *
 * Losses see tensors only, never models or datasets, so the same loss serves a cosine head, a
 * dot product or a pair classifier's logit.
 */
import { Module } from '../engine/nn/index.js';
import type { Tensor } from '../engine/tensor.js';
import type { DType, Device } from '../engine/dtype.js';

export interface ScoredBatch {
  /**
   * [B, C] raw pair scores from the interaction head (cosine in [-1,1], dot, or an MLP logit)
   * of query i vs candidate j. Candidates 0..B-1 are the batch's positive docs (query i's
   * positive is column i unless `positiveIndex` says otherwise); columns B..C-1 are mined hard
   * negatives.
   */
  scores: Tensor;
  /** Optional [B] int64 tensor: column of query i's positive (default arange(B)). */
  positiveIndex?: Tensor;
  /**
   * Optional [B, C] bool: true where candidate j is a false negative for query i (e.g. same
   * ESCO concept as i's positive but not the positive itself). Excluded from every loss term.
   * A true flag on a query's own positive is ignored: the positive is always scored.
   */
  exclude?: Tensor;
  /** Optional [B, C] float teacher scores (probabilities in [0,1]) — for distillation and as the VP key. */
  teacher?: Tensor;
  /** Optional group id per query row (e.g. concept/type index), for VP predicates. */
  groups?: Int32Array;
}

/** Vocabulary logits at the positions a masked language model predicts, and the true tokens. */
export interface TokenPredictionBatch {
  /** [N, V] logits over the vocabulary at the N predicted positions. */
  logits: Tensor;
  /** [N] int64 token ids to predict; −100 marks a position to ignore. */
  labels: Tensor;
}

/** Everything a strategy can hand the losses; each loss reads the one field it declares. */
export interface LossInputs {
  scores?: ScoredBatch;
  tokens?: TokenPredictionBatch;
}

export type LossInputName = keyof LossInputs;
export const LOSS_INPUT_NAMES = ['scores', 'tokens'] as const satisfies readonly LossInputName[];

/** Where a loss creates its learnable parameters (default float32 on the CPU, as `nn.Linear`). */
export interface LossFactoryOptions {
  dtype?: DType;
  device?: Device;
}

/**
 * A loss over a `ScoredBatch`. It is a `Module` so that learnable pieces (a temperature, a
 * logit scale) are registered parameters: they reach the optimizer through `parameters()` and
 * are saved with the run through `stateDict()`.
 *
 * `forward` returns a 0-d tensor in the compute dtype (float64 for float64 scores, float32
 * otherwise) on the scores' device. It is created in the caller's innermost `tidy` scope like
 * any other op result; the loss's own temporaries are released before it returns.
 */
export abstract class ScoredLoss extends Module {
  static readonly input = 'scores' satisfies LossInputName;
  abstract forward(batch: ScoredBatch): Tensor;
}

/** A loss over predicted tokens (`TokenPredictionBatch`); same ownership rules as `ScoredLoss`. */
export abstract class TokenLoss extends Module {
  static readonly input = 'tokens' satisfies LossInputName;
  abstract forward(batch: TokenPredictionBatch): Tensor;
}

/** Any loss: a module whose forward turns its declared input into a 0-d tensor. */
export type AnyLoss = ScoredLoss | TokenLoss;

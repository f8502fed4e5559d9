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
 *   embeddings      an `EmbeddingDistillBatch`: student and teacher embeddings of the same texts
 *   teacher_scores  a `DistillScoreBatch`: student and teacher scores of the same pairs
 *   layers          a `LayerDistillBatch`: mapped hidden states and attention maps
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
   * Optional [B] float tensor in [0, 1]: the target of query i's positive column (scored pairs:
   * a label 0 pair is a known non-match). Default 1. Only losses with `gradedTargets` read it;
   * the config loader keeps the others away from scored data.
   */
  positiveTarget?: Tensor;
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

/** A student's and a teacher's pooled embeddings of the same N texts (distillation). */
export interface EmbeddingDistillBatch {
  /** [N, Hs] the student's embeddings; gradients flow into them. */
  student: Tensor;
  /** [N, Ht] the teacher's embeddings of the same texts, in the same order: constants. */
  teacher: Tensor;
}

/**
 * The same query–candidate pairs scored by the student and by the teacher (distillation): an
 * in-batch similarity matrix for a bi-encoder teacher, or each query's positive and its k mined
 * candidates for a cross-encoder teacher.
 */
export interface DistillScoreBatch {
  /** [B, C] the student's scores; gradients flow into them. */
  student: Tensor;
  /** [B, C] the teacher's scores of the same pairs: constants. */
  teacher: Tensor;
  /** Optional [B] int64: column of row i's positive (default: column 0). */
  positiveIndex?: Tensor;
  /** Optional [B, C] bool: candidates left out of every term (a false negative of the same concept). */
  exclude?: Tensor;
}

/** The student's and the teacher's per-layer outputs on the same tokens, through a layer map (distillation). */
export interface LayerDistillBatch {
  /** Mapped pairs: studentHidden[p] ↔ teacherHidden[p], [N, L, Hs] and [N, L, Ht] (index 0 of a model = its embedding output). */
  studentHidden: Tensor[];
  teacherHidden: Tensor[];
  /** Mapped pairs of attention probabilities, [N, heads_s, L, L] and [N, heads_t, L, L] (rows sum to 1 over keys). */
  studentAttentions: Tensor[];
  teacherAttentions: Tensor[];
  /** [N, L] 1 = token, 0 = padding: padded positions are left out. */
  mask: Tensor;
}

/** Everything a strategy can hand the losses; each loss reads the one field it declares. */
export interface LossInputs {
  scores?: ScoredBatch;
  tokens?: TokenPredictionBatch;
  embeddings?: EmbeddingDistillBatch;
  teacher_scores?: DistillScoreBatch;
  layers?: LayerDistillBatch;
}

export type LossInputName = keyof LossInputs;
export const LOSS_INPUT_NAMES = ['scores', 'tokens', 'embeddings', 'teacher_scores', 'layers'] as const satisfies readonly LossInputName[];
/** The inputs that carry a teacher's outputs: only a run with a teacher (task: distill, distill.teacher) provides them. */
export const TEACHER_LOSS_INPUTS = ['embeddings', 'teacher_scores', 'layers'] as const satisfies readonly LossInputName[];

/** Where a loss creates its learnable parameters (default float32 on the CPU, as `nn.Linear`), and their sizes. */
export interface LossFactoryOptions {
  dtype?: DType;
  device?: Device;
  /**
   * The student's and the teacher's hidden sizes, for the learned projections of the
   * distillation losses (student → teacher width when they differ). Required by those losses.
   */
  distillDims?: { student: number; teacher: number };
  /** How many layer pairs the layer map has: one projection per pair (hidden_mse). */
  layerPairs?: number;
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

/**
 * A loss over a student's and a teacher's embeddings (`EmbeddingDistillBatch`); same ownership
 * rules as `ScoredLoss`. The teacher's tensors are constants: no gradient reaches them.
 */
export abstract class EmbeddingLoss extends Module {
  static readonly input = 'embeddings' satisfies LossInputName;
  abstract forward(batch: EmbeddingDistillBatch): Tensor;
}

/** A loss over a student's and a teacher's scores of the same pairs (`DistillScoreBatch`); same rules. */
export abstract class DistillScoreLoss extends Module {
  static readonly input = 'teacher_scores' satisfies LossInputName;
  abstract forward(batch: DistillScoreBatch): Tensor;
}

/** A loss over mapped hidden states and attention maps (`LayerDistillBatch`); same rules. */
export abstract class LayerLoss extends Module {
  static readonly input = 'layers' satisfies LossInputName;
  abstract forward(batch: LayerDistillBatch): Tensor;
}

/** Any loss: a module whose forward turns its declared input into a 0-d tensor. */
export type AnyLoss = ScoredLoss | TokenLoss | EmbeddingLoss | DistillScoreLoss | LayerLoss;

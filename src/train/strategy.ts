/**
 * A training strategy turns one micro-batch into a loss. Two-tower, and later cross-encoder,
 * MLM and distillation, are strategies; the loop (loop.ts) never branches on the task.
 *
 * A strategy owns its data stream (so its position can be checkpointed with the weights) and
 * the modules whose parameters are trained: the model, and any loss with learnable
 * parameters (a temperature). A distillation strategy would also hold a frozen teacher.
 */
import type { Tensor } from '../engine/index.js';
import type { Module } from '../engine/nn/index.js';

export interface StepContext {
  /** 0-based optimizer step. */
  step: number;
  /** 0-based micro-batch within the step (gradient accumulation). */
  microStep: number;
  /**
   * Which slice of the step's batch this micro-batch is: rank·grad_accum + microStep
   * (src/data/step-slices.ts). Randomness drawn per micro-batch (masking) is keyed on it, so it
   * does not depend on how the batch is split across processes.
   */
  slice: number;
}

export interface StepOutput {
  /** Scalar loss of this micro-batch, inside the caller's scope. */
  loss: Tensor;
  /** Numbers to log (already plain numbers: no tensors escape). */
  logs: Record<string, number>;
  /** Training examples in the micro-batch (for throughput). */
  examples: number;
  /** Tokens in the micro-batch, padding included. */
  tokens: number;
}

export interface TrainStrategy {
  /** Modules with trainable parameters; their parameters go to the optimizer. */
  readonly modules: Array<{ name: string; module: Module }>;
  /** Runs forward on the next micro-batch and returns its loss (no backward). */
  step(context: StepContext): StepOutput;
  /** Called after each optimizer step (e.g. to refresh mined negatives). */
  afterOptimizerStep?(step: number): void;
  /** Called once before the first step, and on resume (after weights are restored). */
  prepare?(step: number): void;
  /** Data position and other state needed to resume exactly. */
  state(): unknown;
  restore(state: unknown): void;
  dispose(): void;
}

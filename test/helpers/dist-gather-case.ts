/**
 * The case of test/dist.test.ts's differentiable all-gather check, shared by the worker ranks
 * and the single-process reference: four input rows (two per rank), a 2×3 weight, and a loss
 * that couples every row with every other (InfoNCE-like: mean over rows of logsumexp of the
 * row's similarities to all rows, minus its similarity to its partner row), so a gradient that
 * missed another rank's terms would show. A scale on the similarities stands for a parameter
 * used after the gather (a learnt temperature): every rank computes its full gradient.
 */
import type { Tensor } from '../../src/engine/index.js';

export const GATHER_GRAD_INPUTS = [
  [0.5, -1.0],
  [1.5, 0.25],
  [-0.75, 2.0],
  [1.0, 1.0],
];
export const GATHER_GRAD_WEIGHT = [0.3, -0.2, 0.5, 0.1, 0.4, -0.6];
export const GATHER_GRAD_SCALE = 1.7;

/** mean_i logsumexp_j S_ij − mean_i S_i,partner(i), with S = s·E Eᵀ and partners 0↔2, 1↔3 (rows of different ranks). */
export function gatherGradLoss(embeddings: Tensor, scale: Tensor): Tensor {
  const similarities = embeddings.matmul(embeddings.transpose(0, 1)).mul(scale); // [4, 4]
  const at = (i: number, j: number): Tensor => similarities.narrow(0, i, 1).narrow(1, j, 1).sum();
  const positives = at(0, 2).add(at(1, 3)).add(at(2, 0)).add(at(3, 1)).div(4);
  return similarities.logsumexp(1).mean().sub(positives);
}

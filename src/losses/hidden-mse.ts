/**
 * `hidden_mse`: the student's hidden states regress onto the teacher's, layer pair by layer
 * pair, over real tokens only (TinyBERT's hidden-state and embedding-layer losses).
 *
 *   MSE_k = Σ_{(n,l): mask_nl = 1} Σ_{d=1..Ht} (W_k h^s_{k,nl} + b_k − h^t_{k,nl})_d² / (T · Ht)
 *   L     = (1/K) Σ_{k=1..K} MSE_k
 *
 * over the K mapped pairs of the layer map (pair k: the student's hidden states [N, L, Hs] and
 * the teacher's [N, L, Ht]; index 0 of a model may be its embedding output, TinyBERT's eq. 9),
 * T = the number of real tokens (mask = 1) in the batch. Each pair has its own learned
 * projection Linear(Hs, Ht) (`projections.<k>.weight` [Ht, Hs], `projections.<k>.bias` [Ht]),
 * the identity when the sizes are equal and `projection: auto`. Padded positions add nothing
 * and get no gradient. The teacher's hidden states are constants.
 *
 * Needs `LossFactoryOptions.distillDims` (Hs, Ht) and `layerPairs` (K), which fixes the number
 * of projections; a batch with another number of pairs is an error.
 *
 * Inputs (`layers`, a `LayerDistillBatch`; the attention maps are not read):
 *
 *   | field         | shape          | meaning                                        |
 *   |---------------|----------------|------------------------------------------------|
 *   | studentHidden | K × [N, L, Hs] | the student's mapped hidden states (differentiated) |
 *   | teacherHidden | K × [N, L, Ht] | the teacher's, same tokens (constants)         |
 *   | mask          | [N, L]         | 1 = token, 0 = padding                         |
 *
 * Relations: `attention_kl` distils the attention maps of the same layer pairs; `embedding_mse`
 * is this regression on pooled embeddings.
 *
 * Source: X. Jiao et al., "TinyBERT: Distilling BERT for Natural Language Understanding",
 * Findings of EMNLP 2020, arXiv:1909.10351, eq. 8 (hidden states, L_hidn = MSE(H^S W_h, H^T))
 * and eq. 9 (embedding layer); TinyBERT uses one W_h for all layers, here each pair has its own
 * (a pair may be the embedding output, whose statistics differ from the layers').
 *
 * @example
 * const loss = createLoss({ name: 'hidden_mse' }, { distillDims: { student: 128, teacher: 384 }, layerPairs: 3 });
 * const value = tidy(() => loss.forward(layers)); // 3 pairs of [N, L, 128] ↔ [N, L, 384], mask [N, L]
 */
import { z } from 'zod';

import { isFloatingDType } from '../engine/dtype.js';
import { Linear, Module } from '../engine/nn/index.js';
import { tidy } from '../engine/scope.js';
import type { Tensor } from '../engine/tensor.js';
import { cast, computeDType } from './batch.js';
import { applyProjection, constant, distillDimsOf, needsProjection, projectionSchema, tokenMask } from './distill.js';
import { LayerLoss, type LayerDistillBatch, type LossFactoryOptions } from './types.js';

export const hiddenMseOptionsSchema = z
  .object({
    projection: projectionSchema,
  })
  .strict();

export type HiddenMseOptions = z.output<typeof hiddenMseOptionsSchema>;

/** The per-pair projections, registered as children `0`, `1`, … (PyTorch's ModuleList). */
class ProjectionList extends Module {
  constructor(readonly items: readonly Linear[]) {
    super();
    items.forEach((item, k) => this.registerModule(String(k), item));
  }
}

export class HiddenMseLoss extends LayerLoss {
  static readonly lossName = 'hidden_mse';
  static readonly citation = 'Jiao et al. TinyBERT: Distilling BERT for Natural Language Understanding. Findings of EMNLP 2020, arXiv:1909.10351, eq. 8–9 (hidden-state and embedding-layer MSE).';

  /** The student's (Hs) and the teacher's (Ht) hidden sizes. */
  readonly dims: { student: number; teacher: number };
  /** K, the number of mapped layer pairs. */
  readonly pairs: number;
  /** One Linear(Hs, Ht) per pair, or null for the identity. */
  readonly projections: readonly Linear[] | null;

  constructor(
    readonly options: HiddenMseOptions,
    factory: LossFactoryOptions = {},
  ) {
    super();
    const name = HiddenMseLoss.lossName;
    this.dims = distillDimsOf(name, factory);
    const pairs = factory.layerPairs;
    if (pairs === undefined || !Number.isInteger(pairs) || pairs <= 0) {
      throw new Error(`${name} needs the number of mapped layer pairs: pass layerPairs (a positive integer, one projection per pair) when creating the loss, got ${pairs}`);
    }
    this.pairs = pairs;
    if (needsProjection(name, options.projection, this.dims)) {
      const linears = Array.from({ length: pairs }, () => new Linear(this.dims.student, this.dims.teacher, { dtype: factory.dtype, device: factory.device }));
      this.registerModule('projections', new ProjectionList(linears));
      this.projections = linears;
    } else {
      this.projections = null;
    }
  }

  forward(batch: LayerDistillBatch): Tensor {
    const name = HiddenMseLoss.lossName;
    const { studentHidden, teacherHidden } = batch;
    const { student: Hs, teacher: Ht } = this.dims;
    if (studentHidden.length !== this.pairs || teacherHidden.length !== this.pairs) {
      throw new Error(`${name}: expected ${this.pairs} layer pairs (layerPairs), got ${studentHidden.length} student and ${teacherHidden.length} teacher hidden states`);
    }
    const [N, L] = studentHidden[0]!.shape as [number, number];
    studentHidden.forEach((h, k) => {
      if (h.shape.join() !== `${N},${L},${Hs}`) throw new Error(`${name}: studentHidden[${k}] must be [${N}, ${L}, ${Hs}] (texts, tokens, distillDims.student), got [${h.shape.join(', ')}]`);
      if (!isFloatingDType(h.dtype)) throw new Error(`${name}: studentHidden[${k}] must be floating point, got ${h.dtype}`);
    });
    teacherHidden.forEach((h, k) => {
      if (h.shape.join() !== `${N},${L},${Ht}`) throw new Error(`${name}: teacherHidden[${k}] must be [${N}, ${L}, ${Ht}] (texts, tokens, distillDims.teacher), got [${h.shape.join(', ')}]`);
    });
    return tidy(() => {
      const like = studentHidden[0]!;
      const dtype = computeDType(like);
      const padding = tokenMask(name, batch.mask, N, L, like).logicalNot(); // (N, L)
      const denominator = padding.logicalNot().sum().to(dtype).clamp(1).mul(Ht); // T · Ht
      let total: Tensor | null = null;
      for (let k = 0; k < this.pairs; k++) {
        const hs = cast(studentHidden[k]!, dtype, like); // (N, L, Hs)
        const ht = constant(teacherHidden[k]!, dtype, like); // (N, L, Ht)
        const p = this.projections === null ? hs : applyProjection(this.projections[k]!, hs); // (N, L, Ht)
        const perToken = p.sub(ht).square().sum(-1).maskedFill(padding, 0); // (N, L)
        const mse = perToken.sum().div(denominator);
        total = total === null ? mse : total.add(mse);
      }
      return total!.div(this.pairs);
    });
  }

  override extraRepr(): string {
    return `student=${this.dims.student}, teacher=${this.dims.teacher}, pairs=${this.pairs}, projection=${this.projections === null ? 'identity' : 'linear'}`;
  }
}

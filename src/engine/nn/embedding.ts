/**
 * `Embedding`: a lookup table, out[…] = weight[indices[…]] (torch.nn.Embedding).
 * Shape: int64 indices (…) → (…, dim). Initialised from N(0, initStd²) (PyTorch: N(0, 1);
 * BERT: N(0, 0.02²)); the padding row, if any, starts at zero and receives no gradient.
 */
import { Module } from './module.js';
import { empty } from '../create.js';
import { embedding } from '../functional.js';
import { noGrad } from '../grad.js';
import type { Tensor } from '../tensor.js';
import type { DType, Device } from '../dtype.js';

export class Embedding extends Module {
  readonly weight: Tensor;

  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    private readonly options: { paddingIdx?: number; initStd?: number; dtype?: DType; device?: Device } = {},
  ) {
    super();
    this.weight = this.registerParameter('weight', empty([numEmbeddings, embeddingDim], options))!;
    this.resetParameters();
  }

  resetParameters(): void {
    noGrad(() => {
      this.weight.normal_(0, this.options.initStd ?? 1);
      if (this.options.paddingIdx !== undefined) {
        const row = this.weight.select(0, this.options.paddingIdx);
        row.zero_();
        row.dispose();
      }
    });
  }

  forward(indices: Tensor): Tensor {
    return embedding(indices, this.weight, this.options.paddingIdx ?? null);
  }

  override extraRepr(): string {
    return `${this.numEmbeddings}, ${this.embeddingDim}${this.options.paddingIdx !== undefined ? `, paddingIdx=${this.options.paddingIdx}` : ''}`;
  }
}

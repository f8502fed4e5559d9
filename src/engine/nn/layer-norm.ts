/**
 * `LayerNorm`: y = (x − E[x]) / √(Var[x] + ε) · γ + β over the trailing dims
 * (Ba et al. 2016, "Layer Normalization"; torch.nn.LayerNorm). γ starts at 1 and β at 0.
 */
import { Module } from './module.js';
import { empty } from '../create.js';
import { layerNorm } from '../functional.js';
import { noGrad } from '../grad.js';
import type { Tensor } from '../tensor.js';
import type { DType, Device } from '../dtype.js';

export class LayerNorm extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor;
  readonly normalizedShape: number[];

  constructor(normalizedShape: number | number[], readonly eps = 1e-12, options: { dtype?: DType; device?: Device } = {}) {
    super();
    this.normalizedShape = [normalizedShape].flat();
    this.weight = this.registerParameter('weight', empty(this.normalizedShape, options))!;
    this.bias = this.registerParameter('bias', empty(this.normalizedShape, options))!;
    this.resetParameters();
  }

  resetParameters(): void {
    noGrad(() => {
      this.weight.fill_(1);
      this.bias.zero_();
    });
  }

  forward(x: Tensor): Tensor {
    return layerNorm(x, this.normalizedShape, this.weight, this.bias, this.eps);
  }

  override extraRepr(): string {
    return `[${this.normalizedShape.join(', ')}], eps=${this.eps}`;
  }
}

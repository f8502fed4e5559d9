/**
 * `Linear`: y = x Wᵀ + b (torch.nn.Linear).
 *
 * Shape: input (…, inFeatures) → output (…, outFeatures).
 * Attributes: weight (outFeatures, inFeatures) and bias (outFeatures), both initialised from
 * U(−1/√in, 1/√in) with PyTorch's defaults (kaiming_uniform with a=√5 reduces to this bound
 * for the weight), unless `initStd` asks for BERT's N(0, initStd²) with a zero bias.
 */
import { Module } from './module.js';
import { empty } from '../create.js';
import { linear } from '../functional.js';
import { noGrad } from '../grad.js';
import type { Tensor } from '../tensor.js';
import type { DType, Device } from '../dtype.js';

export interface LinearOptions {
  bias?: boolean;
  dtype?: DType;
  device?: Device;
  /** Normal init with this standard deviation (BERT uses 0.02); default is PyTorch's uniform init. */
  initStd?: number;
}

export class Linear extends Module {
  readonly weight: Tensor;
  readonly bias: Tensor | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    private readonly options: LinearOptions = {},
  ) {
    super();
    const factory = { dtype: options.dtype, device: options.device };
    this.weight = this.registerParameter('weight', empty([outFeatures, inFeatures], factory))!;
    this.bias = this.registerParameter('bias', options.bias === false ? null : empty([outFeatures], factory));
    this.resetParameters();
  }

  resetParameters(): void {
    noGrad(() => {
      if (this.options.initStd !== undefined) {
        this.weight.normal_(0, this.options.initStd);
        this.bias?.zero_();
      } else {
        const bound = 1 / Math.sqrt(this.inFeatures);
        this.weight.uniform_(-bound, bound);
        this.bias?.uniform_(-bound, bound);
      }
    });
  }

  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias); // (…, in) → (…, out)
  }

  override extraRepr(): string {
    return `inFeatures=${this.inFeatures}, outFeatures=${this.outFeatures}, bias=${this.bias !== null}`;
  }
}

/**
 * `Dropout` (Srivastava et al. 2014): in training, zero each element with probability p and
 * scale the rest by 1/(1−p); in evaluation, the identity.
 */
import { Module } from './module.js';
import { dropout } from '../functional.js';
import type { Tensor } from '../tensor.js';

export class Dropout extends Module {
  constructor(readonly p = 0.1) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }

  forward(x: Tensor): Tensor {
    return dropout(x, this.p, this.training);
  }

  override extraRepr(): string {
    return `p=${this.p}`;
  }
}

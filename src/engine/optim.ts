/**
 * Optimizers from `torch::optim`, with parameter groups, learning-rate control for schedules,
 * state save/load for checkpoints, and gradient-norm clipping.
 *
 * The update rules are libtorch's own:
 * - AdamW (Loshchilov & Hutter, "Decoupled Weight Decay Regularization", ICLR 2019):
 *   θ ← θ − lr·λ·θ, then the Adam step with bias-corrected moments.
 * - SGD with optional momentum, dampening and Nesterov (torch.optim.SGD).
 *
 * @example
 * const opt = new AdamW([{ params: model.parameters(), lr: 5e-4, weightDecay: 0.01 }]);
 * loss.backward(); clipGradNorm(model.parameters(), 1.0); opt.step(); opt.zeroGrad();
 */
import { native, type OptimizerHandle } from './native.js';
import type { Tensor } from './tensor.js';

export interface ParamGroup {
  params: Tensor[];
  lr: number;
  weightDecay?: number;
}

export abstract class Optimizer {
  #handle: OptimizerHandle | null;

  /** Takes ownership of a native optimizer, which holds its own references to the parameters. */
  protected constructor(handle: OptimizerHandle) {
    this.#handle = handle;
  }

  protected get handle(): OptimizerHandle {
    if (this.#handle === null) throw new Error('this optimizer was disposed');
    return this.#handle;
  }

  /** Applies one update from the accumulated gradients. */
  step(): void {
    native.ko_step(this.handle);
  }

  /** Zeroes every parameter's gradient; `setToNone` drops the buffers instead. */
  zeroGrad(setToNone = true): void {
    native.ko_zero_grad(this.handle, setToNone);
  }

  getLr(group = 0): number {
    return native.ko_get_lr(this.handle, group);
  }

  /** Sets the learning rate of one group, or of all groups when `group` is omitted. */
  setLr(lr: number, group?: number): void {
    if (!Number.isFinite(lr) || lr < 0) throw new Error(`setLr: expected a finite, non-negative learning rate, got ${lr}`);
    const count = native.ko_group_count(this.handle);
    if (group !== undefined) native.ko_set_lr(this.handle, group, lr);
    else for (let g = 0; g < count; g++) native.ko_set_lr(this.handle, g, lr);
  }

  /** The optimizer state (moments, step counts) as torch::serialize bytes, for checkpoints. */
  stateBytes(): Buffer {
    return native.ko_save(this.handle);
  }

  /**
   * Restores state saved by `stateBytes` into an optimizer over the same parameters: moments,
   * step counts and each group's options (lr, weight decay), as torch.optim's load_state_dict.
   */
  loadStateBytes(state: Buffer): void {
    native.ko_load(this.handle, state);
  }

  dispose(): void {
    if (this.#handle === null) return;
    native.ko_free(this.#handle);
    this.#handle = null;
  }
}

function nativeGroups(groups: ParamGroup[], defaultWeightDecay: number) {
  if (groups.length === 0) throw new Error('optimizer: expected at least one parameter group');
  return groups.map((g, i) => {
    if (g.params.length === 0) throw new Error(`optimizer: parameter group ${i} has no parameters`);
    return { params: g.params.map((p) => p.handle), lr: g.lr, weightDecay: g.weightDecay ?? defaultWeightDecay };
  });
}

export interface AdamWOptions {
  betas?: [number, number];
  eps?: number;
  amsgrad?: boolean;
}

export class AdamW extends Optimizer {
  /** Groups default to weight decay 0.01, as torch.optim.AdamW. */
  constructor(groups: ParamGroup[], options: AdamWOptions = {}) {
    const [beta1, beta2] = options.betas ?? [0.9, 0.999];
    super(native.ko_adamw(nativeGroups(groups, 0.01), beta1, beta2, options.eps ?? 1e-8, options.amsgrad ?? false));
  }
}

export interface SGDOptions {
  momentum?: number;
  dampening?: number;
  nesterov?: boolean;
}

export class SGD extends Optimizer {
  constructor(groups: ParamGroup[], options: SGDOptions = {}) {
    super(native.ko_sgd(nativeGroups(groups, 0), options.momentum ?? 0, options.dampening ?? 0, options.nesterov ?? false));
  }
}

/**
 * Scales all gradients so their joint `normType`-norm is at most `maxNorm`
 * (torch.nn.utils.clip_grad_norm_). Returns the norm before clipping.
 */
export function clipGradNorm(params: Tensor[], maxNorm: number, normType = 2): number {
  return native.kt_clip_grad_norm(params.map((p) => p.handle), maxNorm, normType);
}

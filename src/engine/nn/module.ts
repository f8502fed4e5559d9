/**
 * `Module`: the base of every layer and model, after PyTorch's `torch.nn.Module`.
 *
 * A module owns its parameters (long-lived tensors exempt from `tidy` scopes), its buffers
 * (long-lived state that is saved but never trained) and its child modules; `forward` is plain
 * code over tensors. Subclasses create parameters with `empty`, register them, then call a
 * re-runnable `resetParameters()` that fills them.
 *
 * A tensor may be reachable under two names: a tied weight (BERT's MLM decoder is the word
 * embedding matrix) or a child registered twice. `namedParameters` lists each tensor once,
 * under the first name met, as PyTorch's `named_parameters(remove_duplicate=True)` does, so an
 * optimizer updates a tied weight once per step and a checkpoint stores it once.
 */
import { keep } from '../scope.js';
import { noGrad } from '../grad.js';
import type { Tensor } from '../tensor.js';

/** Tensors that some module registered as a parameter (to recognise a tied weight). */
const registeredParameters = new WeakSet<Tensor>();

/** Marks a tensor as a trainable parameter owned by a module: kept out of scopes, tracking gradients. */
export function parameter(t: Tensor, requiresGrad = true): Tensor {
  keep(t);
  t.requiresGrad = requiresGrad;
  registeredParameters.add(t);
  return t;
}

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #buffers = new Map<string, Tensor>();
  readonly #children = new Map<string, Module>();

  #checkFree(name: string): void {
    if (this.#parameters.has(name) || this.#buffers.has(name) || this.#children.has(name)) throw new Error(`${this.constructor.name}: '${name}' is already registered`);
  }

  /** Registers `t` (or an explicit `null`, for an absent optional parameter such as a bias). */
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    this.#checkFree(name);
    // A tensor that is already a parameter elsewhere (a tied weight) keeps its requiresGrad flag.
    this.#parameters.set(name, t === null ? null : registeredParameters.has(t) ? t : parameter(t));
    return t;
  }

  /**
   * Registers a buffer: state saved in `stateDict` and released by `dispose`, never trained
   * (PyTorch's `register_buffer`, e.g. a running statistic or a fixed table).
   */
  protected registerBuffer(name: string, t: Tensor): Tensor {
    this.#checkFree(name);
    keep(t);
    t.requiresGrad = false;
    this.#buffers.set(name, t);
    return t;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    this.#checkFree(name);
    this.#children.set(name, module);
    return module;
  }

  /**
   * Parameters with dotted names (`encoder.layers.0.attention.query.weight`), depth first, each
   * tensor once (a tied or shared tensor under the first name met).
   */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const seen = new Set<Tensor>();
    return this.#collect(prefix, (m) => m.#parameters).filter(([, t]) => !seen.has(t) && seen.add(t) !== undefined);
  }

  /** Buffers with dotted names, depth first, each tensor once. */
  namedBuffers(prefix = ''): Array<[string, Tensor]> {
    const seen = new Set<Tensor>();
    return this.#collect(prefix, (m) => m.#buffers).filter(([, t]) => !seen.has(t) && seen.add(t) !== undefined);
  }

  #collect(prefix: string, own: (m: Module) => Map<string, Tensor | null>): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [name, t] of own(this)) if (t !== null) out.push([prefix + name, t]);
    for (const [name, child] of this.#children) out.push(...child.#collect(`${prefix}${name}.`, own));
    return out;
  }

  /**
   * Freezes (`false`) or unfreezes every parameter, as PyTorch's `module.requires_grad_()`:
   * a frozen parameter gets no gradient, and the training loop leaves it out of the optimizer.
   */
  requiresGrad_(on = true): this {
    for (const t of this.parameters()) t.requiresGrad = on;
    return this;
  }

  parameters(): Tensor[] {
    return this.namedParameters().map(([, t]) => t);
  }

  children(): Array<[string, Module]> {
    return [...this.#children.entries()];
  }

  /** Total number of parameter elements. */
  parameterCount(): number {
    return this.parameters().reduce((n, t) => n + t.numel, 0);
  }

  /** Switches dropout and similar layers between training and evaluation behaviour. */
  train(on = true): this {
    this.training = on;
    for (const [, child] of this.#children) child.train(on);
    return this;
  }

  eval(): this {
    return this.train(false);
  }

  /** The live parameters and buffers by name (not copies): save them with `saveSafetensors`. */
  stateDict(): Map<string, Tensor> {
    return new Map([...this.namedParameters(), ...this.namedBuffers()]);
  }

  /**
   * Copies values into the parameters by name. With `strict` (the default), missing and
   * unexpected names are errors; a shape mismatch always is.
   */
  loadStateDict(state: Map<string, Tensor>, options: { strict?: boolean } = {}): void {
    const own = this.stateDict();
    const strict = options.strict ?? true;
    if (strict) {
      const missing = [...own.keys()].filter((k) => !state.has(k));
      const unexpected = [...state.keys()].filter((k) => !own.has(k));
      if (missing.length > 0 || unexpected.length > 0) {
        throw new Error(`${this.constructor.name}.loadStateDict: missing [${missing.join(', ')}], unexpected [${unexpected.join(', ')}]`);
      }
    }
    noGrad(() => {
      for (const [name, target] of own) {
        const source = state.get(name);
        if (source === undefined) continue;
        const want = target.shape.join('x');
        const got = source.shape.join('x');
        if (want !== got) throw new Error(`${this.constructor.name}.loadStateDict: '${name}' has shape [${got}], expected [${want}]`);
        target.copy_(source);
      }
    });
  }

  /** Drops every parameter's gradient. */
  zeroGrad(): void {
    for (const t of this.parameters()) t.zeroGrad(true);
  }

  /** Releases every parameter's and buffer's native memory; the module is unusable afterwards. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
    for (const [, t] of this.namedBuffers()) t.dispose();
  }

  /** Constructor arguments for `toString`, as PyTorch's `extra_repr`. */
  extraRepr(): string {
    return '';
  }

  toString(): string {
    const children = this.children();
    const head = `${this.constructor.name}(${this.extraRepr()}`;
    if (children.length === 0) return `${head})`;
    const body = children.map(([name, child]) => `  (${name}): ${child.toString().replaceAll('\n', '\n  ')}`).join('\n');
    return `${head}\n${body}\n)`;
  }
}

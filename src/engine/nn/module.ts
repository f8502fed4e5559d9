/**
 * `Module`: the base of every layer and model, after PyTorch's `torch.nn.Module`.
 *
 * A module owns its parameters (long-lived tensors exempt from `tidy` scopes) and its child
 * modules; `forward` is plain code over tensors. Subclasses create parameters with `empty`,
 * register them, then call a re-runnable `resetParameters()` that fills them.
 */
import { keep } from '../scope.js';
import { noGrad } from '../grad.js';
import type { Tensor } from '../tensor.js';

/** Marks a tensor as a trainable parameter owned by a module: kept out of scopes, tracking gradients. */
export function parameter(t: Tensor, requiresGrad = true): Tensor {
  keep(t);
  t.requiresGrad = requiresGrad;
  return t;
}

export abstract class Module {
  training = true;
  readonly #parameters = new Map<string, Tensor | null>();
  readonly #children = new Map<string, Module>();

  /** Registers `t` (or an explicit `null`, for an absent optional parameter such as a bias). */
  protected registerParameter(name: string, t: Tensor | null): Tensor | null {
    if (this.#parameters.has(name) || this.#children.has(name)) throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    this.#parameters.set(name, t === null ? null : parameter(t));
    return t;
  }

  protected registerModule<M extends Module>(name: string, module: M): M {
    if (this.#parameters.has(name) || this.#children.has(name)) throw new Error(`${this.constructor.name}: '${name}' is already registered`);
    this.#children.set(name, module);
    return module;
  }

  /** Parameters with dotted names (`encoder.layers.0.attention.query.weight`), depth first. */
  namedParameters(prefix = ''): Array<[string, Tensor]> {
    const out: Array<[string, Tensor]> = [];
    for (const [name, t] of this.#parameters) if (t !== null) out.push([prefix + name, t]);
    for (const [name, child] of this.#children) out.push(...child.namedParameters(`${prefix}${name}.`));
    return out;
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

  /** The live parameters by name (not copies): save them with `saveSafetensors`. */
  stateDict(): Map<string, Tensor> {
    return new Map(this.namedParameters());
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

  /** Releases every parameter's native memory; the module is unusable afterwards. */
  dispose(): void {
    for (const t of this.parameters()) t.dispose();
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

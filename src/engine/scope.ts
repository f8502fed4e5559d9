/**
 * Deterministic release of native memory.
 *
 * Every tensor created while a scope is open is tracked by the innermost scope. When
 * `tidy(fn)` returns, the tensors it created are disposed, except those it returns (they move
 * to the enclosing scope) and those marked with `keep`. Outside any scope a tensor lives until
 * `dispose()` or, as a backstop only, until V8 collects its handle.
 *
 * @example
 * const loss = tidy(() => model.forward(x).sub(y).square().mean()); // temporaries freed here
 * loss.dispose();
 */

/** What a scope needs of a tensor; implemented by `Tensor`. */
export interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

interface Scope {
  tracked: Set<Disposable>;
}

const stack: Scope[] = [];
const kept = new WeakSet<Disposable>();

/** Called by every tensor constructor. */
export function track(value: Disposable): void {
  const scope = stack[stack.length - 1];
  if (scope !== undefined && !kept.has(value)) scope.tracked.add(value);
}

/** Exempts a tensor from every enclosing scope: the caller now owns it and must dispose it. */
export function keep<T extends Disposable>(value: T): T {
  kept.add(value);
  for (const scope of stack) scope.tracked.delete(value);
  return value;
}

/** Number of open scopes (diagnostics and tests). */
export function scopeDepth(): number {
  return stack.length;
}

function collectReturned(value: unknown, out: Set<Disposable>, seen: Set<unknown>): void {
  if (value === null || typeof value !== 'object' || seen.has(value)) return;
  seen.add(value);
  if (isDisposable(value)) {
    out.add(value);
    return;
  }
  if (Array.isArray(value)) {
    for (const item of value) collectReturned(item, out, seen);
  } else if (value instanceof Map) {
    for (const item of value.values()) collectReturned(item, out, seen);
  } else if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const item of Object.values(value)) collectReturned(item, out, seen);
  }
}

function isDisposable(value: object): value is Disposable {
  return typeof (value as Partial<Disposable>).dispose === 'function' && 'isDisposed' in value;
}

/**
 * Runs `fn` in a new scope and disposes every tensor it created but did not return. Tensors
 * found in the result (directly, or inside arrays, Maps and plain objects) survive and belong
 * to the enclosing scope. `fn` must be synchronous: a scope cannot span an `await`.
 */
export function tidy<T>(fn: () => T): T {
  const scope: Scope = { tracked: new Set() };
  stack.push(scope);
  let result: T;
  try {
    result = fn();
  } catch (error) {
    stack.pop();
    for (const value of scope.tracked) value.dispose();
    throw error;
  }
  stack.pop();
  if (result instanceof Promise) {
    for (const value of scope.tracked) value.dispose();
    throw new Error('tidy(fn): fn returned a Promise; scopes are synchronous, so await outside tidy and tidy each synchronous step');
  }
  const returned = new Set<Disposable>();
  collectReturned(result, returned, new Set());
  const parent = stack[stack.length - 1];
  for (const value of scope.tracked) {
    if (returned.has(value)) {
      if (parent !== undefined) parent.tracked.add(value);
    } else {
      value.dispose();
    }
  }
  return result;
}

/** Disposes every tensor found in `value` (a tensor, or arrays, Maps and plain objects of them). */
export function dispose(value: unknown): void {
  const found = new Set<Disposable>();
  collectReturned(value, found, new Set());
  for (const item of found) item.dispose();
}

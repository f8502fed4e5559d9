/**
 * Scopes and modes: `tidy`/`keep`/`dispose` lifetimes, `noGrad`/`enableGrad` restoring the
 * previous grad mode, `autocast` on the CPU, and zero-copy sharing with JavaScript memory.
 */
import { describe, expect, it } from 'vitest';

import {
  Tensor,
  autocast,
  dispose,
  enableGrad,
  fromTypedArray,
  isGradEnabled,
  keep,
  liveTensorCount,
  noGrad,
  ones,
  randn,
  scopeDepth,
  tensor,
  tidy,
  zeros,
} from '../src/engine/index.js';

describe('tidy', () => {
  it('disposes the temporaries it created and keeps the returned tensor', () => {
    const temps: Tensor[] = [];
    const out = tidy(() => {
      const a = ones([2, 2]);
      const b = a.add(1);
      temps.push(a, b);
      return b.mul(3);
    });
    try {
      expect(temps.every((t) => t.isDisposed)).toBe(true);
      expect(out.isDisposed).toBe(false);
      expect(out.toArray()).toEqual([6, 6, 6, 6]);
    } finally {
      out.dispose();
    }
  });

  it('keeps tensors returned inside arrays, plain objects and Maps', () => {
    const temps: Tensor[] = [];
    const result = tidy(() => {
      const t = zeros([1]);
      temps.push(t, t.add(1));
      return { list: [t.add(2), t.add(3)], nested: { deep: t.add(4) }, map: new Map([['k', t.add(5)]]), label: 'x' };
    });
    try {
      expect(temps.every((t) => t.isDisposed)).toBe(true);
      expect(result.list.map((t) => t.item())).toEqual([2, 3]);
      expect(result.nested.deep.item()).toBe(4);
      expect(result.map.get('k')!.item()).toBe(5);
      expect(result.label).toBe('x');
    } finally {
      dispose(result);
    }
    expect(result.list[0]!.isDisposed && result.list[1]!.isDisposed && result.nested.deep.isDisposed && result.map.get('k')!.isDisposed).toBe(true);
  });

  it('moves a nested scope\'s result to the parent scope, which disposes it unless returned', () => {
    let inner: Tensor | undefined;
    let innerTemp: Tensor | undefined;
    const outer = tidy(() => {
      expect(scopeDepth()).toBe(1);
      inner = tidy(() => {
        expect(scopeDepth()).toBe(2);
        innerTemp = ones([3]);
        return innerTemp.mul(2);
      });
      // The inner scope is closed: its temporary is gone, its result is alive in the outer scope.
      expect(innerTemp!.isDisposed).toBe(true);
      expect(inner.isDisposed).toBe(false);
      return inner.sum();
    });
    try {
      expect(scopeDepth()).toBe(0);
      expect(inner!.isDisposed).toBe(true); // owned by the outer scope, which did not return it
      expect(outer.item()).toBe(6);
    } finally {
      outer.dispose();
    }
  });

  it('keep() exempts a tensor from every enclosing scope', () => {
    let kept: Tensor | undefined;
    let other: Tensor | undefined;
    tidy(() => {
      tidy(() => {
        kept = keep(ones([2]));
        other = ones([2]);
      });
    });
    try {
      expect(other!.isDisposed).toBe(true);
      expect(kept!.isDisposed).toBe(false);
      expect(kept!.toArray()).toEqual([1, 1]);
    } finally {
      kept!.dispose();
    }
    expect(kept!.isDisposed).toBe(true);
  });

  it('keep() of a tensor already tracked by an outer scope removes it there too', () => {
    let t: Tensor | undefined;
    tidy(() => {
      t = ones([1]);
      tidy(() => keep(t!));
    });
    expect(t!.isDisposed).toBe(false);
    t!.dispose();
  });

  it('disposes its temporaries when fn throws, and closes the scope', () => {
    let temp: Tensor | undefined;
    expect(() =>
      tidy(() => {
        temp = ones([4]);
        throw new Error('boom');
      }),
    ).toThrow('boom');
    expect(temp!.isDisposed).toBe(true);
    expect(scopeDepth()).toBe(0);
  });

  it('disposes temporaries of the failing scope when a native op throws inside nested scopes', () => {
    const temps: Tensor[] = [];
    expect(() =>
      tidy(() => {
        temps.push(ones([2]));
        return tidy(() => {
          const a = zeros([2, 3]);
          temps.push(a);
          return a.matmul(a); // (2,3) @ (2,3) throws in libtorch
        });
      }),
    ).toThrow(/kt_matmul: /);
    expect(temps.every((t) => t.isDisposed)).toBe(true);
    expect(scopeDepth()).toBe(0);
  });

  it('rejects an async fn, disposing what it created before its first await', async () => {
    let before: Tensor | undefined;
    let gate: () => void = () => {};
    const resumed = new Promise<void>((resolve) => {
      gate = resolve;
    });
    expect(() =>
      tidy(async () => {
        before = ones([2]);
        await resumed;
      }),
    ).toThrow(/returned a Promise/);
    expect(before!.isDisposed).toBe(true);
    expect(scopeDepth()).toBe(0);
    gate();
  });

  it('leaves the live tensor count where it was, plus what it returned', () => {
    const before = liveTensorCount();
    const out = tidy(() => {
      const a = randn([8, 8], { requiresGrad: true });
      const loss = a.matmul(a).relu().sum();
      loss.backward();
      return [loss.detach(), a.grad!];
    });
    expect(liveTensorCount()).toBe(before + 2);
    dispose(out);
    expect(liveTensorCount()).toBe(before);
  });

  it('leaves tensors created outside any scope alone', () => {
    const outside = ones([2]);
    tidy(() => outside.add(1));
    expect(outside.isDisposed).toBe(false);
    outside.dispose();
  });
});

describe('dispose', () => {
  it('is safe to call twice, and a disposed tensor fails with a clear error', () => {
    const t = ones([2, 2]);
    t.dispose();
    expect(() => t.dispose()).not.toThrow();
    expect(t.isDisposed).toBe(true);
    expect(() => t.add(1)).toThrow(/this tensor was disposed; keep\(\) it or return it from tidy\(\)/);
    expect(() => t.shape).toThrow(/disposed/);
    expect(() => t.toArray()).toThrow(/disposed/);
  });

  it('dispose(value) disposes every tensor in a structure', () => {
    const a = ones([1]);
    const b = ones([1]);
    const c = ones([1]);
    dispose({ a, rest: [b, new Map([['c', c]])] });
    expect([a, b, c].map((t) => t.isDisposed)).toEqual([true, true, true]);
  });

  it('a view outlives the disposed tensor it was taken from', () => {
    const base = tensor([1, 2, 3, 4]);
    const view = base.narrow(0, 1, 2);
    base.dispose();
    expect(view.toArray()).toEqual([2, 3]);
    view.dispose();
  });
});

describe('grad mode', () => {
  it('noGrad turns recording off and restores it', () => {
    expect(isGradEnabled()).toBe(true);
    const x = ones([2], { requiresGrad: true });
    const y = noGrad(() => {
      expect(isGradEnabled()).toBe(false);
      return x.mul(2);
    });
    expect(isGradEnabled()).toBe(true);
    expect(y.requiresGrad).toBe(false);
    const z = x.mul(2);
    expect(z.requiresGrad).toBe(true);
    dispose([x, y, z]);
  });

  it('noGrad restores the previous mode when fn throws', () => {
    expect(() =>
      noGrad(() => {
        throw new Error('inside');
      }),
    ).toThrow('inside');
    expect(isGradEnabled()).toBe(true);
  });

  it('nested noGrad/enableGrad restore the mode of their caller, also on throw', () => {
    noGrad(() => {
      expect(() =>
        enableGrad(() => {
          expect(isGradEnabled()).toBe(true);
          throw new Error('x');
        }),
      ).toThrow('x');
      expect(isGradEnabled()).toBe(false);
      noGrad(() => expect(isGradEnabled()).toBe(false));
      expect(isGradEnabled()).toBe(false);
    });
    expect(isGradEnabled()).toBe(true);
  });
});

describe('autocast', () => {
  it('runs a CPU matmul in bfloat16 inside and float32 again afterwards', () => {
    tidy(() => {
      const a = randn([4, 8]);
      const b = randn([8, 3]);
      const inside = autocast(() => a.matmul(b));
      expect(inside.dtype).toBe('bfloat16');
      expect(a.matmul(b).dtype).toBe('float32');
      // Values agree with the float32 product to bfloat16 precision.
      const exact = a.matmul(b).toArray();
      inside.toArray().forEach((v, i) => expect(Math.abs(v - exact[i]!)).toBeLessThan(0.05 * (1 + Math.abs(exact[i]!))));
    });
  });

  it('toFloat32Array reads an autocast result as numbers; toTypedArray gives its bfloat16 bits', () => {
    tidy(() => {
      const a = randn([4, 8]);
      const b = randn([8, 3]);
      const inside = autocast(() => a.matmul(b));
      const exact = a.matmul(b).toArray();
      const read = inside.toFloat32Array();
      expect(read).toBeInstanceOf(Float32Array);
      expect(read).toHaveLength(12);
      read.forEach((v, i) => expect(Math.abs(v - exact[i]!)).toBeLessThan(0.05 * (1 + Math.abs(exact[i]!))));
      // The trap it avoids: the type parameter does not convert.
      expect(inside.toTypedArray<'float32'>()).toBeInstanceOf(Uint16Array);
      // float32 is returned as is; a transposed view in row-major order.
      expect([...a.transpose(0, 1).toFloat32Array()]).toEqual(a.transpose(0, 1).toArray());
    });
  });

  it('restores the previous state when fn throws, and nests', () => {
    tidy(() => {
      const a = randn([2, 2]);
      expect(() =>
        autocast(() => {
          throw new Error('in autocast');
        }),
      ).toThrow('in autocast');
      expect(a.matmul(a).dtype).toBe('float32');
      autocast(() => {
        autocast(() => expect(a.matmul(a).dtype).toBe('bfloat16'));
        // The inner region's exit must not switch off the outer one.
        expect(a.matmul(a).dtype).toBe('bfloat16');
      });
      expect(a.matmul(a).dtype).toBe('float32');
    });
  });

  it('rejects dtypes autocast does not support', () => {
    expect(() => autocast(() => 0, { dtype: 'float64' })).toThrow(/autocast: dtype must be/);
  });
});

describe('zero-copy sharing with JavaScript memory', () => {
  it('toTypedArray({share: true}) aliases the tensor: in-place updates are visible', () => {
    const t = zeros([2, 3]);
    const shared = t.toTypedArray<'float32'>({ share: true });
    const copied = t.toTypedArray<'float32'>();
    t.fill_(7);
    expect(Array.from(shared)).toEqual([7, 7, 7, 7, 7, 7]);
    expect(Array.from(copied)).toEqual([0, 0, 0, 0, 0, 0]);
    // Writes through the array reach the tensor, too.
    shared[4] = -1;
    expect(t.toArray()).toEqual([7, 7, 7, 7, -1, 7]);
    t.dispose();
    // The array keeps the storage alive after dispose.
    expect(Array.from(shared)).toEqual([7, 7, 7, 7, -1, 7]);
  });

  it('toTypedArray({share: true}) of a contiguous view sees only the view\'s elements', () => {
    const t = tensor([0, 1, 2, 3, 4, 5]);
    const view = t.narrow(0, 2, 3);
    const shared = view.toTypedArray<'float32'>({ share: true });
    expect(Array.from(shared)).toEqual([2, 3, 4]);
    t.fill_(9);
    expect(Array.from(shared)).toEqual([9, 9, 9]);
    dispose([t, view]);
  });

  it('fromTypedArray(arr, {share: true}) aliases the array; the default copies', () => {
    const data = new Float32Array([1, 2, 3, 4, 5, 6]);
    const shared = fromTypedArray(data, { shape: [2, 3], share: true });
    const copied = fromTypedArray(data, { shape: [2, 3] });
    data[1] = 42;
    expect(shared.toArray()).toEqual([1, 42, 3, 4, 5, 6]);
    expect(copied.toArray()).toEqual([1, 2, 3, 4, 5, 6]);
    // And the other way: an in-place op on the shared tensor writes into the array.
    shared.mul_(2);
    expect(Array.from(data)).toEqual([2, 84, 6, 8, 10, 12]);
    dispose([shared, copied]);
  });

  it('fromTypedArray shares a subarray at its offset', () => {
    const data = new Float64Array([0, 1, 2, 3, 4, 5, 6, 7]);
    const t = fromTypedArray(data.subarray(2, 6), { shape: [2, 2], share: true });
    data[3] = 30;
    expect(t.toArray()).toEqual([2, 30, 4, 5]);
    t.fill_(-1);
    expect(Array.from(data)).toEqual([0, 1, -1, -1, -1, -1, 6, 7]);
    t.dispose();
  });
});

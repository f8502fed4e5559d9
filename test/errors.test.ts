/**
 * Failures surface as JavaScript Errors, never as a crashed process. An error libtorch raises
 * reaches JavaScript with libtorch's own message (without its C++ backtrace), prefixed with the
 * name of the shim function that called it, so a user can search PyTorch's issues for it.
 *
 * Each expectation names a substring of torch's message that has been stable across releases.
 * Because vitest runs this file in a forked process, a native crash fails the whole file.
 */
import { describe, expect, it } from 'vitest';

import {
  Tensor,
  arange,
  cat,
  crossEntropy,
  embedding,
  fromTypedArray,
  layerNorm,
  ones,
  randn,
  tensor,
  tidy,
  zeros,
  type Device,
} from '../src/engine/index.js';

/** Runs `fn`, expecting an Error whose message starts with `shim: ` and matches `torchText`. */
function expectTorchError(fn: () => unknown, shim: string, torchText: string | RegExp): Error {
  let caught: unknown;
  try {
    tidy(() => {
      fn();
    });
  } catch (error) {
    caught = error;
  }
  expect(caught, `${shim} should have thrown`).toBeInstanceOf(Error);
  const message = (caught as Error).message;
  expect(message.startsWith(`${shim}: `), `message should start with '${shim}: ', got: ${message}`).toBe(true);
  if (typeof torchText === 'string') expect(message).toContain(torchText);
  else expect(message).toMatch(torchText);
  // libtorch's C++ backtrace is dropped: the message is what a Python user would see.
  expect(message).not.toMatch(/Exception raised from|frame #\d/);
  return caught as Error;
}

describe('bad shapes', () => {
  it('matmul (2,3) @ (4,5)', () => {
    expectTorchError(() => zeros([2, 3]).matmul(zeros([4, 5])), 'kt_matmul', 'mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)');
  });

  it('add of shapes that do not broadcast', () => {
    expectTorchError(() => zeros([2, 3]).add(zeros([4, 5])), 'kt_add', 'The size of tensor a (3) must match the size of tensor b (5) at non-singleton dimension 1');
  });

  it('view to a size with a different element count', () => {
    expectTorchError(() => zeros([2, 3]).view(4, 2), 'kt_view', "shape '[4, 2]' is invalid for input of size 6");
  });

  it('view of a non-contiguous tensor that needs a copy', () => {
    expectTorchError(() => zeros([2, 3]).transpose(0, 1).view(6), 'kt_view', 'view size is not compatible with input tensor');
  });

  it('cat of tensors whose other dimensions differ', () => {
    expectTorchError(() => cat([zeros([2, 3]), zeros([2, 4])], 0), 'kt_cat', 'Sizes of tensors must match except in dimension 0');
  });

  it('bmm of 2-D tensors', () => {
    expectTorchError(() => zeros([2, 3]).bmm(zeros([3, 2])), 'kt_bmm', 'batch1 must be a 3D tensor');
  });

  it('layer_norm over a shape the input does not end with', () => {
    expectTorchError(() => layerNorm(randn([2, 3]), [4]), 'kt_layer_norm', 'Given normalized_shape=[4]');
  });
});

describe('bad dtypes', () => {
  it('embedding with float indices', () => {
    expectTorchError(() => embedding(zeros([3]), randn([5, 4])), 'kt_embedding', "Expected tensor for argument #1 'indices' to have one of the following scalar types: Long, Int");
  });

  it('cross_entropy with float targets of the wrong shape', () => {
    expectTorchError(() => crossEntropy(randn([4, 3]), zeros([4])), 'kt_cross_entropy', 'expected scalar type Long but found Float');
  });

  it('cross_entropy with 2-D class-index targets', () => {
    expectTorchError(() => crossEntropy(randn([4, 3]), zeros([4, 5], { dtype: 'int64' })), 'kt_cross_entropy', /multi-target not supported|only batches of spatial targets supported/);
  });

  it('matmul int64 @ float32', () => {
    // torch 1.13: "expected scalar type Long but found Float"; later: "expected m1 and m2 to have the same dtype".
    expectTorchError(() => zeros([2, 3], { dtype: 'int64' }).matmul(zeros([3, 2])), 'kt_matmul', /expected scalar type Long but found Float|expected m1 and m2 to have the same dtype/);
  });
});

describe('indices out of range', () => {
  it('index_select', () => {
    expectTorchError(() => zeros([2, 3]).indexSelect(0, tensor([5], { dtype: 'int64' })), 'kt_index_select', 'index out of range in self');
  });

  it('gather', () => {
    expectTorchError(() => zeros([2, 3]).gather(1, tensor([[0, 7], [1, 1]], { dtype: 'int64' })), 'kt_gather', 'index 7 is out of bounds for dimension 1 with size 3');
  });

  it('embedding', () => {
    expectTorchError(() => embedding(tensor([9], { dtype: 'int64' }), randn([5, 4])), 'kt_embedding', 'index out of range in self');
  });

  it('select past the end of a dimension', () => {
    expectTorchError(() => zeros([2, 3]).select(1, 3), 'kt_select', /index 3 is out of bounds for dimension 1 with size 3|out of range/);
  });

  it('a dimension out of range', () => {
    expectTorchError(() => zeros([2, 3]).softmax(2), 'kt_softmax', 'Dimension out of range (expected to be in range of [-2, 1], but got 2)');
  });
});

describe('lifetimes', () => {
  it('using a disposed tensor throws a clear Error', () => {
    const t = ones([2]);
    t.dispose();
    expect(() => t.add(1)).toThrow(/this tensor was disposed/);
    expect(() => ones([2]).add(t)).toThrow(/this tensor was disposed/);
    expect(() => cat([ones([1]), t])).toThrow(/this tensor was disposed/);
  });

  it('the shim itself rejects a released handle (the check behind the TypeScript one)', () => {
    const t = ones([2]);
    const handle = t.handle;
    t.dispose();
    // A second wrapper around the same, now released, handle bypasses the TypeScript check.
    const stale = new Tensor(handle);
    expectTorchError(() => stale.add(ones([2])), 'kt_add', 'argument 0: the tensor was disposed');
    expectTorchError(() => ones([2]).mul(stale), 'kt_mul', 'argument 1: the tensor was disposed');
    expectTorchError(() => cat([ones([2]), stale]), 'kt_cat', 'argument 0[1]: the tensor was disposed');
  });
});

describe('devices and autograd', () => {
  it('an unknown device string', () => {
    expectTorchError(() => zeros([2], { device: 'tpu' as Device }), 'kt_zeros', 'Expected one of cpu, cuda');
    expectTorchError(() => ones([2]).to({ device: 'tpu:0' as Device }), 'kt_to', 'device type at start of device string: tpu');
    expect(() => ones([2]).to('tpu' as Device)).toThrow("to('tpu'): expected a dtype (uint8, int32, int64, float16, float32, float64, bool, bfloat16) or a device ('cpu', 'cuda', 'cuda:N')");
  });

  it('backward on a non-scalar without a gradient', () => {
    const x = randn([3], { requiresGrad: true });
    try {
      expectTorchError(() => x.mul(2).backward(), 'kt_backward', 'grad can be implicitly created only for scalar outputs');
      expect(x.grad).toBeNull();
    } finally {
      x.dispose();
    }
  });

  it('backward through a tensor that does not require grad', () => {
    expectTorchError(() => ones([1]).sum().backward(), 'kt_backward', 'element 0 of tensors does not require grad and does not have a grad_fn');
  });

  it('a second backward through a freed graph', () => {
    const x = randn([3], { requiresGrad: true });
    try {
      expectTorchError(
        () => {
          const y = x.exp().sum();
          y.backward();
          y.backward();
        },
        'kt_backward',
        'Trying to backward through the graph a second time',
      );
    } finally {
      x.dispose();
    }
  });
});

describe('fromTypedArray', () => {
  it('a byte length that does not match the shape names both sizes', () => {
    expectTorchError(() => fromTypedArray(new Float32Array(5), { shape: [2, 3] }), 'kt_from_buffer', 'shape [2, 3] of Float needs 24 bytes, the buffer has 20');
    expectTorchError(() => fromTypedArray(new Uint8Array(7), { shape: [2], dtype: 'int32' }), 'kt_from_buffer', 'needs 8 bytes, the buffer has 7');
  });

  it('a negative dimension', () => {
    expectTorchError(() => fromTypedArray(new Float32Array(2), { shape: [-1, 2] }), 'kt_from_buffer', 'negative dimension');
  });
});

describe('the process survives', () => {
  it('many failing calls in a row leave the engine usable', () => {
    for (let i = 0; i < 50; i++) {
      expect(() => tidy(() => zeros([2, 3]).matmul(zeros([4, 5])))).toThrow(/kt_matmul/);
    }
    const ok = tidy(() => arange(0, 4, 1, { dtype: 'float32' }).sum().item());
    expect(ok).toBe(6);
  });
});

#!/usr/bin/python3
"""Reference cases for test/ops.test.ts: every Kiln engine op run through PyTorch.

Run with Debian's /usr/bin/python3 (python3-torch 1.13 and python3-numpy); `npm run refs`
(test/reference/ensure.mjs) does so when cases.json is missing or older than this file.

Each case records an op name that ops.test.ts knows, its keyword arguments, the input tensors,
PyTorch's outputs and, when some input requires grad, the gradient of
`sum_i sum(out_i * w_i)` with respect to each such input, where `w_i` is a fixed random
weight stored in the case. Kiln links the same libtorch, so results should agree to rounding
(float32: rtol 1e-5 / atol 1e-6).

Tensor encoding: {"dtype", "shape", "values"} with values flat in row-major order; float
values are JSON numbers (exact: float32 and float64 both round-trip through a double) except
NaN and infinities, written as the strings "nan", "inf" and "-inf"; int64 values are integers;
bool values are true/false; bfloat16/float16 values are written widened to float32 (exact).

Inputs avoid non-differentiable points: positive arguments for sqrt/log/rsqrt/pow, |x| away
from 0 for abs/relu/sign/norm(p=1), distinct values for max/min/topk/sort/argmax, values away
from clamp bounds and remainder's jumps.
"""
import json
import math
import os
import sys
import warnings

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240611
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "cases.json")

torch.set_num_threads(1)
# kl_div(reduction='mean') is a deliberate case; its deprecation notice is noise here.
warnings.filterwarnings("ignore", message="reduction: 'mean' divides the total loss")
rng = np.random.default_rng(SEED)

f32, f64, bf16, f16 = torch.float32, torch.float64, torch.bfloat16, torch.float16
i64 = torch.int64

DTYPE_NAMES = {
    torch.float32: "float32",
    torch.float64: "float64",
    torch.bfloat16: "bfloat16",
    torch.float16: "float16",
    torch.int64: "int64",
    torch.int32: "int32",
    torch.uint8: "uint8",
    torch.bool: "bool",
}

# Tolerances by the widest float dtype among a case's inputs (outputs for creation ops).
TOLERANCES = {
    "float32": (1e-5, 1e-6),
    "float64": (1e-10, 1e-12),
    # 16-bit forward cases: same kernels, but compared loosely since only 8 (bf16) or 11 (f16)
    # mantissa bits are kept; an off-by-one-ulp rounding difference must not fail the test.
    "bfloat16": (1e-2, 1e-2),
    "float16": (1e-3, 1e-3),
}


# ---------------------------------------------------------------------------------------
# Encoding
# ---------------------------------------------------------------------------------------
def enc_number(v):
    if isinstance(v, bool):
        return v
    if isinstance(v, float):
        if math.isnan(v):
            return "nan"
        if math.isinf(v):
            return "inf" if v > 0 else "-inf"
    return v


def enc_json(value):
    """Kwargs and nested data: non-finite floats become strings, tuples become lists."""
    if isinstance(value, (list, tuple)):
        return [enc_json(v) for v in value]
    if isinstance(value, dict):
        return {k: enc_json(v) for k, v in value.items()}
    if isinstance(value, torch.dtype):
        return DTYPE_NAMES[value]
    return enc_number(value)


def enc_tensor(t):
    t = t.detach()
    flat = t.float() if t.dtype in (bf16, f16) else t
    values = flat.reshape(-1).tolist()
    return {"dtype": DTYPE_NAMES[t.dtype], "shape": list(t.shape), "values": [enc_number(v) for v in values]}


# ---------------------------------------------------------------------------------------
# Inputs (numpy's seeded generator, so torch's own RNG stays free for the random-op cases)
# ---------------------------------------------------------------------------------------
def normal(*shape, dtype=f32, scale=1.0, shift=0.0):
    return torch.tensor(np.asarray(rng.standard_normal(shape) * scale + shift), dtype=dtype)


def uniform(lo, hi, *shape, dtype=f32):
    return torch.tensor(np.asarray(rng.uniform(lo, hi, shape)), dtype=dtype)


def nonzero(*shape, dtype=f32, min_abs=0.2):
    """Normal-ish values with |x| >= min_abs (abs, relu, sign, p=1 norms)."""
    n = rng.standard_normal(shape)
    return torch.tensor(np.asarray(np.sign(n) * (min_abs + np.abs(n))), dtype=dtype)


def distinct(*shape, dtype=f32, gap=0.25):
    """Pairwise distinct values at least ~gap apart, in random order (no ties anywhere)."""
    n = int(np.prod(shape)) if shape else 1
    v = (rng.permutation(n) - n / 2) * gap + rng.uniform(0, gap / 5, n)
    return torch.tensor(v.reshape(shape), dtype=dtype)


def away_from(x, points, margin=0.05):
    """Shifts elements within `margin` of any of `points` (clamp bounds) by 2*margin."""
    x = x.clone()
    for p in points:
        near = (x - p).abs() < margin
        x[near] += 2 * margin
    return x


def ints(lo, hi, *shape):
    return torch.tensor(rng.integers(lo, hi, shape), dtype=i64)


def bools(*shape, p=0.5):
    return torch.tensor(rng.random(shape) < p)


def probs(*shape, dim=-1, dtype=f32):
    return torch.softmax(torch.tensor(rng.standard_normal(shape), dtype=f64), dim=dim).to(dtype)


# ---------------------------------------------------------------------------------------
# Case construction
# ---------------------------------------------------------------------------------------
CASES = []
NAMES = set()


class In:
    """One named input; `grad` defaults to True for float32/float64 tensors."""

    def __init__(self, name, tensor, grad=None):
        self.name = name
        self.tensor = tensor
        self.grad = tensor.dtype in (f32, f64) if grad is None else grad


def tolerance_for(tensors):
    order = ["float16", "bfloat16", "float32", "float64"]
    found = [DTYPE_NAMES[t.dtype] for t in tensors if t.dtype in (f32, f64, bf16, f16)]
    # the least precise float dtype decides, so a bf16 forward case is compared loosely
    for name in order:
        if name in found:
            return TOLERANCES[name]
    return TOLERANCES["float32"]


def case(name, op, inputs, fn, kwargs=None, check="values", tol=None):
    """Runs `fn(*input_tensors, **kwargs)` and records outputs and gradients."""
    kwargs = dict(kwargs or {})
    if name in NAMES:
        raise SystemExit(f"duplicate case name {name}")
    NAMES.add(name)
    leaves = []
    for i in inputs:
        t = i.tensor.detach().clone()
        if i.grad:
            t.requires_grad_(True)
        leaves.append(t)
    with torch.enable_grad():
        if getattr(fn, "by_name", False):
            result = fn(**{i.name: t for i, t in zip(inputs, leaves)}, **kwargs)
        else:
            result = fn(*leaves, **kwargs)
    outs = list(result) if isinstance(result, (tuple, list)) else [result]
    weights = []
    loss = None
    for o in outs:
        if o.requires_grad and o.is_floating_point():
            w = torch.tensor(np.asarray(rng.standard_normal(tuple(o.shape))), dtype=o.dtype)
            weights.append(w)
            term = (o * w).sum()
            loss = term if loss is None else loss + term
        else:
            weights.append(None)
    if loss is not None:
        loss.backward()
    grads = [enc_tensor(t.grad) if (i.grad and t.grad is not None) else None for i, t in zip(inputs, leaves)]
    rtol, atol = tol if tol is not None else tolerance_for([i.tensor for i in inputs] + [o for o in outs if o.is_floating_point()])
    record = {
        "name": name,
        "op": op,
        "kwargs": enc_json(kwargs),
        "inputs": [dict(name=i.name, requiresGrad=bool(i.grad), **enc_tensor(i.tensor)) for i in inputs],
        "outputs": [enc_tensor(o) for o in outs],
        "weights": [enc_tensor(w) if w is not None else None for w in weights],
        "grads": grads,
        "rtol": rtol,
        "atol": atol,
        "check": check,
    }
    CASES.append(record)


def by_name(fn):
    """Marks `fn` to receive its inputs as keyword arguments named like the inputs (for
    functions with optional tensor arguments, where position would be ambiguous)."""
    fn.by_name = True
    return fn


def X(t, grad=None):
    return In("x", t, grad)


# ---------------------------------------------------------------------------------------
# Linear algebra
# ---------------------------------------------------------------------------------------
def matmul(a, b):
    return torch.matmul(a, b)


case("matmul/2d", "matmul", [In("a", normal(3, 4)), In("b", normal(4, 5))], matmul)
case("matmul/vec_mat", "matmul", [In("a", normal(4)), In("b", normal(4, 3))], matmul)
case("matmul/mat_vec", "matmul", [In("a", normal(3, 4)), In("b", normal(4))], matmul)
case("matmul/batched", "matmul", [In("a", normal(2, 3, 4)), In("b", normal(2, 4, 5))], matmul)
case("matmul/broadcast_3d_2d", "matmul", [In("a", normal(2, 3, 4)), In("b", normal(4, 5))], matmul)
case("matmul/broadcast_4d_3d", "matmul", [In("a", normal(2, 1, 3, 4)), In("b", normal(3, 4, 2))], matmul)
case("matmul/float64", "matmul", [In("a", normal(3, 4, dtype=f64)), In("b", normal(2, 4, 5, dtype=f64))], matmul)
case("matmul/bfloat16", "matmul", [In("a", normal(3, 8, dtype=bf16)), In("b", normal(8, 4, dtype=bf16))], matmul)
case("bmm/basic", "bmm", [In("a", normal(2, 3, 4)), In("b", normal(2, 4, 5))], lambda a, b: torch.bmm(a, b))
case("bmm/float64", "bmm", [In("a", normal(3, 2, 4, dtype=f64)), In("b", normal(3, 4, 2, dtype=f64))], lambda a, b: torch.bmm(a, b))
case("linear/bias", "linear", [X(normal(2, 3, 4)), In("weight", normal(5, 4)), In("bias", normal(5))], lambda x, w, b: F.linear(x, w, b))
case("linear/no_bias", "linear", [X(normal(3, 4)), In("weight", normal(2, 4))], lambda x, w: F.linear(x, w))
case("linear/float64", "linear", [X(normal(4, 3, dtype=f64)), In("weight", normal(2, 3, dtype=f64)), In("bias", normal(2, dtype=f64))], lambda x, w, b: F.linear(x, w, b))

# ---------------------------------------------------------------------------------------
# Element-wise binary ops (tensor operands broadcast; `other` kwarg is a scalar operand)
# ---------------------------------------------------------------------------------------
BINARY = {"add": torch.add, "sub": torch.sub, "mul": torch.mul, "div": torch.div}
for op, f in BINARY.items():
    den = (lambda *s, dtype=f32: nonzero(*s, dtype=dtype, min_abs=0.5)) if op == "div" else normal
    case(f"{op}/same_shape", op, [In("a", normal(2, 3, 4)), In("b", den(2, 3, 4))], f)
    case(f"{op}/broadcast_column", op, [In("a", normal(2, 3, 4)), In("b", den(3, 1))], f)
    case(f"{op}/broadcast_both", op, [In("a", normal(1, 3, 1)), In("b", den(2, 1, 4))], f)
    case(f"{op}/scalar_float", op, [In("a", normal(2, 3))], lambda a, other, f=f: f(a, other), {"other": 1.75})
    case(f"{op}/scalar_int", op, [In("a", normal(2, 3))], lambda a, other, f=f: f(a, other), {"other": 3})
    case(f"{op}/float64", op, [In("a", normal(2, 3, dtype=f64)), In("b", den(3, dtype=f64))], f)
case("add/int64", "add", [In("a", ints(-5, 5, 2, 3)), In("b", ints(-5, 5, 3))], torch.add)
case("add/int64_float_scalar", "add", [In("a", ints(-5, 5, 2, 3))], lambda a, other: a + other, {"other": 0.5})
case("div/int64_true_division", "div", [In("a", ints(-9, 9, 2, 3)), In("b", torch.tensor([2, -4, 7]))], torch.div)
case("add/bfloat16", "add", [In("a", normal(2, 3, 4, dtype=bf16)), In("b", normal(3, 4, dtype=bf16))], torch.add)
case("add/float16", "add", [In("a", normal(2, 3, 4, dtype=f16)), In("b", normal(4, dtype=f16))], torch.add)
case("mul/float16", "mul", [In("a", normal(2, 3, dtype=f16)), In("b", normal(2, 3, dtype=f16))], torch.mul)

case("pow/tensor_tensor", "pow", [In("a", uniform(0.5, 2.0, 2, 3, 4)), In("b", normal(4))], torch.pow)
case("pow/scalar_float", "pow", [In("a", uniform(0.5, 2.0, 2, 3))], lambda a, other: torch.pow(a, other), {"other": 2.5})
case("pow/scalar_int", "pow", [In("a", normal(2, 3))], lambda a, other: torch.pow(a, other), {"other": 3})
case("pow/scalar_negative", "pow", [In("a", uniform(0.5, 2.0, 2, 3))], lambda a, other: torch.pow(a, other), {"other": -0.5})
case("pow/float64", "pow", [In("a", uniform(0.5, 2.0, 3, 2, dtype=f64)), In("b", normal(3, 2, dtype=f64))], torch.pow)


def remainder_inputs(b, shape):
    """a = (k + u) * b with u in [0.15, 0.85]: away from remainder's jumps."""
    k = rng.integers(-3, 3, shape)
    u = rng.uniform(0.15, 0.85, shape)
    return torch.tensor(np.asarray((k + u) * (b.double().numpy() if isinstance(b, torch.Tensor) else b)), dtype=f32)


_rb = uniform(1.0, 2.0, 3, 4)
case("remainder/tensor", "remainder", [In("a", remainder_inputs(_rb, (3, 4))), In("b", _rb)], torch.remainder)
case("remainder/scalar", "remainder", [In("a", remainder_inputs(1.5, (2, 3)))], lambda a, other: torch.remainder(a, other), {"other": 1.5})
case("rsub/scalar", "rsub", [X(normal(2, 3))], lambda x, value: value - x, {"value": 2.5})
case("rsub/scalar_int", "rsub", [X(normal(4))], lambda x, value: value - x, {"value": 1})
case("maximum/broadcast", "maximum", [In("a", normal(2, 3, 4)), In("b", normal(3, 4))], torch.maximum)
case("minimum/broadcast", "minimum", [In("a", normal(2, 3, 4)), In("b", normal(3, 4))], torch.minimum)
case("maximum/float64", "maximum", [In("a", normal(3, 4, dtype=f64)), In("b", normal(3, 4, dtype=f64))], torch.maximum)

# ---------------------------------------------------------------------------------------
# Element-wise unary ops
# ---------------------------------------------------------------------------------------
UNARY = {
    "neg": (torch.neg, lambda: normal(2, 3, 4)),
    "abs": (torch.abs, lambda: nonzero(2, 3, 4)),
    "exp": (torch.exp, lambda: normal(2, 3, 4)),
    "log": (torch.log, lambda: uniform(0.2, 3.0, 2, 3, 4)),
    "log1p": (torch.log1p, lambda: uniform(-0.7, 2.0, 2, 3, 4)),
    "sqrt": (torch.sqrt, lambda: uniform(0.2, 3.0, 2, 3, 4)),
    "rsqrt": (torch.rsqrt, lambda: uniform(0.2, 3.0, 2, 3, 4)),
    "square": (torch.square, lambda: normal(2, 3, 4)),
    "tanh": (torch.tanh, lambda: normal(2, 3, 4, scale=2)),
    "erf": (torch.erf, lambda: normal(2, 3, 4)),
    "relu": (torch.relu, lambda: nonzero(2, 3, 4, min_abs=0.05)),
    "sigmoid": (torch.sigmoid, lambda: normal(2, 3, 4, scale=3)),
    "sin": (torch.sin, lambda: normal(2, 3, 4, scale=2)),
    "cos": (torch.cos, lambda: normal(2, 3, 4, scale=2)),
    "sign": (torch.sign, lambda: nonzero(2, 3, 4)),
}
for op, (f, make) in UNARY.items():
    case(f"{op}/basic", op, [X(make())], f)
case("exp/float64", "exp", [X(normal(3, 4, dtype=f64))], torch.exp)
case("log/float64", "log", [X(uniform(0.2, 3.0, 3, 4, dtype=f64))], torch.log)
case("tanh/float64", "tanh", [X(normal(3, 4, dtype=f64))], torch.tanh)
case("sqrt/scalar_0d", "sqrt", [X(torch.tensor(2.25))], torch.sqrt)
case("abs/int64", "abs", [X(ints(-5, 5, 6))], torch.abs)

for approximate in ("none", "tanh"):
    case(f"gelu/{approximate}", "gelu", [X(normal(2, 3, 4, scale=2))], lambda x, approximate: F.gelu(x, approximate=approximate), {"approximate": approximate})
    case(f"gelu/{approximate}_float64", "gelu", [X(normal(3, 4, dtype=f64, scale=2))], lambda x, approximate: F.gelu(x, approximate=approximate), {"approximate": approximate})
    case(f"gelu/{approximate}_bfloat16", "gelu", [X(normal(3, 8, dtype=bf16, scale=2))], lambda x, approximate: F.gelu(x, approximate=approximate), {"approximate": approximate})

_cx = away_from(normal(2, 3, 4, scale=1.5), [-0.5, 0.75])
case("clamp/min", "clamp", [X(_cx)], lambda x, min: torch.clamp(x, min=min), {"min": -0.5})
case("clamp/max", "clamp", [X(_cx)], lambda x, max: torch.clamp(x, max=max), {"max": 0.75})
case("clamp/both", "clamp", [X(_cx)], lambda x, min, max: torch.clamp(x, min=min, max=max), {"min": -0.5, "max": 0.75})
case("clamp/int_bounds", "clamp", [X(away_from(normal(3, 4, scale=2), [-1, 1]))], lambda x, min, max: torch.clamp(x, min=min, max=max), {"min": -1, "max": 1})

# ---------------------------------------------------------------------------------------
# Comparisons and logic (bool outputs, compared exactly)
# ---------------------------------------------------------------------------------------
_qa = ints(-2, 3, 3, 4).to(f32)  # small integers: plenty of exact ties for eq/le/ge
_qb = ints(-2, 3, 3, 4).to(f32)
for op in ("eq", "ne", "lt", "le", "gt", "ge"):
    f = getattr(torch, op)
    case(f"{op}/tensor", op, [In("a", _qa), In("b", _qb)], f)
    case(f"{op}/scalar", op, [In("a", _qa)], lambda a, other, f=f: f(a, other), {"other": 1})
case("lt/broadcast", "lt", [In("a", normal(2, 3, 4)), In("b", normal(4))], torch.lt)
case("ge/scalar_float", "ge", [In("a", normal(3, 4))], lambda a, other: torch.ge(a, other), {"other": 0.25})
case("eq/int64", "eq", [In("a", ints(0, 3, 5)), In("b", ints(0, 3, 5))], torch.eq)
case("eq/nan", "eq", [In("a", torch.tensor([1.0, float("nan"), float("inf")]))], lambda a, other: torch.eq(a, other), {"other": 1})
case("logical_and/broadcast", "logical_and", [In("a", bools(3, 4)), In("b", bools(4))], torch.logical_and)
case("logical_or/broadcast", "logical_or", [In("a", bools(3, 4)), In("b", bools(3, 1))], torch.logical_or)
case("logical_not/basic", "logical_not", [X(bools(3, 4))], torch.logical_not)
_special = torch.tensor([1.0, float("nan"), float("inf"), -float("inf"), -2.5, 0.0, float("nan"), 3e38])
case("isnan/basic", "isnan", [X(_special, grad=False)], torch.isnan)
case("isfinite/basic", "isfinite", [X(_special, grad=False)], torch.isfinite)
case("isfinite/float64", "isfinite", [X(torch.tensor([1e308, float("inf"), float("nan"), -1.0], dtype=f64), grad=False)], torch.isfinite)
case("any/some_true", "any", [X(bools(3, 4, p=0.2))], torch.any)
case("any/all_false", "any", [X(torch.zeros(2, 3, dtype=torch.bool))], torch.any)
case("all/all_true", "all", [X(torch.ones(2, 3, dtype=torch.bool))], torch.all)
case("all/some_false", "all", [X(bools(3, 4, p=0.8))], torch.all)

# ---------------------------------------------------------------------------------------
# Softmax, normalisation, embedding, dropout
# ---------------------------------------------------------------------------------------
case("softmax/last", "softmax", [X(normal(2, 3, 4, scale=2))], lambda x, dim: torch.softmax(x, dim), {"dim": -1})
case("softmax/dim0", "softmax", [X(normal(2, 3, 4, scale=2))], lambda x, dim: torch.softmax(x, dim), {"dim": 0})
case("softmax/float64", "softmax", [X(normal(3, 5, dtype=f64, scale=2))], lambda x, dim: torch.softmax(x, dim), {"dim": 1})
case("log_softmax/last", "log_softmax", [X(normal(2, 3, 4, scale=2))], lambda x, dim: torch.log_softmax(x, dim), {"dim": -1})
case("log_softmax/dim1", "log_softmax", [X(normal(2, 3, 4, scale=2))], lambda x, dim: torch.log_softmax(x, dim), {"dim": 1})
case("log_softmax/float64", "log_softmax", [X(normal(4, 3, dtype=f64, scale=2))], lambda x, dim: torch.log_softmax(x, dim), {"dim": 0})
_norm = lambda x, p, dim, eps: F.normalize(x, p=p, dim=dim, eps=eps)
case("normalize/l2_last", "normalize", [X(normal(2, 3, 4))], _norm, {"p": 2, "dim": -1, "eps": 1e-12})
case("normalize/l1_dim0", "normalize", [X(nonzero(3, 4))], _norm, {"p": 1, "dim": 0, "eps": 1e-12})
case("normalize/l2_dim1_float64", "normalize", [X(normal(2, 3, 4, dtype=f64))], _norm, {"p": 2, "dim": 1, "eps": 1e-12})
case("normalize/eps_floor", "normalize", [X(normal(2, 4, scale=1e-4))], _norm, {"p": 2, "dim": -1, "eps": 1e-2})

_ln = by_name(lambda x, weight=None, bias=None, *, normalized_shape, eps: F.layer_norm(x, normalized_shape, weight, bias, eps=eps))
case("layer_norm/affine", "layer_norm", [X(normal(2, 3, 4, shift=0.5)), In("weight", normal(4, shift=1)), In("bias", normal(4))], _ln, {"normalized_shape": [4], "eps": 1e-5})
case("layer_norm/no_affine", "layer_norm", [X(normal(2, 3, 4, scale=2))], _ln, {"normalized_shape": [4], "eps": 1e-5})
case("layer_norm/two_dims", "layer_norm", [X(normal(2, 3, 4)), In("weight", normal(3, 4, shift=1)), In("bias", normal(3, 4))], _ln, {"normalized_shape": [3, 4], "eps": 1e-6})
case("layer_norm/float64", "layer_norm", [X(normal(3, 5, dtype=f64)), In("weight", normal(5, dtype=f64, shift=1)), In("bias", normal(5, dtype=f64))], _ln, {"normalized_shape": [5], "eps": 1e-5})

_emb = by_name(lambda indices, weight, padding_idx=None: F.embedding(indices, weight, padding_idx=padding_idx))
_idx = torch.tensor([[0, 2, 5, 2], [1, 5, 2, 3]])  # repeats accumulate; 2 and 5 are padding below
case("embedding/basic", "embedding", [In("indices", _idx), In("weight", normal(6, 3))], _emb)
case("embedding/padding_idx", "embedding", [In("indices", _idx), In("weight", normal(6, 3))], _emb, {"padding_idx": 2})
case("embedding/padding_idx_negative", "embedding", [In("indices", _idx), In("weight", normal(6, 3))], _emb, {"padding_idx": -1})
case("embedding/1d_float64", "embedding", [In("indices", torch.tensor([3, 0, 3])), In("weight", normal(4, 2, dtype=f64))], _emb)

_drop = lambda x, p, training: F.dropout(x, p, training)
case("dropout/p0_train", "dropout", [X(normal(2, 3, 4))], _drop, {"p": 0.0, "training": True})
case("dropout/eval", "dropout", [X(normal(2, 3, 4))], _drop, {"p": 0.5, "training": False})
# Random mask: the test checks each output is 0 or x/(1-p), the zero fraction, and the
# gradient's agreement with the mask (the stored outputs are PyTorch's draw, not compared).
case("dropout/p05_train_statistics", "dropout", [X(normal(40, 50))], _drop, {"p": 0.5, "training": True}, check="dropout")

# ---------------------------------------------------------------------------------------
# Shapes and indexing
# ---------------------------------------------------------------------------------------
case("reshape/infer", "reshape", [X(normal(2, 3, 4))], lambda x, shape: x.reshape(shape), {"shape": [4, -1]})
case("reshape/flat", "reshape", [X(normal(2, 3, 4))], lambda x, shape: x.reshape(shape), {"shape": [24]})
case("reshape/scalar", "reshape", [X(normal(1, 1))], lambda x, shape: x.reshape(shape), {"shape": []})
case("view/basic", "view", [X(normal(2, 3, 4))], lambda x, shape: x.view(shape), {"shape": [6, 4]})
case("view/infer", "view", [X(normal(2, 3, 4))], lambda x, shape: x.view(shape), {"shape": [2, -1, 2]})
case("transpose/outer", "transpose", [X(normal(2, 3, 4))], lambda x, dim0, dim1: x.transpose(dim0, dim1), {"dim0": 0, "dim1": 2})
case("transpose/negative", "transpose", [X(normal(2, 3, 4))], lambda x, dim0, dim1: x.transpose(dim0, dim1), {"dim0": -1, "dim1": -2})
case("permute/basic", "permute", [X(normal(2, 3, 4))], lambda x, dims: x.permute(dims), {"dims": [2, 0, 1]})
case("permute/negative", "permute", [X(normal(2, 3, 4))], lambda x, dims: x.permute(dims), {"dims": [-1, 0, -2]})
# contiguous of a transposed view; the test also checks isContiguous()
case("contiguous/transposed", "contiguous", [X(normal(2, 3, 4))], lambda x, dim0, dim1: x.transpose(dim0, dim1).contiguous(), {"dim0": 0, "dim1": 1})
case("unsqueeze/front", "unsqueeze", [X(normal(3, 4))], lambda x, dim: x.unsqueeze(dim), {"dim": 0})
case("unsqueeze/last", "unsqueeze", [X(normal(3, 4))], lambda x, dim: x.unsqueeze(dim), {"dim": -1})
case("squeeze/all", "squeeze", [X(normal(2, 1, 4, 1))], lambda x: x.squeeze())
case("squeeze/dim", "squeeze", [X(normal(2, 1, 4, 1))], lambda x, dim: x.squeeze(dim), {"dim": 1})
case("squeeze/dim_not_one", "squeeze", [X(normal(2, 1, 4))], lambda x, dim: x.squeeze(dim), {"dim": 0})
case("expand/basic", "expand", [X(normal(3, 1))], lambda x, shape: x.expand(shape), {"shape": [2, 3, 4]})
case("expand/keep", "expand", [X(normal(1, 3, 1))], lambda x, shape: x.expand(shape), {"shape": [2, -1, 4]})
case("flatten/all", "flatten", [X(normal(2, 3, 4))], lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim), {"start_dim": 0, "end_dim": -1})
case("flatten/middle", "flatten", [X(normal(2, 3, 4, 2))], lambda x, start_dim, end_dim: x.flatten(start_dim, end_dim), {"start_dim": 1, "end_dim": 2})
case("cat/dim1", "cat", [In("a", normal(2, 1, 4)), In("b", normal(2, 3, 4)), In("c", normal(2, 2, 4))], lambda *xs, dim: torch.cat(xs, dim), {"dim": 1})
case("cat/dim_last", "cat", [In("a", normal(2, 3)), In("b", normal(2, 2))], lambda *xs, dim: torch.cat(xs, dim), {"dim": -1})
case("cat/int64", "cat", [In("a", ints(0, 9, 2)), In("b", ints(0, 9, 3))], lambda *xs, dim: torch.cat(xs, dim), {"dim": 0})
case("stack/dim0", "stack", [In("a", normal(2, 3)), In("b", normal(2, 3)), In("c", normal(2, 3))], lambda *xs, dim: torch.stack(xs, dim), {"dim": 0})
case("stack/dim_last", "stack", [In("a", normal(2, 3)), In("b", normal(2, 3))], lambda *xs, dim: torch.stack(xs, dim), {"dim": -1})


def _slice(x, dim, start, end, step):
    index = [slice(None)] * x.dim()
    index[dim] = slice(start, end, step)
    return x[tuple(index)]


case("slice/step", "slice", [X(normal(2, 5, 3))], _slice, {"dim": 1, "start": 0, "end": 5, "step": 2})
case("slice/end_clipped", "slice", [X(normal(2, 5, 3))], _slice, {"dim": -1, "start": 1, "end": 100, "step": 1})
case("slice/negative_start", "slice", [X(normal(6, 2))], _slice, {"dim": 0, "start": -4, "end": 5, "step": 3})
case("narrow/basic", "narrow", [X(normal(2, 5, 3))], lambda x, dim, start, length: x.narrow(dim, start, length), {"dim": 1, "start": 1, "length": 3})
case("narrow/last", "narrow", [X(normal(2, 5, 3))], lambda x, dim, start, length: x.narrow(dim, start, length), {"dim": -1, "start": 2, "length": 1})
case("select/basic", "select", [X(normal(2, 3, 4))], lambda x, dim, index: x.select(dim, index), {"dim": 1, "index": 2})
case("select/negative", "select", [X(normal(2, 3, 4))], lambda x, dim, index: x.select(dim, index), {"dim": 0, "index": -1})
case("index_select/rows", "index_select", [X(normal(4, 3)), In("index", torch.tensor([2, 0, 2, 3]))], lambda x, index, dim: torch.index_select(x, dim, index), {"dim": 0})
case("index_select/last", "index_select", [X(normal(2, 3, 4)), In("index", torch.tensor([3, 1]))], lambda x, index, dim: torch.index_select(x, dim, index), {"dim": -1})
case("gather/dim1", "gather", [X(normal(3, 4)), In("index", ints(0, 4, 3, 2))], lambda x, index, dim: torch.gather(x, dim, index), {"dim": 1})
case("gather/dim0_repeats", "gather", [X(normal(3, 4)), In("index", torch.tensor([[0, 2, 2, 1], [0, 0, 1, 2]]))], lambda x, index, dim: torch.gather(x, dim, index), {"dim": 0})
_mf = lambda x, mask, value: x.masked_fill(mask, value)
case("masked_fill/broadcast", "masked_fill", [X(normal(2, 3, 4)), In("mask", bools(3, 4))], _mf, {"value": -1e9})
case("masked_fill/neg_inf", "masked_fill", [X(normal(2, 4)), In("mask", bools(2, 4))], _mf, {"value": -math.inf})
case("masked_fill/float", "masked_fill", [X(normal(3, 4)), In("mask", bools(3, 4))], _mf, {"value": 0.25})
case("masked_fill/bool_tensor", "masked_fill", [X(bools(3, 4)), In("mask", bools(3, 4))], _mf, {"value": True})
case("where/tensors", "where", [In("condition", bools(2, 3, 4)), In("a", normal(2, 3, 4)), In("b", normal(3, 4))], lambda c, a, b: torch.where(c, a, b))
case("where/scalar_b", "where", [In("condition", bools(3, 4)), In("a", normal(3, 4))], lambda c, a, b: torch.where(c, a, b), {"b": 0.25})
case("where/scalar_a", "where", [In("condition", bools(3, 4)), In("b", normal(4))], lambda c, b, a: torch.where(c, a, b), {"a": -1.5})
case("where/scalars_float", "where", [In("condition", bools(3, 4))], lambda c, a, b: torch.where(c, a, b), {"a": 1.5, "b": -2.5})
# JavaScript numbers carry no int/float distinction, so Kiln reads two number branches as
# floats (float32), as Python reads 1.0 and 0.0; PyTorch's where(c, 1, 0) would be int64.
case("where/scalars_integral_values", "where", [In("condition", bools(3, 4))], lambda c, a, b: torch.where(c, a, b), {"a": 1.0, "b": 0.0})
case("where/scalars_bool", "where", [In("condition", bools(3, 4))], lambda c, a, b: torch.where(c, a, b), {"a": True, "b": False})
# a number branch promotes with the tensor branch as a Python scalar does (int64 with 0.5 → float32)
case("where/int64_tensor_float_scalar", "where", [In("condition", bools(3, 4)), In("a", ints(-5, 5, 3, 4))], lambda c, a, b: torch.where(c, a, b), {"b": 0.5})
case("where/float64_tensor_scalar", "where", [In("condition", bools(3, 4)), In("b", normal(3, 4, dtype=f64))], lambda c, b, a: torch.where(c, a, b), {"a": -1.5})
case("tril/basic", "tril", [X(normal(3, 4))], lambda x, diagonal: torch.tril(x, diagonal), {"diagonal": 0})
case("tril/batched_above", "tril", [X(normal(2, 4, 4))], lambda x, diagonal: torch.tril(x, diagonal), {"diagonal": 1})
case("triu/basic", "triu", [X(normal(3, 4))], lambda x, diagonal: torch.triu(x, diagonal), {"diagonal": 0})
case("triu/batched_below", "triu", [X(normal(2, 4, 4))], lambda x, diagonal: torch.triu(x, diagonal), {"diagonal": -1})
case("tril/bool_mask", "tril", [X(torch.ones(4, 4, dtype=torch.bool))], lambda x, diagonal: torch.tril(x, diagonal), {"diagonal": 0})

# ---------------------------------------------------------------------------------------
# Reductions
# ---------------------------------------------------------------------------------------
case("sum/all", "sum", [X(normal(2, 3, 4))], lambda x: x.sum())
case("sum/dims", "sum", [X(normal(2, 3, 4))], lambda x, dims, keepdim: x.sum(dims, keepdim=keepdim), {"dims": [0, 2], "keepdim": False})
case("sum/dim_keepdim", "sum", [X(normal(2, 3, 4))], lambda x, dims, keepdim: x.sum(dims, keepdim=keepdim), {"dims": 1, "keepdim": True})
case("sum/negative_dim", "sum", [X(normal(2, 3, 4))], lambda x, dims, keepdim: x.sum(dims, keepdim=keepdim), {"dims": -1, "keepdim": False})
case("sum/int64", "sum", [X(ints(-9, 9, 3, 4))], lambda x: x.sum())
case("sum/bool", "sum", [X(bools(3, 4))], lambda x, dims, keepdim: x.sum(dims, keepdim=keepdim), {"dims": [1], "keepdim": False})
case("sum/float64", "sum", [X(normal(3, 4, dtype=f64))], lambda x, dims, keepdim: x.sum(dims, keepdim=keepdim), {"dims": [0], "keepdim": True})
case("mean/all", "mean", [X(normal(2, 3, 4))], lambda x: x.mean())
case("mean/dims", "mean", [X(normal(2, 3, 4))], lambda x, dims, keepdim: x.mean(dims, keepdim=keepdim), {"dims": [0, -1], "keepdim": False})
case("mean/dim_keepdim", "mean", [X(normal(2, 3, 4))], lambda x, dims, keepdim: x.mean(dims, keepdim=keepdim), {"dims": 1, "keepdim": True})
case("mean/float64", "mean", [X(normal(3, 4, dtype=f64))], lambda x: x.mean())
case("max/all", "max", [X(distinct(2, 3, 4))], lambda x: x.max())
case("max/dim", "max", [X(distinct(2, 3, 4))], lambda x, dim, keepdim: tuple(x.max(dim, keepdim=keepdim)), {"dim": 1, "keepdim": False})
case("max/dim_keepdim", "max", [X(distinct(2, 3, 4))], lambda x, dim, keepdim: tuple(x.max(dim, keepdim=keepdim)), {"dim": -1, "keepdim": True})
case("max/int64", "max", [X(ints(-50, 50, 3, 4))], lambda x, dim, keepdim: tuple(x.max(dim, keepdim=keepdim)), {"dim": 0, "keepdim": False})
case("min/all", "min", [X(distinct(2, 3, 4))], lambda x: x.min())
case("min/dim", "min", [X(distinct(2, 3, 4))], lambda x, dim, keepdim: tuple(x.min(dim, keepdim=keepdim)), {"dim": 0, "keepdim": False})
case("min/dim_keepdim", "min", [X(distinct(2, 3, 4, dtype=f64))], lambda x, dim, keepdim: tuple(x.min(dim, keepdim=keepdim)), {"dim": 2, "keepdim": True})
case("argmax/all", "argmax", [X(distinct(2, 3, 4))], lambda x: x.argmax())
case("argmax/dim", "argmax", [X(distinct(2, 3, 4))], lambda x, dim, keepdim: x.argmax(dim, keepdim=keepdim), {"dim": 1, "keepdim": False})
case("argmax/dim_keepdim", "argmax", [X(distinct(2, 3, 4))], lambda x, dim, keepdim: x.argmax(dim, keepdim=keepdim), {"dim": -1, "keepdim": True})
_lse = lambda x, dims, keepdim: torch.logsumexp(x, dims, keepdim=keepdim)
case("logsumexp/last", "logsumexp", [X(normal(2, 3, 4, scale=3))], _lse, {"dims": -1, "keepdim": False})
case("logsumexp/dims_keepdim", "logsumexp", [X(normal(2, 3, 4, scale=3))], _lse, {"dims": [0, 2], "keepdim": True})
case("logsumexp/float64", "logsumexp", [X(normal(3, 4, dtype=f64, scale=3))], _lse, {"dims": [1], "keepdim": False})
_pn = lambda x, p, dims, keepdim: torch.norm(x, p, dims, keepdim)
case("norm/l2_last", "norm", [X(normal(2, 3, 4))], _pn, {"p": 2, "dims": -1, "keepdim": False})
case("norm/l1_keepdim", "norm", [X(nonzero(2, 3, 4))], _pn, {"p": 1, "dims": [1], "keepdim": True})
case("norm/p3_dims", "norm", [X(normal(2, 3, 4))], _pn, {"p": 3, "dims": [0, 2], "keepdim": False})
case("norm/p2.5_float64", "norm", [X(normal(3, 4, dtype=f64))], _pn, {"p": 2.5, "dims": [-1], "keepdim": False})
_topk = lambda x, k, dim, largest, sorted: tuple(torch.topk(x, k, dim, largest, sorted))
case("topk/largest", "topk", [X(distinct(2, 3, 5))], _topk, {"k": 2, "dim": -1, "largest": True, "sorted": True})
case("topk/smallest_dim0", "topk", [X(distinct(4, 3))], _topk, {"k": 3, "dim": 0, "largest": False, "sorted": True})
case("topk/unsorted", "topk", [X(distinct(3, 6))], _topk, {"k": 3, "dim": 1, "largest": True, "sorted": False})
_sort = lambda x, dim, descending, stable: tuple(torch.sort(x, dim=dim, descending=descending, stable=stable))
case("sort/ascending", "sort", [X(distinct(2, 3, 5))], _sort, {"dim": -1, "descending": False, "stable": False})
case("sort/descending_dim0", "sort", [X(distinct(4, 3))], _sort, {"dim": 0, "descending": True, "stable": False})
# ties: a stable sort's order is defined; the gradient through the permutation is too
case("sort/stable_ties", "sort", [X(ints(0, 3, 2, 8).to(f32))], _sort, {"dim": 1, "descending": False, "stable": True})
case("sort/stable_ties_descending", "sort", [X(ints(0, 3, 9).to(f32))], _sort, {"dim": 0, "descending": True, "stable": True})
case("cumsum/dim1", "cumsum", [X(normal(2, 3, 4))], lambda x, dim: torch.cumsum(x, dim), {"dim": 1})
case("cumsum/last", "cumsum", [X(normal(2, 3, 4))], lambda x, dim: torch.cumsum(x, dim), {"dim": -1})
case("cumsum/float64", "cumsum", [X(normal(5, dtype=f64))], lambda x, dim: torch.cumsum(x, dim), {"dim": 0})
case("cumsum/int64", "cumsum", [X(ints(-5, 5, 6))], lambda x, dim: torch.cumsum(x, dim), {"dim": 0})

# ---------------------------------------------------------------------------------------
# Losses
# ---------------------------------------------------------------------------------------
@by_name
def _ce(input, target, weight=None, reduction="mean", ignore_index=-100, label_smoothing=0.0):
    return F.cross_entropy(input, target, weight=weight, reduction=reduction, ignore_index=ignore_index, label_smoothing=label_smoothing)


_t = torch.tensor([1, 4, 0, 2])
for reduction in ("mean", "sum", "none"):
    case(f"cross_entropy/{reduction}", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", _t)], _ce, {"reduction": reduction})
case("cross_entropy/weight", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", _t), In("weight", uniform(0.5, 2, 5), grad=False)], _ce, {"reduction": "mean"})
case("cross_entropy/weight_sum", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", _t), In("weight", uniform(0.5, 2, 5), grad=False)], _ce, {"reduction": "sum"})
case("cross_entropy/ignore_default", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", torch.tensor([1, -100, 0, 3]))], _ce, {"reduction": "mean"})
case("cross_entropy/ignore_index", "cross_entropy", [In("input", normal(5, 3, scale=2)), In("target", torch.tensor([1, 2, 0, 2, 1]))], _ce, {"reduction": "mean", "ignore_index": 2})
case("cross_entropy/label_smoothing", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", _t)], _ce, {"reduction": "mean", "label_smoothing": 0.1})
case("cross_entropy/smoothing_weight_ignore", "cross_entropy", [In("input", normal(5, 4, scale=2)), In("target", torch.tensor([3, 0, -100, 1, 3])), In("weight", uniform(0.5, 2, 4), grad=False)], _ce, {"reduction": "mean", "label_smoothing": 0.2})
case("cross_entropy/smoothing_none", "cross_entropy", [In("input", normal(4, 5, scale=2)), In("target", _t)], _ce, {"reduction": "none", "label_smoothing": 0.15})
case("cross_entropy/probabilities", "cross_entropy", [In("input", normal(3, 5, scale=2)), In("target", probs(3, 5))], _ce, {"reduction": "mean"})
case("cross_entropy/probabilities_smoothing", "cross_entropy", [In("input", normal(3, 5, scale=2)), In("target", probs(3, 5), grad=False)], _ce, {"reduction": "sum", "label_smoothing": 0.1})
case("cross_entropy/probabilities_weight_none", "cross_entropy", [In("input", normal(3, 4, scale=2)), In("target", probs(3, 4), grad=False), In("weight", uniform(0.5, 2, 4), grad=False)], _ce, {"reduction": "none"})
case("cross_entropy/k_dim", "cross_entropy", [In("input", normal(2, 5, 3, scale=2)), In("target", ints(0, 5, 2, 3))], _ce, {"reduction": "mean"})
case("cross_entropy/float64", "cross_entropy", [In("input", normal(4, 3, dtype=f64, scale=2)), In("target", torch.tensor([2, 0, 1, 1]))], _ce, {"reduction": "mean", "label_smoothing": 0.05})


@by_name
def _bce(input, target, weight=None, pos_weight=None, reduction="mean"):
    return F.binary_cross_entropy_with_logits(input, target, weight=weight, pos_weight=pos_weight, reduction=reduction)


for reduction in ("mean", "sum", "none"):
    case(f"bce_with_logits/{reduction}", "bce_with_logits", [In("input", normal(3, 4, scale=2)), In("target", uniform(0, 1, 3, 4), grad=False)], _bce, {"reduction": reduction})
case("bce_with_logits/hard_targets", "bce_with_logits", [In("input", normal(3, 4, scale=4)), In("target", bools(3, 4).to(f32), grad=False)], _bce, {"reduction": "mean"})
case("bce_with_logits/weight", "bce_with_logits", [In("input", normal(3, 4, scale=2)), In("target", uniform(0, 1, 3, 4), grad=False), In("weight", uniform(0.5, 2, 4), grad=False)], _bce, {"reduction": "mean"})
case("bce_with_logits/pos_weight", "bce_with_logits", [In("input", normal(3, 4, scale=2)), In("target", uniform(0, 1, 3, 4), grad=False), In("pos_weight", uniform(0.5, 3, 4), grad=False)], _bce, {"reduction": "sum"})
case("bce_with_logits/weight_pos_weight_none", "bce_with_logits", [In("input", normal(3, 4, scale=2)), In("target", uniform(0, 1, 3, 4), grad=False), In("weight", uniform(0.5, 2, 3, 1), grad=False), In("pos_weight", uniform(0.5, 3, 4), grad=False)], _bce, {"reduction": "none"})
case("bce_with_logits/target_grad", "bce_with_logits", [In("input", normal(2, 3, scale=2)), In("target", uniform(0, 1, 2, 3))], _bce, {"reduction": "mean"})
case("bce_with_logits/float64", "bce_with_logits", [In("input", normal(3, 2, dtype=f64, scale=2)), In("target", uniform(0, 1, 3, 2, dtype=f64), grad=False)], _bce, {"reduction": "mean"})

_mse = lambda x, target, reduction: F.mse_loss(x, target, reduction=reduction)
for reduction in ("mean", "sum", "none"):
    case(f"mse_loss/{reduction}", "mse_loss", [In("input", normal(2, 3, 4)), In("target", normal(2, 3, 4))], _mse, {"reduction": reduction})
case("mse_loss/float64", "mse_loss", [In("input", normal(3, 4, dtype=f64)), In("target", normal(3, 4, dtype=f64))], _mse, {"reduction": "mean"})

_kl = lambda x, target, reduction, log_target: F.kl_div(x, target, reduction=reduction, log_target=log_target)
for reduction in ("none", "sum", "mean", "batchmean"):
    case(f"kl_div/{reduction}", "kl_div", [In("input", torch.log_softmax(normal(3, 5), -1)), In("target", probs(3, 5))], _kl, {"reduction": reduction, "log_target": False})
case("kl_div/log_target_batchmean", "kl_div", [In("input", torch.log_softmax(normal(4, 3), -1)), In("target", torch.log(probs(4, 3)))], _kl, {"reduction": "batchmean", "log_target": True})
case("kl_div/log_target_none", "kl_div", [In("input", torch.log_softmax(normal(2, 3, 4), -1)), In("target", torch.log(probs(2, 3, 4)), grad=False)], _kl, {"reduction": "none", "log_target": True})
case("kl_div/batchmean_float64", "kl_div", [In("input", torch.log_softmax(normal(3, 4, dtype=f64), -1)), In("target", probs(3, 4, dtype=f64))], _kl, {"reduction": "batchmean", "log_target": False})

# ---------------------------------------------------------------------------------------
# Casts, copies
# ---------------------------------------------------------------------------------------
def _to_chain(x, dtypes):
    for d in dtypes:
        x = x.to(getattr(torch, d))
    return x


case("to/float32_to_float64", "to", [X(normal(3, 4))], _to_chain, {"dtypes": ["float64"]})
case("to/float64_to_float32", "to", [X(normal(3, 4, dtype=f64))], _to_chain, {"dtypes": ["float32"]})
case("to/bfloat16_roundtrip", "to", [X(normal(3, 4))], _to_chain, {"dtypes": ["bfloat16", "float32"]})
case("to/float16_roundtrip", "to", [X(normal(3, 4, scale=100))], _to_chain, {"dtypes": ["float16", "float32"]})
case("to/bfloat16", "to", [X(normal(3, 4), grad=False)], _to_chain, {"dtypes": ["bfloat16"]})
case("to/float32_to_int64", "to", [X(normal(3, 4, scale=5))], _to_chain, {"dtypes": ["int64"]})
case("to/int64_to_float32", "to", [X(ints(-9, 9, 5))], _to_chain, {"dtypes": ["float32"]})
case("to/bool_to_float32", "to", [X(bools(5))], _to_chain, {"dtypes": ["float32"]})
case("to/float32_to_bool", "to", [X(torch.tensor([0.0, 1.5, -2.0, 0.0]))], _to_chain, {"dtypes": ["bool"]})
case("float/from_float64", "float", [X(normal(3, 2, dtype=f64))], lambda x: x.float())
case("float/from_int64", "float", [X(ints(-9, 9, 4))], lambda x: x.float())
case("clone/basic", "clone", [X(normal(2, 3))], lambda x: x.clone())
case("detach/basic", "detach", [X(normal(2, 3))], lambda x: x.detach())

# ---------------------------------------------------------------------------------------
# In-place ops (applied to a clone of the input, so gradients flow through the clone)
# ---------------------------------------------------------------------------------------
case("zero_/basic", "zero_", [X(normal(2, 3))], lambda x: x.clone().zero_())
case("fill_/float", "fill_", [X(normal(2, 3))], lambda x, value: x.clone().fill_(value), {"value": 2.5})
case("fill_/int64", "fill_", [X(ints(0, 5, 4))], lambda x, value: x.clone().fill_(value), {"value": 7})
case("copy_/broadcast", "copy_", [X(normal(3, 4)), In("source", normal(4))], lambda x, source: x.clone().copy_(source))
case("copy_/cast", "copy_", [X(normal(2, 3)), In("source", normal(2, 3, dtype=f64))], lambda x, source: x.clone().copy_(source))
case("add_/alpha", "add_", [X(normal(2, 3)), In("other", normal(2, 3))], lambda x, other, alpha: x.clone().add_(other, alpha=alpha), {"alpha": 0.5})
case("add_/broadcast", "add_", [X(normal(2, 3)), In("other", normal(3))], lambda x, other, alpha: x.clone().add_(other, alpha=alpha), {"alpha": 1})
case("mul_/tensor", "mul_", [X(normal(2, 3)), In("other", normal(2, 3))], lambda x, other: x.clone().mul_(other))
case("mul_/scalar", "mul_", [X(normal(2, 3))], lambda x, other: x.clone().mul_(other), {"other": -1.5})


def _seeded(fn):
    def run(*xs, seed, **kw):
        torch.manual_seed(seed)
        return fn(*xs, **kw)

    return run


case("normal_/seeded", "normal_", [], _seeded(lambda shape, mean, std: torch.zeros(shape).normal_(mean, std)), {"seed": 11, "shape": [4, 5], "mean": 1.0, "std": 2.0})
case("uniform_/seeded", "uniform_", [], _seeded(lambda shape, low, high: torch.zeros(shape).uniform_(low, high)), {"seed": 12, "shape": [3, 7], "low": -1.0, "high": 3.0})

# ---------------------------------------------------------------------------------------
# Creation (deterministic values; random factories after manual_seed, same libtorch)
# ---------------------------------------------------------------------------------------
def _dt(name):
    return getattr(torch, name)


case("zeros/float32", "zeros", [], lambda shape, dtype: torch.zeros(shape, dtype=_dt(dtype)), {"shape": [2, 3], "dtype": "float32"})
case("zeros/int64", "zeros", [], lambda shape, dtype: torch.zeros(shape, dtype=_dt(dtype)), {"shape": [4], "dtype": "int64"})
case("ones/float64", "ones", [], lambda shape, dtype: torch.ones(shape, dtype=_dt(dtype)), {"shape": [2, 2, 2], "dtype": "float64"})
case("ones/bool", "ones", [], lambda shape, dtype: torch.ones(shape, dtype=_dt(dtype)), {"shape": [3], "dtype": "bool"})
case("full/float32", "full", [], lambda shape, value, dtype: torch.full(shape, value, dtype=_dt(dtype)), {"shape": [2, 3], "value": 3.5, "dtype": "float32"})
case("full/int64", "full", [], lambda shape, value, dtype: torch.full(shape, value, dtype=_dt(dtype)), {"shape": [3], "value": -7, "dtype": "int64"})
case("full/bool", "full", [], lambda shape, value, dtype: torch.full(shape, value, dtype=_dt(dtype)), {"shape": [2, 2], "value": True, "dtype": "bool"})
case("full/neg_inf", "full", [], lambda shape, value, dtype: torch.full(shape, value, dtype=_dt(dtype)), {"shape": [2], "value": -math.inf, "dtype": "float32"})
_ar = lambda start, end, step, dtype: torch.arange(start, end, step, dtype=_dt(dtype))
case("arange/int64", "arange", [], _ar, {"start": 0, "end": 5, "step": 1, "dtype": "int64"})
case("arange/int64_step", "arange", [], _ar, {"start": -3, "end": 4, "step": 2, "dtype": "int64"})
case("arange/float32_fraction", "arange", [], _ar, {"start": 0, "end": 1, "step": 0.25, "dtype": "float32"})
case("arange/float64", "arange", [], _ar, {"start": 1, "end": 2.5, "step": 0.1, "dtype": "float64"})
case("empty/shape", "empty", [], lambda shape, dtype: torch.empty(shape, dtype=_dt(dtype)), {"shape": [2, 3], "dtype": "float32"}, check="shape")
case("zeros_like/float64", "zeros_like", [X(normal(2, 3, dtype=f64), grad=False)], torch.zeros_like)
case("ones_like/int64", "ones_like", [X(ints(0, 5, 3, 2))], torch.ones_like)
case("tensor/nested_float", "tensor", [], lambda data, dtype: torch.tensor(data, dtype=_dt(dtype)), {"data": [[1.5, -2.25, 3.0], [0.1, 1e-8, -7.0]], "dtype": "float32"})
case("tensor/nested_int64", "tensor", [], lambda data, dtype: torch.tensor(data, dtype=_dt(dtype)), {"data": [[101, 2054], [102, 0]], "dtype": "int64"})
case("tensor/nested_bool", "tensor", [], lambda data: torch.tensor(data), {"data": [[True, False], [False, True]]})
case("tensor/float64", "tensor", [], lambda data, dtype: torch.tensor(data, dtype=_dt(dtype)), {"data": [0.1, 0.2, 1e-300], "dtype": "float64"})
case("tensor/bfloat16", "tensor", [], lambda data, dtype: torch.tensor(data, dtype=_dt(dtype)), {"data": [0.1, 1.0, 3.14159, -250.0], "dtype": "bfloat16"})

_rn = _seeded(lambda shape, dtype: torch.randn(shape, dtype=_dt(dtype)))
case("randn/seed7", "randn", [], _rn, {"seed": 7, "shape": [3, 4], "dtype": "float32"})
case("randn/seed123_vectorized", "randn", [], _rn, {"seed": 123, "shape": [5, 7], "dtype": "float32"})  # >= 16 elements: normal_fill path
case("randn/float64", "randn", [], _rn, {"seed": 3, "shape": [4, 5], "dtype": "float64"})
case("rand/seed7", "rand", [], _seeded(lambda shape, dtype: torch.rand(shape, dtype=_dt(dtype))), {"seed": 7, "shape": [4, 5], "dtype": "float32"})
case("rand/float64", "rand", [], _seeded(lambda shape, dtype: torch.rand(shape, dtype=_dt(dtype))), {"seed": 8, "shape": [6], "dtype": "float64"})
case("randint/seed7", "randint", [], _seeded(lambda low, high, shape: torch.randint(low, high, shape)), {"seed": 7, "low": 0, "high": 10, "shape": [3, 4]})
case("randint/negative_range", "randint", [], _seeded(lambda low, high, shape: torch.randint(low, high, shape)), {"seed": 9, "low": -5, "high": 30000, "shape": [20]})
case("randperm/seed7", "randperm", [], _seeded(lambda n: torch.randperm(n)), {"seed": 7, "n": 10})


def main():
    cases = sorted(CASES, key=lambda c: c["name"])
    doc = {
        "generator": "test/reference/gen_cases.py",
        "torch": torch.__version__,
        "numpy": np.__version__,
        "seed": SEED,
        "cases": cases,
    }
    tmp = OUT + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, allow_nan=False, separators=(",", ":"))
        f.write("\n")
    os.replace(tmp, OUT)
    print(f"gen_cases.py: wrote {len(cases)} cases to {os.path.relpath(OUT)}", file=sys.stderr)


if __name__ == "__main__":
    main()

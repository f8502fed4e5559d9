"""Reference values and gradients for src/losses, in plain PyTorch float64.

Reads {"cases": [...]} as JSON on stdin and writes {"results": [...]} on stdout. Each case has
`loss` ('bce' | 'infonce' | 'vp_matrix'), `options` (the loss's full option object, defaults
applied), `scores` [B][C], and optional `positive_index` [B], `exclude` [B][C] (bools),
`teacher` [B][C] and `groups` [B]. Each result has `value`, `grad_scores` [B][C] and
`grad_params` {parameter name: gradient} for the learnable scalars.

Written independently of the Kiln implementation: the BCE uses
F.binary_cross_entropy_with_logits on the kept entries, InfoNCE uses F.cross_entropy, and the
VP-matrix loss forms the explicit n x n V and P matrices (n = kept pairs) and average ranks by
counting. Cases with `chunked: true` (n too large for an n x n matrix in memory) evaluate the
same explicit matrices block by block without autograd; the gradient then comes from
d(r'Mr/n^2)/dr = 2Mr/n^2 by the chain rule through r = y - sigmoid(a s + b).
"""
import json
import math
import sys

import torch
import torch.nn.functional as F

F64 = torch.float64


def prepare(case):
    s = torch.tensor(case["scores"], dtype=F64, requires_grad=True)
    B, C = s.shape
    if case.get("positive_index") is not None:
        pos = torch.tensor(case["positive_index"], dtype=torch.long)
    else:
        pos = torch.arange(B)
    positive = F.one_hot(pos, C).bool()
    if case.get("exclude") is not None:
        excl = torch.tensor(case["exclude"], dtype=torch.bool)
    else:
        excl = torch.zeros(B, C, dtype=torch.bool)
    excl = excl & ~positive  # a query's own positive is never excluded
    teacher = torch.tensor(case["teacher"], dtype=F64) if case.get("teacher") is not None else None
    return s, pos, positive, excl, teacher


def leaf(value):
    return torch.tensor(value, dtype=F64, requires_grad=True)


def affine(o, leaves):
    if o["learnable_scale"]:
        leaves["log_scale"] = leaf(math.log(o["scale"]))
        scale = leaves["log_scale"].exp()
    else:
        scale = o["scale"]
    if o["learnable_bias"]:
        leaves["bias"] = leaf(o["bias"])
        bias = leaves["bias"]
    else:
        bias = o["bias"]
    return scale, bias


def bce(case, o):
    s, pos, positive, excl, _ = prepare(case)
    leaves = {}
    scale, bias = affine(o, leaves)
    z = scale * s + bias
    keep = ~excl
    loss = F.binary_cross_entropy_with_logits(
        z[keep], positive.to(F64)[keep], pos_weight=torch.tensor(o["pos_weight"], dtype=F64)
    )
    return s, leaves, loss


def infonce(case, o):
    s, pos, positive, excl, _ = prepare(case)
    B = s.shape[0]
    leaves = {}
    if o["learnable_temperature"]:
        leaves["log_temperature"] = leaf(math.log(o["temperature"]))
        tau = leaves["log_temperature"].exp()
    else:
        tau = o["temperature"]
    logits = (s / tau).masked_fill(excl, float("-inf"))
    loss = F.cross_entropy(logits, pos)
    if o["symmetric"]:
        inverse = torch.empty(B, dtype=torch.long)
        inverse[pos] = torch.arange(B)
        loss = (loss + F.cross_entropy(logits[:, :B].t(), inverse)) / 2
    return s, leaves, loss


def average_rank_u(key):
    """u_k = (average 1-based rank of key_k among all n keys) / n, ties averaged, by counting."""
    n = key.numel()
    out = torch.empty(n, dtype=F64)
    for start in range(0, n, 2048):
        k = key[start : start + 2048, None]
        lt = (key[None, :] < k).sum(1)
        le = (key[None, :] <= k).sum(1)
        out[start : start + 2048] = (lt + 1 + le).to(F64) / 2
    return out / n


def vp_pieces(case, o, s, positive, excl, teacher, scale, bias):
    B, C = s.shape
    f = torch.sigmoid(scale * s + bias)
    y = teacher if o["target"] == "teacher" else positive.to(F64)
    use_teacher_key = o["key"] == "teacher" or (o["key"] == "auto" and teacher is not None)
    key_full = teacher if use_teacher_key else positive.to(F64)
    idx = (~excl).flatten().nonzero().squeeze(1)
    n = idx.numel()
    r = (y - f).flatten()[idx]
    u = average_rank_u(key_full.flatten()[idx])
    cols = [torch.ones(n, dtype=F64)]
    if teacher is not None:
        cols.append(teacher.flatten()[idx])
    if o["group_predicates"]:
        groups = torch.tensor(case["groups"], dtype=torch.long)
        g = groups[idx // C]
        for gid in sorted(set(case["groups"])):
            cols.append((g == gid).to(F64))
    phi = torch.stack(cols, 1)
    return f, idx, n, r, u, phi


def vp_matrix(case, o):
    s, pos, positive, excl, teacher = prepare(case)
    leaves = {}
    scale, bias = affine(o, leaves)
    f, idx, n, r, u, phi = vp_pieces(case, o, s, positive, excl, teacher, scale, bias)
    V = 1 - torch.maximum(u[:, None], u[None, :])
    P = phi @ phi.t() / phi.shape[1]
    M = o["tau"] * V + (1 - o["tau"]) * P
    loss = r @ M @ r / n**2
    return s, leaves, loss


def vp_matrix_chunked(case, o):
    """Same matrices, block by block; value and d/ds only (no learnable parameters)."""
    assert not o["learnable_scale"] and not o["learnable_bias"]
    s, pos, positive, excl, teacher = prepare(case)
    s = s.detach()
    B, C = s.shape
    with torch.no_grad():
        f, idx, n, r, u, phi = vp_pieces(case, o, s, positive, excl, teacher, o["scale"], o["bias"])
        m = phi.shape[1]
        Mr = torch.empty(n, dtype=F64)
        for start in range(0, n, 1024):
            V = 1 - torch.maximum(u[start : start + 1024, None], u[None, :])
            P = phi[start : start + 1024] @ phi.t() / m
            Mr[start : start + 1024] = (o["tau"] * V + (1 - o["tau"]) * P) @ r
        value = (r @ Mr / n**2).item()
        grad_r = 2 * Mr / n**2
        f_kept = f.flatten()[idx]
        grad = torch.zeros(B * C, dtype=F64)
        grad[idx] = -grad_r * f_kept * (1 - f_kept) * o["scale"]
    return {"value": value, "grad_scores": grad.view(B, C).tolist(), "grad_params": {}}


LOSSES = {"bce": bce, "infonce": infonce, "vp_matrix": vp_matrix}


def run(case):
    if case.get("chunked"):
        return vp_matrix_chunked(case, case["options"])
    s, leaves, loss = LOSSES[case["loss"]](case, case["options"])
    loss.backward()
    return {
        "value": loss.item(),
        "grad_scores": s.grad.tolist(),
        "grad_params": {name: t.grad.item() for name, t in leaves.items()},
    }


def main():
    spec = json.load(sys.stdin)
    json.dump({"results": [run(case) for case in spec["cases"]]}, sys.stdout)


if __name__ == "__main__":
    main()

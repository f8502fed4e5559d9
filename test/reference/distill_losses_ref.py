"""Reference values and gradients for Kiln's distillation losses, in plain PyTorch float64.

Usage: /usr/bin/python3 distill_losses_ref.py < request.json   (test/distill-losses.test.ts)

Reads {"cases": [...]} as JSON on stdin and writes {"results": [...]} on stdout. Each case has
`loss` (embedding_mse | similarity_kl | margin_mse | hidden_mse | attention_kl), `options` (the
loss's full option object, defaults applied), `inputs` (nested lists, see below) and `params`
{name: {shape, data}}: the learned projections Kiln created, so both sides use the same
weights. Each result has `value`, `grad_inputs` {input name: flat gradient} and `grad_params`
{name: flat gradient}.

Written from the formulas in docs/losses.md, independently of the Kiln code: whole-tensor
masking there, per-row selection and boolean indexing with F.mse_loss / F.kl_div /
F.log_softmax / F.normalize here.

  embedding_mse  inputs student [N, Hs], teacher [N, Ht]
                 L = F.mse_loss(proj(s), t), optionally F.normalize'd first
  similarity_kl  inputs student, teacher [B, C], positive_index [B] | null, exclude [B, C] | null
                 L = (1/B) sum_i KL(softmax(t_i/tau_t) || softmax(s_i/tau_s)) over row i's kept
                 columns (selected per row), times tau_s^2 with scale_by_temperature
  margin_mse     same inputs; L = F.mse_loss over the list of kept (i, j != p_i) margins
  hidden_mse     inputs student_hidden K x [N, L, Hs], teacher_hidden K x [N, L, Ht], mask [N, L]
                 L = mean_k F.mse_loss(proj_k(h_s)[mask], h_t[mask])
  attention_kl   inputs student_attentions K x [N, H, L, L], teacher_attentions, mask [N, L]
                 L = mean_k F.kl_div(log(clamp(a_s, eps)), a_t, batchmean) over the real query
                 rows, heads averaged first (or each head a row of its own)
"""
import json
import sys

import torch
import torch.nn.functional as F

F64 = torch.float64
EPS = 1e-12


def t64(x, grad=False):
    return torch.tensor(x, dtype=F64, requires_grad=grad)


def load_params(case):
    return {name: torch.tensor(p["data"], dtype=F64).reshape(p["shape"]).requires_grad_(True) for name, p in case["params"].items()}


def kept_columns(inp, B, C):
    """Per row: the list of kept column indices, and the positive column."""
    pos = inp.get("positive_index") or [0] * B
    excl = inp.get("exclude") or [[False] * C for _ in range(B)]
    rows = []
    for i in range(B):
        rows.append([j for j in range(C) if j == pos[i] or not excl[i][j]])
    return rows, pos


def embedding_mse(case, params):
    inp, o = case["inputs"], case["options"]
    s = t64(inp["student"], True)
    t = t64(inp["teacher"])
    p = F.linear(s, params["projection.weight"], params["projection.bias"]) if params else s
    if o["normalize"]:
        p, t = F.normalize(p, dim=-1), F.normalize(t, dim=-1)
    return F.mse_loss(p, t), {"student": s}


def similarity_kl(case, params):
    inp, o = case["inputs"], case["options"]
    s = t64(inp["student"], True)
    t = t64(inp["teacher"])
    B, C = s.shape
    rows, _ = kept_columns(inp, B, C)
    total = s.new_zeros(())
    for i, cols in enumerate(rows):
        idx = torch.tensor(cols)
        log_q = F.log_softmax(s[i, idx] / o["student_temperature"], dim=0)
        log_p = F.log_softmax(t[i, idx] / o["teacher_temperature"], dim=0)
        total = total + F.kl_div(log_q, log_p, reduction="sum", log_target=True)
    loss = total / B
    if o["scale_by_temperature"]:
        loss = loss * o["student_temperature"] ** 2
    return loss, {"student": s}


def margin_mse(case, params):
    inp, o = case["inputs"], case["options"]
    s = t64(inp["student"], True)
    t = t64(inp["teacher"])
    B, C = s.shape
    rows, pos = kept_columns(inp, B, C)
    student_margins, teacher_margins = [], []
    for i, cols in enumerate(rows):
        for j in cols:
            if j == pos[i]:
                continue
            student_margins.append(s[i, pos[i]] - s[i, j])
            teacher_margins.append(t[i, pos[i]] - t[i, j])
    loss = F.mse_loss(torch.stack(student_margins), o["margin_scale"] * torch.stack(teacher_margins))
    return loss, {"student": s}


def hidden_mse(case, params):
    inp = case["inputs"]
    hs = [t64(h, True) for h in inp["student_hidden"]]
    ht = [t64(h) for h in inp["teacher_hidden"]]
    real = torch.tensor(inp["mask"]).bool()
    terms = []
    for k, (a, b) in enumerate(zip(hs, ht)):
        p = F.linear(a, params[f"projections.{k}.weight"], params[f"projections.{k}.bias"]) if params else a
        terms.append(F.mse_loss(p[real], b[real]))  # (T, Ht) rows of the real tokens
    return torch.stack(terms).mean(), {f"student_hidden.{k}": h for k, h in enumerate(hs)}


def attention_kl(case, params):
    inp, o = case["inputs"], case["options"]
    a_s = [t64(a, True) for a in inp["student_attentions"]]
    a_t = [t64(a) for a in inp["teacher_attentions"]]
    real = torch.tensor(inp["mask"]).bool()
    terms = []
    for s, t in zip(a_s, a_t):
        if o["average_heads"]:
            s_rows, t_rows = s.mean(1)[real], t.mean(1)[real]  # (T, L): one distribution per real query
        else:
            L = s.shape[-1]
            s_rows = s.permute(0, 2, 1, 3)[real].reshape(-1, L)  # (T * H, L)
            t_rows = t.permute(0, 2, 1, 3)[real].reshape(-1, L)
        terms.append(F.kl_div(torch.log(s_rows.clamp_min(EPS)), t_rows, reduction="batchmean"))
    return torch.stack(terms).mean(), {f"student_attentions.{k}": a for k, a in enumerate(a_s)}


LOSSES = {
    "embedding_mse": embedding_mse,
    "similarity_kl": similarity_kl,
    "margin_mse": margin_mse,
    "hidden_mse": hidden_mse,
    "attention_kl": attention_kl,
}


def main():
    torch.set_num_threads(1)
    results = []
    for case in json.load(sys.stdin)["cases"]:
        params = load_params(case)
        loss, inputs = LOSSES[case["loss"]](case, params)
        loss.backward()
        results.append({
            "value": loss.item(),
            "grad_inputs": {name: x.grad.flatten().tolist() for name, x in inputs.items()},
            "grad_params": {name: p.grad.flatten().tolist() for name, p in params.items()},
        })
    print(json.dumps({"results": results}))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""PyTorch side of `npm run bench:train` (bench/train.ts spawns this script with --serve).

The same training step as Kiln's side, in plain torch (no `transformers`):
  a BERT encoder (embeddings word + position + type 0 -> LayerNorm -> dropout; post-LN layers
  with multi-head attention over an additive padding mask and an exact-GELU FFN), one encoder
  shared by 32 queries and 32 documents of 64 tokens, mean pooling, a cosine head, InfoNCE
  (cross-entropy of the 32x32 in-batch cosine matrix / tau against the diagonal), backward,
  AdamW, zero_grad(set_to_none=True). The op sequence mirrors src/models/bert.ts
  (matmul-softmax attention, no fused kernels, as torch 1.13 has no scaled_dot_product_attention).

Weights are read from the safetensors file Kiln's side wrote, so both start from the same
parameters (checked by an eval-mode loss that both sides compute before timing).

Protocol: one JSON request per stdin line, one JSON reply per stdout line.
  {"cmd": "setup", "config": {...}, "weights": path, "precision": "fp32"|"bf16", "seed": n}
      -> {"evalLoss": ..., "params": n}
  {"cmd": "steps", "threads": t, "n": k} -> {"samples": [ns per step], "phases": [[fwd, bwd, opt] ns], "minorFaults": ru_minflt over the k steps}
  {"cmd": "info"} -> versions, thread counts, peak RSS (KiB)
  {"cmd": "quit"}
"""
import json
import math
import os
import resource
import struct
import sys
import time

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl_worker import serve  # noqa: E402


def load_safetensors(path):
    """A minimal reader for the safetensors layout (8-byte header length, JSON header, data)."""
    dtypes = {"F32": torch.float32, "I64": torch.int64, "BF16": torch.bfloat16, "F16": torch.float16}
    with open(path, "rb") as f:
        blob = f.read()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    data = memoryview(blob)[8 + n :]
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        begin, end = entry["data_offsets"]
        t = torch.frombuffer(bytearray(data[begin:end]), dtype=dtypes[entry["dtype"]])
        out[name] = t.reshape(entry["shape"]).clone()
    return out


class Embeddings(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.word_embeddings = nn.Embedding(c["vocabSize"], c["hiddenSize"], padding_idx=c["padId"])
        self.position_embeddings = nn.Embedding(c["maxPositions"], c["hiddenSize"])
        self.token_type_embeddings = nn.Embedding(c["typeVocabSize"], c["hiddenSize"])
        self.LayerNorm = nn.LayerNorm(c["hiddenSize"], eps=c["layerNormEps"])
        self.dropout = nn.Dropout(c["hiddenDropout"])

    def forward(self, ids):
        positions = torch.arange(ids.shape[1])
        x = self.word_embeddings(ids) + self.position_embeddings(positions) + self.token_type_embeddings.weight[0]
        return self.dropout(self.LayerNorm(x))


class SelfAttention(nn.Module):
    def __init__(self, c):
        super().__init__()
        h = c["hiddenSize"]
        self.heads = c["numHeads"]
        self.head_dim = h // self.heads
        self.query = nn.Linear(h, h)
        self.key = nn.Linear(h, h)
        self.value = nn.Linear(h, h)
        self.dropout = nn.Dropout(c["attentionDropout"])

    def split(self, x):
        b, l, _ = x.shape
        return x.view(b, l, self.heads, self.head_dim).permute(0, 2, 1, 3)

    def forward(self, x, mask_bias):
        b, l, h = x.shape
        q, k, v = self.split(self.query(x)), self.split(self.key(x)), self.split(self.value(x))
        scores = (q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(self.head_dim)) + mask_bias
        context = self.dropout(scores.softmax(-1)) @ v
        return context.permute(0, 2, 1, 3).reshape(b, l, h)


class ResidualOutput(nn.Module):
    def __init__(self, c, inner):
        super().__init__()
        self.dense = nn.Linear(inner, c["hiddenSize"])
        self.LayerNorm = nn.LayerNorm(c["hiddenSize"], eps=c["layerNormEps"])
        self.dropout = nn.Dropout(c["hiddenDropout"])

    def forward(self, x, residual):
        return self.LayerNorm(self.dropout(self.dense(x)) + residual)


class Attention(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.self = SelfAttention(c)
        self.output = ResidualOutput(c, c["hiddenSize"])

    def forward(self, x, mask_bias):
        return self.output(self.self(x, mask_bias), x)


class Intermediate(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dense = nn.Linear(c["hiddenSize"], c["intermediateSize"])

    def forward(self, x):
        return F.gelu(self.dense(x))


class Layer(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.attention = Attention(c)
        self.intermediate = Intermediate(c)
        self.output = ResidualOutput(c, c["intermediateSize"])

    def forward(self, x, mask_bias):
        a = self.attention(x, mask_bias)
        return self.output(self.intermediate(a), a)


class Stack(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.layer = nn.ModuleList([Layer(c) for _ in range(c["numLayers"])])


class Bert(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.embeddings = Embeddings(c)
        self.encoder = Stack(c)

    def forward(self, ids, mask):
        mask_bias = ((1.0 - mask.float()) * -1e9)[:, None, None, :]
        h = self.embeddings(ids)
        for layer in self.encoder.layer:
            h = layer(h, mask_bias)
        return h


def mean_pool(h, mask):
    m = mask.to(h.dtype).unsqueeze(-1)
    return (h * m).sum(1) / m.sum(1).clamp(min=1)


class Bench:
    def __init__(self, req):
        torch.manual_seed(int(req.get("seed", 0)))
        c = req["config"]
        self.model = Bert(c)
        state = load_safetensors(req["weights"])
        self.model.load_state_dict(state, strict=True)
        self.precision = req["precision"]
        self.tau = float(req["tau"])
        b, l = int(req["batch"]), int(req["seqLen"])
        self.q_ids, self.q_mask = self.batch(req["queries"], b, l)
        self.d_ids, self.d_mask = self.batch(req["docs"], b, l)
        self.targets = torch.arange(b)
        self.opt = torch.optim.AdamW(self.model.parameters(), lr=float(req["lr"]), weight_decay=float(req["weightDecay"]))
        self.params = sum(p.numel() for p in self.model.parameters())

    @staticmethod
    def batch(side, b, l):
        ids = torch.tensor(side["ids"], dtype=torch.int64).view(b, l)
        mask = torch.tensor(side["mask"], dtype=torch.int64).view(b, l)
        return ids, mask

    def loss(self):
        q = mean_pool(self.model(self.q_ids, self.q_mask), self.q_mask)
        d = mean_pool(self.model(self.d_ids, self.d_mask), self.d_mask)
        sim = F.normalize(q, dim=-1) @ F.normalize(d, dim=-1).t()  # cosine head, [B, B]
        return F.cross_entropy(sim / self.tau, self.targets)

    def eval_loss(self):
        self.model.eval()
        with torch.no_grad():
            value = self.loss().item()
        self.model.train()
        return value

    def step(self):
        t0 = time.perf_counter_ns()
        if self.precision == "bf16":
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = self.loss()
        else:
            loss = self.loss()
        t1 = time.perf_counter_ns()
        loss.backward()
        t2 = time.perf_counter_ns()
        self.opt.step()
        self.opt.zero_grad(set_to_none=True)
        t3 = time.perf_counter_ns()
        value = loss.item()
        if not math.isfinite(value):
            raise RuntimeError(f"loss is {value}")
        return t3 - t0, [t1 - t0, t2 - t1, t3 - t2], value


def info():
    return {
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torchVersion": torch.__version__,
        "numThreads": torch.get_num_threads(),
        "numInteropThreads": torch.get_num_interop_threads(),
        "maxRssKiB": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
        "pid": os.getpid(),
    }


class Handler:
    def __init__(self):
        self.bench = None

    def __call__(self, req):
        cmd = req["cmd"]
        if cmd == "info":
            return info()
        if cmd == "setup":
            self.bench = Bench(req)
            return {"evalLoss": self.bench.eval_loss(), "params": self.bench.params}
        if cmd == "steps":
            threads = int(req["threads"])
            # set_num_threads rebuilds the pool even at an unchanged count: only on a change.
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            samples, phases, losses = [], [], []
            faults_before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            for _ in range(int(req["n"])):
                ns, phase, value = self.bench.step()
                samples.append(ns)
                phases.append(phase)
                losses.append(value)
            minor_faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults_before
            return {"samples": samples, "phases": phases, "losses": losses, "threads": torch.get_num_threads(), "minorFaults": minor_faults}
        return {"error": f"unknown command {cmd!r}"}


if __name__ == "__main__":
    if "--serve" not in sys.argv[1:]:
        sys.exit("usage: train_torch.py --serve (driven by bench/train.ts; run `npm run bench:train`)")
    serve(Handler())

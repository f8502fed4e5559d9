#!/usr/bin/env python3
"""PyTorch side of `npm run bench:infer` (bench/infer.ts spawns this script with --serve).

Eager-mode inference of the same two-tower encoder: the plain-torch BERT of
bench/train_torch.py (the op sequence of src/models/bert.ts), eval mode, torch.inference_mode,
fp32, then mean pooling and L2 normalisation (the cosine head's stored vector), over the same
pre-tokenised, pre-padded batches that Kiln and onnxruntime run.

Protocol: one JSON request per stdin line, one JSON reply per stdout line.
  {"cmd": "setup", "config": {...encoder}, "weights": path, "prefix": "encoder.", "batches": path, "threads": t}
      -> {"params": n, "first": [first row of the first batch's embeddings]}
  {"cmd": "run", "threads": t} -> {"ns": wall time of one pass over every batch, "texts": n}
  {"cmd": "info"} -> versions and thread counts
  {"cmd": "quit"}
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from jsonl_worker import serve  # noqa: E402
from train_torch import Bert, load_safetensors, mean_pool  # noqa: E402


class Infer:
    def __init__(self, req):
        torch.set_num_threads(int(req["threads"]))
        self.model = Bert(req["config"])
        prefix = req["prefix"]
        state = {k[len(prefix):]: v for k, v in load_safetensors(req["weights"]).items() if k.startswith(prefix)}
        self.model.load_state_dict(state, strict=True)
        self.model.eval()
        self.params = sum(p.numel() for p in self.model.parameters())
        with open(req["batches"]) as f:
            raw = json.load(f)
        self.batches = []
        for b in raw:
            shape = (b["rows"], b["cols"])
            self.batches.append((torch.tensor(b["ids"], dtype=torch.int64).view(shape), torch.tensor(b["mask"], dtype=torch.int64).view(shape)))
        self.texts = sum(ids.shape[0] for ids, _ in self.batches)

    def embed(self, ids, mask):
        return F.normalize(mean_pool(self.model(ids, mask), mask), dim=-1)

    def first(self):
        with torch.inference_mode():
            ids, mask = self.batches[0]
            return self.embed(ids, mask)[0].tolist()

    def run(self):
        t0 = time.perf_counter_ns()
        with torch.inference_mode():
            for ids, mask in self.batches:
                self.embed(ids, mask)
        return time.perf_counter_ns() - t0


class Handler:
    def __init__(self):
        self.bench = None

    def __call__(self, req):
        cmd = req["cmd"]
        if cmd == "info":
            return {"python": sys.version.split()[0], "torchVersion": torch.__version__, "numThreads": torch.get_num_threads()}
        if cmd == "setup":
            self.bench = Infer(req)
            return {"params": self.bench.params, "first": self.bench.first()}
        if cmd == "run":
            threads = int(req["threads"])
            # set_num_threads rebuilds the pool even at an unchanged count: only on a change.
            if torch.get_num_threads() != threads:
                torch.set_num_threads(threads)
            return {"ns": self.bench.run(), "texts": self.bench.texts}
        return {"error": f"unknown command {cmd!r}"}


if __name__ == "__main__":
    if "--serve" not in sys.argv[1:]:
        sys.exit("usage: infer_torch.py --serve (driven by bench/infer.ts; run `npm run bench:infer`)")
    serve(Handler())

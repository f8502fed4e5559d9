#!/usr/bin/env python3
"""PyTorch side of `npm run bench:engine` (bench/engine.ts spawns this script).

Measures, with the same methodology as bench/engine.ts:
  * 1024x1024 @ 1024x1024 float32 matmul: GFLOP/s (2*n^3 flops) from the median of `--reps`
    timed calls after `--warmup` untimed ones, once per thread count in `--threads`
    (torch.set_num_threads);
  * per-call overhead of small ops (a + b on 1-element and 4x4 float32, a @ b on 4x4, relu of a
    4x4): `--calls` calls timed as one batch, `--repeats` batches, median microseconds per call.
    Each call's result is rebound to the same local, so the previous result is released by
    refcounting inside the timed loop (the Python counterpart of Kiln's op + dispose()).

Prints one JSON object on stdout. Needs torch (Debian's /usr/bin/python3 has torch 1.13).

With --serve it instead answers one JSON request per stdin line with one JSON line, so that
bench/engine.ts can interleave single measurements with its own (Kiln rep, PyTorch rep, ...):
  {"cmd": "info"}                                  -> versions and default thread counts
  {"cmd": "matmul", "n": 1024, "threads": 1, "warmup": 3, "reps": 10}
                                                   -> {"samples": [ns of each timed a @ b], ...}
  {"cmd": "small", "op": "add_1", "calls": 100000, "threads": 1}
                                                   -> {"ns": time of the whole batch}
  {"cmd": "quit"}
"""
import argparse
import json
import os
import platform
import statistics
import sys
import time

import torch


def median(values):
    return statistics.median(values)


def bench_matmul(n, threads, warmup, reps):
    torch.set_num_threads(threads)
    a = torch.randn(n, n, dtype=torch.float32)
    b = torch.randn(n, n, dtype=torch.float32)
    for _ in range(warmup):
        c = a @ b
    del c
    samples_ns = []
    for _ in range(reps):
        t0 = time.perf_counter_ns()
        c = a @ b
        t1 = time.perf_counter_ns()
        del c
        samples_ns.append(t1 - t0)
    med_ns = median(samples_ns)
    return {
        "threads": threads,
        "getNumThreads": torch.get_num_threads(),
        "medianMs": med_ns / 1e6,
        "gflops": 2.0 * n**3 / med_ns,  # flops per ns == GFLOP/s
        "samplesMs": [s / 1e6 for s in samples_ns],
    }


# One function per op keeps the loop body identical in shape to the JS loop: a local-variable
# op whose result replaces (and so releases) the previous one.
def loop_add(a, b, calls):
    c = None
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        c = a + b
    t1 = time.perf_counter_ns()
    del c
    return t1 - t0


def loop_matmul(a, b, calls):
    c = None
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        c = a @ b
    t1 = time.perf_counter_ns()
    del c
    return t1 - t0


def loop_relu(a, b, calls):
    c = None
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        c = a.relu()
    t1 = time.perf_counter_ns()
    del c
    return t1 - t0


def loop_empty(a, b, calls):
    t0 = time.perf_counter_ns()
    for _ in range(calls):
        pass
    t1 = time.perf_counter_ns()
    return t1 - t0


SMALL_OPS = {
    # name: (shape, loop)
    "add_1": ([1], loop_add),
    "add_4x4": ([4, 4], loop_add),
    "matmul_4x4": ([4, 4], loop_matmul),
    "relu_4x4": ([4, 4], loop_relu),
    "empty_loop": ([1], loop_empty),
}


def bench_small(name, calls, repeats, warmup_calls):
    shape, loop = SMALL_OPS[name]
    a = torch.randn(*shape)
    b = torch.randn(*shape)
    loop(a, b, warmup_calls)
    samples_us = [loop(a, b, calls) / calls / 1e3 for _ in range(repeats)]
    return {"medianUs": median(samples_us), "samplesUs": samples_us}


def info():
    return {
        "side": "pytorch",
        "python": sys.version.split()[0],
        "executable": sys.executable,
        "torchVersion": torch.__version__,
        "defaultNumThreads": torch.get_num_threads(),
        "defaultNumInteropThreads": torch.get_num_interop_threads(),
        "pid": os.getpid(),
        "machine": platform.machine(),
    }


def serve():
    start = info()  # thread counts before any set_num_threads
    matmul_inputs = {}
    small_inputs = {}
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        cmd = req["cmd"]
        if cmd == "quit":
            break
        if cmd == "info":
            out = start
        elif cmd == "matmul":
            n = int(req["n"])
            torch.set_num_threads(int(req["threads"]))
            if n not in matmul_inputs:
                matmul_inputs[n] = (torch.randn(n, n), torch.randn(n, n))
            a, b = matmul_inputs[n]
            for _ in range(int(req.get("warmup", 0))):
                c = a @ b
                del c
            samples = []
            for _ in range(int(req.get("reps", 1))):
                t0 = time.perf_counter_ns()
                c = a @ b
                t1 = time.perf_counter_ns()
                del c
                samples.append(t1 - t0)
            out = {"samples": samples, "threads": torch.get_num_threads()}
        elif cmd == "small":
            name = req["op"]
            torch.set_num_threads(int(req.get("threads", 1)))
            shape, loop = SMALL_OPS[name]
            if name not in small_inputs:
                small_inputs[name] = (torch.randn(*shape), torch.randn(*shape))
            a, b = small_inputs[name]
            out = {"ns": loop(a, b, int(req["calls"])), "threads": torch.get_num_threads()}
        else:
            out = {"error": f"unknown command {cmd!r}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()


def main():
    if "--serve" in sys.argv[1:]:
        serve()
        return
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--n", type=int, default=1024)
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts for the matmul")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--reps", type=int, default=20)
    p.add_argument("--calls", type=int, default=100_000)
    p.add_argument("--repeats", type=int, default=7)
    p.add_argument("--small-threads", type=int, default=1, help="torch.set_num_threads for the small-op loops")
    p.add_argument("--ops", default=",".join(SMALL_OPS), help="comma-separated small ops to time")
    p.add_argument("--serve", action="store_true", help="answer JSON requests on stdin (see above)")
    args = p.parse_args()

    default_threads = torch.get_num_threads()
    default_interop = torch.get_num_interop_threads()
    thread_counts = [int(t) for t in args.threads.split(",") if t]
    matmul = {str(t): bench_matmul(args.n, t, args.warmup, args.reps) for t in thread_counts}

    torch.set_num_threads(args.small_threads)
    small = {}
    for name in [o for o in args.ops.split(",") if o]:
        small[name] = bench_small(name, args.calls, args.repeats, max(args.calls // 10, 1))

    out = info()
    out.update(
        {
            "defaultNumThreads": default_threads,
            "defaultNumInteropThreads": default_interop,
            "smallOpThreads": torch.get_num_threads(),
            "matmul": matmul,
            "small": small,
        }
    )
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()

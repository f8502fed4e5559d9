"""The Python side of bench/worker.ts's protocol: one JSON request per stdin line, one JSON
reply per stdout line, in order. `{"cmd": "quit"}` ends the loop; an exception becomes
`{"error": "..."}`, which the TypeScript side raises."""
import json
import sys


def serve(handle):
    """Answers each request with `handle(request)` until "quit" or the end of stdin."""
    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        if req["cmd"] == "quit":
            break
        try:
            out = handle(req)
        except Exception as e:  # reported to the TypeScript side, which stops the benchmark
            out = {"error": f"{type(e).__name__}: {e}"}
        sys.stdout.write(json.dumps(out) + "\n")
        sys.stdout.flush()

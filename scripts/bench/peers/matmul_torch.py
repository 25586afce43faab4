#!/usr/bin/env python3
"""Peer of the harness's matmul area (scripts/bench/harness/areas.ts): a
1024x1024 float32 matmul in PyTorch at each thread count, after 2 untimed ones.
Usage: matmul_torch.py '{"threads": [1, 2], "reps": 30}'
Prints {"ms": {"<threads>": [ms per matmul, ...]}}."""
import json
import sys
import time

import torch

req = json.loads(sys.argv[1])
out = {}
for t in req["threads"]:
    torch.set_num_threads(t)
    a = torch.randn(1024, 1024)
    b = torch.randn(1024, 1024)
    for _ in range(2):
        a @ b
    ms = []
    for _ in range(req["reps"]):
        s = time.perf_counter()
        a @ b
        ms.append((time.perf_counter() - s) * 1e3)
    out[str(t)] = ms
print(json.dumps({"ms": out}))

#!/usr/bin/env python3
"""Peer of scripts/bench/cases/cuda.ts: the same cases in PyTorch on the same
device, synchronised before each clock read; one untimed repetition first.
Usage: cuda_torch.py '{"device": "cuda", "reps": 5,
                       "cases": [{"name": "add" | "conv" | "matmul", "iterations": n}]}'
Prints {"<name>": [µs per op of each repetition], ...}."""
import json
import sys
import time

import torch
import torch.nn.functional as F

req = json.loads(sys.argv[1])
dev = req["device"]
out = {}
for c in req["cases"]:
    n = c["iterations"]
    if c["name"] == "add":
        a, b = torch.randn(4, 4, device=dev), torch.randn(4, 4, device=dev)
        f = lambda: a + b  # noqa: E731
    elif c["name"] == "conv":
        x = torch.randn(8, 64, 56, 56, device=dev)
        w = torch.randn(64, 64, 3, 3, device=dev, requires_grad=True)
        f = lambda: F.conv2d(x, w).sum().backward()  # noqa: E731
    else:
        a, b = torch.randn(4096, 4096, device=dev), torch.randn(4096, 4096, device=dev)
        f = lambda: a @ b  # noqa: E731
    ts = []
    for r in range(req["reps"] + 1):
        torch.cuda.synchronize()
        t = time.perf_counter()
        for _ in range(n):
            f()
        torch.cuda.synchronize()
        if r:
            ts.append((time.perf_counter() - t) / n * 1e6)
    out[c["name"]] = ts
print(json.dumps(out))

#!/usr/bin/env python3
"""Peer of scripts/bench/cases/overhead.ts, a long-lived process: one
repetition per request, so that torchface's and PyTorch's repetitions alternate.
Usage: overhead_torch.py '{"threads": 1}'
Prints {"ready": true, "threads": n, "version": torch version} first, then reads
one JSON request per line on stdin:
  {"case": "add", "iterations": n} or {"case": NAME, "iterations": n, "x": [shape], "w": [shape]}
and answers each with {"seconds": wall time, "cpu": process CPU time} for the n ops
(add: a 4x4 float32 add; otherwise conv2d forward + backward of x * w + bias)."""
import json
import sys
import time

import torch
import torch.nn.functional as F

torch.set_num_threads(json.loads(sys.argv[1])["threads"])
torch.manual_seed(0)
state = {}


def run(req):
    n = req["iterations"]
    if req["case"] == "add":
        a, b = torch.randn(4, 4), torch.randn(4, 4)
        t, c0 = time.perf_counter(), time.process_time()
        for _ in range(n):
            c = torch.add(a, b)  # noqa: F841 (bound: each result lives until the next one is made)
        return time.perf_counter() - t, time.process_time() - c0
    key = req["case"]
    if key not in state:
        state[key] = (torch.randn(*req["x"]), torch.randn(*req["w"], requires_grad=True), torch.randn(req["w"][0], requires_grad=True))
    x, w, b = state[key]
    t, c0 = time.perf_counter(), time.process_time()
    for _ in range(n):
        y = F.conv2d(x, w, b)
        y.sum().backward()
    return time.perf_counter() - t, time.process_time() - c0


print(json.dumps({"ready": True, "threads": torch.get_num_threads(), "version": torch.__version__}), flush=True)
for line in sys.stdin:
    wall, cpu = run(json.loads(line))
    print(json.dumps({"seconds": wall, "cpu": cpu}), flush=True)

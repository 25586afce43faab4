#!/usr/bin/env python3
"""Peer of scripts/bench/cases/conv.ts: conv1d / conv3d forward + backward in
PyTorch (gradients of the weight and bias), `warmup` untimed repetitions (and more
calls up to warmupCalls or warmupMs, as conv.ts warms up), then
`reps` timed ones of `iterations` ops each.
Usage: conv_torch.py '{"threads": 1, "reps": 5, "warmup": 1, "warmupCalls": 2000, "warmupMs": 300,
                       "cases": [{"dims": 1, "x": [...], "w": [...], "iterations": 1000}]}'
Prints {"us": [[µs per op of each repetition] per case], "threads": n}."""
import json
import sys
import time

import torch
import torch.nn.functional as F

req = json.loads(sys.argv[1])
torch.set_num_threads(req["threads"])
torch.manual_seed(0)
out = []
for c in req["cases"]:
    f = F.conv1d if c["dims"] == 1 else F.conv3d
    x = torch.randn(*c["x"])
    w = torch.randn(*c["w"], requires_grad=True)
    b = torch.randn(c["w"][0], requires_grad=True)
    # Warm-up as conv.ts does it: `warmup` repetitions' worth of calls, and on until
    # warmupCalls calls or warmupMs have passed.
    start, i = time.perf_counter(), 0
    while i < req["warmup"] * c["iterations"] or (i < req.get("warmupCalls", 0) and (time.perf_counter() - start) * 1e3 < req.get("warmupMs", 0)):
        f(x, w, b).sum().backward()
        i += 1
    times = []
    for r in range(req["reps"]):
        t = time.perf_counter()
        for _ in range(c["iterations"]):
            f(x, w, b).sum().backward()
        times.append((time.perf_counter() - t) / c["iterations"] * 1e6)
    out.append(times)
print(json.dumps({"us": out, "threads": torch.get_num_threads()}))

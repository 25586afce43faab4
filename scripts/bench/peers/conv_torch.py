#!/usr/bin/env python3
"""Peer of scripts/bench/cases/conv.ts: conv1d / conv3d forward + backward in
PyTorch (gradients of the weight and bias), `warmup` untimed repetitions, then
`reps` timed ones of `iterations` ops each.
Usage: conv_torch.py '{"threads": 1, "reps": 5, "warmup": 1,
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
    times = []
    for r in range(req["warmup"] + req["reps"]):
        t = time.perf_counter()
        for _ in range(c["iterations"]):
            f(x, w, b).sum().backward()
        if r >= req["warmup"]:
            times.append((time.perf_counter() - t) / c["iterations"] * 1e6)
    out.append(times)
print(json.dumps({"us": out, "threads": torch.get_num_threads()}))

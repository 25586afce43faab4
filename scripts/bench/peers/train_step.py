#!/usr/bin/env python3
"""PyTorch peer of scripts/bench/cases/train-step.ts: median time of one training step
(forward, cross-entropy, backward, Adam step) of the same ResNet.
Usage: train_step.py JSON_OPTIONS  ->  prints {"times_ms": [...], "threads": n, "torch": version}"""
import json
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "test", "helpers"))
from torch_resnet import ResNet  # noqa: E402


def main():
    o = json.loads(sys.argv[1])
    torch.set_num_threads(o["threads"])
    torch.manual_seed(0)
    model = ResNet(layers=o["layers"], width=o["width"], out_features=o["classes"], stem=o["stem"])
    if o.get("channels_last"):
        model = model.to(memory_format=torch.channels_last)
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    x = torch.randn(o["batch"], 3, o["size"], o["size"])
    if o.get("channels_last"):
        x = x.contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, o["classes"], (o["batch"],))
    times = []
    for i in range(o["warmup"] + o["reps"]):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        dt = (time.perf_counter() - t0) * 1000
        if i >= o["warmup"]:
            times.append(dt)
    print(json.dumps({"times_ms": times, "threads": torch.get_num_threads(), "torch": torch.__version__, "loss": float(loss)}))


if __name__ == "__main__":
    main()

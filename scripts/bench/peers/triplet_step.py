#!/usr/bin/env python3
"""PyTorch peer of scripts/bench/cases/triplet-step.ts: one triplet-loss training step
(scaling, ResNet embedding net, L2 normalisation, semi-hard mining with the
same tensor formulation as lib/face/triplet.ts, backward, Adam step) on a fixed
P x K batch. Usage: triplet_step.py JSON_OPTIONS -> prints {"times_ms": [...], ...}"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "test", "helpers"))
from torch_resnet import ResNet  # noqa: E402


def semi_hard(emb, labels, margin):
    n = emb.shape[0]
    x = F.normalize(emb, 2, 1)
    sq = x.square().sum(1, keepdim=True)
    d = (sq + sq.t() - 2 * x @ x.t()).clamp(min=0)
    eye = torch.eye(n, dtype=torch.bool)
    d = d.masked_fill(eye, 0)
    same = labels.unsqueeze(1) == labels.unsqueeze(0)
    pos = same & ~eye
    neg = ~same
    dap = d.unsqueeze(2).expand(n, n, n)
    dan = d.unsqueeze(1).expand(n, n, n)
    negb = neg.unsqueeze(1)
    semi = negb & (dan > dap) & (dan < dap + margin)
    has_semi = semi.sum(2) > 0
    w = torch.where(semi, dan, torch.tensor(float("inf")))
    idx = w.argmin(2)
    semi_v = w.gather(2, idx.unsqueeze(2)).squeeze(2)
    hard = negb & (dan <= dap)
    has_hard = hard.sum(2) > 0
    wh = torch.where(hard, dan, torch.tensor(float("-inf")))
    hidx = wh.argmax(2)
    hard_v = wh.gather(2, hidx.unsqueeze(2)).squeeze(2)
    chosen = torch.where(has_semi, semi_v, torch.where(has_hard, hard_v, torch.zeros(())))
    have = has_semi | has_hard
    sel = pos & have
    cand = pos & (neg.sum(1) > 0).unsqueeze(1)
    dan_safe = torch.where(sel, chosen, d + margin)
    l = torch.where(sel, F.relu(d - dan_safe + margin), torch.zeros(()))
    return l.sum() / cand.sum().clamp(min=1)


def main():
    o = json.loads(sys.argv[1])
    torch.set_num_threads(o["threads"])
    torch.manual_seed(0)
    net = ResNet(layers=o["layers"], width=o["width"], out_features=o["dim"], stem="imagenet")
    net.train()
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=5e-4)
    b = o["p"] * o["k"]
    x = torch.rand(b, 3, o["size"], o["size"]) * 255
    labels = torch.arange(o["p"]).repeat_interleave(o["k"])
    times = []
    for i in range(o["warmup"] + o["reps"]):
        t0 = time.perf_counter()
        emb = net((x - 127.5) / 64)
        loss = semi_hard(F.normalize(emb, 2, 1), labels, o["margin"])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        float(loss)
        dt = (time.perf_counter() - t0) * 1000
        if i >= o["warmup"]:
            times.append(dt)
    print(json.dumps({"times_ms": times, "threads": torch.get_num_threads(), "torch": torch.__version__}))


if __name__ == "__main__":
    main()

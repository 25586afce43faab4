#!/usr/bin/env python3
"""Peer of scripts/bench/cases/style.ts: the same style-transfer iteration in PyTorch.

Usage: style_torch.py '{"file": "FILE.safetensors", "iterations": n, "warmup": n, "threads": n}'
FILE holds the MobileNet-v1 backbone weights (torchface's state-dict names),
`content` and `style` images (float32 1x3xHxW, 0..255) and the layer choice in
its metadata. Runs Adam on the pixels with J = alpha Jc + beta sum lambda Js,
clamps to 0..255 and reads the costs each iteration (as torchface does), and
prints {"msPerIteration": ..., "initialTotal": ..., "finalTotal": ..., "threads": ...} as JSON.
"""
import json
import math
import struct
import sys
import time

import torch
import torch.nn.functional as F

BN_EPS = 0.0010000000474974513
STRIDES = [2, 1, 2, 1, 2, 1, 2, 1, 1, 1, 1, 1, 2, 1]


def read_safetensors(path):
    with open(path, "rb") as f:
        raw = f.read()
    n = struct.unpack("<Q", raw[:8])[0]
    header = json.loads(raw[8 : 8 + n])
    meta = header.pop("__metadata__", {})
    base = 8 + n
    out = {}
    for k, v in header.items():
        assert v["dtype"] == "F32", v["dtype"]
        a, b = v["data_offsets"]
        out[k] = torch.frombuffer(bytearray(raw[base + a : base + b]), dtype=torch.float32).reshape(v["shape"])
    return out, meta


def pad_same(x, k, s):
    def one(n):
        out = math.ceil(n / s)
        total = max((out - 1) * s + k - n, 0)
        return total // 2, total - total // 2

    t, b = one(x.shape[2])
    l, r = one(x.shape[3])
    return F.pad(x, (l, r, t, b)) if t + b + l + r else x


def features(w, x, wanted):
    out = {}
    h = x / 127.5 - 1
    last = max(int(n.split("_")[1]) for n in wanted)
    for i in range(last + 1):
        s = STRIDES[i]
        if i == 0:
            pre = F.conv2d(pad_same(h, 3, s), w["conv_0.weight"], w["conv_0.bias"], stride=s)
        else:
            p = f"conv_{i}."
            c = h.shape[1]
            d = F.conv2d(pad_same(h, 3, s), w[p + "depthwise_weight"], None, stride=s, groups=c)
            bn = F.batch_norm(d, w[p + "bn_running_mean"], w[p + "bn_running_var"], w[p + "bn_weight"], w[p + "bn_bias"], False, 0.1, BN_EPS)
            pre = F.conv2d(torch.clamp(bn, 0, 6), w[p + "pointwise_weight"], w[p + "pointwise_bias"])
        # torchface's MobileNetFeatures default: pre-ReLU6 maps as features
        if f"conv_{i}" in wanted:
            out[f"conv_{i}"] = pre
        h = torch.clamp(pre, 0, 6)
    return out


def gram(a):
    n, c, h, ww = a.shape
    m = a.reshape(c, h * ww)
    return m @ m.t()


def main():
    o = json.loads(sys.argv[1])
    w, meta = read_safetensors(o["file"])
    iters, warmup = o["iterations"], o["warmup"]
    torch.set_num_threads(o["threads"])
    cfg = json.loads(meta["config"])
    content, style = w.pop("content"), w.pop("style")
    for v in w.values():
        v.requires_grad_(False)
    cl, sl, alpha, beta, lr = cfg["contentLayer"], cfg["styleLayers"], cfg["alpha"], cfg["beta"], cfg["learningRate"]
    layers = sorted(set([cl, *sl]), key=lambda n: int(n.split("_")[1]))
    with torch.no_grad():
        a_c = features(w, content, [cl])[cl]
        s_acts = features(w, style, list(sl))
        grams = {n: gram(s_acts[n]) for n in sl}
    g = content.clone().requires_grad_(True)
    opt = torch.optim.Adam([g], lr=lr)
    times = []
    total = first = float("nan")
    for it in range(iters + warmup):
        t0 = time.perf_counter()
        opt.zero_grad()
        acts = features(w, g, layers)
        jc = 0.5 * ((a_c - acts[cl]) ** 2).sum()
        js = 0
        for n, lam in sl.items():
            a = acts[n]
            _, c, h, ww = a.shape
            js = js + lam * ((grams[n] - gram(a)) ** 2).sum() / (2 * h * ww * c) ** 2
        j = alpha * jc + beta * js
        j.backward()
        costs = torch.stack([j.detach(), jc.detach(), js.detach()]).tolist()
        opt.step()
        with torch.no_grad():
            g.clamp_(0, 255)
        total = costs[0]
        if it == 0:
            first = total
        if it >= warmup:
            times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    print(json.dumps({"msPerIteration": times[len(times) // 2], "initialTotal": first, "finalTotal": total, "threads": torch.get_num_threads()}))


if __name__ == "__main__":
    main()

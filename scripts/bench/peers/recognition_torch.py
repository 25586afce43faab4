#!/usr/bin/env python3
"""PyTorch peer for scripts/bench/cases/descriptors.ts: face-api's recognition network
(docs/faceapi-architecture.md (a)) written in plain PyTorch, weights read from
the tfjs manifest here (independently of torchface).

Usage:
  recognition_torch.py MANIFEST CONFIG_JSON
    CONFIG_JSON: {"batches": [1, 16], "threads": [1, 2], "runs": 10, "warmup": 3,
                  "variants": ["plain", "fused-cl"], "check": "path/to/pixels.f32"}
    `check` (optional): raw float32 N x 3 x 150 x 150 (0..255); the descriptors are
    printed so the caller can confirm it is the same function. Prints one JSON object.
  recognition_torch.py MANIFEST --serve
    Reads one JSON request per line on stdin and answers one JSON line each:
    {"variant": "plain", "threads": 1, "batch": 16, "runs": 1} -> {"ms": [...]}
    {"check": "path/to/pixels.f32"} -> {"plain": [[...]], "fused-cl": [[...]]}
    (so that the caller can interleave these timings with its own).
Variants: plain (conv + scale layer, NCHW), fused (scale folded into the conv),
fused-cl (folded, channels-last).
"""
import json
import os
import statistics
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

MEAN = torch.tensor([122.782, 117.001, 104.298]).view(1, 3, 1, 1)
BLOCKS = [
    ("conv32_1", False), ("conv32_2", False), ("conv32_3", False),
    ("conv64_down", True), ("conv64_1", False), ("conv64_2", False), ("conv64_3", False),
    ("conv128_down", True), ("conv128_1", False), ("conv128_2", False),
    ("conv256_down", True), ("conv256_1", False), ("conv256_2", False),
    ("conv256_down_out", True),
]


def read_manifest(path):
    with open(path) as f:
        groups = json.load(f)
    out = {}
    folder = os.path.dirname(path)
    for g in groups:
        blob = b"".join(open(os.path.join(folder, p), "rb").read() for p in g["paths"])
        off = 0
        for w in g["weights"]:
            n = int(np.prod(w["shape"])) if w["shape"] else 1
            q = w.get("quantization")
            if q:
                assert q["dtype"] == "uint8", q
                raw = np.frombuffer(blob, dtype=np.uint8, count=n, offset=off).astype(np.float64)
                off += n
                v = (raw * q["scale"] + q["min"]).astype(np.float32)
            else:
                v = np.frombuffer(blob, dtype=np.float32, count=n, offset=off).copy()
                off += 4 * n
            out[w["name"]] = torch.from_numpy(v.reshape(w["shape"]))
    return out


class Plain(torch.nn.Module):
    """Straight transcription: conv + bias, then the scale layer, NCHW."""

    def __init__(self, w):
        super().__init__()
        self.w = {}
        for k, v in w.items():
            if k.endswith("/filters"):
                v = v.permute(3, 2, 0, 1).contiguous()
            self.w[k] = v

    def layer(self, x, p, stride, relu):
        y = F.conv2d(x, self.w[p + "/conv/filters"], self.w[p + "/conv/bias"], stride=stride, padding=1 if stride == 1 else 0)
        y = y * self.w[p + "/scale/weights"].view(1, -1, 1, 1) + self.w[p + "/scale/biases"].view(1, -1, 1, 1)
        return F.relu(y) if relu else y

    def forward(self, x):
        x = (x - MEAN) / 255
        x = self.layer(x, "conv32_down", 2, True)
        x = F.max_pool2d(x, 3, 2)
        for name, down in BLOCKS:
            out = self.layer(self.layer(x, name + "/conv1", 2 if down else 1, True), name + "/conv2", 1, False)
            sc = F.avg_pool2d(x, 2, 2) if down else x
            if out.shape[2] != sc.shape[2]:
                out = F.pad(out, (0, sc.shape[3] - out.shape[3], 0, sc.shape[2] - out.shape[2]))
            if out.shape[1] != sc.shape[1]:
                sc = F.pad(sc, (0, 0, 0, 0, 0, out.shape[1] - sc.shape[1]))
            x = F.relu(out + sc)
        return x.mean((2, 3)) @ self.w["fc"]


class Fused(Plain):
    """Scale layers folded into the convs; optionally channels-last weights."""

    def __init__(self, w, channels_last):
        super().__init__(w)
        self.cl = channels_last
        self.f = {}
        for k in list(self.w):
            if k.endswith("/conv/filters"):
                p = k[: -len("/conv/filters")]
                s = self.w[p + "/scale/weights"]
                wt = self.w[k] * s.view(-1, 1, 1, 1)
                if channels_last:
                    wt = wt.contiguous(memory_format=torch.channels_last)
                self.f[p] = (wt, self.w[p + "/conv/bias"] * s + self.w[p + "/scale/biases"])

    def layer(self, x, p, stride, relu):
        wt, b = self.f[p]
        y = F.conv2d(x, wt, b, stride=stride, padding=1 if stride == 1 else 0)
        return F.relu(y) if relu else y

    def forward(self, x):
        if self.cl:
            x = x.contiguous(memory_format=torch.channels_last)
        return super().forward(x)


def serve(nets):
    inputs = {}
    with torch.inference_mode():
        for line in sys.stdin:
            req = json.loads(line)
            if "check" in req:
                x = torch.from_numpy(np.fromfile(req["check"], dtype=np.float32)).view(-1, 3, 150, 150)
                out = {k: nets[k](x).tolist() for k in ("plain", "fused-cl")}
            else:
                torch.set_num_threads(req["threads"])
                b = req["batch"]
                if b not in inputs:
                    inputs[b] = torch.rand(b, 3, 150, 150) * 255
                net = nets[req["variant"]]
                ms = []
                for _ in range(req.get("runs", 1)):
                    t = time.perf_counter()
                    net(inputs[b])
                    ms.append((time.perf_counter() - t) * 1000)
                out = {"ms": ms}
            sys.stdout.write(json.dumps(out) + "\n")
            sys.stdout.flush()


def main():
    manifest = sys.argv[1]
    w = read_manifest(manifest)
    nets = {"plain": Plain(w), "fused": Fused(w, False), "fused-cl": Fused(w, True)}
    if sys.argv[2] == "--serve":
        return serve(nets)
    cfg = json.loads(sys.argv[2])
    result = {"torch": torch.__version__, "timings": []}
    runs, warmup = cfg.get("runs", 10), cfg.get("warmup", 3)
    with torch.inference_mode():
        if cfg.get("check"):
            x = torch.from_numpy(np.fromfile(cfg["check"], dtype=np.float32)).view(-1, 3, 150, 150)
            result["check"] = nets["plain"](x).tolist()
            result["checkFused"] = nets["fused-cl"](x).tolist()
        for variant in cfg.get("variants", ["plain", "fused-cl"]):
            net = nets[variant]
            for threads in cfg.get("threads", [1]):
                torch.set_num_threads(threads)
                for batch in cfg.get("batches", [1]):
                    x = torch.rand(batch, 3, 150, 150) * 255
                    for _ in range(warmup):
                        net(x)
                    ms = []
                    for _ in range(runs):
                        t = time.perf_counter()
                        net(x)
                        ms.append((time.perf_counter() - t) * 1000)
                    result["timings"].append({"variant": variant, "threads": threads, "batch": batch, "msPerBatch": statistics.median(ms), "minMs": min(ms)})
    print(json.dumps(result))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""VGG-19 reference for the torchface style tests (torchvision layout, built by hand).

Usage: vgg19_ref.py OUTDIR
Writes OUTDIR/vgg19.pth (a randomly initialised torchvision-layout vgg19 state
dict: features.N.* plus a small classifier.* entry that loaders must ignore),
OUTDIR/input.pt (1x3x40x48 image, 0..255) and OUTDIR/features.pt (activations
of conv1_1, conv2_2, conv3_1, conv4_2, conv5_1, pool5 after ImageNet
normalisation; conv* = output of the ReLU after that conv).
"""
import os
import sys

import torch
import torch.nn as nn

CFG = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M"]


def make_features():
    layers, cin = [], 3
    for v in CFG:
        if v == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
            cin = v
    return nn.Sequential(*layers)


def layer_indices():
    names, block, conv, idx = {}, 1, 0, 0
    for v in CFG:
        if v == "M":
            names[f"pool{block}"] = idx
            idx += 1
            block += 1
            conv = 0
        else:
            conv += 1
            names[f"conv{block}_{conv}"] = idx + 1
            idx += 2
    return names


def main():
    out = sys.argv[1]
    torch.manual_seed(0)
    features = make_features().eval()
    sd = {f"features.{k}": v for k, v in features.state_dict().items()}
    sd["classifier.0.weight"] = torch.randn(4, 8)
    torch.save(sd, os.path.join(out, "vgg19.pth"))
    x = torch.rand(1, 3, 40, 48) * 255
    torch.save(x, os.path.join(out, "input.pt"))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1) * 255
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1) * 255
    h = (x - mean) / std
    want = ["conv1_1", "conv2_2", "conv3_1", "conv4_2", "conv5_1", "pool5"]
    idx = layer_indices()
    by_index = {idx[n]: n for n in want}
    acts = {}
    with torch.no_grad():
        for i, m in enumerate(features):
            h = m(h)
            if i in by_index:
                acts[by_index[i]] = h.clone()
    torch.save(acts, os.path.join(out, "features.pt"))


if __name__ == "__main__":
    main()

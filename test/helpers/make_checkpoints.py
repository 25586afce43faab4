#!/usr/bin/env python3
"""Writes PyTorch checkpoints for test/parity/model-file.test.ts into DIR:
  resnet.pt            torch.save(model.state_dict()) of a small torchvision-style ResNet
                       (width 8, 5 outputs) whose BatchNorm statistics were trained a little
  resnet.safetensors   the same state dict (builtin writer), plus "input" and "output"
                       (the model's eval output on "input")
  checkpoint.pt        {"model": {...}, "epoch": 3, "view": a strided view, "half": f16, "bf": bf16,
                        "tied": [t, t]}
  checkpoint.safetensors  contiguous copies of the tensors of checkpoint.pt, by dotted name
  evil_a.pt / evil_b.pt   valid-looking state dicts hiding an object whose __reduce__ runs
                       os.system("touch DIR/pwned_a") / ("touch DIR/pwned_b")
Usage: make_checkpoints.py DIR [--load-evil-b]   (--load-evil-b: torch.load(evil_b.pt), which runs it)
"""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_ref import builtin_save  # noqa: E402
from torch_resnet import ResNet  # noqa: E402


class Evil:
    def __init__(self, cmd):
        self.cmd = cmd

    def __reduce__(self):
        return (os.system, (self.cmd,))


def main(argv):
    d = argv[1]
    if len(argv) > 2 and argv[2] == "--load-evil-b":
        torch.load(os.path.join(d, "evil_b.pt"))
        return 0
    torch.manual_seed(0)
    model = ResNet(width=8, out_features=5, stem="imagenet")
    model.train()
    with torch.no_grad():
        for _ in range(3):
            model(torch.randn(4, 3, 32, 32))
    model.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        y = model(x)
    sd = model.state_dict()
    torch.save(sd, os.path.join(d, "resnet.pt"))
    flat = {k: v.detach().clone() for k, v in sd.items()}
    flat["input"] = x
    flat["output"] = y
    # one training-mode forward + backward: gradients of sum(out^2)
    model.train()
    x2 = x.clone().requires_grad_(True)
    out = model(x2)
    out.square().sum().backward()
    flat["train_output"] = out.detach()
    flat["train_input_grad"] = x2.grad
    flat["train_conv1_grad"] = model.conv1.weight.grad
    flat["train_fc_grad"] = model.fc.weight.grad
    flat["train_layer4_conv2_grad"] = model.layer4[1].conv2.weight.grad
    builtin_save(flat, os.path.join(d, "resnet.safetensors"), {})

    big = torch.arange(40, dtype=torch.float32).reshape(5, 8)
    tied = torch.randn(3)
    ckpt = {
        "model": {"w": torch.randn(2, 3), "ids": torch.tensor([2**40 + 1, -7], dtype=torch.int64)},
        "epoch": 3,
        "name": "test",
        "view": big[1:4, ::3],
        "half": torch.tensor([0.5, -1.25, 65504.0], dtype=torch.float16),
        "bf": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        "mask": torch.tensor([True, False]),
        "tied": [tied, tied],
    }
    torch.save(ckpt, os.path.join(d, "checkpoint.pt"))
    builtin_save(
        {
            "model.w": ckpt["model"]["w"], "model.ids": ckpt["model"]["ids"], "view": ckpt["view"].contiguous(),
            "half": ckpt["half"], "bf": ckpt["bf"], "mask": ckpt["mask"], "tied.0": tied, "tied.1": tied.clone(),
        },
        os.path.join(d, "checkpoint.safetensors"),
        {},
    )
    for tag in ("a", "b"):
        evil = {"conv.weight": torch.ones(2), "conv.bias": Evil("touch " + os.path.join(d, "pwned_" + tag))}
        torch.save(evil, os.path.join(d, "evil_%s.pt" % tag))
    torch.save(sd, os.path.join(d, "legacy.pt"), _use_new_zipfile_serialization=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""PyTorch side of torchface's parity tests (run with /usr/bin/python3, which has torch).

Usage:
    torch_parity.py layers SPEC.json IN.safetensors OUT.safetensors
        SPEC: [{"name", "layer", "args", "kwargs", "train", "params": [..], "buffers": [..]}]
        IN:   <name>.input, <name>.grad_output, <name>.param.<p>, <name>.buffer.<b>
        OUT:  <name>.out, <name>.grad.input, <name>.grad.<p>, <name>.buffer.<b> (after forward)
    torch_parity.py optim SPEC.json IN.safetensors OUT.safetensors
        SPEC: [{"name", "optimizer", "kwargs", "steps", "params": [..]}]
        IN:   <name>.param.<p>, <name>.grad.<step>.<p>
        OUT:  <name>.param.<p> after the steps
    torch_parity.py schedulers SPEC.json OUT.json
        SPEC: [{"name", "kind", "kwargs", "epochs", "lr"}]; kind "SequentialLR" takes
        "schedulers": [{kind, kwargs}] and "milestones".  OUT: {name: [lr per epoch]}
    torch_parity.py clip SPEC.json IN.safetensors OUT.safetensors
        SPEC: [{"name", "max_norm", "norm_type", "params": [..]}]; IN <name>.grad.<p>
        OUT: <name>.grad.<p> clipped, <name>.total_norm (float64 scalar)

Tensors travel as safetensors through the plain struct/json reader/writer of
safetensors_ref.py (the safetensors package is not needed).
"""
import json
import math
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from safetensors_ref import builtin_load, builtin_save  # noqa: E402

torch.use_deterministic_algorithms(False)


def load(path):
    tensors, _, _ = builtin_load(path)
    return tensors


def layers(spec, tin):
    out = {}
    for case in spec:
        name = case["name"]
        args = case.get("args", [])
        kwargs = case.get("kwargs", {})
        if isinstance(kwargs.get("kernel_size"), list):
            kwargs["kernel_size"] = tuple(kwargs["kernel_size"])
        layer = getattr(torch.nn, case["layer"])(*args, **kwargs)
        with torch.no_grad():
            for p in case.get("params", []):
                getattr(layer, p).copy_(tin[f"{name}.param.{p}"])
            for b in case.get("buffers", []):
                getattr(layer, b).copy_(tin[f"{name}.buffer.{b}"])
        layer.train(bool(case.get("train", True)))
        x = tin[f"{name}.input"].clone().requires_grad_(True)
        y = layer(x)
        y.backward(tin[f"{name}.grad_output"])
        out[f"{name}.out"] = y.detach().contiguous()
        out[f"{name}.grad.input"] = x.grad.contiguous()
        for p in case.get("params", []):
            out[f"{name}.grad.{p}"] = getattr(layer, p).grad.contiguous()
        for b in case.get("buffers", []):
            out[f"{name}.buffer.{b}"] = getattr(layer, b).detach().clone()
    return out


def optim(spec, tin):
    out = {}
    for case in spec:
        name = case["name"]
        params = [tin[f"{name}.param.{p}"].clone().requires_grad_(True) for p in case["params"]]
        opt = getattr(torch.optim, case["optimizer"])(params, **case.get("kwargs", {}))
        for step in range(case["steps"]):
            for p, pname in zip(params, case["params"]):
                p.grad = tin[f"{name}.grad.{step}.{pname}"].clone()
            opt.step()
        for p, pname in zip(params, case["params"]):
            out[f"{name}.param.{pname}"] = p.detach().clone()
    return out


def make_scheduler(opt, kind, kwargs):
    return getattr(torch.optim.lr_scheduler, kind)(opt, **kwargs)


def schedulers(spec):
    out = {}
    for case in spec:
        opt = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=case["lr"])
        if case["kind"] == "SequentialLR":
            subs = [make_scheduler(opt, s["kind"], s.get("kwargs", {})) for s in case["schedulers"]]
            sched = torch.optim.lr_scheduler.SequentialLR(opt, subs, milestones=case["milestones"])
        else:
            sched = make_scheduler(opt, case["kind"], case.get("kwargs", {}))
        lrs = [opt.param_groups[0]["lr"]]
        for _ in range(case["epochs"]):
            opt.step()
            sched.step()
            lrs.append(opt.param_groups[0]["lr"])
        out[case["name"]] = lrs
    return out


def clip(spec, tin):
    out = {}
    for case in spec:
        name = case["name"]
        params = []
        for p in case["params"]:
            g = tin[f"{name}.grad.{p}"]
            t = torch.zeros_like(g, requires_grad=True)
            t.grad = g.clone()
            params.append(t)
        norm_type = case.get("norm_type", 2.0)
        if norm_type == "inf":
            norm_type = math.inf
        total = torch.nn.utils.clip_grad_norm_(params, case["max_norm"], norm_type=norm_type)
        for t, p in zip(params, case["params"]):
            out[f"{name}.grad.{p}"] = t.grad
        out[f"{name}.total_norm"] = total.double().reshape(())
    return out


def main(argv):
    mode = argv[1]
    with open(argv[2]) as f:
        spec = json.load(f)
    if mode == "schedulers":
        with open(argv[3], "w") as f:
            json.dump(schedulers(spec), f)
        return 0
    tin = load(argv[3])
    result = {"layers": layers, "optim": optim, "clip": clip}[mode](spec, tin)
    builtin_save(result, argv[4], {"source": "torch_parity.py", "torch": torch.__version__})
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

# Exports the ONNX test models of test/parity/onnx.test.ts with torch.onnx.export
# (Debian's python3-torch) and writes, per model, what PyTorch computes:
# the output for a fixed input, and the gradient of sum(output * probe) with
# respect to every parameter, in the model's train() or eval() mode as given.
#   python3 onnx_models.py OUT_DIR
# OUT_DIR/<name>.onnx and OUT_DIR/<name>.json + <name>.bin (raw float32 arrays
# listed in the JSON: name, shape, offset in floats).
import json
import os
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
out_dir = sys.argv[1]
os.makedirs(out_dir, exist_ok=True)


class Basic(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.down = None
        if stride != 1 or cin != cout:
            self.down = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), nn.BatchNorm2d(cout))

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        y = self.bn2(self.conv2(y))
        return F.relu(y + (self.down(x) if self.down is not None else x))


class ResNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 7, 2, 3, bias=False)
        self.bn = nn.BatchNorm2d(8)
        self.pool = nn.MaxPool2d(3, 2, 1)
        self.layer1 = Basic(8, 8, 1)
        self.layer2 = Basic(8, 16, 2)
        self.fc = nn.Linear(16, 10)

    def forward(self, x):
        x = self.pool(F.relu(self.bn(self.stem(x))))
        x = self.layer2(self.layer1(x))
        x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        return self.fc(x)


class MobileNetish(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 16, 3, 2, 1)
        self.act = nn.PReLU(16)
        self.dw = nn.Conv2d(16, 16, 3, 2, 1, groups=16, bias=False)
        self.bn = nn.BatchNorm2d(16)
        self.act2 = nn.Hardswish()
        self.pw = nn.Conv2d(16, 32, 1)
        self.drop = nn.Dropout(0.2)
        self.fc = nn.Linear(32, 12)

    def forward(self, x):
        x = self.act(self.conv(x))
        x = self.act2(self.bn(self.dw(x)))
        x = F.relu6(self.pw(x))
        x = F.hardsigmoid(x) * x
        x = x.mean(dim=(2, 3))
        x = self.fc(self.drop(x))
        return F.normalize(x, dim=1)


class Misc(nn.Module):
    """Shape idioms, resize, pad, concat/split, softmax, reductions, leaky relu, sigmoid, tanh, pow/sqrt."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 6, 3, padding=1)
        self.up = nn.ConvTranspose2d(6, 4, 2, stride=2)
        self.lin = nn.Linear(4 * 4 * 4, 5)

    def forward(self, x):
        n = x.shape[0]
        y = F.leaky_relu(self.conv(x), 0.1)
        a, b = torch.split(y, [2, 4], dim=1)
        y = torch.cat([torch.sigmoid(a), torch.tanh(b)], dim=1)
        y = F.interpolate(y, scale_factor=2, mode="nearest")
        y = F.avg_pool2d(y, 2)
        z = F.interpolate(y, size=(6, 6), mode="bilinear", align_corners=False)
        y = self.up(F.pad(y, (1, 1, 1, 1), mode="reflect"))[:, :, 1:-1:2, ::2]
        s = torch.softmax(y.reshape(n, 4, -1), dim=-1).reshape(n, 4, y.shape[2], y.shape[3])
        t = (s.pow(2) + 1e-3).sqrt().sum(dim=1, keepdim=True) + z.mean(dim=1, keepdim=True)[:, :, :1, :1]
        v = self.lin((t * s)[:, :, :4, :4].reshape(n, -1))
        return v - v.max(dim=1, keepdim=True)[0] + torch.clamp(v, -0.5, 0.5)


# name: (class, input shape, opset, mode). In eval mode the exporter folds
# BatchNorm into the convolutions; "mobilenet" is exported in training mode, so
# its BatchNormalization nodes stay (with batch statistics) and every parameter
# keeps its PyTorch name, for the gradient comparison.
MODELS = {
    "resnet": (ResNetish, [2, 3, 32, 32], 11, "eval"),
    "mobilenet": (MobileNetish, [2, 3, 24, 24], 14, "train"),
    "misc": (Misc, [3, 4, 8, 8], 13, "eval"),
}


def dump(name, tensors):
    meta, chunks, offset = [], [], 0
    for key, t in tensors:
        flat = t.detach().reshape(-1).to(torch.float32).contiguous()
        meta.append({"name": key, "shape": list(t.shape), "offset": offset})
        chunks.append(flat)
        offset += flat.numel()
    with open(os.path.join(out_dir, name + ".bin"), "wb") as f:
        f.write(torch.cat(chunks).numpy().tobytes())
    with open(os.path.join(out_dir, name + ".json"), "w") as f:
        json.dump(meta, f)


for name, (cls, shape, opset, mode) in MODELS.items():
    m = cls()
    # Non-trivial BatchNorm statistics, as a trained model has.
    with torch.no_grad():
        for mod in m.modules():
            if isinstance(mod, nn.BatchNorm2d):
                mod.running_mean.uniform_(-0.5, 0.5)
                mod.running_var.uniform_(0.5, 2.0)
                mod.weight.uniform_(0.5, 1.5)
                mod.bias.uniform_(-0.2, 0.2)
    training = mode == "train"
    if training:
        m.drop.p = 0.0  # deterministic
    m.train(training)
    x = torch.rand(*shape) * 2 - 1
    torch.onnx.export(
        m, (x,), os.path.join(out_dir, name + ".onnx"), opset_version=opset, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, do_constant_folding=False,
        training=torch.onnx.TrainingMode.TRAINING if training else torch.onnx.TrainingMode.EVAL,
    )
    m.train(training)  # export may switch modes
    y = m(x)
    probe = torch.linspace(-1, 1, y.numel()).reshape(y.shape)
    m.zero_grad()
    (y * probe).sum().backward()
    tensors = [("input", x), ("output", y), ("probe", probe)]
    tensors += [("grad:" + k, p.grad) for k, p in m.named_parameters() if p.grad is not None]
    # A second batch size: the dynamic batch axis.
    x3 = torch.rand(*([5] + shape[1:])) * 2 - 1
    tensors += [("input5", x3), ("output5", m(x3))]
    with open(os.path.join(out_dir, name + ".mode"), "w") as f:
        f.write(mode)
    dump(name, tensors)
print("ok")

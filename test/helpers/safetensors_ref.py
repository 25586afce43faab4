#!/usr/bin/env python3
"""Independent safetensors reference for the torchface interop tests.

Usage:
    safetensors_ref.py write PATH   write a fixed set of tensors + metadata to PATH,
                                    print a JSON description of what was written
    safetensors_ref.py read PATH    read PATH, print JSON with dtype/shape/sum/values
                                    of every tensor, the metadata and layout facts

If the `safetensors` package is importable it is used (safetensors.torch
save_file / safe_open); otherwise the format is written and read here with
plain struct + json + torch, following the specification, with strict checks.
Set SAFETENSORS_REF_IMPL=builtin to force the built-in implementation.

int64 values are printed as strings (JSON numbers lose precision in JS).
"""
import json
import os
import struct
import sys

import torch

try:
    if os.environ.get("SAFETENSORS_REF_IMPL") == "builtin":
        raise ImportError("forced builtin")
    import safetensors.torch as st_torch  # type: ignore
    from safetensors import safe_open  # type: ignore

    IMPL = "safetensors"
except ImportError:
    st_torch = None
    safe_open = None
    IMPL = "builtin"

# safetensors dtype string -> (torch dtype, item size, rank in the reference Dtype enum)
DTYPES = {
    "BOOL": (torch.bool, 1, 0),
    "U8": (torch.uint8, 1, 1),
    "I8": (torch.int8, 1, 2),
    "I16": (torch.int16, 2, 5),
    "F16": (torch.float16, 2, 7),
    "BF16": (torch.bfloat16, 2, 8),
    "I32": (torch.int32, 4, 9),
    "F32": (torch.float32, 4, 11),
    "F64": (torch.float64, 8, 12),
    "I64": (torch.int64, 8, 13),
}
TORCH_TO_ST = {v[0]: k for k, v in DTYPES.items()}


def tensor_bytes(t):
    """Little-endian bytes of a contiguous CPU tensor (host is little-endian)."""
    assert sys.byteorder == "little"
    t = t.contiguous()
    if t.numel() == 0:
        return b""
    if t.dtype in (torch.float16, torch.bfloat16):
        t = t.view(torch.int16)  # numpy has no bfloat16
    return t.numpy().tobytes()


def builtin_save(tensors, path, metadata):
    items = sorted(tensors.items(), key=lambda kv: (-DTYPES[TORCH_TO_ST[kv[1].dtype]][2], kv[0]))
    header = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    blobs = []
    offset = 0
    for name, t in items:
        b = tensor_bytes(t)
        header[name] = {
            "dtype": TORCH_TO_ST[t.dtype],
            "shape": list(t.shape),
            "data_offsets": [offset, offset + len(b)],
        }
        offset += len(b)
        blobs.append(b)
    hjson = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hjson += b" " * ((8 - len(hjson) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(hjson)))
        f.write(hjson)
        for b in blobs:
            f.write(b)


def builtin_load(path):
    """Strict reader; returns (tensors, metadata, layout facts)."""
    with open(path, "rb") as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError("file shorter than 8 bytes")
    (n,) = struct.unpack("<Q", raw[:8])
    if 8 + n > len(raw):
        raise ValueError("header length beyond end of file")
    htext = raw[8 : 8 + n].decode("utf-8")
    if not htext.startswith("{"):
        raise ValueError("header does not start with '{'")
    stripped = htext.rstrip(" ")
    header = json.loads(stripped)
    metadata = header.pop("__metadata__", None) or {}
    for k, v in metadata.items():
        if not isinstance(v, str):
            raise ValueError("metadata value for %r is not a string" % k)
    data = raw[8 + n :]
    entries = sorted(header.items(), key=lambda kv: tuple(kv[1]["data_offsets"]))
    cursor = 0
    tensors = {}
    aligned = True
    for name, info in entries:
        dt, size, _ = DTYPES[info["dtype"]]
        begin, end = info["data_offsets"]
        if begin != cursor:
            raise ValueError("tensor %r: offsets not contiguous (begin %d, expected %d)" % (name, begin, cursor))
        numel = 1
        for d in info["shape"]:
            numel *= d
        if end - begin != numel * size:
            raise ValueError("tensor %r: byte size does not match shape" % name)
        if (8 + n + begin) % size != 0:
            aligned = False
        cursor = end
        chunk = data[begin:end]
        if numel == 0:
            t = torch.empty(info["shape"], dtype=dt)
        else:
            t = torch.frombuffer(bytearray(chunk), dtype=dt).reshape(info["shape"])
        tensors[name] = t
    if cursor != len(data):
        raise ValueError("data section not fully covered (%d of %d bytes)" % (cursor, len(data)))
    facts = {
        "header_length": n,
        "header_padded_to_8": n % 8 == 0 and len(htext) - len(stripped) < 8,
        "order": [name for name, _ in entries],
        "aligned": aligned,
        "header_keys": list(json.loads(stripped).keys()),
    }
    return tensors, metadata, facts


def lib_load(path):
    tensors = st_torch.load_file(path)
    with safe_open(path, framework="pt") as f:
        metadata = f.metadata() or {}
    return tensors, metadata, {}


def describe(t):
    flat = t.reshape(-1)
    if t.dtype == torch.int64:
        values = [str(int(v)) for v in flat.tolist()]
        total = str(int(flat.sum().item())) if t.numel() else "0"
    elif t.dtype == torch.bool:
        values = [1 if v else 0 for v in flat.tolist()]
        total = int(flat.sum().item())
    else:
        if t.is_floating_point():
            values = [float(v) for v in flat.double().tolist()]  # widening is exact
        else:
            values = [int(v) for v in flat.tolist()]
        total = float(flat.double().sum().item()) if t.numel() else 0.0
    out = {"dtype": TORCH_TO_ST[t.dtype], "shape": list(t.shape), "sum": total, "numel": t.numel()}
    if t.numel() <= 64:
        out["values"] = values
    return out


def reference_tensors():
    return {
        "weight": (torch.arange(12, dtype=torch.float32).reshape(3, 4) * 0.5 - 1.0),
        "ids": torch.tensor([0, -1, 2**40 + 3, -(2**62) + 5, 7], dtype=torch.int64),
        "half": torch.tensor([[0.5, -1.25, 65504.0], [2.0**-24, 1.0 / 3.0, -2.0]], dtype=torch.float16),
        "bf": torch.tensor([1.0, -2.5, 3.140625], dtype=torch.bfloat16),
        "mask": torch.tensor([True, False, True, True]),
        "scalar": torch.tensor(2.718281828459045, dtype=torch.float64),
        "empty": torch.zeros((0, 3), dtype=torch.float32),
        "small.int": torch.tensor([[-128, 127], [0, 5]], dtype=torch.int8),
    }


REFERENCE_METADATA = {
    "format": "pt",
    "source": "safetensors_ref.py",
    "config": json.dumps({"lr": 0.001, "layers": [1, 2]}),
}


def main(argv):
    if len(argv) != 3 or argv[1] not in ("write", "read"):
        print(__doc__, file=sys.stderr)
        return 2
    cmd, path = argv[1], argv[2]
    if cmd == "write":
        tensors = reference_tensors()
        if IMPL == "safetensors":
            st_torch.save_file(tensors, path, metadata=REFERENCE_METADATA)
        else:
            builtin_save(tensors, path, REFERENCE_METADATA)
        out = {"impl": IMPL, "metadata": REFERENCE_METADATA, "tensors": {k: describe(v) for k, v in tensors.items()}}
    else:
        tensors, metadata, facts = lib_load(path) if IMPL == "safetensors" else builtin_load(path)
        out = {"impl": IMPL, "metadata": metadata, "layout": facts, "tensors": {k: describe(v) for k, v in tensors.items()}}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

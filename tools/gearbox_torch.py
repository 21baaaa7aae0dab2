#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Read a gearbox model file (docs/model-format.md) into PyTorch, independently
of the C engine: the reference for parity tests and the source of the ONNX
files (one per active-group count g).

  /usr/bin/python3 tools/gearbox_torch.py logits MODEL --idx IMAGES --groups g [--count N]
  /usr/bin/python3 tools/gearbox_torch.py onnx MODEL OUTDIR
"""
import argparse
import gzip
import json
import os
import struct
import sys

import numpy as np
import torch
import torch.nn.functional as F


def read_model(path):
    with open(path, "rb") as f:
        raw = f.read()
    n, = struct.unpack("<Q", raw[:8])
    header = json.loads(raw[8:8 + n])
    meta = header.pop("__metadata__")
    graph = json.loads(meta["graph"])
    base = 8 + n
    tensors = {}
    for name, t in header.items():
        assert t["dtype"] == "F32", name
        b, e = t["data_offsets"]
        tensors[name] = torch.from_numpy(
            np.frombuffer(raw, dtype="<f4", count=(e - b) // 4, offset=base + b).reshape(t["shape"]).copy())
    return graph, tensors


class StaticNet(torch.nn.Module):
    """The model at g active groups as plain PyTorch ops (grouped layers as
    grouped convolutions; nested ones with the blocks above the diagonal
    zeroed, which is what 'group k reads groups 1..k' means)."""

    def __init__(self, graph, tensors, g):
        super().__init__()
        G = graph["groups"]
        self.steps = []
        c, h, w = graph["input"]["shape"]
        self.mean = torch.tensor(graph["input"].get("mean", [0.0] * c)).reshape(1, -1, 1, 1)
        self.std = torch.tensor(graph["input"].get("std", [1.0] * c)).reshape(1, -1, 1, 1)
        weighted = [i for i, l in enumerate(graph["layers"]) if l["type"] in ("conv2d", "linear")]
        first, last = weighted[0], weighted[-1]
        grouped_in = False
        default_conn = graph.get("connectivity", "grouped")
        for i, layer in enumerate(graph["layers"]):
            kind = layer["type"]
            if kind in ("conv2d", "linear"):
                name = layer.get("name", f"{kind}{i}")
                W = tensors[layer.get("weight", name + ".weight")]
                B = tensors.get(layer.get("bias", name + ".bias")) if layer.get("bias", "") is not None else None
                out_grouped = i != last
                conn = "dense" if i in (first, last) else layer.get("connectivity", default_conn)
                rows = W.shape[0] // G * g if out_grouped else W.shape[0]
                cin = c if kind == "conv2d" else c * h * w
                cin_act = cin // G * g if grouped_in else cin
                Wg = W[:rows]
                groups = 1
                if conn == "grouped":
                    groups = g
                elif conn == "nested":
                    Wg = Wg.clone()
                    ipg, opg = cin // G, W.shape[0] // G
                    cols = ipg * (Wg[0].numel() // cin)
                    flat = Wg.reshape(rows, -1)
                    for k in range(g):
                        flat[k * opg:(k + 1) * opg, (k + 1) * cols:] = 0
                    Wg = flat.reshape(Wg.shape)[:, :cin_act]
                else:
                    Wg = Wg[:, :cin_act] if kind == "conv2d" else Wg[:, :cin_act]
                Bg = B[:rows] if B is not None else None
                if kind == "conv2d":
                    k_ = layer["kernel"]
                    s_ = layer.get("stride", 1)
                    p_ = layer.get("padding", 0)
                    self.steps.append(("conv", Wg, Bg, s_, p_, groups))
                    kh = k_ if isinstance(k_, int) else k_[0]
                    sh = s_ if isinstance(s_, int) else s_[0]
                    ph = p_ if isinstance(p_, int) else p_[0]
                    h = (h + 2 * ph - kh) // sh + 1
                    w = (w + 2 * ph - kh) // sh + 1
                    c = W.shape[0]
                else:
                    if groups > 1:
                        Wg = torch.block_diag(*Wg.reshape(g, rows // g, -1).unbind(0))
                    self.steps.append(("linear", Wg, Bg))
                    c = W.shape[0]
                grouped_in = out_grouped
            elif kind in ("maxpool", "avgpool"):
                k_ = layer["kernel"]
                s_ = layer.get("stride", k_)
                self.steps.append((kind, k_, s_))
                kh = k_ if isinstance(k_, int) else k_[0]
                sh = s_ if isinstance(s_, int) else s_[0]
                h, w = (h - kh) // sh + 1, (w - kh) // sh + 1
            elif kind == "flatten":
                self.steps.append(("flatten",))
                c, h, w = c * h * w, 1, 1
            else:
                self.steps.append((kind,))

    def forward(self, x):
        for step in self.steps:
            kind = step[0]
            if kind == "conv":
                x = F.conv2d(x, step[1], step[2], stride=step[3], padding=step[4], groups=step[5])
            elif kind == "linear":
                x = F.linear(x, step[1], step[2])
            elif kind == "maxpool":
                x = F.max_pool2d(x, step[1], step[2])
            elif kind == "avgpool":
                x = F.avg_pool2d(x, step[1], step[2])
            elif kind == "flatten":
                x = x.flatten(1)
            elif kind == "relu":
                x = F.relu(x)
            elif kind == "softmax":
                x = F.softmax(x, 1)
        return x


def read_idx_images(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def normalised_input(graph, pixels):
    c, h, w = graph["input"]["shape"]
    x = torch.tensor(pixels.reshape(-1, c, h, w), dtype=torch.float32) / 255.0
    mean = torch.tensor(graph["input"].get("mean", [0.0] * c)).reshape(1, -1, 1, 1)
    std = torch.tensor(graph["input"].get("std", [1.0] * c)).reshape(1, -1, 1, 1)
    return (x - mean) / std


def export_onnx(model_path, outdir):
    graph, tensors = read_model(model_path)
    c, h, w = graph["input"]["shape"]
    stem = os.path.splitext(os.path.basename(model_path))[0]
    paths = []
    for g in range(1, graph["groups"] + 1):
        net = StaticNet(graph, tensors, g).eval()
        path = os.path.join(outdir, f"{stem}-g{g}.onnx")
        torch.onnx.export(net, torch.zeros(1, c, h, w), path, input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}}, opset_version=13)
        paths.append(path)
    return paths


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    lg = sub.add_parser("logits", help="print the model's outputs for IDX images as JSON lines")
    lg.add_argument("model")
    lg.add_argument("--idx", required=True)
    lg.add_argument("--groups", type=int, required=True)
    lg.add_argument("--count", type=int, default=100)
    ox = sub.add_parser("onnx", help="write MODEL-g<g>.onnx for every g")
    ox.add_argument("model")
    ox.add_argument("outdir")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.cmd == "logits":
        graph, tensors = read_model(args.model)
        net = StaticNet(graph, tensors, args.groups).eval()
        x = normalised_input(graph, read_idx_images(args.idx)[:args.count])
        with torch.no_grad():
            for row in net(x):
                print(json.dumps([float(v) for v in row]))
    else:
        os.makedirs(args.outdir, exist_ok=True)
        for p in export_onnx(args.model, args.outdir):
            print(p)


if __name__ == "__main__":
    main()

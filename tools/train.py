#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Train a dynamic (group-pruned, incrementally trained) AlexNet-style DNN and
export it as a gearbox model (docs/model-format.md), plus one ONNX file per
active-group count.

Every weighted layer's channels are split into G groups. Stage k (1..G) trains
only the parameters that group k adds -- groups 1..k-1 are frozen, including
their batch-norm statistics -- so the network truncated to g groups is exactly
the stage-g network (Xun et al., MLCAD'19). After every stage the script
re-evaluates the earlier widths and checks their accuracy did not move.

Needs only Debian's python3-torch (run with /usr/bin/python3).

  /usr/bin/python3 tools/train.py --out models/fmnist-alexnet-g4.safetensors
  /usr/bin/python3 tools/train.py --quick --out /tmp/q.safetensors     # < 1 min
"""
import argparse
import gzip
import json
import math
import os
import re
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

FMNIST_LABELS = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                 "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"]
CIFAR_LABELS = ["airplane", "automobile", "bird", "cat", "deer",
                "dog", "frog", "horse", "ship", "truck"]

# (kind, out, kernel, padding, pool-after) -- AlexNet shape as in the paper:
# five convolutions, three fully connected layers, ReLU, max pooling.
ARCHS = {
    "fmnist": dict(input=(1, 28, 28), labels=FMNIST_LABELS,
                   convs=[(64, 3, 1, True), (128, 3, 1, True), (256, 3, 1, False),
                          (256, 3, 1, False), (128, 3, 1, True)],
                   fcs=[512, 512]),
    "cifar10": dict(input=(3, 32, 32), labels=CIFAR_LABELS,
                    convs=[(64, 5, 2, True), (192, 5, 2, True), (384, 3, 1, False),
                           (256, 3, 1, False), (256, 3, 1, True)],
                    fcs=[1024, 1024]),
}
BN_EPS = 1e-5


# --------------------------------------------------------------------------
# Data

def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    magic, = struct.unpack(">I", data[:4])
    ndim = magic & 0xFF
    if magic >> 8 != 0x08:
        raise SystemExit(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(folder, name):
    for candidate in (name, name + ".gz"):
        p = os.path.join(folder, candidate)
        if os.path.exists(p):
            return p
    raise SystemExit(f"{folder}: no {name}[.gz] (install Debian's dataset-fashion-mnist?)")


def load_fmnist(folder):
    x_train = read_idx(find(folder, "train-images-idx3-ubyte"))[:, None]
    y_train = read_idx(find(folder, "train-labels-idx1-ubyte"))
    x_test = read_idx(find(folder, "t10k-images-idx3-ubyte"))[:, None]
    y_test = read_idx(find(folder, "t10k-labels-idx1-ubyte"))
    return x_train, y_train, x_test, y_test


def load_cifar(folder):
    def batch(name):
        raw = np.fromfile(os.path.join(folder, name), dtype=np.uint8).reshape(-1, 3073)
        return raw[:, 1:].reshape(-1, 3, 32, 32), raw[:, 0]
    parts = [batch(f"data_batch_{i}.bin") for i in range(1, 6)]
    x_test, y_test = batch("test_batch.bin")
    return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
            x_test, y_test)


# --------------------------------------------------------------------------
# The dynamic network: parameters kept per group so that freezing is exact.

class DynamicNet(torch.nn.Module):
    def __init__(self, arch, groups, connectivity):
        super().__init__()
        self.arch, self.G, self.connectivity = arch, groups, connectivity
        c_in = arch["input"][0]
        h, w = arch["input"][1:]
        self.convs = []  # (name, out, k, pad, pool, dense_in)
        self.params = torch.nn.ParameterDict()
        self.stats = {}
        for i, (out, k, pad, pool) in enumerate(arch["convs"]):
            name = f"conv{i + 1}"
            self._add_weighted(name, out, c_in, (k, k), dense_in=(i == 0), bn=True)
            self.convs.append((name, out, k, pad, pool, i == 0))
            c_in = out
            if pool:
                h, w = h // 2, w // 2
        self.flat = c_in * h * w
        self.fcs = []
        f_in = self.flat
        for i, out in enumerate(arch["fcs"]):
            name = f"fc{i + 1}"
            self._add_weighted(name, out, f_in, (), dense_in=False, bn=False)
            self.fcs.append((name, out))
            f_in = out
        self.classes = len(arch["labels"])
        # Classifier: group k adds the columns that read input group k; its
        # bias belongs to group 1.
        for k in range(groups):
            t = torch.empty(self.classes, f_in // groups)
            torch.nn.init.kaiming_uniform_(t, a=math.sqrt(5))
            self.params[f"fc{len(arch['fcs']) + 1}_w{k}"] = torch.nn.Parameter(t)
        self.params[f"fc{len(arch['fcs']) + 1}_b0"] = torch.nn.Parameter(torch.zeros(self.classes))
        self.classifier = f"fc{len(arch['fcs']) + 1}"

    def _add_weighted(self, name, out, c_in, kernel, dense_in, bn):
        G = self.G
        if out % G or (not dense_in and c_in % G):
            raise SystemExit(f"{name}: G={G} must divide its channels")
        for k in range(G):
            if dense_in:
                cols = c_in
            elif self.connectivity == "grouped":
                cols = c_in // G
            else:  # nested: group k reads input groups 1..k
                cols = c_in // G * (k + 1)
            t = torch.empty(out // G, cols, *kernel)
            torch.nn.init.kaiming_normal_(t, nonlinearity="relu")
            self.params[f"{name}_w{k}"] = torch.nn.Parameter(t)
            self.params[f"{name}_b{k}"] = torch.nn.Parameter(torch.zeros(out // G))
            if bn:
                self.params[f"{name}_gamma{k}"] = torch.nn.Parameter(torch.ones(out // G))
                self.stats[f"{name}_mean{k}"] = torch.zeros(out // G)
                self.stats[f"{name}_var{k}"] = torch.ones(out // G)

    def _weighted(self, name, x, g, conv_args=None, dense_in=False):
        G, P = self.G, self.params
        cpg = x.shape[1] // g if not dense_in else None  # x holds the g active groups
        outs = []
        for k in range(g):
            if dense_in:
                xin = x
            elif self.connectivity == "grouped":
                xin = x[:, k * cpg:(k + 1) * cpg]
            else:
                xin = x[:, :(k + 1) * cpg]
            if conv_args is not None:  # the bias is batch-norm's shift, applied after
                outs.append(F.conv2d(xin, P[f"{name}_w{k}"], None, padding=conv_args))
            else:
                outs.append(F.linear(xin, P[f"{name}_w{k}"], P[f"{name}_b{k}"]))
        return outs

    def forward_group(self, x, k):
        """Group k's own path in training mode: with grouped connectivity it
        reads only the input and its own channels, so the frozen groups need
        not run at all (stage k then costs what stage 1 costs)."""
        P = self.params
        for name, out, kern, pad, pool, dense_in in self.convs:
            y = F.conv2d(x, P[f"{name}_w{k}"], None, padding=pad)
            y = F.batch_norm(y, self.stats[f"{name}_mean{k}"], self.stats[f"{name}_var{k}"],
                             P[f"{name}_gamma{k}"], P[f"{name}_b{k}"], training=True, momentum=0.1, eps=BN_EPS)
            x = F.relu(y)
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for name, out in self.fcs:
            x = F.dropout(F.relu(F.linear(x, P[f"{name}_w{k}"], P[f"{name}_b{k}"])), 0.3, training=True)
        return F.linear(x, P[f"{self.classifier}_w{k}"]) + P[f"{self.classifier}_b0"]

    def forward(self, x, g, train_group=None, own_logits=False):
        """Run with g active groups. train_group: the group whose batch-norm
        uses batch statistics (None: every group uses its running stats)."""
        P = self.params
        for name, out, k, pad, pool, dense_in in self.convs:
            parts = self._weighted(name, x, g, conv_args=pad, dense_in=dense_in)
            normed = []
            for j, y in enumerate(parts):
                training = train_group == j
                y = F.batch_norm(y, self.stats[f"{name}_mean{j}"], self.stats[f"{name}_var{j}"],
                                 P[f"{name}_gamma{j}"], P[f"{name}_b{j}"], training=training, momentum=0.1, eps=BN_EPS)
                normed.append(y)
            x = F.relu(torch.cat(normed, 1))
            if pool:
                x = F.max_pool2d(x, 2)
        x = x.flatten(1)
        for name, out in self.fcs:
            parts = [F.relu(y) for y in self._weighted(name, x, g)]
            if train_group is not None:
                # Dropout only on the group being trained: frozen groups must
                # behave exactly as they will at inference.
                parts[train_group] = F.dropout(parts[train_group], 0.3, training=True)
            x = torch.cat(parts, 1)
        fpg = x.shape[1] // g
        parts = [F.linear(x[:, k * fpg:(k + 1) * fpg], P[f"{self.classifier}_w{k}"]) for k in range(g)]
        logits = P[f"{self.classifier}_b0"] + sum(parts)
        if own_logits:  # what the last active group says on its own
            return logits, parts[-1] + P[f"{self.classifier}_b0"]
        return logits

    # ---- export -----------------------------------------------------------
    def folded_tensors(self):
        """Full-width gearbox tensors with batch-norm folded into the convs."""
        G, P, tensors = self.G, self.params, {}
        for name, out, k, pad, pool, dense_in in self.convs:
            ws, bs = [], []
            for j in range(G):
                scale = P[f"{name}_gamma{j}"] / torch.sqrt(self.stats[f"{name}_var{j}"] + BN_EPS)
                w = P[f"{name}_w{j}"] * scale[:, None, None, None]
                b = P[f"{name}_b{j}"] - self.stats[f"{name}_mean{j}"] * scale
                ws.append(w)
                bs.append(b)
            tensors[f"{name}.weight"] = self._assemble(ws, dense_in)
            tensors[f"{name}.bias"] = torch.cat(bs)
        for name, out in self.fcs:
            tensors[f"{name}.weight"] = self._assemble([P[f"{name}_w{j}"] for j in range(G)], False)
            tensors[f"{name}.bias"] = torch.cat([P[f"{name}_b{j}"] for j in range(G)])
        tensors[f"{self.classifier}.weight"] = torch.cat([P[f"{self.classifier}_w{j}"] for j in range(G)], 1)
        tensors[f"{self.classifier}.bias"] = P[f"{self.classifier}_b0"]
        return {n: t.detach().contiguous().float() for n, t in tensors.items()}

    def _assemble(self, ws, dense_in):
        if dense_in or self.connectivity == "grouped":
            return torch.cat(ws, 0)
        full = ws[-1].shape[1]  # nested: pad each group's rows with zeros
        return torch.cat([F.pad(w, (0, 0) * (w.dim() - 2) + (0, full - w.shape[1])) for w in ws], 0)

    def graph(self, name, mean, std, accuracy):
        layers = []
        hidden_conn = self.connectivity
        for i, (lname, out, k, pad, pool, dense_in) in enumerate(self.convs):
            layer = {"type": "conv2d", "name": lname, "out_channels": out, "kernel": k, "padding": pad}
            if not dense_in:
                layer["connectivity"] = hidden_conn
            layers += [layer, {"type": "relu"}]
            if pool:
                layers.append({"type": "maxpool", "kernel": 2, "stride": 2})
        layers.append({"type": "flatten"})
        for lname, out in self.fcs:
            layers += [{"type": "linear", "name": lname, "out_features": out, "connectivity": hidden_conn},
                       {"type": "relu"}]
        layers.append({"type": "linear", "name": self.classifier, "out_features": self.classes})
        return {"name": name, "groups": self.G, "connectivity": hidden_conn,
                "input": {"shape": list(self.arch["input"]), "mean": mean, "std": std},
                "labels": self.arch["labels"], "accuracy": accuracy, "layers": layers}


# --------------------------------------------------------------------------
# Writers

def write_safetensors(path, tensors, metadata):
    header, offset, blobs = {}, 0, []
    for name, t in tensors.items():
        data = t.numpy().astype("<f4").tobytes()
        header[name] = {"dtype": "F32", "shape": list(t.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    header["__metadata__"] = metadata
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)  # keep tensor data 8-byte aligned
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(struct.pack("<Q", len(text)))
        f.write(text)
        for b in blobs:
            f.write(b)
    os.replace(tmp, path)


# --------------------------------------------------------------------------

def group_of(param_name):
    """Parameters are named LAYER_KINDk (conv2_w3, fc1_b0, conv1_gamma2)."""
    return int(re.search(r"_(?:w|b|gamma)(\d+)$", param_name).group(1))


def evaluate(net, x, y, g, batch=1000):
    correct = 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            correct += (net(x[i:i + batch], g).argmax(1) == y[i:i + batch]).sum().item()
    return correct / len(x)


def augment(xb, pad=2):
    """Random shifts by up to `pad` pixels (and horizontal flips for CIFAR)."""
    n, c, h, w = xb.shape
    padded = F.pad(xb, (pad, pad, pad, pad))
    dx, dy = np.random.randint(0, 2 * pad + 1, 2)
    out = padded[:, :, dy:dy + h, dx:dx + w]
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--dataset", choices=["fmnist", "cifar10"], default="fmnist")
    ap.add_argument("--data", help="dataset folder (default: /usr/share/datasets/fashion-mnist)")
    ap.add_argument("--groups", type=int, default=4, help="channel groups G (default 4)")
    ap.add_argument("--connectivity", choices=["grouped", "nested"], default="grouped")
    ap.add_argument("--epochs", type=int, default=8, help="epochs per stage (default 8)")
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--lr", type=float, default=2e-3)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--epochs-first", type=int, help="epochs for stage 1 (default: --epochs)")
    ap.add_argument("--aux-weight", type=float, default=1.0,
                    help="weight of the new group's own classification loss in stages 2..G (default 1)")
    ap.add_argument("--joint-weight", type=float, default=0.0,
                    help="weight of the loss of all active groups together in stages 2..G (default 0)")
    ap.add_argument("--smoothing", type=float, default=0.05, help="label smoothing (default 0.05)")
    ap.add_argument("--train-limit", type=int, help="train on the first N training images only")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--quick", action="store_true", help="small subset, 1 epoch per stage (tests)")
    ap.add_argument("--out", required=True, help="output .safetensors path")
    ap.add_argument("--onnx-dir", help="also write one ONNX file per g into this folder")
    ap.add_argument("--name", help="model name (default from the output file)")
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    np.random.seed(args.seed)
    torch.set_num_threads(args.threads)
    arch = ARCHS[args.dataset]
    folder = args.data or ("/usr/share/datasets/fashion-mnist" if args.dataset == "fmnist" else "cifar-10-batches-bin")
    x_train, y_train, x_test, y_test = (load_fmnist if args.dataset == "fmnist" else load_cifar)(folder)
    if args.quick:
        x_train, y_train, x_test, y_test = x_train[:3000], y_train[:3000], x_test[:1000], y_test[:1000]
        args.epochs, args.epochs_first = 1, 1
    if args.train_limit:
        x_train, y_train = x_train[:args.train_limit], y_train[:args.train_limit]
    epochs_of = lambda stage: args.epochs_first if stage == 0 and args.epochs_first else args.epochs  # noqa: E731
    x_train = torch.tensor(x_train, dtype=torch.float32) / 255.0
    x_test = torch.tensor(x_test, dtype=torch.float32) / 255.0
    mean = x_train.mean(dim=(0, 2, 3)).tolist()
    std = x_train.std(dim=(0, 2, 3)).tolist()
    m_t, s_t = torch.tensor(mean)[None, :, None, None], torch.tensor(std)[None, :, None, None]
    x_train, x_test = (x_train - m_t) / s_t, (x_test - m_t) / s_t
    y_train, y_test = torch.tensor(y_train, dtype=torch.long), torch.tensor(y_test, dtype=torch.long)

    net = DynamicNet(arch, args.groups, args.connectivity)
    G = args.groups
    accuracy = [None] * G
    started = time.time()
    steps_per_epoch = math.ceil(len(x_train) / args.batch_size)
    total_steps = sum(epochs_of(k) for k in range(G)) * steps_per_epoch
    done_steps = 0
    print(f"training {args.dataset} AlexNet, G={G} {args.connectivity}, {args.epochs} epoch(s) per stage, "
          f"{len(x_train)} training / {len(x_test)} test images, seed {args.seed}", flush=True)
    for stage in range(G):
        own = [n for n in net.params if group_of(n) == stage]
        for n, p in net.params.items():
            p.requires_grad_(n in own)
        opt = torch.optim.AdamW([net.params[n] for n in own], lr=args.lr, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=args.lr, total_steps=epochs_of(stage) * steps_per_epoch)
        for epoch in range(epochs_of(stage)):
            perm = torch.randperm(len(x_train))
            loss_sum, seen, t0 = 0.0, 0, time.time()
            for i in range(0, len(x_train), args.batch_size):
                idx = perm[i:i + args.batch_size]
                xb = augment(x_train[idx])
                if stage and args.joint_weight == 0 and args.connectivity == "grouped":
                    # Only the new group's own loss: run only its path.
                    logits = own_logits = net.forward_group(xb, stage)
                    loss = 0.0
                else:
                    logits, own_logits = net(xb, stage + 1, train_group=stage, own_logits=True)
                    loss = (args.joint_weight if stage else 1.0) * F.cross_entropy(logits, y_train[idx],
                                                                                 label_smoothing=args.smoothing)
                if stage and args.aux_weight:
                    # The new group must also classify on its own: it then adds
                    # an independent opinion (an ensemble) rather than fitting
                    # the frozen groups' residual, which overfits.
                    loss = loss + args.aux_weight * F.cross_entropy(own_logits, y_train[idx],
                                                                    label_smoothing=args.smoothing)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                sched.step()
                loss_sum += loss.item() * len(idx)
                seen += len(idx)
                done_steps += 1
            acc = evaluate(net, x_test, y_test, stage + 1)
            elapsed = time.time() - started
            left = elapsed / done_steps * (total_steps - done_steps)
            print(f"stage {stage + 1}/{G} epoch {epoch + 1}/{epochs_of(stage)}: loss {loss_sum / seen:.4f}, "
                  f"test accuracy g={stage + 1} {100 * acc:.2f}%, {time.time() - t0:.0f} s, "
                  f"about {left / 60:.1f} min left", flush=True)
        accuracy[stage] = acc
        # The incremental property: earlier widths must not have moved.
        for g in range(1, stage + 1):
            again = evaluate(net, x_test, y_test, g)
            if again != accuracy[g - 1]:
                raise SystemExit(f"stage {stage + 1} changed the accuracy at g={g}: "
                                 f"{accuracy[g - 1]:.4f} -> {again:.4f}")
        if stage:
            print(f"  checked: accuracy at g=1..{stage} unchanged after stage {stage + 1}", flush=True)

    name = args.name or os.path.splitext(os.path.basename(args.out))[0]
    graph = net.graph(name, mean, std, accuracy)
    metadata = {"format": "gearbox-dnn", "format_version": "1", "graph": json.dumps(graph),
                "training": json.dumps({"command": " ".join(sys.argv), "seed": args.seed,
                                        "seconds": round(time.time() - started, 1),
                                        "torch": torch.__version__})}
    write_safetensors(args.out, net.folded_tensors(), metadata)
    print(f"wrote {args.out}: accuracy per g " + ", ".join(f"{100 * a:.2f}%" for a in accuracy)
          + f"; {time.time() - started:.0f} s in all", flush=True)
    if args.onnx_dir:
        sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
        import gearbox_torch
        os.makedirs(args.onnx_dir, exist_ok=True)
        for path in gearbox_torch.export_onnx(args.out, args.onnx_dir):
            print(f"wrote {path}", flush=True)


if __name__ == "__main__":
    main()

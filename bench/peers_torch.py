#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""PyTorch latency of a gearbox model at g groups, batch 1 (eager, no_grad).
   /usr/bin/python3 bench/peers_torch.py MODEL G THREADS ITERATIONS WARMUP
Prints one JSON object: {"median_us": ..., "p99_us": ..., "min_us": ...}."""
import json
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
import gearbox_torch  # noqa: E402

model, g, threads, iterations, warmup = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
graph, tensors = gearbox_torch.read_model(model)
net = gearbox_torch.StaticNet(graph, tensors, g).eval()
x = torch.randn(1, *graph["input"]["shape"])
samples = []
with torch.no_grad():
    for _ in range(warmup):
        net(x)
    for _ in range(iterations):
        t0 = time.perf_counter_ns()
        net(x)
        samples.append((time.perf_counter_ns() - t0) / 1000)
samples.sort()
q = lambda p: samples[max(0, math.ceil(p * len(samples)) - 1)]  # noqa: E731
print(json.dumps({"min_us": samples[0], "median_us": q(0.5), "p99_us": q(0.99)}))

#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/python-client.py — the Python client (python/gearbox) against gearboxd:
figures, not a test.

   /usr/bin/python3 bench/python-client.py [--socket PATH | --build DIR] [--count N] [--deadline-us N]

With --socket it talks to a running daemon; otherwise it starts gearboxd from
the build folder (--build, default build/) with the bundled model on a
private socket, state and cache, and stops it (by pid) at the end.
Prints, for N Fashion-MNIST test images (Debian's dataset-fashion-mnist) as
numpy uint8 arrays under a deadline:
  - one request at a time (Session.infer), pipelined with 1, 4, 8 and 16 in
    flight (Session.infer_many), and asyncio with 32 in flight (gearbox.aio):
    requests per second, round trip p50/p99 as the client measured it, the
    daemon's own time p50 (daemon_us), deadlines met, mean g, top-1 against
    the labels;
  - the same stream through gearboxctl (libgearbox, C) for comparison;
  - the operating points the daemon chose."""
import asyncio
import collections
import gzip
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "python"))
import numpy as np  # noqa: E402

import gearbox  # noqa: E402
import gearbox.aio  # noqa: E402

args = sys.argv[1:]
opts = dict(zip(args[0::2], args[1::2]))
if any(a in ("-h", "--help") for a in args) or len(args) % 2:
    sys.exit(__doc__)
count = int(opts.get("--count", "1000"))
deadline = int(opts.get("--deadline-us", "2000"))
sock = opts.get("--socket")
build = opts.get("--build", os.path.join(ROOT, "build"))
data = "/usr/share/datasets/fashion-mnist"
images = np.frombuffer(gzip.open(f"{data}/t10k-images-idx3-ubyte.gz").read(), np.uint8, offset=16).reshape(-1, 1, 28, 28)
labels = np.frombuffer(gzip.open(f"{data}/t10k-labels-idx1-ubyte.gz").read(), np.uint8, offset=8)
images, labels = images[:count], labels[:count]

tmp = daemon = None
if sock is None:
    tmp = tempfile.mkdtemp(prefix="gearbox-pybench-")
    sock = f"{tmp}/sock"
    env = dict(os.environ, GEARBOX_STATE_DIR=f"{tmp}/state", GEARBOX_CACHE_DIR=f"{tmp}/cache",
               XDG_CACHE_HOME=f"{tmp}/xdg", GEARBOX_POLICY_DIR=f"{ROOT}/policies", OPENBLAS_NUM_THREADS="1")
    for d in ("state", "cache"):
        os.makedirs(f"{tmp}/{d}")
    daemon = subprocess.Popen([f"{build}/gearboxd", "--socket", sock, "--model",
                               f"{ROOT}/models/fmnist-alexnet-g4.safetensors"], env=env,
                              stdout=subprocess.DEVNULL, stderr=open(f"{tmp}/daemon.log", "w"))
    for _ in range(600):
        try:
            gearbox.connect(sock).close()
            break
        except gearbox.GearboxError:
            if daemon.poll() is not None:
                sys.exit(open(f"{tmp}/daemon.log").read())
            time.sleep(0.1)


def pct(v, q):
    v = sorted(v)
    return v[min(len(v) - 1, max(0, int(round(q * len(v) + 0.5)) - 1))]


def row(name, results, seconds):
    rtt = [r.rtt_us for r in results]
    dmn = [r.daemon_us for r in results if r.daemon_us is not None]
    met = sum(r.deadline_met for r in results) / len(results)
    top1 = sum(r.class_id == int(labels[i]) for i, r in enumerate(results)) / len(results)
    g = sum(r.groups for r in results) / len(results)
    print(f"{name:34} {len(results) / seconds:8.0f} {pct(rtt, .5):8.0f} {pct(rtt, .99):8.0f} "
          f"{pct(dmn, .5):9.0f} {100 * met:7.1f}% {g:6.2f} {100 * top1:6.2f}%")


points = collections.Counter()
try:
    with gearbox.connect(sock) as gb:
        m = gb.model()
        print(f"gearboxd {gb.hello()['version']} on {os.cpu_count()} CPUs; {m.name}, G={m.groups}; "
              f"{count} images, deadline {deadline} us end to end")
        print(f"{'client':34} {'req/s':>8} {'rtt p50':>8} {'rtt p99':>8} {'daemon p50':>9} {'met':>8} "
              f"{'mean g':>6} {'top-1':>7}")
        with gb.open_session(deadline_us=deadline) as s:
            list(s.infer_many(images[:50], window=4))  # warm-up
            t0 = time.monotonic()
            rs = [s.infer(x) for x in images]
            row("python, one at a time", rs, time.monotonic() - t0)
            points.update(str(r.operating_point) for r in rs)
            for window in (1, 4, 8, 16):
                t0 = time.monotonic()
                rs = list(s.infer_many(images, window=window))
                row(f"python, infer_many window {window}", rs, time.monotonic() - t0)
                points.update(str(r.operating_point) for r in rs)

    async def run_async():
        async with await gearbox.aio.connect(sock) as agb:
            a = await agb.open_session(deadline_us=deadline)
            t0 = time.monotonic()
            rs = await asyncio.gather(*(a.infer(x) for x in images))
            dt = time.monotonic() - t0
            await a.close()
            return rs, dt

    rs, dt = asyncio.run(run_async())
    row("python asyncio, 32 in flight", rs, dt)
    points.update(str(r.operating_point) for r in rs)
    ctl = shutil.which("gearboxctl", path=f"{build}:{os.environ.get('PATH', '')}")
    if ctl:
        t0 = time.monotonic()
        out = subprocess.run([ctl, "--socket", sock, "infer", "--idx", f"{data}/t10k-images-idx3-ubyte.gz",
                              "--count", str(count), "--deadline-us", str(deadline), "--json"],
                             capture_output=True, text=True, check=True).stdout.splitlines()
        dt = time.monotonic() - t0
        reqs = [json.loads(line) for line in out if '"request"' in line]
        lat = [r["latency_us"] for r in reqs]
        met = sum(r["deadline_met"] for r in reqs) / len(reqs)
        top1 = sum(r["class"] == int(labels[r["image"]]) for r in reqs) / len(reqs)
        g = sum(r["groups"] for r in reqs) / len(reqs)
        print(f"{'gearboxctl (libgearbox), one at a time':34} {len(reqs) / dt:8.0f} {pct(lat, .5):8.0f} "
              f"{pct(lat, .99):8.0f} {'-':>9} {100 * met:7.1f}% {g:6.2f} {100 * top1:6.2f}%")
        print("  (gearboxctl's req/s includes starting the program; its rtt is libgearbox's)")
    print("operating points chosen (all runs):")
    for p, n in points.most_common():
        print(f"  {p:40} {n:6} requests")
finally:
    if daemon is not None:
        daemon.terminate()
        daemon.wait()
    if tmp is not None:
        shutil.rmtree(tmp, ignore_errors=True)

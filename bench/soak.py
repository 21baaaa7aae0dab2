#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""bench/soak — a long mixed load against a running gearboxd (figures, not a test).

   /usr/bin/python3 bench/soak.py SOCKET IDX DAEMON_PID [--requests N] [--slice-s S]

Clients, each on its own connection and thread, until N requests have been
answered in all:
  - INFER at 20, 100 and 500 requests/s (deadline 50 ms), and one pipelining
    8 at a time with no deadline;
  - STATUS and STATS every 50 ms;
  - bad frames (bad magic, oversize length, garbage JSON) on fresh
    connections, each of which must get its error;
  - clients that connect, send an INFER and vanish before the reply.
Every request sent on a connection that stays must get exactly one reply:
a missing or duplicated reply is counted as lost. Printed per time slice
(--slice-s, default 60 s): requests answered, INFER p50/p99 end to end,
the daemon's RSS; at the end RSS at start and end, and the lost replies.
scripts/bench-soak.sh starts a plain gearboxd for it."""
import gzip
import json
import os
import socket
import struct
import sys
import threading
import time

args = sys.argv[1:]
if len(args) < 3 or args[0].startswith("-"):
    sys.exit(__doc__)
path, idx, pid = args[0], args[1], int(args[2])
opts = dict(zip(args[3::2], args[4::2]))
total = int(float(opts.get("--requests", "1000000")))
slice_s = float(opts.get("--slice-s", "60"))
pixels = (gzip.open(idx) if idx.endswith(".gz") else open(idx, "rb")).read()[16:16 + 784 * 64]
images = [pixels[i * 784:(i + 1) * 784] for i in range(64)]

lock = threading.Lock()
answered = 0
lost = 0
errors_expected = 0
latencies = []  # (time, e2e seconds) of INFERs
stop = threading.Event()


def rss_kib():
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def frame(t, mid, body):
    return b"GBX1" + struct.pack("<HHII", 1, t, mid, len(body)) + body


def infer_frame(sid, mid, i):
    return frame(7, mid, json.dumps({"session": sid, "pixels": True}).encode() + b"\0" + images[i % 64])


def read(s):
    h = s.recv(16, socket.MSG_WAITALL)
    if len(h) < 16:
        return None
    t, mid, n = struct.unpack("<HII", h[6:16])
    body = s.recv(n, socket.MSG_WAITALL) if n else b""
    return t, mid, body


def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(30)
    return s


def count(n=1, lat=None):
    global answered
    with lock:
        answered += n
        if lat is not None:
            latencies.append((time.time(), lat))
        if answered >= total:
            stop.set()


def lose(n=1):
    global lost
    with lock:
        lost += n


def open_session(s, deadline_us):
    s.sendall(frame(5, 1, json.dumps({"deadline_us": deadline_us} if deadline_us else {}).encode()))
    t, _, body = read(s)
    assert t == 6, body
    return json.loads(body)["session"]


def periodic(rate):
    s = conn()
    sid = open_session(s, 50000)
    mid, period, next_t = 1, 1.0 / rate, time.time()
    while not stop.is_set():
        mid += 1
        t0 = time.time()
        s.sendall(infer_frame(sid, mid, mid))
        r = read(s)
        if r is None or r[1] != mid or r[0] != 8:
            lose()
        else:
            count(lat=time.time() - t0)
        next_t += period
        time.sleep(max(0.0, next_t - time.time()))


def pipelined():
    s = conn()
    sid = open_session(s, 0)
    mid = 1
    while not stop.is_set():
        ids = list(range(mid + 1, mid + 9))
        mid += 8
        s.sendall(b"".join(infer_frame(sid, i, i) for i in ids))
        got = []
        for _ in ids:
            r = read(s)
            if r is None:
                break
            got.append(r[1])
        lose(len(set(ids) - set(got)) + (len(got) - len(set(got))))
        count(len(set(got) & set(ids)))


def watcher():
    s = conn()
    mid = 0
    while not stop.is_set():
        for t in (11, 13):
            mid += 1
            s.sendall(frame(t, mid, b"{}"))
            r = read(s)
            if r is None or r[1] != mid or r[0] != t + 1:
                lose()
            else:
                count()
        time.sleep(0.05)


BAD = [b"XXXX" + bytes(12), b"GBX1" + struct.pack("<HHII", 1, 11, 1, 1 << 30), frame(13, 1, b"{not json")]


def bad_frames():
    i = 0
    while not stop.is_set():
        s = conn()
        s.sendall(BAD[i % len(BAD)])
        r = read(s)
        if r is None or r[0] != 0:
            lose()
        else:
            count()
        s.close()
        i += 1
        time.sleep(0.02)


def vanishing():
    while not stop.is_set():
        s = conn()
        sid = open_session(s, 50000)
        s.sendall(infer_frame(sid, 2, 0))
        s.close()  # before the reply
        count()  # the OPEN was answered
        time.sleep(0.05)


dropped = []  # (client, what happened) for connections the daemon closed or that failed


def resilient(f, *a):
    """Run client f until the end; a connection that fails (the daemon
    closed it, or a reply never came) counts its request as lost, is said
    at the end, and the client starts again on a new connection."""
    while not stop.is_set():
        try:
            f(*a)
        except (OSError, AssertionError, ValueError) as e:
            lose()
            with lock:
                dropped.append((f"{f.__name__}{a if a else ''}", f"{type(e).__name__}: {e}"))
            time.sleep(0.1)


def report(start_rss):
    t0 = time.time()
    last_answered, slice_no = 0, 0
    print(f"{'slice':>5} {'end_s':>7} {'answered':>10} {'infer_p50_ms':>13} {'infer_p99_ms':>13} {'rss_kib':>9}")
    while not stop.wait(slice_s):
        slice_no += 1
        emit(slice_no, t0, last_answered)
        last_answered = answered
    emit(slice_no + 1, t0, last_answered)


def emit(n, t0, last_answered):
    now = time.time()
    with lock:
        window = sorted(l for (t, l) in latencies if t > now - slice_s)
        latencies[:] = [(t, l) for (t, l) in latencies if t > now - slice_s]
        done = answered
    p = lambda q: window[min(len(window) - 1, int(q * len(window)))] * 1e3 if window else float("nan")
    print(f"{n:>5} {now - t0:>7.0f} {done - last_answered:>10} {p(0.5):>13.2f} {p(0.99):>13.2f} {rss_kib():>9}", flush=True)


start_rss = rss_kib()
started = time.time()
threads = [threading.Thread(target=resilient, args=(f,) + a, daemon=True)
           for f, a in [(periodic, (20,)), (periodic, (100,)), (periodic, (500,)), (pipelined, ()),
                        (watcher, ()), (bad_frames, ()), (vanishing, ())]]
for t in threads:
    t.start()
report(start_rss)
for t in threads:
    t.join(timeout=35)
print(f"\n{answered} requests answered in {time.time() - started:.0f} s; lost replies: {lost}; "
      f"daemon RSS {start_rss} KiB at start, {rss_kib()} KiB at the end")
for who, what in dropped:
    print(f"  connection of {who} failed: {what}")
sys.exit(1 if lost else 0)

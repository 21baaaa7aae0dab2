# SPDX-License-Identifier: MIT
"""The Python client (python/gearbox) against a real gearboxd.

   /usr/bin/python3 tests/python/test_client.py SOCKET MODEL_FILE IDX PROTOCOL_H

Run by tests/python/client.sh, which starts the daemon on a private socket.
Every check prints "ok: ..." and asserts what could go wrong."""
import array
import asyncio
import gzip
import json
import os
import socket
import struct
import sys
import time
import zlib

import gearbox
import gearbox.aio

path, model_file, idx, protocol_h = sys.argv[1:5]
try:
    import numpy as np
except ImportError:
    np = None
try:
    from PIL import Image
except ImportError:
    Image = None


def ok(what):
    print("ok:", what, flush=True)


def raises(cls, fn, *args, **kw):
    try:
        fn(*args, **kw)
    except cls as e:
        return e
    raise AssertionError(f"{fn.__name__} did not raise {cls.__name__}")


# --- the protocol's numbers are proto/protocol.h's ---------------------------
h = open(protocol_h).read()
import re
for name, value in re.findall(r"GBX_MSG_([A-Z]+) = (\d+),", h):
    if hasattr(gearbox.protocol, name):
        assert getattr(gearbox.protocol, name) == int(value), (name, value)
codes = dict(re.findall(r'#define GBX_ERR_([A-Z_]+) "([a-z-]+)"', h))
for code in codes.values():
    e = gearbox.errors.from_reply({"error": "x", "code": code})
    assert type(e) is not gearbox.GearboxError and e.code == code, (code, type(e))
assert gearbox.protocol.DEFAULT_SOCKET in h and str(gearbox.protocol.MAX_PAYLOAD >> 20) in h
ok(f"message types and the {len(codes)} error codes match proto/protocol.h, one exception class each")

# --- inputs -----------------------------------------------------------------
raw = gzip.open(idx).read() if idx.endswith(".gz") else open(idx, "rb").read()
count = struct.unpack(">I", raw[4:8])[0]
images = [raw[16 + i * 784:16 + (i + 1) * 784] for i in range(min(count, 200))]
meta = json.loads(open(model_file, "rb").read(8 + struct.unpack("<Q", open(model_file, "rb").read(8))[0])[8:])
graph = json.loads(meta["__metadata__"]["graph"])
mean, std = graph["input"]["mean"][0], graph["input"]["std"][0]


def png_bytes(px, w, h, colour=False):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    if colour:  # the same grey value in R, G and B, rows with filter 1 (sub) to exercise unfiltering
        rows = b""
        for r in range(h):
            line = bytearray()
            prev = (0, 0, 0)
            for x in range(w):
                v = px[r * w + x]
                line += bytes(((v - prev[0]) & 255, (v - prev[1]) & 255, (v - prev[2]) & 255))
                prev = (v, v, v)
            rows += b"\1" + bytes(line)
        hdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    else:
        rows = b"".join(b"\0" + px[r * w:(r + 1) * w] for r in range(h))
        hdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", hdr) + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")


c, hh, w, px = gearbox.decode_image(png_bytes(images[0], 28, 28))
assert (c, hh, w, px) == (1, 28, 28, images[0])
c, hh, w, px = gearbox.decode_image(png_bytes(images[0], 28, 28, colour=True))
assert (c, hh, w) == (3, 28, 28) and px == images[0] * 3
pgm = b"P5\n# CREATOR: GIMP PNM Filter Version 1.1\n28 28\n255\n" + images[0]
assert gearbox.decode_image(pgm) == (1, 28, 28, images[0])
raises(gearbox.BadInputError, gearbox.decode_image, b"P5\n# nothing else\n")
raises(gearbox.BadInputError, gearbox.to_input, [1.0, float("nan")])
ok("PNG (grey, RGB with filtered rows) and PGM with comments decode to the pixels; NaN is refused before sending")

# --- connecting -----------------------------------------------------------------
e = raises(gearbox.ConnectError, gearbox.connect, os.path.dirname(path) + "/no-such.sock")
assert "is gearboxd running" in str(e) and isinstance(e, ConnectionError)
closed = os.path.dirname(path) + "/closed.sock"
ls = socket.socket(socket.AF_UNIX)
ls.bind(closed)
ls.listen(1)
os.chmod(closed, 0)


def as_nobody(fn):
    """fn() in a child without privileges (root is not refused by a socket's
    mode); its exception's type name and message, or None."""
    if os.getuid() != 0:
        try:
            fn()
        except Exception as ex:
            return type(ex).__name__, str(ex), isinstance(ex, PermissionError)
        return None
    r, wfd = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.close(r)
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)
            fn()
            out = None
        except Exception as ex:
            out = (type(ex).__name__, str(ex), isinstance(ex, PermissionError))
        os.write(wfd, json.dumps(out).encode())
        os._exit(0)
    os.close(wfd)
    data = b""
    while True:
        chunk = os.read(r, 65536)
        if not chunk:
            break
        data += chunk
    os.waitpid(pid, 0)
    return json.loads(data)


got = as_nobody(lambda: gearbox.connect(closed))
assert got and got[0] == "PermissionError" and got[2] and "join it" in got[1] and "'gearbox' group" in got[1], got
os.environ["GEARBOX_SOCKET"] = path
with gearbox.connect() as gb:  # from $GEARBOX_SOCKET, as gearboxctl
    assert gb.path == path
ok("connect: no daemon says so; a socket without access raises gearbox.PermissionError (a PermissionError) "
   "saying to join the gearbox group; $GEARBOX_SOCKET is the default")

gb = gearbox.connect(path, client_name="test_client.py", timeout=30)
hello = gb.hello()
assert hello["server"] == "gearboxd" and hello["protocol"] == 1
models = gb.models()
assert len(models) == 1 and models[0].input_shape == (1, 28, 28) and models[0].groups == 4 and models[0].input_size == 784
M = models[0]
st = gb.status()
assert st["server"] == "gearboxd" and st["models"][0]["name"] == M.name
plat = gb.platform()
assert plat["placements"] and "clusters" in plat
plan = gb.plan()
assert "enabled" in plan and "solver" in plan, plan
ok(f"hello, models ({M.name}, G={M.groups}), status, platform, plan")

# --- a session: every kind of input gives the same class -------------------------
s = gb.open_session(deadline_us=50000, policy="all-groups")  # g=4 always: classes compare
assert s.model.name == M.name and s.budget["deadline_us"] == 50000 and s.policy == "all-groups"
ref = s.infer(images[0])
assert ref.session == s.id and 1 <= ref.groups <= 4 and ref.label == M.labels[ref.class_id]
assert ref.groups == 4 and len(ref.scores) == M.classes and ref.latency_us > 0 and ref.rtt_us >= ref.latency_us and ref.energy_source
assert str(ref.operating_point).startswith(f"g={ref.groups} on {ref.placement}")
inputs = {"bytes": images[0], "PGM bytes": pgm, "PNG bytes": png_bytes(images[0], 28, 28),
          "array.array('B')": array.array("B", images[0]),
          "floats (list)": [(p / 255 - mean) / std for p in images[0]]}
if np is not None:
    a = np.frombuffer(images[0], np.uint8)
    inputs.update({"numpy uint8 (1,28,28)": a.reshape(1, 28, 28), "numpy uint8 (28,28)": a.reshape(28, 28),
                   "numpy float32": ((a.astype(np.float32) / 255 - mean) / std).reshape(1, 28, 28),
                   "numpy float64": ((a / 255.0 - mean) / std)})
if Image is not None:
    inputs["PIL image"] = Image.frombytes("L", (28, 28), images[0])
    inputs["PIL RGB image (converted to grey)"] = Image.frombytes("L", (28, 28), images[0]).convert("RGB")
pgm_file = os.path.dirname(path) + "/img.pgm"
open(pgm_file, "wb").write(pgm)
inputs["a PGM file's path"] = pgm_file
for kind, x in inputs.items():
    r = s.infer(x)
    assert r.class_id == ref.class_id, (kind, r.class_id, ref.class_id)
if np is not None:
    bad = raises(gearbox.BadInputError, s.infer, np.zeros(100, np.float32))
    assert bad.code == "bad-input" and "784" in str(bad), bad
    raises(gearbox.BadInputError, s.infer, np.array([np.nan] * 784, np.float32))
ok(f"infer: {', '.join(inputs)} all give class {ref.class_id} ({ref.label}); a wrong size is gearbox.BadInputError "
   "naming the expected size" + ("" if np is not None else " (numpy not installed: array inputs not tried)")
   + ("" if Image is not None else " (PIL not installed)"))

# --- pipelining ---------------------------------------------------------------------
seq = [s.infer(x).class_id for x in images[:20]]
t0 = time.monotonic()
piped = list(s.infer_many(images[:100], window=8))
dt = time.monotonic() - t0
assert len(piped) == 100 and [r.class_id for r in piped[:20]] == seq
assert len({r.request_id for r in piped}) == 100
ids = [s.submit(x) for x in images[:5]]
got = [gb.collect() for _ in ids]
assert sorted(r.request_id for r in got) == sorted(ids) and gb.in_flight == 0
assert gb.collect(timeout=0.01) is None if gb.in_flight else True
ok(f"pipelining: infer_many kept 8 in flight, 100 results in input order ({100 / dt:.0f} requests/s), "
   "the same classes as one at a time; submit/collect match by request id")

# busy: past 32 in flight on one connection the daemon refuses, and says why
ids = s.submit_many(images[i % 50] for i in range(64))
results, busy = [], []
while gb.in_flight:
    try:
        results.append(gb.collect())
    except gearbox.BusyError as be:
        busy.append(be)
assert busy and len(results) + len(busy) == 64, (len(results), len(busy))
assert all(b.code == "busy" and "in flight" in str(b) and b.request_id in ids for b in busy)
ok(f"64 submitted in one write: {len(results)} answered, {len(busy)} refused with gearbox.BusyError ('{busy[0]}')")

# --- budgets and typed errors ---------------------------------------------------------
s.set_budget(deadline_us=3000)
assert s.budget["deadline_us"] == 3000
mine = [x for x in gb.status()["session_list"] if x["session"] == s.id]
assert mine and mine[0]["deadline_us"] == 3000, mine
st = s.stats()
assert st["session"] == s.id and st["requests"] >= 100
tight = gb.open_session(deadline_us=1, raise_infeasible=True)
e = raises(gearbox.InfeasibleError, tight.infer, images[0])
assert e.result is not None and not e.result.feasible and e.result.reason, e
loose = gb.open_session(deadline_us=1)
r = loose.infer(images[0])
assert not r.feasible and r.reason and not r.deadline_met
e = raises(gearbox.BadRequestError, gb.open_session, policy="no-such-policy")
assert "no-such-policy" in str(e) and "default" in str(e), e
e = raises(gearbox.NoSuchModelError, gb.open_session, model="no-such-model")
assert e.code == "no-such-model" and isinstance(e, LookupError)
e = raises(gearbox.BadInputError, gb.open_session, deadline_us=-1)
loose.close()
e = raises(gearbox.NoSuchSessionError, loose.infer, images[0])
assert e.code == "no-such-session"
e = raises(gearbox.UnknownTypeError, gb.call, 29)
assert isinstance(e, gearbox.ProtocolError)
got = as_nobody(lambda: gearbox.connect(path).reload())
if os.getuid() == 0:
    assert got and got[0] == "PermissionError" and got[2] and "reload" in got[1], got
ok("budgets: set_budget reaches STATUS; deadline 1 us: InfeasibleError (raise_infeasible) or feasible=False; "
   "BadRequestError names the unknown policy, NoSuchModelError, NoSuchSessionError after close, "
   "UnknownTypeError, PermissionError for RELOAD by nobody")

# --- pareto, events, watch ---------------------------------------------------------------
front = gb.pareto()
every = gb.pareto(all=True)
assert front.points and not front.all and every.all and len(every.points) == every.total >= len(front.points)
assert every.on_front == len(front.points) and all(p.point.placement for p in every.points)
assert min(p.latency_us for p in front.points) == min(p.latency_us for p in every.points)
ev = gearbox.connect(path)
ev.subscribe()
s.set_budget(deadline_us=1)
s.infer(images[1])
kinds = set()
t_end = time.monotonic() + 10
while "budget-violation" not in kinds and time.monotonic() < t_end:
    e = ev.next_event(timeout=1)
    if e is not None:
        kinds.add(e.kind)
assert "budget-violation" in kinds, kinds
w = gearbox.connect(path)
kind, first = next(w.watch(interval=0.2))
assert kind == "status" and first["server"] == "gearboxd"
w.close()
ev.close()
ok(f"pareto: {len(front.points)} of {every.total} points on the front; events: {sorted(kinds)}; watch yields status")


# --- asyncio ---------------------------------------------------------------------------------
async def async_part():
    async with await gearbox.aio.connect(path) as agb:
        ms = await agb.models()
        assert ms[0].name == M.name
        a = await agb.open_session(deadline_us=50000, policy="all-groups")
        t0 = time.monotonic()
        rs = await asyncio.gather(*(a.infer(x) for x in images[:100]))
        dt = time.monotonic() - t0
        assert [r.class_id for r in rs[:20]] == seq and len({r.request_id for r in rs}) == 100
        try:
            await agb.open_session(model="no-such-model")
            raise AssertionError("no error")
        except gearbox.NoSuchModelError:
            pass
        p = await agb.pareto(all=True)
        assert p.all and p.points
        await a.close()
        return dt


dt = asyncio.run(async_part())
ok(f"asyncio: 100 gathered at once (32 in flight at most) in {dt * 1e3:.0f} ms, the same classes; typed errors")
s.close()
gb.close()

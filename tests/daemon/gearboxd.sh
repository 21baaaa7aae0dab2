#!/bin/sh
# gearboxd integration test: the real daemon on a private socket.
#   1. every gearboxctl verb;
#   2. bad input (random bytes, truncated frame, oversized length, wrong
#      version, unknown type, wrong input size, a client gone mid-request,
#      200 clients at once): the daemon survives each and keeps serving;
#   3. socket activation through systemd-socket-activate;
#   4. READY/STATUS/RELOADING/STOPPING on a NOTIFY_SOCKET;
#   5. systemd-analyze verify on the units;
#   6. under valgrind (when the build has no sanitizers): no leaks, no errors.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
[ -x "$B/gearboxd" ] || { echo "SKIP: gearboxd not built (no libsystemd)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d /tmp/gearboxd-test-XXXXXX)
chmod 755 "$T"
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -30 "$T/daemon.log"; } >&2
	exit 1
}
IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
MODEL=$(ls "$S"/models/*.safetensors 2>/dev/null | head -n 1 || true)
if [ -z "$MODEL" ]; then
	MODEL=$T/model.safetensors
	"$B/tests/tools/mkmodel" --arch alexnet-fmnist "$MODEL"
fi
if [ ! -f "$IDX" ]; then # a few images of our own
	IDX=$T/images.idx
	python3 -c "
import struct, random; random.seed(1)
open('$IDX', 'wb').write(struct.pack('>IIII', 0x803, 20, 28, 28) + bytes(random.randrange(256) for _ in range(20 * 784)))"
fi
SOCK=$T/gearboxd.sock
CTL="$B/gearboxctl --socket $SOCK"

start_daemon() { # start_daemon [wrapper...]
	rm -f "$SOCK"
	"$@" "$B/gearboxd" --socket "$SOCK" --model "$MODEL" -v ${DAEMON_CONFIG:+--config "$DAEMON_CONFIG"} >"$T/daemon.log" 2>&1 &
	DPID=$!
	for i in $(seq 1 300); do
		[ -S "$SOCK" ] && $CTL status >/dev/null 2>&1 && return 0
		kill -0 "$DPID" 2>/dev/null || fail "gearboxd exited at start"
		sleep 0.1
	done
	fail "gearboxd did not come up"
}
stop_daemon() {
	kill -TERM "$DPID"
	wait "$DPID" || fail "gearboxd exited with $? on SIGTERM"
	DPID=""
	[ ! -e "$SOCK" ] || fail "socket left behind after SIGTERM"
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# --- 1. every verb ------------------------------------------------------------
start_daemon
$CTL status | grep -q "gearboxd" || fail "status"
$CTL --json status >"$T/status.json"
[ "$(json "$T/status.json" '(d["server"], len(d["models"]))')" = "('gearboxd', 1)" ] || fail "status --json"
$CTL models --json >"$T/models.json"
[ "$(json "$T/models.json" '(d["models"][0]["groups"], d["models"][0]["input_shape"])')" = "(4, [1, 28, 28])" ] || fail "models"
$CTL infer --idx "$IDX" --index 0 --deadline-us 100000 --json >"$T/one.jsonl"
python3 - "$T/one.jsonl" <<'EOF' || fail "infer --json keys"
import json, sys
r = json.loads(open(sys.argv[1]).readline())
for k in ("latency_us", "class", "groups", "placement", "freq_khz", "energy_uj", "energy_source", "deadline_met", "energy_met"):
    assert k in r, k
assert 1 <= r["groups"] <= 4 and r["deadline_met"] and r["energy_uj"] > 0, r
EOF
# The same image as PGM and as PNG gives the same class as from the IDX file.
python3 - "$IDX" "$T" <<'EOF'
import gzip, struct, sys, zlib
idx, t = sys.argv[1], sys.argv[2]
raw = (gzip.open(idx) if idx.endswith(".gz") else open(idx, "rb")).read()[16:16 + 784]
open(f"{t}/img.pgm", "wb").write(b"P5 28 28 255\n" + raw)
def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
rows = b"".join(b"\0" + raw[r * 28:(r + 1) * 28] for r in range(28))
png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 28, 28, 8, 0, 0, 0, 0)) + \
      chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b"")
open(f"{t}/img.png", "wb").write(png)
EOF
want=$(json "$T/one.jsonl" 'd["class"]')
for f in img.pgm img.png; do
	$CTL infer --image "$T/$f" --json >"$T/img.json"
	[ "$(json "$T/img.json" 'd["class"]')" = "$want" ] || fail "--image $f gives another class"
done
$CTL infer --idx "$IDX" --count 40 --rate 400 --deadline-us 100000 --json >"$T/stream.jsonl"
[ "$(grep -c '"request"' "$T/stream.jsonl")" = 40 ] || fail "stream count"
tail -n 1 "$T/stream.jsonl" | grep -q '"summary":true' || fail "stream summary"
# A deadline no g can meet: the reply says so instead of failing.
$CTL infer --idx "$IDX" --deadline-us 1 --json | grep -q '"feasible":false' || fail "infeasible budget not reported"
# Budget from another connection; a session that does not exist.
$CTL infer --idx "$IDX" --count 200 --rate 100 --deadline-us 50000 >/dev/null &
STREAM=$!
sleep 0.5
SID=$($CTL --json status | python3 -c "import json,sys; print(json.load(sys.stdin)['session_list'][0]['session'])")
$CTL budget "$SID" --deadline-us 2000 | grep -q "deadline 2000 us" || fail "budget"
python3 - "$SOCK" "$SID" <<'EOF' || fail "stats"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
body = json.dumps({"session": int(sys.argv[2])}).encode()
s.sendall(b"GBX1" + struct.pack("<HHII", 1, 13, 5, len(body)) + body)
h = s.recv(16, socket.MSG_WAITALL)
r = json.loads(s.recv(struct.unpack("<I", h[12:])[0], socket.MSG_WAITALL))
st = r["sessions"][0]
assert st["session"] == int(sys.argv[2]) and st["requests"] > 0, r
assert 0 < st["latency_us"]["p50"] <= st["latency_us"]["p99"] and 1 <= st["mean_groups"] <= 4, st
EOF
$CTL --json status | grep -q '"deadline_us":2000' || fail "budget not applied"
# Text output shows numbers to read, not json-c's 17 digits (0.39100000000000001).
$CTL status >"$T/status.txt"
grep -q "hit rate [0-9]" "$T/status.txt" || fail "status text has no hit rate: $(cat "$T/status.txt")"
if grep -Eq "[0-9]\.[0-9]{7,}" "$T/status.txt"; then fail "status text: $(cat "$T/status.txt")"; fi
if $CTL budget 99999 --deadline-us 5 2>"$T/err"; then fail "budget on a missing session"; fi
grep -q "no session 99999" "$T/err" || fail "budget error: $(cat "$T/err")"
kill "$STREAM" 2>/dev/null || true
wait "$STREAM" 2>/dev/null || true
"$B/tests/client/async_client" "$SOCK" 24 || fail "libgearbox asynchronous API"
$CTL platform | grep -q "cluster0" || fail "platform"
$CTL reload --json | grep -q '"reloaded": *true' || fail "reload as root"
if [ "$(id -u)" = 0 ]; then # not root, not in the gearbox group: refused
	chmod 777 "$T" && chmod 666 "$SOCK"
	if setpriv --reuid=65534 --regid=65534 --clear-groups $CTL reload 2>"$T/err"; then fail "reload allowed to nobody"; fi
	grep -q "reload is for root and the gearbox group" "$T/err" || fail "reload denial: $(cat "$T/err")"
	setpriv --reuid=65534 --regid=65534 --clear-groups $CTL status >/dev/null || fail "nobody cannot use status"
fi
timeout 3 $CTL watch --interval 0.5 >"$T/watch.out" 2>&1 || true
grep -q -- "---" "$T/watch.out" || fail "watch printed nothing"
# policies: a session names one; unknown names are refused with the list
$CTL infer --idx "$IDX" --policy powersave --deadline-us 100000 --json >"$T/ps.json" || fail "infer --policy"
grep -q '"policy":"powersave"' "$T/ps.json" || fail "policy not used: $(cat "$T/ps.json")"
if $CTL infer --idx "$IDX" --policy turbo 2>"$T/err"; then fail "unknown policy accepted"; fi
grep -q "no policy 'turbo' (have: default, powersave, realtime)" "$T/err" || fail "policy error: $(cat "$T/err")"
# the Pareto front as the daemon predicts it, and a requested calibration
$CTL pareto --json >"$T/pareto.json" || fail "pareto"
[ "$(json "$T/pareto.json" 'len(d["front"]) >= 1 and d["points"] >= len(d["front"])')" = True ] || fail "pareto front"
$CTL calibrate --json >"$T/cal.json" || fail "calibrate"
[ "$(json "$T/cal.json" 'd["measured"] >= 2')" = True ] || fail "calibrate measured nothing"
[ -f "$T/cache/calibration-$(json "$T/cal.json" 'd["model"]').json" ] || fail "calibration not cached"
if [ "$(id -u)" = 0 ]; then
	if setpriv --reuid=65534 --regid=65534 --clear-groups $CTL calibrate 2>"$T/err"; then fail "calibrate allowed to nobody"; fi
	grep -q "calibrate is for root and the gearbox group" "$T/err" || fail "calibrate denial"
fi
echo "ok: every gearboxctl verb"

# --- 2. bad input: each answered or dropped, the daemon keeps serving ----------
python3 - "$SOCK" "$IDX" <<'EOF' || fail "bad-input client"
import gzip, json, os, socket, struct, sys, time
path, idx = sys.argv[1], sys.argv[2]
def conn():
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.settimeout(10)
    return s
def frame(t, payload, version=1, magic=b"GBX1", length=None):
    return magic + struct.pack("<HHII", version, t, 7, len(payload) if length is None else length) + payload
def reply(s):
    h = b""
    while len(h) < 16:
        chunk = s.recv(16 - len(h))
        if not chunk:
            return None, None
        h += chunk
    t, n = struct.unpack("<H", h[6:8])[0], struct.unpack("<I", h[12:16])[0]
    body = b""
    while len(body) < n:
        body += s.recv(n - len(body))
    return t, json.loads(body)
def healthy():
    s = conn()
    s.sendall(frame(11, b"{}"))
    t, r = reply(s)
    assert t == 12 and r["server"] == "gearboxd", (t, r)
    s.close()
def expect_error(data, code, closes):
    s = conn()
    s.sendall(data)
    t, r = reply(s)
    assert t == 0 and r["code"] == code, (t, r, code)
    if closes:
        assert s.recv(1) == b"", "connection should close after a broken frame"
    s.close()
    healthy()

expect_error(os.urandom(64), "bad-frame", True)                               # random bytes
expect_error(frame(11, b"{}", length=(1 << 30)), "bad-frame", True)            # oversized length
expect_error(frame(11, b"{}", version=9), "bad-frame", True)                  # wrong version
expect_error(frame(11, b"{}", magic=b"HTTP"), "bad-frame", True)              # not our protocol
expect_error(frame(29, b"{}"), "unknown-type", False)                          # unknown type
expect_error(frame(12, b"{}"), "unknown-type", False)                          # a reply type sent as request
expect_error(frame(5, b"{not json"), "bad-request", False)                     # bad JSON
expect_error(frame(5, b'{"model":"nope"}'), "no-such-model", False)
expect_error(frame(5, b'{"deadline_us":-3}'), "bad-request", False)
expect_error(frame(7, b'{"session":1}'), "bad-request", False)                 # infer without input
expect_error(frame(7, b'{"session":4242}\0' + b"\0" * 3136), "no-such-session", False)
s = conn()                                                                     # wrong input size
s.sendall(frame(5, b"{}")); t, r = reply(s); sid = r["session"]
s.sendall(frame(7, json.dumps({"session": sid}).encode() + b"\0" + b"\0" * 100))
t, r = reply(s)
assert t == 0 and r["code"] == "bad-input" and "expects 784 float32 values" in r["error"], r
s.sendall(frame(7, json.dumps({"session": sid}).encode() + b"\0" + struct.pack("<f", float("nan")) * 784))
t, r = reply(s)
assert t == 0 and r["code"] == "bad-input" and "not finite" in r["error"], r
s.close(); healthy()
s = conn()                                                                     # truncated frame, then gone
s.sendall(frame(11, b"{}")[:10]); s.close(); healthy()
s = conn()
s.sendall(frame(11, b'{"abc": 1}', length=100)); s.close(); healthy()
# A client that vanishes mid-request loses only its own request.
pixels = gzip.open(idx).read()[16:16 + 784] if idx.endswith(".gz") else open(idx, "rb").read()[16:16 + 784]
for _ in range(20):
    s = conn()
    s.sendall(frame(5, b"{}")); t, r = reply(s)
    s.sendall(frame(7, json.dumps({"session": r["session"], "pixels": True}).encode() + b"\0" + pixels))
    s.close()
healthy()
# 200 clients at once, each with a request in flight.
clients = [conn() for _ in range(200)]
for s in clients:
    s.sendall(frame(1, b'{"client":"many"}'))
for s in clients:
    t, r = reply(s)
    assert t == 2 and r["protocol"] == 1, r
served = 0
for s in clients:
    s.sendall(frame(5, b"{}")); t, r = reply(s)
    s.sendall(frame(7, json.dumps({"session": r["session"], "pixels": True}).encode() + b"\0" + pixels))
for s in clients:
    t, r = reply(s)
    assert (t == 8 and r["groups"] >= 1) or (t == 0 and r["code"] == "busy"), (t, r)
    served += t == 8
for s in clients:
    s.close()
assert served > 0
healthy()
print(f"bad-input checks passed; {served} of 200 concurrent requests served, the rest told BUSY")
EOF
kill -0 "$DPID" || fail "daemon died on bad input"
stop_daemon
echo "ok: bad input"

# --- 2b. configuration file, SIGHUP reload, operating-point events -------------
printf '[daemon]\nmodel = %s\nmargin = 0.2\nthreads = 1\n' "$MODEL" >"$T/gearboxd.conf"
printf '[daemon]\nmargin = 0.1\nflavour = strawberry\n' >"$T/bad.conf"
if "$B/gearboxd" --config "$T/bad.conf" --socket "$T/never.sock" 2>"$T/err"; then fail "bad config accepted"; fi
grep -q "bad.conf:3: unknown key 'flavour'" "$T/err" || fail "bad config message: $(cat "$T/err")"
rm -f "$SOCK"
"$B/gearboxd" --config "$T/gearboxd.conf" --socket "$SOCK" -v >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 300); do [ -S "$SOCK" ] && $CTL status >/dev/null 2>&1 && break; sleep 0.1; done
timeout 20 $CTL watch --interval 0.2 >"$T/events.out" 2>&1 &
WATCH=$!
sleep 0.5
$CTL infer --idx "$IDX" --count 20 --deadline-us 100000 >/dev/null
$CTL infer --idx "$IDX" --count 20 --deadline-us 1 >/dev/null
cp "$T/bad.conf" "$T/gearboxd.conf"
kill -HUP "$DPID"
sleep 0.5
$CTL status >/dev/null || fail "not serving after a refused reload"
grep -q "reload refused, keeping the running configuration: .*gearboxd.conf:3: unknown key 'flavour'" "$T/daemon.log" ||
	fail "refused reload not logged"
printf '[daemon]\nmodel = %s\nmargin = 0.5\n' "$MODEL" >"$T/gearboxd.conf"
kill -HUP "$DPID"
sleep 0.5
grep -q "reloaded .*gearboxd.conf (margin 0.50)" "$T/daemon.log" || fail "good reload not applied"
# policy files: an administrator's override folder, a bad file refused on
# reload (file:line, old policies kept), a good one picked up
mkdir -p "$T/policies"
printf '[daemon]\nmodel = %s\npolicies = %s/policies\npolicy = fast\n' "$MODEL" "$T" >"$T/gearboxd.conf"
printf '[policy]\nobjective = latency\n' >"$T/policies/fast.conf"
kill -HUP "$DPID"
sleep 0.5
$CTL infer --idx "$IDX" --json | grep -q '"policy":"fast"' || fail "default policy from the config not used"
printf '[policy]\nobjective = latency\nturbo = yes\n' >"$T/policies/fast.conf"
$CTL reload --json >"$T/reload.json" || fail "reload with a bad policy"
grep -q "fast.conf:3: unknown key 'turbo'" "$T/reload.json" || fail "bad policy not named: $(cat "$T/reload.json")"
grep -q "policies not reloaded, keeping the running ones" "$T/daemon.log" || fail "bad policy reload not logged"
$CTL infer --idx "$IDX" --json | grep -q '"policy":"fast"' || fail "old policies lost after a refused reload"
sleep 0.5
kill "$WATCH" 2>/dev/null || true
wait "$WATCH" 2>/dev/null || true
grep -q '"event":"operating-point"' "$T/events.out" || fail "no operating-point event: $(head -c 600 "$T/events.out")"
grep -q '"event":"budget-violation"' "$T/events.out" || fail "no budget-violation event"
stop_daemon
echo "ok: configuration, reload, events"

# --- 2c. OpenCL placement, and its failure moving the work to the CPU -------------
if "$B/gearbox" platform --json | python3 -c 'import json,sys; sys.exit(0 if json.load(sys.stdin)["opencl"] else 1)'; then
	mkdir -p "$T/clpolicies"
	printf '[policy]\nplacements = opencl\n' >"$T/clpolicies/device.conf"
	printf '[daemon]\nmodel = %s\npolicies = %s/clpolicies\n' "$MODEL" "$T" >"$T/cl.conf"
	rm -f "$SOCK"
	# the device fails after 40 runs (calibration takes 12 of them)
	GEARBOX_OPENCL_FAULT_AFTER=40 "$B/gearboxd" --config "$T/cl.conf" --socket "$SOCK" -v >"$T/daemon.log" 2>&1 &
	DPID=$!
	for i in $(seq 1 300); do [ -S "$SOCK" ] && $CTL status >/dev/null 2>&1 && break; sleep 0.1; done
	grep -q "opencl:0: .*kernels" "$T/daemon.log" || fail "OpenCL device not opened"
	$CTL pareto --policy device --json >"$T/clpareto.json"
	grep -q '"placement":"opencl:0"' "$T/clpareto.json" || fail "no OpenCL operating points: $(head -c 400 "$T/clpareto.json")"
	timeout 30 $CTL watch --interval 0.2 >"$T/clevents.out" 2>&1 &
	WATCH=$!
	sleep 0.5
	$CTL infer --idx "$IDX" --count 10 --json >"$T/cpu.json"
	$CTL infer --idx "$IDX" --count 60 --policy device --json >"$T/device.json"
	sleep 0.5
	kill "$WATCH" 2>/dev/null || true
	wait "$WATCH" 2>/dev/null || true
	python3 - "$T/cpu.json" "$T/device.json" <<'PYEOF' || fail "OpenCL placement and fallback"
import json, sys
cpu = [json.loads(l) for l in open(sys.argv[1]) if '"request"' in l]
dev = [json.loads(l) for l in open(sys.argv[2]) if '"request"' in l]
assert len(dev) == 60, len(dev)
on_device = [r for r in dev if r["placement"] == "opencl:0"]
moved = [r for r in dev if r["fallback"]]
after = dev[dev.index(moved[0]):] if moved else []
assert on_device, "nothing ran on opencl:0"
assert len(moved) == 1 and "injected device fault" in moved[0]["fallback"], [r["fallback"] for r in dev]
assert all(r["placement"] == "cluster0" and r["class"] == r["class"] for r in after), [r["placement"] for r in after]
assert all(r["label"] for r in dev), "a request lost its answer"
# the device gives the CPU's class wherever both ran the same g
same = [(c["class"], d["class"]) for c, d in zip(cpu, dev) if c["groups"] == d["groups"] and d["placement"] == "opencl:0"]
assert same and all(a == b for a, b in same), same
PYEOF
	grep -q "opencl:0 failed, moving its work to the CPU: .*injected device fault" "$T/daemon.log" || fail "device failure not logged"
	grep -q '"event":"placement-failed"' "$T/clevents.out" || fail "no placement-failed event: $(head -c 600 "$T/clevents.out")"
	$CTL status >/dev/null || fail "not serving after a device failure"
	stop_daemon
	echo "ok: OpenCL placement, device failure moves the work to the CPU"
else
	echo "skip: OpenCL placement (no OpenCL device)"
fi

# --- 3. socket activation -------------------------------------------------------
if command -v systemd-socket-activate >/dev/null; then
	rm -f "$SOCK"
	systemd-socket-activate -l "$SOCK" "$B/gearboxd" --model "$MODEL" >"$T/daemon.log" 2>&1 &
	DPID=$!
	for i in $(seq 1 100); do [ -S "$SOCK" ] && break; sleep 0.1; done
	$CTL status >/dev/null || fail "status through an activated socket"
	grep -q "listening on the socket passed by systemd" "$T/daemon.log" || fail "socket not taken from systemd"
	kill -TERM "$DPID"; wait "$DPID" || true; DPID=""
	echo "ok: socket activation"
else
	echo "skip: no systemd-socket-activate"
fi

# --- 4. sd_notify -----------------------------------------------------------------
python3 - "$B/gearboxd" "$MODEL" "$T" <<'EOF' || fail "sd_notify"
import os, signal, socket, subprocess, sys, time
daemon, model, tmp = sys.argv[1:4]
path = os.path.join(tmp, "notify.sock")
n = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
n.bind(path)
n.settimeout(30)
env = dict(os.environ, NOTIFY_SOCKET=path)
p = subprocess.Popen([daemon, "--socket", os.path.join(tmp, "n.sock"), "--model", model], env=env,
                     stderr=subprocess.DEVNULL)
def until(word):
    seen = []
    while True:
        msg = n.recv(4096).decode()
        seen.append(msg)
        if word in msg:
            return msg
got = until("READY=1")
status = until("STATUS=")
assert "model" in status, status
p.send_signal(signal.SIGHUP)
until("RELOADING=1")
until("READY=1")
p.send_signal(signal.SIGTERM)
until("STOPPING=1")
assert p.wait(timeout=30) == 0
print("READY, STATUS, RELOADING/READY and STOPPING received")
EOF
echo "ok: sd_notify"

# --- 5. the units -------------------------------------------------------------------
if command -v systemd-analyze >/dev/null && [ -f "$B/systemd/gearboxd.service" ]; then
	mkdir -p "$T/units"
	sed "s|^ExecStart=.*|ExecStart=$(cd "$B" && pwd)/gearboxd|" "$B/systemd/gearboxd.service" >"$T/units/gearboxd.service"
	cp "$S/systemd/gearboxd.socket" "$T/units/"
	systemd-analyze verify --man=no "$T/units/gearboxd.service" "$T/units/gearboxd.socket" 2>"$T/verify.err" || {
		cat "$T/verify.err"
		fail "systemd-analyze verify"
	}
	echo "ok: systemd-analyze verify"
fi

# --- 6. valgrind --------------------------------------------------------------------
if command -v valgrind >/dev/null && ! grep -q "__asan_init" "$B/gearboxd"; then
	# Without OpenCL: the OpenCL driver's compiler (PoCL's LLVM) takes minutes
	# under valgrind; the OpenCL path is checked under ASan/UBSan in 2c.
	printf '[daemon]\nopencl = no\nrealtime = no\n' >"$T/novcl.conf"
	DAEMON_CONFIG=$T/novcl.conf
	start_daemon valgrind --quiet --suppressions="$S/tests/daemon/valgrind.supp" --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
		--error-exitcode=99 --log-file="$T/valgrind.log"
	$CTL infer --idx "$IDX" --count 10 --deadline-us 1000000 >/dev/null || fail "infer under valgrind"
	python3 -c "
import socket, struct, os
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK'); s.sendall(os.urandom(40)); s.close()
s = socket.socket(socket.AF_UNIX); s.connect('$SOCK')
s.sendall(b'GBX1' + struct.pack('<HHII', 1, 5, 1, 2) + b'{}'); s.recv(100)
s.sendall(b'GBX1' + struct.pack('<HHII', 1, 7, 2, 13 + 784) + b'{\"session\":1}' + b'\0' + bytes(783)); s.close()"
	$CTL status >/dev/null
	kill -TERM "$DPID"
	if ! wait "$DPID"; then cat "$T/valgrind.log"; DPID=""; fail "valgrind found errors or leaks"; fi
	DPID=""
	echo "ok: valgrind: no errors, no leaks"
else
	echo "skip: valgrind (not installed, or this build uses sanitizers)"
fi

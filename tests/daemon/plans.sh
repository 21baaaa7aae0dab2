#!/bin/sh
# SPDX-License-Identifier: MIT
# gearboxd with per-layer plans (gearboxd.conf `layer_plans = FOLDER`): a plan made
# here runs on every CPU placement at its thread count and STATUS names it;
# plans for other model contents or another CPU are refused with a log line
# saying why (the model serves without them), one for no placement of this
# machine is left out, a second for the same placement is logged and left
# out; the calibration is cached under the plans' hash, so starting without
# the plans says the cache was measured under other plans and calibrates
# again. A few seconds (a tiny model).
set -eu
B=${top_builddir:-.}
[ -x "$B/gearboxd" ] || { echo "SKIP: gearboxd not built (no libsystemd)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d /tmp/gearboxd-plans-XXXXXX)
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
unset GEARBOX_KERNEL_ISA
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -30 "$T/daemon.log"; } >&2
	exit 1
}
json() { python3 -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }
SOCK=$T/gearboxd.sock
CTL="$B/gearboxctl --socket $SOCK"
# PM QoS goes to a plain file of ours, never to the machine's /sys or
# /dev/cpu_dma_latency (this may run as root).
start_daemon() { # start_daemon CONFIG
	rm -f "$SOCK"
	grep -q '^pm_qos_device' "$1" || printf 'pm_qos = cpu-dma-latency\npm_qos_device = %s/cpu_dma_latency\n' "$T" >>"$1"
	"$B/gearboxd" --socket "$SOCK" --model "$T/tiny.st" -v --config "$1" >"$T/daemon.log" 2>&1 &
	DPID=$!
	for i in $(seq 1 600); do
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
}

mkdir -p "$T/plans"
"$B/tests/tools/mkmodel" --arch tiny "$T/tiny.st"
"$B/tests/tools/mkmodel" --arch tiny --seed 9 "$T/tiny-other.st"
# int8 layers, so that the plan is not the fast kernels' own (int8 only: which
# of several candidates wins is timing, and under the sanitizers BLAS does)
"$B/gearbox" tune "$T/tiny.st" --search random --episodes 2 --runs 1 --warmup 0 --calibration random \
	--calibration-count 4 --impls int8 --out "$T/plans/b-good.plan" >/dev/null
"$B/gearbox" tune "$T/tiny-other.st" --search random --episodes 2 --runs 1 --warmup 0 --impls gemm \
	--out "$T/plans/d-other.plan" >/dev/null
python3 - "$T/plans" <<'EOF'
import json, sys
d = sys.argv[1]
p = json.load(open(f"{d}/b-good.plan"))
cpu = dict(p, cpu="Imaginary CPU 9000")
json.dump(cpu, open(f"{d}/a-cpu.plan", "w"))
nowhere = dict(p, cluster="no-such-cluster")
json.dump(nowhere, open(f"{d}/c-nowhere.plan", "w"))
json.dump(p, open(f"{d}/e-again.plan", "w"))
open(f"{d}/f-junk.json", "w").write("not json")
open(f"{d}/README", "w").write("not a plan, not read")
EOF
grep -q '"int8"' "$T/plans/b-good.plan" || fail "the tuned plan has no int8 layer"
printf '[daemon]\nopencl = no\nlayer_plans = %s\n' "$T/plans" >"$T/with.conf"
printf '[daemon]\nopencl = no\n' >"$T/without.conf"

start_daemon "$T/with.conf"
$CTL --json status >"$T/status.json"
json "$T/status.json" 'd["models"][0]["layer_plans"]' >"$T/plans.txt"
python3 - "$T/status.json" "$T/plans/b-good.plan" <<'EOF' || fail "STATUS plans: $(cat "$T/plans.txt")"
import json, sys
d = json.load(open(sys.argv[1]))
plans = d["models"][0]["layer_plans"]
assert plans, "no plan in use"
assert all(p["plan"] == sys.argv[2] and p["threads"] == 1 for p in plans), plans
EOF
# and gearboxctl status says so in its text
$CTL status >"$T/status.txt"
grep -q "^    per-layer plan $T/plans/b-good.plan on .* x1" "$T/status.txt" || fail "status text: $(cat "$T/status.txt")"
log=$T/daemon.log
grep -q "plan refused: .*a-cpu.plan was measured on another CPU (Imaginary CPU 9000)" "$log" || fail "other CPU not refused"
grep -q "plan refused: .*d-other.plan was made for another model file" "$log" || fail "other contents not refused"
grep -q "c-nowhere.plan (cluster no-such-cluster, 1 thread) fits no placement" "$log" || fail "no placement"
grep -q "e-again.plan is not used on .*b-good.plan came first" "$log" || fail "second plan for a placement"
grep -q "f-junk.json is not a plan file" "$log" || fail "junk file"
! grep -q "README" "$log" || fail "README read"
grep -q "x1 runs under plan .*b-good.plan" "$log" || fail "plan in use not logged"
[ "$(json "$(ls "$T"/cache/calibration-*.json | head -n 1)" 'd.get("layer_plans_fnv1a", "0" * 16) != "0" * 16')" = True ] ||
	fail "calibration cache without the plans' hash"
# it serves under the plan
python3 -c "
import struct; open('$T/in.raw', 'wb').write(struct.pack('<128f', *[(i % 7) / 7.0 for i in range(128)]))"
$CTL infer --raw "$T/in.raw" --json >"$T/one.jsonl" 2>"$T/infer.err" || fail "infer: $(cat "$T/infer.err")"
[ "$(json "$T/status.json" 'd["models"][0]["calibrated_points"] > 0')" = True ] || fail "not calibrated"
stop_daemon

# Without the plans the cached calibration is not theirs.
start_daemon "$T/without.conf"
grep -q "was measured under other per-layer plans" "$T/daemon.log" || fail "cache of the plans used without them"
$CTL --json status >"$T/status.json"
[ "$(json "$T/status.json" 'd["models"][0]["layer_plans"]')" = "[]" ] || fail "plans without a plans folder"
! $CTL status | grep -q "per-layer plan" || fail "status text names a plan without a plans folder"
stop_daemon
echo "ok"

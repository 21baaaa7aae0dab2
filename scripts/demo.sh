#!/bin/sh
# SPDX-License-Identifier: MIT
# Set everything up and run the main job: gearboxd serving the bundled dynamic
# DNN on a private socket, and a client streaming Fashion-MNIST images whose
# deadline changes every few seconds. Each line shows what the daemon chose
# (active groups g, placement), what it cost, and whether the deadline held.
#
# The deadlines are set from this machine's own latencies (gearbox model bench,
# and bench/latency for g=1 at the client's rate with the transport floor), so
# the demo means the same on a fast PC and on a board: generous (all groups
# fit), between the g=1 and g=G latencies, what g=1 meets by the engine's p99
# plus the floor's p99 with a quarter to spare, and too tight for any g (the
# daemon says so and runs the fastest point).
set -eu
cd "$(dirname "$0")/.."
scripts/setup.sh
MODEL=models/fmnist-alexnet-g4.safetensors
B=${BUILD_DIR:-build} # where scripts/setup.sh built
DATA=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
T=$(mktemp -d /tmp/gearbox-demo-XXXXXX)
SOCK=$T/gearboxd.sock
trap 'kill $DPID 2>/dev/null; wait $DPID 2>/dev/null; rm -rf "$T"' EXIT INT TERM

echo "== the model"
$B/gearbox model info "$MODEL" | tail -n 6
echo
echo "== latency per active-group count on this machine (gearbox model bench)"
$B/gearbox model bench "$MODEL" --iterations 100 --json >"$T/bench.json"
python3 - "$T/bench.json" <<'PY'
import json, sys
for x in json.load(open(sys.argv[1]))["groups"]:
    print(f"   g={x['active']}: median {x['median_us']:.0f} us, p99 {x['p99_us']:.0f} us")
PY
echo
echo "== gearboxd on $SOCK"
# A policy pinning g=1 on one thread, to measure what g=1 costs at the
# client's rate (next step); the client itself uses the default policy.
mkdir -p "$T/policies"
printf '[policy]\ncontroller = fixed\ngroups = 1\nmax_threads = 1\nplacements = cpu\ndvfs = no\n' >"$T/policies/pinned.conf"
printf '[daemon]\npolicies = %s\n' "$T/policies" >"$T/gearboxd.conf"
$B/gearboxd --config "$T/gearboxd.conf" --socket "$SOCK" --model "$MODEL" &
DPID=$!
# Its first start calibrates the model and builds the OpenCL kernels: up to
# a minute on a busy 2-CPU machine.
for i in $(seq 1 900); do
	[ -S "$SOCK" ] && break
	kill -0 "$DPID" 2>/dev/null || { echo "demo: gearboxd exited at start" >&2; exit 1; }
	sleep 0.1
done
[ -S "$SOCK" ] || { echo "demo: gearboxd did not come up in 90 s" >&2; exit 1; }
echo
echo "== g=1 at 50 requests/s: the engine alone and a bare socket round trip (bench/latency)"
# 200 requests of each kind: the p99 of fewer is their largest, one spike.
$B/bench/latency "$SOCK" "$MODEL" --policy pinned --rates 50 --seconds 4 --json >"$T/latency.json"
SCHEDULE=$(python3 - "$T/bench.json" "$T/latency.json" <<'PY'
import json, sys
g = json.load(open(sys.argv[1]))["groups"]
row = json.loads(open(sys.argv[2]).readline())
t1, tG = g[0]["p99_us"], g[-1]["p99_us"]
engine, floor = row["engine_us"]["p99"], row["floor_us"]["p99"]
g1 = 1.25 * (engine + floor)
print(f"   engine p99 {engine:.0f} us + floor p99 {floor:.0f} us: the g=1 step's deadline is {g1:.0f} us", file=sys.stderr)
steps = [(0, 3 * tG + floor), (4, (t1 + tG) / 2 + floor), (8, g1), (12, 0.3 * t1), (16, 3 * tG + floor)]
print(",".join(f"{t}:{int(d)}" for t, d in steps))
PY
)
echo
echo "== a client at 50 requests/s; deadline schedule (s:us) $SCHEDULE"
# Summarise the stream: one line per deadline step (or per 100 requests).
SUMMARY=$(cat <<'PY'
import json, sys
window, last_deadline = [], None
feasible_met = feasible_total = 0
def flush():
    global feasible_met, feasible_total
    if window:
        feasible_total += sum(r["feasible"] for r in window)
        feasible_met += sum(r["feasible"] and r["deadline_met"] for r in window)
        g = sum(r["groups"] for r in window) / len(window)
        met = sum(r["deadline_met"] for r in window)
        infeasible = sum(not r["feasible"] for r in window)
        lat = sorted(r["latency_us"] for r in window)[len(window) // 2]
        last = window[-1]
        print(f"  deadline {last_deadline:>6} us: mean g {g:.2f}, median {lat:6.0f} us end to end, "
              f"{met}/{len(window)} met, {infeasible} infeasible, on {last['placement']}, "
              f"{last['energy_uj']:.0f} uJ ({last['energy_source']})", flush=True)
for line in sys.stdin:
    r = json.loads(line)
    if r.get("summary"):
        flush()
        window = []
        print(f"  all {r['requests']} requests: p50 {r['p50_us']:.0f} us, p99 {r['p99_us']:.0f} us, "
              f"mean g {r['mean_groups']:.2f}")
        if feasible_total:
            print(f"  requests the daemon called feasible: {feasible_met}/{feasible_total} met "
                  f"({100 * feasible_met / feasible_total:.1f} %)")
        continue
    if r["deadline_us"] != last_deadline or len(window) == 100:
        flush()
        window, last_deadline = [], r["deadline_us"]
    window.append(r)
PY
)
# DEMO_LOG=FILE keeps the per-request stream (one JSON object a reply).
$B/gearboxctl --socket "$SOCK" infer --idx "$DATA" --count 1000 --rate 50 --deadline-schedule "$SCHEDULE" --json |
	tee "${DEMO_LOG:-/dev/null}" | python3 -c "$SUMMARY"
echo
echo "== gearboxctl status"
$B/gearboxctl --socket "$SOCK" status

#!/bin/sh
# SPDX-License-Identifier: MIT
# gearbox pareto and gearbox simulate as a user runs them: the Pareto front
# is a real front of the measured table, the calibration is cached and
# reused, the simulator runs the shipped platforms and trace, labels its
# output simulated, and refuses bad platform files and traces by file:line.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
# A cross build runs its programs under qemu-user (make check sets this).
EMU=${GEARBOX_EMULATOR:-}
T=$(mktemp -d /tmp/gearbox-pol-XXXXXX)
trap 'rm -rf "$T"' EXIT
GEARBOX="$B/gearbox"
MODEL="$S/models/fmnist-alexnet-g4.safetensors"
export GEARBOX_POLICY_DIR="$S/policies" GEARBOX_CACHE_DIR="$T/cache" GEARBOX_STATE_DIR="$T/state" \
	XDG_CACHE_HOME="$T/xdg-cache" OPENBLAS_NUM_THREADS=1
PY=python3
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

# pareto: calibrates (3 measured points per placement), caches, then reuses.
$EMU "$GEARBOX" pareto "$MODEL" --runs 3 --all --json >"$T/all.json" 2>"$T/err"
[ -f "$T/cache/calibration-fmnist-alexnet-g4.json" ] || fail "no calibration cache written"
n=$(json "$T/all.json" 'd["points"]')
[ "$n" -ge 4 ] || fail "only $n operating points"
[ "$(json "$T/all.json" 'len(d["all"]) == d["points"] and d["simulated"] is False')" = True ] || fail "all points"
$EMU "$GEARBOX" pareto "$MODEL" --json >"$T/front.json" 2>"$T/err"
[ ! -s "$T/err" ] || fail "pareto said something on stderr with --json: $(cat "$T/err")"
$EMU "$GEARBOX" pareto "$MODEL" 2>&1 | grep -q "calibration from $T/cache" || fail "cached calibration not reused"
# the front: no point of the table dominates a front point, and every
# non-dominated table point is on it
$PY - "$T/all.json" "$T/front.json" <<'PY' || fail "not a Pareto front"
import json, sys
pts = json.load(open(sys.argv[1]))["all"]; front = json.load(open(sys.argv[2]))["front"]
key = lambda p: (p["groups"], p["placement"], p["threads"], p["freq_khz"])
def dom(a, b):
    return (a["accuracy"] >= b["accuracy"] and a["latency_us"] <= b["latency_us"] and a["energy_uj"] <= b["energy_uj"]
            and (a["accuracy"] > b["accuracy"] or a["latency_us"] < b["latency_us"] or a["energy_uj"] < b["energy_uj"]))
nd = {key(p) for p in pts if not any(dom(q, p) for q in pts)}
assert nd == {key(p) for p in front}, (nd, [key(p) for p in front])
assert all(a["latency_us"] <= b["latency_us"] for a, b in zip(front, front[1:]))
PY
# a changed platform key invalidates the cache: edit the stored key
CAL="$T/cache/calibration-fmnist-alexnet-g4.json"
cp "$CAL" "$T/cal.json"
sed -i -E 's/"key": ?"[^"]*"/"key": "stale"/' "$CAL"
$EMU "$GEARBOX" pareto "$MODEL" --runs 1 >"$T/out" 2>&1
grep -q "calibrating: g=" "$T/out" || fail "a stale cache was used"
grep -q "calibration cache $CAL was made for other placements.*: measuring again" "$T/out" ||
	fail "no reason given for not using the cache: $(cat "$T/out")"
# a calibration from another build (a sanitizer build, say) is not used, and
# the reason names both builds
sed -E 's/"key": ?"[^"]*"/"key": "other"/; s/"build": ?"[^"]*"/"build": "asan+ubsan+test"/' "$T/cal.json" >"$CAL"
$EMU "$GEARBOX" pareto "$MODEL" --runs 1 >"$T/out" 2>&1
grep -q "calibrating: g=" "$T/out" || fail "a cache from another build was used"
grep -q "calibration cache $CAL was made by gearbox [^ ]* asan+ubsan+test; this is gearbox [^ ]* [a-z+]*: measuring again" "$T/out" ||
	fail "the reason does not name the builds: $(cat "$T/out")"
# --validate measures every front point and reports the error
$EMU "$GEARBOX" pareto "$MODEL" --validate --runs 3 >"$T/val" || fail "validate"
grep -q "prediction error over" "$T/val" || fail "no prediction error"
if command -v gnuplot >/dev/null; then
	$EMU "$GEARBOX" pareto "$MODEL" --plot "$T/front.png" >/dev/null
	[ "$(head -c 4 "$T/front.png" | od -An -c | tr -d ' ')" = "211PNG" ] || fail "--plot wrote no PNG"
fi
$EMU "$GEARBOX" pareto "$MODEL" --policy nosuch 2>&1 | grep -q "no policy .nosuch." || fail "unknown policy accepted"

# simulate: both shipped platforms, the shipped trace, JSON and text.
TRACE="$S/policies/platforms/load-step.csv"
for p in xu3 nano; do
	$EMU "$GEARBOX" simulate --platform $p --model "$MODEL" --trace "$TRACE" --deadline-us 2500 --duration 20 --json >"$T/$p.jsonl"
	tail -n 1 "$T/$p.jsonl" >"$T/$p.sum"
	[ "$(json "$T/$p.sum" 'd["simulated"] and d["requests"] == 600')" = True ] || fail "$p summary"
	rate=$(json "$T/$p.sum" 'd["deadline_hit_rate"]')
	$PY -c "import sys; sys.exit(0 if $rate >= 0.95 else 1)" || fail "$p: only $rate of deadlines met in simulation"
	head -n 1 "$T/$p.jsonl" >"$T/$p.range"
	[ "$(json "$T/$p.range" 'd["dynamic_range"] and d["time"] > d["time_groups_only"] > 1.5')" = True ] ||
		fail "$p: mapping and DVFS do not widen the time range"
	# every request line is labelled simulated, and the decisions move
	# between placements when the trace loads them
	$PY - "$T/$p.jsonl" <<'PY' || fail "$p: decisions"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if '"t_s"' in l]
assert all(r["simulated"] for r in rows)
assert len({(r["placement"], r["freq_khz"]) for r in rows}) >= 2, "never moved"
PY
done
$EMU "$GEARBOX" simulate --platform xu3 --model "$MODEL" --trace "$TRACE" | grep -q "^\[simulated\].*deadlines met" || fail "text summary"

# bad platform files and traces
printf '[platform]\nname = x\n[place a]\nkind = cpu\nmacs_per_cycle = fast\n' >"$T/bad.conf"
$EMU "$GEARBOX" simulate --platform "$T/bad.conf" --model "$MODEL" 2>&1 | grep -q "bad.conf:5: macs_per_cycle: 'fast'" || fail "bad platform file"
printf '[place a]\nkind = cpu\npower = 1000:0.5 500:0.2\n' >"$T/bad2.conf"
$EMU "$GEARBOX" simulate --platform "$T/bad2.conf" --model "$MODEL" 2>&1 | grep -q "ascending" || fail "unsorted power table"
printf 'time_s,placement,load\n0,all,0\n5,big,1.5\n' >"$T/bad.csv"
$EMU "$GEARBOX" simulate --platform xu3 --model "$MODEL" --trace "$T/bad.csv" 2>&1 | grep -q "bad.csv:3:" || fail "bad trace"
$EMU "$GEARBOX" simulate --platform nosuch --model "$MODEL" 2>&1 | grep -q "nosuch.conf: No such file" || fail "unknown platform"
echo "ok"

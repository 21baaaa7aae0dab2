#!/bin/sh
# SPDX-License-Identifier: MIT
# gearbox tune and --plan as a user runs them: a plan per g is written and
# read back by model bench|eval|run, its JSON report holds together, the
# accuracy bound is measured, and a plan for another model or CPU is refused
# with the reason. Timings are not checked (this is not a benchmark).
set -eu
B=${top_builddir:-.}
T=$(mktemp -d /tmp/gearbox-tune-XXXXXX)
trap 'rm -rf "$T"' EXIT
export GEARBOX_CACHE_DIR="$T/gbx-cache" GEARBOX_STATE_DIR="$T/state" XDG_CACHE_HOME="$T/xdg-cache"
GEARBOX="$B/gearbox"
PY=python3
fail() { echo "FAIL: $*" >&2; exit 1; }
json() { $PY -c "import json,sys; d=json.load(open(sys.argv[1])); print($2)" "$1"; }

"$B/tests/tools/mkmodel" --arch alexnet-fmnist "$T/fm.st"
"$B/tests/tools/mkmodel" --arch alexnet-fmnist --seed 9 "$T/fm-other.st"
"$B/tests/tools/mkmodel" --arch tiny "$T/tiny.st"
$PY - "$T" <<'PYEOF'
import gzip, struct, sys, random
t = sys.argv[1]
random.seed(2)
n = 30
for name in ("t10k", "train"):
    with gzip.open(f"{t}/{name}-images-idx3-ubyte.gz", "wb") as f:
        f.write(struct.pack(">IIII", 0x803, n, 28, 28) + bytes(random.randrange(256) for _ in range(n * 784)))
with gzip.open(f"{t}/t10k-labels-idx1-ubyte.gz", "wb") as f:
    f.write(struct.pack(">II", 0x801, n) + bytes(random.randrange(10) for _ in range(n)))
PYEOF

"$GEARBOX" tune --help | grep -q -- "--search" || fail "tune --help"
# no --out: usage error
set +e
"$GEARBOX" tune "$T/fm.st" >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q -- "--out" "$T/err" || fail "tune without --out: rc $rc, $(cat "$T/err")"

# exact, every g, int8 calibrated on the folder's train images, accuracy on
# its t10k set; the plan runs and the report's keys are there.
"$GEARBOX" tune "$T/fm.st" --search exact --runs 2 --warmup 0 --dataset "$T" --max-accuracy-drop 100 \
	--out "$T/fm.plan" --json >"$T/tune.json"
[ "$(json "$T/tune.json" '[g["active"] for g in d["groups"]]')" = "[1, 2, 3, 4]" ] || fail "tune groups"
[ "$(json "$T/tune.json" 'all(len(g["layers"]) == 8 and all(l["impl"] in ("gemm", "direct", "wino2", "wino4", "int8") for l in g["layers"]) for g in d["groups"])')" = True ] || fail "tune layers"
[ "$(json "$T/tune.json" 'all(g["latency_us"] > 0 and g["exact_measured_us"] == g["latency_us"] and g["table_measurements"] == 7 for g in d["groups"])')" = True ] || fail "tune figures"
[ "$(json "$T/tune.json" 'all(0 <= g["accuracy"] <= 1 and 0 <= g["accuracy_fp32"] <= 1 for g in d["groups"])')" = True ] || fail "tune accuracy"
[ "$(json "$T/tune.json" 'all(set(l["cost_us"]) >= {"gemm", "int8"} for g in d["groups"] for l in g["layers"])')" = True ] || fail "tune cost table"
# layouts: the direct convolution in NHWC and blocked is a candidate of every 3x3 stride-1 layer
[ "$(json "$T/tune.json" 'all(set(l["cost_us"]) >= {"direct-nhwc", "direct-blocked"} for g in d["groups"] for l in g["layers"] if l["name"] in ("conv2", "conv3", "conv4", "conv5"))')" = True ] || fail "layout candidates"
[ "$(json "$T/tune.json" 'all(l["layout"] in ("nchw", "nhwc", "blocked") and (l["layout"] == "nchw" or l["impl"] == "direct") for g in d["groups"] for l in g["layers"])')" = True ] || fail "layouts in the report"
[ "$(json "$T/fm.plan" '(d["format"], d["version"], len(d["plans"]))')" = "('gearbox-plan', 2, 4)" ] || fail "plan file"
"$GEARBOX" model bench "$T/fm.st" --plan "$T/fm.plan" --iterations 3 --warmup 0 --json >"$T/bench.json"
[ "$(json "$T/bench.json" 'all(g["median_us"] > 0 for g in d["groups"])')" = True ] || fail "bench --plan"
"$GEARBOX" model eval "$T/fm.st" --plan "$T/fm.plan" --dataset "$T" --json >"$T/eval.json"
[ "$(json "$T/eval.json" '[g["samples"] for g in d["groups"]]')" = "[30, 30, 30, 30]" ] || fail "eval --plan"
"$GEARBOX" model run "$T/fm.st" --plan "$T/fm.plan" --idx "$T/t10k-images-idx3-ubyte.gz" --count 2 >/dev/null || fail "run --plan"

# The bound is kept: with 0 points allowed, the plan's accuracy on the
# validation set is at least fp32's at every g.
"$GEARBOX" tune "$T/fm.st" --search exact --runs 2 --warmup 0 --dataset "$T" --max-accuracy-drop 0 \
	--out "$T/strict.plan" --json >"$T/strict.json"
[ "$(json "$T/strict.json" 'all(g["accuracy"] >= g["accuracy_fp32"] for g in d["groups"])')" = True ] || fail "accuracy bound"

# rl and random spend --episodes measurements and report their curves.
"$GEARBOX" tune "$T/tiny.st" --calibration random --calibration-count 4 --episodes 6 --runs 2 --warmup 0 \
	--groups 2 --out "$T/tiny.plan" --json >"$T/rl.json" 2>/dev/null
[ "$(json "$T/rl.json" '(d["search"], len(d["groups"][0]["trace_rl_us"]), d["groups"][0]["search_measurements"], d["groups"][0]["plan_from"] in ("rl", "exact"))')" = "('rl', 6, 6, True)" ] || fail "rl"
"$GEARBOX" tune "$T/tiny.st" --search random --episodes 4 --runs 2 --warmup 0 --impls gemm,direct \
	--out "$T/tiny2.plan" --json >"$T/rnd.json"
[ "$(json "$T/rnd.json" 'all(l["impl"] in ("gemm", "direct") for g in d["groups"] for l in g["layers"])')" = True ] || fail "--impls"
# One choice per layer (--impls gemm): rl's plan and the optimum's are the
# same plan, measured once when measured again (ratio exactly 1), and with 40
# episodes rl's final pick (the last 8) runs too.
"$GEARBOX" tune "$T/tiny.st" --calibration random --calibration-count 4 --episodes 40 --runs 2 --warmup 0 \
	--groups 2 --impls gemm --out "$T/same.plan" --json >"$T/same.json" 2>/dev/null
[ "$(json "$T/same.json" 'all(g["rl_plan"] == g["exact_plan"] and all(v == 1.0 for v in g["remeasured_vs_exact"].values()) and g["search_measurements"] == 40 for g in d["groups"])')" = True ] ||
	fail "the same plan measured again is not the same: $(json "$T/same.json" '[(g["remeasured_vs_exact"], g["search_measurements"]) for g in d["groups"]]')"
# only layouts: every layer that can runs the direct convolution in NHWC or blocked, the plan says so and runs
"$GEARBOX" tune "$T/fm.st" --search exact --runs 1 --warmup 0 --groups 2 --impls direct-nhwc,direct-blocked \
	--out "$T/lay.plan" --json >"$T/lay.json"
[ "$(json "$T/lay.json" 'sorted(set(l["layout"] for l in d["groups"][0]["layers"] if l["name"] in ("conv2", "conv3", "conv4", "conv5")))')" != "['nchw']" ] || fail "no layout chosen"
grep -q '"layout":' "$T/lay.plan" || fail "no layout in the plan file"
"$GEARBOX" model bench "$T/fm.st" --plan "$T/lay.plan" --iterations 2 --warmup 0 >/dev/null || fail "bench a plan with layouts"
set +e
"$GEARBOX" tune "$T/fm.st" --impls wino2-nhwc --out "$T/x.plan" >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] && grep -q "direct-nhwc" "$T/err" || fail "--impls wino2-nhwc: rc $rc, $(cat "$T/err")"
"$GEARBOX" tune "$T/tiny.st" --search random --episodes 4 --runs 1 --warmup 0 --groups 1 --impls gemm --out "$T/t.plan" | grep -q "plan written to" || fail "tune text output"

# Refusals, each naming why.
set +e
"$GEARBOX" model bench "$T/fm-other.st" --plan "$T/fm.plan" --iterations 1 >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc != 0 ] && grep -q "another model file" "$T/err" || fail "plan for other contents: rc $rc, $(cat "$T/err")"
$PY - "$T/fm.plan" "$T/cpu.plan" <<'PYEOF'
import json, sys
d = json.load(open(sys.argv[1]))
d["cpu"] = "Imaginary CPU 9000"
json.dump(d, open(sys.argv[2], "w"))
PYEOF
set +e
"$GEARBOX" model bench "$T/fm.st" --plan "$T/cpu.plan" --iterations 1 >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc != 0 ] && grep -q "another CPU (Imaginary CPU 9000)" "$T/err" || fail "plan for another CPU: $(cat "$T/err")"
set +e
"$GEARBOX" model bench "$T/fm.st" --plan "$T/fm.plan" --kernels blas --iterations 1 >/dev/null 2>"$T/err"; rc=$?
set -e
[ $rc = 2 ] || fail "--plan with --kernels blas is a usage error"
echo "gearbox tune CLI: all checks passed"

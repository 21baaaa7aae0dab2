#!/bin/sh
# SPDX-License-Identifier: MIT
# The accuracy predictor (per-layer sensitivity) in the tools:
#   - gearbox pareto --plan: an int8 plan of the bundled model (gearbox tune)
#     adds its points with the predictor's accuracy and its speed-up measured
#     here; the accuracy-latency and accuracy-energy fronts are fronts
#     (cheaper points of less accuracy), predicted accuracies are marked
#     apart from measured ones in the JSON and the text; a sensitivity file
#     of other model contents is refused;
#   - gearbox tune --sensitivity: the accuracy bound's first guess returns to
#     fp32 the layers the predictor says cost most (a file that makes every
#     layer cost 3 points at every g: all of them), then measures.
set -eu
B=${top_builddir:-.}
S=$(cd "${top_srcdir:-.}" && pwd)
DS=/usr/share/datasets/fashion-mnist
MODEL="$S/models/fmnist-alexnet-g4.safetensors"
[ -f "$DS/t10k-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST (dataset-fashion-mnist)"; exit 77; }
T=$(mktemp -d /tmp/gearbox-pareto-plan-XXXXXX)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_CACHE_DIR="$T/cache" GEARBOX_STATE_DIR="$T/state" XDG_CACHE_HOME="$T/xdg" \
	GEARBOX_POLICY_DIR="$S/policies"
fail() { echo "FAIL: $*" >&2; exit 1; }

"$B/gearbox" tune "$MODEL" --search exact --impls gemm,int8 --runs 2 --warmup 1 --dataset "$DS" \
	--validation-limit 100 --calibration-count 32 --max-accuracy-drop 100 --out "$T/int8.plan" >"$T/tune.txt" 2>&1 ||
	fail "gearbox tune: $(tail -5 "$T/tune.txt")"
"$B/gearbox" pareto "$MODEL" --plan "$T/int8.plan" --runs 3 --json >"$T/p.json" 2>"$T/err" || fail "pareto --plan: $(cat "$T/err")"
python3 - "$T/p.json" <<'PY' || fail "fronts: $(cat "$T/p.json")"
import json, sys
d = json.load(open(sys.argv[1]))
p = d["plan"]
assert p["threads"] >= 1 and p["placement"], p
assert len(p["speedup"]) == 4 and all(s > 0 for s in p["speedup"]), p
assert len(p["predicted_accuracy"]) == 4 and all(0 < a <= 1 for a in p["predicted_accuracy"]), p
for key, cost in (("latency_front", "latency_us"), ("energy_front", "energy_uj")):
    f = d[key]
    assert f, key
    # cheapest first, each more accurate than the one before
    for a, b in zip(f, f[1:]):
        assert a[cost] <= b[cost] and a["accuracy"] < b["accuracy"], (key, a, b)
    for q in f:
        assert q["accuracy_predicted"] == (q["plan"] != ""), q
PY
"$B/gearbox" pareto "$MODEL" --plan "$T/int8.plan" --runs 2 >"$T/p.txt" 2>"$T/err" || fail "pareto --plan text: $(cat "$T/err")"
grep -q "^accuracy-latency front" "$T/p.txt" && grep -q "^accuracy-energy front" "$T/p.txt" || fail "text: $(cat "$T/p.txt")"
grep -Eq "int8.plan +[0-9.]+%p" "$T/p.txt" || fail "no predicted accuracy marked: $(cat "$T/p.txt")"
# another model's sensitivity is refused
sed 's/"fnv1a64":"[0-9a-f]*"/"fnv1a64":"0123456789abcdef"/; s/"fnv1a64": "[0-9a-f]*"/"fnv1a64": "0123456789abcdef"/' \
	"$S/models/fmnist-alexnet-g4.sensitivity.json" >"$T/other.json"
if "$B/gearbox" pareto "$MODEL" --plan "$T/int8.plan" --sensitivity "$T/other.json" --runs 2 >/dev/null 2>"$T/err"; then
	fail "a sensitivity file of other model contents was used"
fi
grep -q "0123456789abcdef" "$T/err" || fail "no reason: $(cat "$T/err")"
if command -v gnuplot >/dev/null 2>&1; then
	"$B/gearbox" pareto "$MODEL" --plan "$T/int8.plan" --runs 2 --plot "$T/f.png" >/dev/null 2>&1 || fail "--plot"
	[ -s "$T/f.png" ] || fail "no plot"
fi
python3 - "$S/models/fmnist-alexnet-g4.sensitivity.json" "$T/conv3.json" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
for g in d["groups"]:
    for l in g["layers"]:
        l["drop"] = 0.03
json.dump(d, open(sys.argv[2], "w"))
PY
"$B/gearbox" tune "$MODEL" --search exact --impls gemm,int8 --runs 2 --warmup 1 --dataset "$DS" \
	--validation-limit 100 --calibration-count 32 --max-accuracy-drop 0.5 --sensitivity "$T/conv3.json" \
	--out "$T/guess.plan" --json >"$T/guess.json" 2>"$T/err" || fail "tune --sensitivity: $(cat "$T/err")"
python3 - "$T/guess.json" <<'PY' || fail "first guess: $(cat "$T/guess.json")"
import json, sys
d = json.load(open(sys.argv[1]))
# every layer predicted to cost 3 points: whatever int8 the (timing-driven)
# search chose went back to fp32 by the prediction, none by measuring
for g in d["groups"]:
    assert all(l["impl"] != "int8" for l in g["layers"]), g
    assert g["predicted_drop_points"] == 0 and g["reverted_to_fp32"] == 0, g
    assert "accuracy" in g and "accuracy_fp32" in g, g      # and then measured
PY
if "$B/gearbox" tune "$MODEL" --impls gemm,int8 --dataset "$DS" --sensitivity "$T/other.json" --out "$T/x.plan" \
	>/dev/null 2>"$T/err"; then
	fail "tune used a sensitivity file of other model contents"
fi
grep -q "0123456789abcdef" "$T/err" || fail "tune: no reason: $(cat "$T/err")"
echo "accuracy predictor in gearbox pareto --plan and tune --sensitivity: ok"

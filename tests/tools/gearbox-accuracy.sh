#!/bin/sh
# SPDX-License-Identifier: MIT
# gearbox accuracy: the cached per-layer sensitivity of the bundled model
# (models/fmnist-alexnet-g4.sensitivity.json, made by
#   gearbox accuracy MODEL --dataset DIR --images 2000 --out FILE)
# predicts held-out mixed int8/fp32 plans measured on the same 2000 test
# images within a point; a sensitivity file of other model contents is
# refused. One held-out plan per g (all int8 and random mixes are in the
# report's longer run).
set -eu
B=${top_builddir:-.}
S=$(cd "${top_srcdir:-.}" && pwd)
EMU=${GEARBOX_EMULATOR:-}
DS=/usr/share/datasets/fashion-mnist
MODEL="$S/models/fmnist-alexnet-g4.safetensors"
SENS="$S/models/fmnist-alexnet-g4.sensitivity.json"
[ -f "$DS/t10k-images-idx3-ubyte.gz" ] || { echo "SKIP: no Fashion-MNIST (dataset-fashion-mnist)"; exit 77; }
T=$(mktemp -d /tmp/gearbox-acc-XXXXXX)
trap 'rm -rf "$T"' EXIT
export OPENBLAS_NUM_THREADS=1
fail() { echo "FAIL: $*" >&2; exit 1; }

$EMU "$B/gearbox" accuracy "$MODEL" --dataset "$DS" --sensitivity "$SENS" --images 2000 --validate 1 --seed 3 --json >"$T/v.json" ||
	fail "gearbox accuracy"
python3 - "$T/v.json" <<'PY' || fail "predictor: $(cat "$T/v.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert d["plans"] == 4 and len(d["held_out"]) == 4, d
assert d["sensitivity_images"] == 2000 and d["images"] == 2000
for p in d["held_out"]:
    assert p["layers"].count("8") >= 2, p           # mixed plans, not the fitted single-layer ones
    assert abs(p["predicted"] - p["measured"]) <= 0.01, p
assert d["max_error_points"] <= 1.0 and d["mean_error_points"] <= 0.5, d
PY
# another model's file is refused, naming both contents
sed 's/"fnv1a64":"[0-9a-f]*"/"fnv1a64":"0123456789abcdef"/; s/"fnv1a64": "[0-9a-f]*"/"fnv1a64": "0123456789abcdef"/' "$SENS" >"$T/other.json"
if $EMU "$B/gearbox" accuracy "$MODEL" --dataset "$DS" --sensitivity "$T/other.json" --validate 0 2>"$T/err"; then
	fail "a sensitivity file of other model contents was used"
fi
grep -q "measured for model contents 0123456789abcdef" "$T/err" || fail "no reason: $(cat "$T/err")"
echo "gearbox accuracy: ok"

#!/bin/sh
# SPDX-License-Identifier: MIT
# tools/train.py --quick end to end: trains all G stages on a small subset
# (checking after each stage that earlier widths did not move), exports, and
# the result loads in gearbox with the accuracies it recorded. Skipped (77)
# where PyTorch or the dataset is absent.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
PY=${TORCH_PYTHON:-/usr/bin/python3}
if ! "$PY" -c "import torch" 2>/dev/null; then
	echo "SKIP: no PyTorch at $PY (Debian package python3-torch)"
	exit 77
fi
[ -d /usr/share/datasets/fashion-mnist ] || { echo "SKIP: no dataset-fashion-mnist"; exit 77; }
T=$(mktemp -d /tmp/gearbox-train-XXXXXX)
trap 'rm -rf "$T"' EXIT

"$PY" "$S/tools/train.py" --quick --threads 2 --out "$T/quick.safetensors" --onnx-dir "$T/onnx" | tee "$T/log"
grep -q "checked: accuracy at g=1..3 unchanged after stage 4" "$T/log"
"$B/gearbox" model info "$T/quick.safetensors" --json >"$T/info.json"
for g in 1 2 3 4; do
	[ -s "$T/onnx/quick-g$g.onnx" ] || { echo "FAIL: no ONNX file for g=$g"; exit 1; }
done
# The engine reproduces, image for image, the accuracy PyTorch measured on
# the same 1000 test images (--quick evaluates on the first 1000).
"$B/gearbox" model eval "$T/quick.safetensors" --dataset /usr/share/datasets/fashion-mnist --limit 1000 --json >"$T/eval.json"
"$PY" - "$T/info.json" "$T/eval.json" <<'PYEOF'
import json, sys
info, ev = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
assert info["groups"] == 4 and info["input_shape"] == [1, 28, 28], info
recorded = [g["accuracy"] for g in info["per_group"]]
measured = [g["accuracy"] for g in ev["groups"]]
assert all(a is not None for a in recorded), recorded
assert all(abs(a - b) <= 0.002 for a, b in zip(recorded, measured)), (recorded, measured)
print("recorded", recorded, "measured", measured)
PYEOF

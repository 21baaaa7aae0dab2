#!/bin/sh
# SPDX-License-Identifier: MIT
# The bundled model in PyTorch (tools/gearbox_torch.py, which reads the file
# without gearbox's C code) and in gearbox, on the same Fashion-MNIST test
# images: logits agree to 1e-4 relative and top-1 agrees on every image, for
# every g. Skipped (77) where PyTorch or the dataset is absent.
# GEARBOX_NATIVE (a gearbox of another build, e.g. x86 beside a cross build
# under qemu-user) must give the same top-1 class on every image as well.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
# A cross build runs its programs under qemu-user (make check sets this).
EMU=${GEARBOX_EMULATOR:-}
PY=${TORCH_PYTHON:-/usr/bin/python3}
IMAGES=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
COUNT=${PARITY_IMAGES:-500}
if ! "$PY" -c "import torch" 2>/dev/null; then
	echo "SKIP: no PyTorch at $PY (Debian package python3-torch)"
	exit 77
fi
[ -f "$IMAGES" ] || { echo "SKIP: $IMAGES missing (Debian package dataset-fashion-mnist)"; exit 77; }
set -- "$S"/models/*.safetensors
# Under emulation every float operation is software (a few hundred ms per
# inference): the first bundled model there, every one natively.
[ -z "$EMU" ] || set -- "$1"
[ -f "$1" ] || { echo "SKIP: no bundled model in models/"; exit 77; }
T=$(mktemp -d /tmp/gearbox-parity-XXXXXX)
trap 'rm -rf "$T"' EXIT

for model in "$@"; do
	G=$($EMU "$B/gearbox" model info "$model" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['groups'])")
	for g in $(seq 1 "$G"); do
		$EMU "$B/gearbox" model run "$model" --idx "$IMAGES" --count "$COUNT" --groups "$g" --json >"$T/gearbox.jsonl"
		if [ -n "${GEARBOX_NATIVE:-}" ]; then
			"$GEARBOX_NATIVE" model run "$model" --idx "$IMAGES" --count "$COUNT" --groups "$g" --json >"$T/native.jsonl"
			"$PY" - "$T/gearbox.jsonl" "$T/native.jsonl" "$g" <<'PYEOF'
import json, sys
ours = [json.loads(l)["class"] for l in open(sys.argv[1])]
native = [json.loads(l)["class"] for l in open(sys.argv[2])]
assert len(ours) == len(native) > 0, (len(ours), len(native))
diff = [i for i, (a, b) in enumerate(zip(ours, native)) if a != b]
assert not diff, f"g={sys.argv[3]}: top-1 differs from the native build on images {diff[:10]}"
print(f"g={sys.argv[3]}: {len(ours)} images, top-1 identical to the native build")
PYEOF
		fi
		"$PY" "$S/tools/gearbox_torch.py" logits "$model" --idx "$IMAGES" --count "$COUNT" --groups "$g" >"$T/torch.jsonl"
		"$PY" - "$T/gearbox.jsonl" "$T/torch.jsonl" "$g" <<'PYEOF'
import json, math, sys
ours = [json.loads(l) for l in open(sys.argv[1])]
ref = [json.loads(l) for l in open(sys.argv[2])]
g = int(sys.argv[3])
assert len(ours) == len(ref) > 0, (len(ours), len(ref))
worst = 0.0
for i, (o, r) in enumerate(zip(ours, ref)):
    a = o["outputs"]
    err = math.sqrt(sum((x - y) ** 2 for x, y in zip(a, r))) / max(math.sqrt(sum(y * y for y in r)), 1e-12)
    worst = max(worst, err)
    assert err <= 1e-4, f"g={g} image {i}: relative error {err:.3g}"
    assert o["class"] == max(range(len(r)), key=r.__getitem__), f"g={g} image {i}: top-1 differs"
print(f"g={g}: {len(ours)} images, top-1 identical, worst relative error {worst:.2e}")
PYEOF
	done
done

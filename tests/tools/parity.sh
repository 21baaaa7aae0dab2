#!/bin/sh
# The bundled model in PyTorch (tools/gearbox_torch.py, which reads the file
# without gearbox's C code) and in gearbox, on the same Fashion-MNIST test
# images: logits agree to 1e-4 relative and top-1 agrees on every image, for
# every g. Skipped (77) where PyTorch or the dataset is absent.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
PY=${TORCH_PYTHON:-/usr/bin/python3}
IMAGES=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
COUNT=${PARITY_IMAGES:-500}
if ! "$PY" -c "import torch" 2>/dev/null; then
	echo "SKIP: no PyTorch at $PY (Debian package python3-torch)"
	exit 77
fi
[ -f "$IMAGES" ] || { echo "SKIP: $IMAGES missing (Debian package dataset-fashion-mnist)"; exit 77; }
set -- "$S"/models/*.safetensors
[ -f "$1" ] || { echo "SKIP: no bundled model in models/"; exit 77; }
T=$(mktemp -d /tmp/gearbox-parity-XXXXXX)
trap 'rm -rf "$T"' EXIT

for model in "$@"; do
	G=$("$B/gearbox" model info "$model" --json | "$PY" -c "import json,sys; print(json.load(sys.stdin)['groups'])")
	for g in $(seq 1 "$G"); do
		"$B/gearbox" model run "$model" --idx "$IMAGES" --count "$COUNT" --groups "$g" --json >"$T/gearbox.jsonl"
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

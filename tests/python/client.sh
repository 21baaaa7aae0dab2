#!/bin/sh
# SPDX-License-Identifier: MIT
# The Python client (python/gearbox) against the real daemon: starts gearboxd
# on a private socket, state and cache with the bundled model (or a
# synthetic one of its shape), then runs tests/python/test_client.py with
# Debian's /usr/bin/python3 (python3-numpy; python3-pil when installed).
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
PY=${GEARBOX_TEST_PYTHON:-/usr/bin/python3}
[ -x "$B/gearboxd" ] || { echo "SKIP: gearboxd not built (no libsystemd)"; exit 77; }
[ -x "$PY" ] || { echo "SKIP: no $PY"; exit 77; }
T=$(mktemp -d /tmp/gearbox-python-XXXXXX)
chmod 755 "$T"
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
mkdir -p "$T/state" "$T/cache"
MODEL=$S/models/fmnist-alexnet-g4.safetensors
[ -f "$MODEL" ] || { MODEL=$T/model.safetensors; "$B/tests/tools/mkmodel" --arch alexnet-fmnist "$MODEL"; }
IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
if [ ! -f "$IDX" ]; then # images of our own
	IDX=$T/images.idx
	"$PY" -c "
import struct, random; random.seed(1)
open('$IDX', 'wb').write(struct.pack('>IIII', 0x803, 200, 28, 28) + bytes(random.randrange(256) for _ in range(200 * 784)))"
fi
SOCK=$T/gearboxd.sock
# a policy that always runs all groups, so that classes compare across inputs
# and ways of sending (another g may classify an image otherwise)
mkdir -p "$T/policies"
printf '[policy]\ncontroller = fixed\ngroups = 4\n' >"$T/policies/all-groups.conf"
# (PM QoS to a plain file of ours, never the machine's)
printf '[daemon]\npolicies = %s/policies\npm_qos = cpu-dma-latency\npm_qos_device = %s/cpu_dma_latency\n' "$T" "$T" >"$T/gearboxd.conf"
"$B/gearboxd" --socket "$SOCK" --model "$MODEL" --config "$T/gearboxd.conf" -v >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 600); do
	[ -S "$SOCK" ] && "$B/gearboxctl" --socket "$SOCK" status >/dev/null 2>&1 && break
	kill -0 "$DPID" 2>/dev/null || { cat "$T/daemon.log"; echo "FAIL: gearboxd exited at start"; exit 1; }
	sleep 0.1
done
# anyone may connect (the daemon refuses what an unprivileged user may not do)
chmod 666 "$SOCK"
PYTHONPATH=$S/python${PYTHONPATH:+:$PYTHONPATH} PYTHONDONTWRITEBYTECODE=1 \
	"$PY" "$S/tests/python/test_client.py" "$SOCK" "$MODEL" "$IDX" "$S/proto/protocol.h" || {
	echo "--- daemon log"; tail -20 "$T/daemon.log"; exit 1; }
# the daemon survived all of it
"$B/gearboxctl" --socket "$SOCK" status >/dev/null || { echo "FAIL: gearboxd gone after the Python tests"; exit 1; }
echo "ok: gearboxd still serving"

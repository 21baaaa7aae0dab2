#!/bin/sh
# SPDX-License-Identifier: MIT
# OpenCL drivers that cannot take gearbox down, and an ICD that stays out of
# the daemon:
#   - a fake ICD (tests/governor/fake_icd.c, loaded by the real ICD loader
#     through OCL_ICD_VENDORS) aborts, hangs or exits while probed:
#     `gearbox platform` exits 0, lists the CPUs and says why OpenCL is
#     missing; gearboxd starts, serves, logs why, and maps no ICD;
#   - gearboxd with opencl = no maps no OpenCL, PoCL, LLVM or clang library,
#     and (in a build without sanitizers) stays within the model file + 16 MiB
#     resident (/proc/PID/smaps_rollup).
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
ICD=$B/tests/governor/.libs/fake_icd.so
[ -f "$ICD" ] || { echo "SKIP: gearbox built without OpenCL (no fake ICD)"; exit 77; }
T=$(mktemp -d /tmp/gearbox-opencl-XXXXXX)
chmod 755 "$T"
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -20 "$T/daemon.log"; } >&2
	exit 1
}
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
mkdir "$T/vendors"
echo "$(cd "$(dirname "$ICD")" && pwd)/fake_icd.so" >"$T/vendors/fake.icd"

# --- gearbox platform -----------------------------------------------------------
for mode in abort hang exit; do
	start=$(date +%s)
	OCL_ICD_VENDORS=$T/vendors FAKE_ICD_MODE=$mode GEARBOX_OPENCL_TIMEOUT=2 "$B/gearbox" platform >"$T/out" 2>"$T/err" ||
		fail "$mode: gearbox platform exited $? ($(cat "$T/err"))"
	took=$(($(date +%s) - start))
	grep -q "^  cluster0 " "$T/out" || fail "$mode: no clusters listed"
	case $mode in
	abort) want="none: the OpenCL driver aborted while probing (signal 6: Aborted); it printed: fake-icd: cannot find the GPU" ;;
	hang) want="none: the OpenCL driver did not finish probing within 2.0 s (killed); it printed: fake-icd: waiting for the GPU" ;;
	exit) want="none: the OpenCL driver exited while probing (status 3)" ;;
	esac
	grep -qF "$want" "$T/out" || fail "$mode: the reason is missing: $(grep -A1 '^OpenCL' "$T/out")"
	[ "$took" -lt 10 ] || fail "$mode: took $took s"
	OCL_ICD_VENDORS=$T/vendors FAKE_ICD_MODE=$mode GEARBOX_OPENCL_TIMEOUT=2 "$B/gearbox" platform --json >"$T/json" ||
		fail "$mode: --json exited $?"
	python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['opencl'] == [] and 'OpenCL driver' in d['opencl_error'], d['opencl_error']" "$T/json" ||
		fail "$mode: JSON"
	echo "ok: gearbox platform carries on when the OpenCL driver does '$mode'"
done

# --- gearboxd ----------------------------------------------------------------------
[ -x "$B/gearboxd" ] || { echo "gearboxd not built: daemon checks skipped"; exit 0; }
MODEL=$(ls "$S"/models/*.safetensors 2>/dev/null | head -n 1 || true)
[ -n "$MODEL" ] || { MODEL=$T/model.safetensors; "$B/tests/tools/mkmodel" --arch alexnet-fmnist "$MODEL"; }
SOCK=$T/gearboxd.sock
start_daemon() { # start_daemon CONFIG_TEXT [env...]
	# (PM QoS to a plain file of ours, never the machine's)
	printf '[daemon]\n%s\npm_qos = cpu-dma-latency\npm_qos_device = %s/cpu_dma_latency\n' "$1" "$T" >"$T/gearboxd.conf"
	shift
	rm -f "$SOCK"
	env "$@" "$B/gearboxd" --foreground --socket "$SOCK" --model "$MODEL" --config "$T/gearboxd.conf" -v \
		>"$T/daemon.log" 2>&1 &
	DPID=$!
	for i in $(seq 1 600); do
		[ -S "$SOCK" ] && "$B/gearboxctl" --socket "$SOCK" status >/dev/null 2>&1 && return 0
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
# The libraries of an OpenCL stack: the ICD loader, a driver, its compiler.
opencl_maps() { grep -E 'libOpenCL|fake_icd|pocl|LLVM|clang' "/proc/$DPID/maps" | awk '{ print $6 }' | sort -u; }

for mode in abort hang; do
	start_daemon "opencl = yes" OCL_ICD_VENDORS="$T/vendors" FAKE_ICD_MODE=$mode GEARBOX_OPENCL_TIMEOUT=2
	grep -q "opencl: no OpenCL placement, going on without OpenCL: the OpenCL driver" "$T/daemon.log" ||
		fail "gearboxd ($mode): the log does not say why there is no OpenCL"
	"$B/gearboxctl" --socket "$SOCK" --json status >/dev/null || fail "gearboxd ($mode): status"
	[ -z "$(opencl_maps)" ] || fail "gearboxd ($mode) maps $(opencl_maps)"
	stop_daemon
	echo "ok: gearboxd carries on when the OpenCL driver does '$mode', and says why"
done

start_daemon "opencl = no"
[ -z "$(opencl_maps)" ] || fail "gearboxd with opencl = no maps $(opencl_maps)"
rss=$(awk '/^Rss:/ { print $2 }' "/proc/$DPID/smaps_rollup")
model_kb=$(($(wc -c <"$MODEL") / 1024))
echo "gearboxd with opencl = no: Rss $rss kB for a $model_kb kB model"
if ldd "$B/gearboxd" 2>/dev/null | grep -q -E 'libasan|libubsan' || grep -q '__asan_init' "$B/gearboxd" 2>/dev/null; then
	echo "(sanitizer build: the resident-memory bound is not checked)"
else
	[ "$rss" -le $((model_kb + 16384)) ] || fail "gearboxd with opencl = no: Rss $rss kB > model $model_kb kB + 16 MiB"
fi
stop_daemon
echo "ok: gearboxd with opencl = no maps no OpenCL library"

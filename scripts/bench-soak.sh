#!/bin/sh
# Start a plain gearboxd on a private socket with the bundled model and run
# bench/soak.py against it (a long mixed load: figures, not a test).
#
#   B=build scripts/bench-soak.sh [--requests N] [--slice-s S]
#
# Socket, cache and state live in a fresh /tmp/gearbox-soak-* folder.
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
M=$(ls models/*.safetensors | head -n 1)
IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
[ -e "$IDX" ] || IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte
T=$(mktemp -d /tmp/gearbox-soak-XXXXXX)
D=''
cleanup() {
	[ -z "$D" ] || kill "$D" 2>/dev/null || true
	[ -z "$D" ] || wait "$D" 2>/dev/null || true
	rm -rf "$T"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP
export GEARBOX_CACHE_DIR="$T/cache" GEARBOX_STATE_DIR="$T/state" POCL_CACHE_DIR="$T/pocl" XDG_CACHE_HOME="$T/xdg-cache"
printf '[daemon]\nopencl = no\n' >"$T/gearboxd.conf"
"$B/gearboxd" --config "$T/gearboxd.conf" --socket "$T/s" --model "$M" 2>"$T/log" &
D=$!
for _ in $(seq 1 600); do
	[ -S "$T/s" ] && break
	kill -0 "$D" 2>/dev/null || break
	sleep 0.1
done
[ -S "$T/s" ] || { echo "bench-soak: gearboxd did not start:" >&2; cat "$T/log" >&2; exit 1; }
echo "bench-soak: gearboxd pid $D; $(nproc) CPUs; $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1)"
/usr/bin/python3 bench/soak.py "$T/s" "$IDX" "$D" "$@"

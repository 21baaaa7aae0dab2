#!/bin/sh
# SPDX-License-Identifier: MIT
# Start a plain gearboxd on a private socket with the bundled model and run
# bench/soak.py against it (a long mixed load: figures, not a test).
#
#   B=build scripts/bench-soak.sh [--requests N] [--slice-s S]
#
# Socket, cache and state live in a fresh /tmp/gearbox-soak-* folder.
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
M=models/fmnist-alexnet-g4.safetensors
IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
[ -e "$IDX" ] || IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte
. scripts/bench-lib.sh
bench_folder soak
printf '[daemon]\nopencl = no\n' >"$T/gearboxd.conf"
bench_start_daemon "$T/gearboxd.conf"
echo "bench-soak: gearboxd pid $D; $(nproc) CPUs; $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1)"
/usr/bin/python3 bench/soak.py "$T/s" "$IDX" "$D" "$@"

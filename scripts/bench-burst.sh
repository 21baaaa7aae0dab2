#!/bin/sh
# SPDX-License-Identifier: MIT
# Bursts after quiet spells: gearboxd on a private socket, then BURSTS bursts
# of 5 requests at 50/s with a 20 ms deadline, GAP seconds apart (long enough
# for the PM QoS request to be let go: pm_qos_release_s = 1, checked every
# 5 s). Prints each burst's queue_us (frame read to inference start) per
# request: the first one is what a client that wakes up pays. Builds
# nothing: B names the build folder (default build).
#
#   B=build scripts/bench-burst.sh [BURSTS [GAP]]
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
BURSTS=${1:-6} GAP=${2:-7}
M=models/fmnist-alexnet-g4.safetensors
IDX=/usr/share/datasets/fashion-mnist/t10k-images-idx3-ubyte.gz
. scripts/bench-lib.sh
bench_folder burst
printf '[daemon]\npm_qos_release_s = 1\n' >"$T/gearboxd.conf"
bench_start_daemon "$T/gearboxd.conf"
echo "# $(nproc) CPUs; $B; $BURSTS bursts of 5 requests at 50/s, $GAP s apart; queue_us of each request"
for _ in $(seq 1 "$BURSTS"); do
	sleep "$GAP"
	"$B/gearboxctl" --socket "$T/s" --json infer --idx "$IDX" --count 5 --rate 50 --deadline-us 20000 |
		python3 -c 'import json, sys; print(" ".join("%.0f" % json.loads(l)["queue_us"] for l in sys.stdin if "queue_us" in l))'
done
echo "# PM QoS taken $(grep -c 'PM QoS: CPU latency held' "$T/log") times, let go $(grep -c 'PM QoS released' "$T/log") times"

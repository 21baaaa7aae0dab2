#!/bin/sh
# SPDX-License-Identifier: MIT
# Start gearboxd on a private socket with the bundled model and run bench/daemon.
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}
T=$(mktemp -d /tmp/gearbox-bench-XXXXXX)
# its own calibration cache and state: never the user's ~/.cache or /run
export GEARBOX_CACHE_DIR="$T/cache" GEARBOX_STATE_DIR="$T/state" XDG_CACHE_HOME="$T/xdg-cache"
"$B/gearboxd" --socket "$T/s" --model models/fmnist-alexnet-g4.safetensors 2>"$T/log" &
D=$!
trap 'kill $D; wait $D 2>/dev/null; rm -rf "$T"' EXIT
for i in $(seq 1 100); do [ -S "$T/s" ] && break; sleep 0.1; done
"$B/bench/daemon" "$T/s" "$@"

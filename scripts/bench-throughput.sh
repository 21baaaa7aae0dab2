#!/bin/sh
# SPDX-License-Identifier: MIT
# Saturated throughput of the bundled model on one single-CPU placement
# against every CPU of the cluster at once: gearboxd is started with
# `split = all` (each CPU its own placement) and two pinned policies, and
# bench/throughput alternates between them. Builds nothing: B names the
# build folder (default build).
#
#   B=build scripts/bench-throughput.sh [--groups N] [bench/throughput options]
#
# --groups (default: the model's G, the longest inference) goes into both
# policies. Everything lives in a fresh /tmp/gearbox-throughput-* folder
# (socket, cache, state, policies), never in ~/.cache, /run or /etc.
# GEARBOXD_CONF_EXTRA adds lines to its gearboxd.conf, e.g.
# GEARBOXD_CONF_EXTRA="realtime = no\n".
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}

M=models/fmnist-alexnet-g4.safetensors
groups=$("$B/gearbox" model info --json "$M" | sed -n 's/.*"groups": *\([0-9]*\).*/\1/p' | head -n 1)
if [ "${1:-}" = --groups ]; then
	groups=${2:?--groups needs a value}
	shift 2
fi
. scripts/bench-lib.sh
bench_folder throughput

# The first CPU of the first cluster, and every CPU of it.
mkdir "$T/policies"
for which in one all; do
	if [ $which = one ]; then places=$("$B/gearbox" platform --json |
		sed -n 's/.*"name": *"\(cluster[0-9]*\)".*/\1/p' | head -n 1):cpu0; else places=cpu; fi
	cat >"$T/policies/$which.conf" <<POLICY
[policy]
controller = fixed
groups = $groups
max_threads = 1
placements = $places
dvfs = no
POLICY
done
printf '[daemon]\npolicies = %s\nsplit = all\n%b' "$T/policies" "${GEARBOXD_CONF_EXTRA:-}" >"$T/gearboxd.conf"

bench_start_daemon "$T/gearboxd.conf"
echo "bench-throughput: g=$groups, 1 thread per placement; $(nproc) CPUs; $(sed -n 's/^model name[^:]*: *//p' /proc/cpuinfo | head -n 1)"
${BENCH_WRAP:-} "$B/bench/throughput" "$T/s" --one one --all all "$@" || { echo "bench-throughput: gearboxd said:" >&2; tail -n 20 "$T/log" >&2; exit 1; }

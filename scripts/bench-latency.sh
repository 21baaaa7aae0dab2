#!/bin/sh
# SPDX-License-Identifier: MIT
# Start gearboxd on a private socket with the bundled model and a policy that
# pins g and threads, and run bench/latency against it (engine vs daemon vs a
# bare socket round trip, per request rate). Builds nothing: B names the
# build folder (default build).
#
#   B=build scripts/bench-latency.sh [--groups N] [--threads N] [--stress] [bench/latency options]
#
# --groups/--threads (default 1 and 1) go into the policy file and to the
# bench; --stress runs `stress-ng --cpu 0` next to it for the co-runner case.
# Everything lives in a fresh /tmp/gearbox-latency-* folder (socket, cache,
# state, policy), never in ~/.cache, /run or /etc. GEARBOXD_CONF_EXTRA adds
# lines to its gearboxd.conf, e.g. GEARBOXD_CONF_EXTRA="realtime = no\n".
set -eu
cd "$(dirname "$0")/.."
B=${B:-build}

groups=1 threads=1 stress=no
# Take our options out of "$@", keeping the rest (and --groups/--threads)
# for the bench, in order.
n=$#
while [ "$n" -gt 0 ]; do
	a=$1
	shift
	n=$((n - 1))
	case $a in
	--stress) stress=yes ;;
	--groups | --threads)
		if [ "$n" -eq 0 ]; then
			echo "bench-latency: $a needs a value" >&2
			exit 2
		fi
		v=$1
		shift
		n=$((n - 1))
		case $v in
		'' | *[!0-9]*)
			echo "bench-latency: $a '$v' is not a whole number" >&2
			exit 2
			;;
		esac
		if [ "$a" = --groups ]; then groups=$v; else threads=$v; fi
		set -- "$@" "$a" "$v"
		;;
	*) set -- "$@" "$a" ;;
	esac
done

M=models/fmnist-alexnet-g4.safetensors
. scripts/bench-lib.sh
bench_folder latency

# A fixed controller at g groups on at most `threads` threads of a CPU
# cluster, clocks left alone: the bench's engine can then run the very same
# operating point.
mkdir "$T/policies"
cat >"$T/policies/pinned.conf" <<EOF
[policy]
controller = fixed
groups = $groups
max_threads = $threads
placements = cpu
dvfs = no
EOF
# gearboxd reads its policy folder from the configuration file (which keeps
# it from reading /etc/gearbox/gearboxd.conf too). It reads every *.conf in
# that folder as a policy, so the configuration stays out of it.
printf '[daemon]\npolicies = %s\n%b' "$T/policies" "${GEARBOXD_CONF_EXTRA:-}" >"$T/gearboxd.conf"

bench_start_daemon "$T/gearboxd.conf"

if [ "$stress" = yes ]; then
	stress-ng --cpu 0 --timeout 600 >"$T/stress.log" 2>&1 &
	S=$!
	echo "bench-latency: stress-ng --cpu 0 running next to the bench (pid $S)" >&2
fi
"$B/bench/latency" "$T/s" "$M" --policy pinned "$@"

#!/bin/sh
# SPDX-License-Identifier: MIT
# A long fuzz campaign: each named harness in turn, for SECONDS each, growing
# a working corpus in OUT/corpus/NAME from the committed seeds. A crash is
# kept as OUT/crash-NAME-* and the harness starts again (from the grown
# corpus) until its time is up. OUT/summary.tsv gets one line per harness:
# name, seconds, executions, crashes.
#   tests/fuzz/campaign.sh BUILD_DIR OUT SECONDS NAME...
# With CAMPAIGN_RUNS=N in the environment a harness also stops once it has
# run N executions (a target such as 10000000), whichever comes first.
# CAMPAIGN_TIMEOUT=S sets libFuzzer's per-input timeout (default 20 s). It is
# wall-clock time: raise it when the campaign may be paused (SIGSTOP while the
# machine is needed for measuring), or every pause is reported as a timeout.
# Run it under nice on a shared machine; two in parallel use two cores.
set -u
build=$(cd "$1" && pwd) out=$2 seconds=$3
shift 3
src=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out"
out=$(cd "$out" && pwd)
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}"
for name in "$@"; do
	bin=$build/tests/fuzz/fuzz-$name
	[ -x "$bin" ] || { echo "campaign: $bin is not built (make fuzz)" >&2; exit 1; }
	mkdir -p "$out/corpus/$name"
	case $name in model|infer) max_len=32768 ;; frame) max_len=8192 ;; *) max_len=4096 ;; esac
	dict=""
	[ -f "$src/tests/fuzz/dict/$name.dict" ] && dict="-dict=$src/tests/fuzz/dict/$name.dict"
	start=$(date +%s) execs=0 crashes=0 round=0 target=${CAMPAIGN_RUNS:-0}
	while left=$((start + seconds - $(date +%s))); [ "$left" -gt 5 ]; do
		runs=""
		if [ "$target" -gt 0 ]; then
			[ "$execs" -lt "$target" ] || break
			runs="-runs=$((target - execs))"
		fi
		round=$((round + 1))
		log=$out/$name.$round.log
		# shellcheck disable=SC2086
		"$bin" -max_total_time="$left" $runs -max_len="$max_len" -timeout="${CAMPAIGN_TIMEOUT:-20}" -rss_limit_mb=2048 -print_final_stats=1 \
			-artifact_prefix="$out/crash-$name-" $dict "$out/corpus/$name" "$src/tests/fuzz/corpus/$name" >"$log" 2>&1
		status=$?
		n=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
		if [ -z "$n" ]; then
			# a crash ends the run before the final stats: take the last status line
			n=$(grep -oE '^#[0-9]+' "$log" | tail -n 1 | tr -d '#')
		fi
		execs=$((execs + ${n:-0}))
		if [ "$status" != 0 ]; then
			crashes=$((crashes + 1))
			echo "campaign: $name round $round exited $status (log $log)" >&2
		fi
	done
	printf '%s\t%s\t%s\t%s\n' "$name" "$(($(date +%s) - start))" "$execs" "$crashes" | tee -a "$out/summary.tsv"
done

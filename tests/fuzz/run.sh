#!/bin/sh
# SPDX-License-Identifier: MIT
# One fuzz harness as a test: replay its committed corpus (tests/fuzz/corpus/NAME,
# every entry) and go on mutating it, with a fixed seed, up to RUNS executions in
# all. A crash, a sanitizer report, a failed harness assertion, a leak, a
# timeout or an out-of-memory fails the test; the input is kept as
# tests/fuzz/crash-NAME-* in the build folder.
#   run.sh NAME RUNS
set -u
name=$1 runs=$2
srcdir=${top_srcdir:-$(cd "$(dirname "$0")/../.." && pwd)}
builddir=${top_builddir:-.}
bin=$builddir/tests/fuzz/fuzz-$name
corpus=$srcdir/tests/fuzz/corpus/$name
if [ ! -x "$bin" ]; then
	echo "SKIP: $bin is not built (make fuzz)"
	exit 77
fi
entries=$(find "$corpus" -type f | wc -l)
[ "$entries" -gt 0 ] || { echo "FAIL: no corpus in $corpus"; exit 1; }
[ "$runs" -gt "$entries" ] || runs=$((entries + runs))
work=$(mktemp -d "${TMPDIR:-/tmp}/gearbox-fuzz-$name.XXXXXX") || exit 99
trap 'rm -rf "$work"' EXIT
dict=""
[ -f "$srcdir/tests/fuzz/dict/$name.dict" ] && dict="-dict=$srcdir/tests/fuzz/dict/$name.dict"
# LeakSanitizer needs ptrace, which sandboxes forbid: leaks are looked for
# only where it works (ASAN_OPTIONS from the environment win).
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0}:abort_on_error=0"
echo "fuzz-$name: $entries corpus entries, $runs executions"
# shellcheck disable=SC2086
"$bin" -seed=1 -runs="$runs" -max_len=65536 -timeout=20 -rss_limit_mb=2048 -print_final_stats=1 \
	-artifact_prefix="$builddir/tests/fuzz/crash-$name-" $dict "$work" "$corpus" >"$work/log" 2>&1
status=$?
grep -E '^(INFO: seed corpus|#[0-9]+ +(INITED|DONE))|stat::number_of_executed_units|Done [0-9]+ runs' "$work/log"
if [ "$status" != 0 ]; then
	cat "$work/log"
	echo "FAIL: fuzz-$name exited with $status; the input is under $builddir/tests/fuzz/crash-$name-*"
	exit 1
fi
executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log")
if [ "${executed:-0}" -lt "$entries" ]; then
	echo "FAIL: fuzz-$name ran ${executed:-0} inputs, fewer than its $entries corpus entries"
	exit 1
fi
echo "ok: fuzz-$name: ${executed} executions, no crash"

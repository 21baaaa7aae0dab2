#!/bin/sh
# Set everything up and run the whole test suite:
#   - installs missing Debian packages (as root) and builds in build/ with
#     warnings as errors and AddressSanitizer + UndefinedBehaviorSanitizer;
#   - runs `make check`, prints the logs of any failing test, and ends with
#     automake's totals as one line: "N passed, N failed, N skipped".
# Set GEARBOX_DISTCHECK=1 to also run `make distcheck`.
set -u
cd "$(dirname "$0")/.."
scripts/setup.sh --enable-werror --enable-sanitizers || exit 1
cd build

# ASan's leak checker cannot run under ptrace-restricted sandboxes; leaks are
# checked by valgrind in the integration tests instead.
export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}"
make -j"$(nproc)" check >check.out 2>&1
status=$?

if [ -f test-suite.log ]; then
	for log in $(find tests -name '*.log' ! -name test-suite.log); do
		trs="${log%.log}.trs"
		if [ -f "$trs" ] && grep -q -E '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
			echo "===== FAILED: ${log%.log} ====="
			cat "$log"
		fi
	done
fi
if [ "$status" = 0 ] && [ "${GEARBOX_DISTCHECK:-0}" = 1 ]; then
	make -j"$(nproc)" distcheck >distcheck.out 2>&1 || { tail -50 distcheck.out; status=1; }
fi

count() { sed -n "s/^# $1: *\([0-9]*\)\$/\1/p" check.out | tail -n 1; }
pass=$(count PASS)
failed=$(count FAIL)
errors=$(count ERROR)
xpass=$(count XPASS)
fail=$((${failed:-0} + ${errors:-0} + ${xpass:-0}))
skip=$(count SKIP)
if [ -z "$pass" ]; then
	echo "make check did not run the test suite:"
	tail -40 check.out
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
echo "${pass} passed, ${fail} failed, ${skip:-0} skipped"
exit "$status"

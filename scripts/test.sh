#!/bin/sh
# SPDX-License-Identifier: MIT
# Set everything up and run the whole test suite:
#   - installs missing Debian packages (as root) and builds in build/ with
#     warnings as errors and AddressSanitizer + UndefinedBehaviorSanitizer;
#   - runs `make check`, prints the logs of any failing test, and ends with
#     automake's totals as one line: "N passed, N failed, N skipped".
#   - runs the daemon's integration test again from a plain build under valgrind;
#   - cross-builds for arm64 and armhf (scripts/cross.sh: Debian multiarch, the
#     cross compilers, NEON kernels) and runs their unit tests and daemon-less
#     command-line tests under qemu-user, comparing the bundled model's top-1
#     with the native build; the totals line counts native and cross tests.
# Set GEARBOX_DISTCHECK=1 to also run `make distcheck`; GEARBOX_CROSS="arm64"
# (or "") to run fewer cross suites.
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
# valgrind cannot run sanitized binaries: the daemon's integration test runs
# once more from a plain build, under valgrind (no errors, no leaks).
vg_pass=0 vg_fail=0
if command -v valgrind >/dev/null; then
	(cd .. && BUILD_DIR=build-valgrind scripts/setup.sh --enable-werror >/dev/null) &&
		make -C ../build-valgrind check TESTS=tests/daemon/gearboxd.sh >../build-valgrind/check.out 2>&1
	if grep -q "^ok: valgrind: no errors, no leaks" ../build-valgrind/tests/daemon/gearboxd.sh.log 2>/dev/null; then
		vg_pass=1
	else
		vg_fail=1
		status=1
		echo "===== FAILED: tests/daemon/gearboxd.sh under valgrind ====="
		cat ../build-valgrind/tests/daemon/gearboxd.sh.log 2>/dev/null || tail -40 ../build-valgrind/check.out
	fi
fi
if [ "$status" = 0 ] && [ "${GEARBOX_DISTCHECK:-0}" = 1 ]; then
	make -j"$(nproc)" distcheck >distcheck.out 2>&1 || { tail -50 distcheck.out; status=1; }
fi

# Cross suites: each prints its own totals line last.
x_pass=0 x_fail=0 x_skip=0
native=$PWD/../build-valgrind/gearbox
[ -x "$native" ] || native=$PWD/gearbox
for arch in ${GEARBOX_CROSS-arm64 armhf}; do
	start=$(date +%s)
	mkdir -p "../build-$arch"
	(cd .. && GEARBOX_NATIVE="$native" scripts/cross.sh "$arch") >"../build-$arch/cross.out" 2>&1
	rc=$?
	totals=$(tail -n 1 "../build-$arch/cross.out")
	p=$(echo "$totals" | sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed, \([0-9]*\) skipped$/\1 \2 \3/p')
	if [ -z "$p" ]; then
		p="0 1 0"
	fi
	set -- $p
	[ "$rc" = 0 ] && [ "$2" = 0 ] || { status=1; cat "../build-$arch/cross.out"; }
	[ "$rc" = 0 ] || [ "$2" != 0 ] || set -- "$1" 1 "$3"
	x_pass=$((x_pass + $1)) x_fail=$((x_fail + $2)) x_skip=$((x_skip + $3))
	echo "cross $arch: $1 passed, $2 failed, $3 skipped under qemu-user ($(($(date +%s) - start)) s, build included)"
done

count() { sed -n "s/^# $1: *\([0-9]*\)\$/\1/p" check.out | tail -n 1; }
pass=$(count PASS)
failed=$(count FAIL)
errors=$(count ERROR)
xpass=$(count XPASS)
fail=$((${failed:-0} + ${errors:-0} + ${xpass:-0} + vg_fail))
native_pass=$((${pass:-0} + vg_pass))
pass=$((native_pass + x_pass))
fail=$((fail + x_fail))
skip=$(count SKIP)
skip=$((${skip:-0} + x_skip))
if [ "$native_pass" = "$vg_pass" ]; then
	echo "make check did not run the test suite:"
	tail -40 check.out
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
echo "${pass} passed, ${fail} failed, ${skip:-0} skipped"
exit "$status"

# SPDX-License-Identifier: MIT
# Sourced by the scripts/bench-*.sh: a private folder for one benchmark run
# (socket, cache, state, policies: never ~/.cache, /run or /etc), gearboxd
# started in it, and both taken away on exit.
#
#   . scripts/bench-lib.sh
#   bench_folder NAME              # T=/tmp/gearbox-NAME-XXXXXX; environment set
#   bench_start_daemon CONFIG      # D=pid of gearboxd serving $M on $T/s
#
# B names the build folder and M the model (set before calling).

D='' S=''
bench_cleanup() {
	[ -z "$S" ] || kill "$S" 2>/dev/null || true
	[ -z "$D" ] || kill "$D" 2>/dev/null || true
	[ -z "$S" ] || wait "$S" 2>/dev/null || true
	[ -z "$D" ] || wait "$D" 2>/dev/null || true
	[ -z "${T:-}" ] || rm -rf "$T"
}
trap bench_cleanup EXIT
trap 'exit 130' INT TERM HUP

bench_folder() {
	T=$(mktemp -d "/tmp/gearbox-$1-XXXXXX")
	# the shipped policies come from the tree; caches and saved state go to $T
	# (PoCL, which both gearboxd and the benches enumerate, keeps its own)
	export GEARBOX_POLICY_DIR="$PWD/policies" GEARBOX_CACHE_DIR="$T/cache" GEARBOX_STATE_DIR="$T/state"
	export POCL_CACHE_DIR="$T/pocl" XDG_CACHE_HOME="$T/xdg-cache" OPENBLAS_NUM_THREADS=1
}

bench_start_daemon() {
	"$B/gearboxd" --config "$1" --socket "$T/s" --model "$M" 2>"$T/log" &
	D=$!
	for _ in $(seq 1 600); do
		[ -S "$T/s" ] && return 0
		kill -0 "$D" 2>/dev/null || break
		sleep 0.1
	done
	echo "$(basename "$0"): gearboxd did not start:" >&2
	cat "$T/log" >&2
	exit 1
}

#!/bin/sh
# SPDX-License-Identifier: MIT
# The bash completion (completion/gearbox.bash.in) loads in a plain bash and
# completes what a user types: subcommands, options (from each command's
# --help), option words, model files, policy names, and the names of the
# models a running daemon hosts.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
command -v bash >/dev/null || { echo "SKIP: no bash"; exit 77; }
C="$B/completion/gearbox"
[ -f "$C" ] || { echo "FAIL: $C not built" >&2; exit 1; }
T=$(mktemp -d /tmp/gearbox-completion-XXXXXX)
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }
export GEARBOX_POLICY_DIR="${GEARBOX_POLICY_DIR:-$S/policies}"
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg"
"$B/tests/tools/mkmodel" --arch tiny "$T/tiny.safetensors"
: >"$T/notes.txt"

# complete PROGRAM WORD... : what COMPREPLY holds for the last word, one per line
complete_words() {
	bash --norc --noprofile -c '
		. "$1" || exit 3
		shift
		complete -p gearbox >/dev/null && complete -p gearboxctl >/dev/null || exit 4
		COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMPREPLY=()
		prog=${1##*/}
		"_$prog" || exit 5
		printf "%s\n" "${COMPREPLY[@]}"' complete "$C" "$@"
}
has() { # has WORD (stdin: the completions)
	grep -qx -- "$1"
}

complete_words "$B/gearboxctl" st | has status || fail "gearboxctl st -> status"
out=$(complete_words "$B/gearboxctl" "")
for w in status models infer budget watch platform reload pareto calibrate; do
	printf '%s\n' "$out" | has "$w" || fail "gearboxctl: no $w in: $out"
done
complete_words "$B/gearbox" mo | has model || fail "gearbox mo -> model"
complete_words "$B/gearbox" model b | has bench || fail "gearbox model b -> bench"
complete_words "$B/gearbox" platform re | has restore || fail "gearbox platform re -> restore"
complete_words "$B/gearbox" model info "$T/ti" | has "$T/tiny.safetensors" || fail "model info: the model file"
if complete_words "$B/gearbox" model info "$T/no" | has "$T/notes.txt"; then fail "model info offers a .txt"; fi
complete_words "$B/gearbox" model bench "$T/tiny.safetensors" --kernels b | has blas || fail "--kernels b -> blas"
complete_words "$B/gearbox" pareto --va | has --validate || fail "pareto --va -> --validate (from --help)"
complete_words "$B/gearboxctl" infer --deadline | has --deadline-us || fail "infer --deadline -> --deadline-us"
complete_words "$B/gearboxctl" infer --idx "$T/no" | has "$T/notes.txt" || fail "--idx: any file"
complete_words "$B/gearboxctl" infer --policy re | has realtime || fail "--policy re -> realtime"

# model names from a running daemon on the --socket given
if [ ! -x "$B/gearboxd" ]; then
	echo "ok: bash completion (no gearboxd built: model names from a daemon not checked)"
	exit 0
fi
# (PM QoS to a plain file of ours, never the machine's)
printf '[daemon]\npm_qos = cpu-dma-latency\npm_qos_device = %s/cpu_dma_latency\n' "$T" >"$T/gb.conf"
"$B/gearboxd" --socket "$T/gb.sock" --model "$T/tiny.safetensors" --config "$T/gb.conf" >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 300); do
	[ -S "$T/gb.sock" ] && "$B/gearboxctl" --socket "$T/gb.sock" status >/dev/null 2>&1 && break
	kill -0 "$DPID" 2>/dev/null || { cat "$T/daemon.log" >&2; fail "gearboxd exited at start"; }
	sleep 0.1
done
out=$(complete_words "$B/gearboxctl" --socket "$T/gb.sock" infer --model "")
[ "$out" = tiny ] || fail "--model from the daemon: '$out'"
complete_words "$B/gearboxctl" --socket "$T/gb.sock" pareto --model t | has tiny || fail "pareto --model t -> tiny"
# no daemon there: nothing, quickly, no error
out=$(complete_words "$B/gearboxctl" --socket "$T/none.sock" infer --model "")
[ -z "$out" ] || fail "--model without a daemon: '$out'"
echo "ok: bash completion of gearbox and gearboxctl"

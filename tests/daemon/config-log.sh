#!/bin/sh
# SPDX-License-Identifier: MIT
# gearboxd's configuration files and log output as an administrator meets them:
#   - --cat-config lists the main file and the drop-ins of the administrator's
#     and the vendor's folders in the order they apply (gearboxd(8)), and the
#     daemon started with them runs with the winning values;
#   - with stderr a plain file and JOURNAL_STREAM unset (or naming another
#     stream), the log is plain text: no "<N>" priority prefixes.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
[ -x "$B/gearboxd" ] || { echo "SKIP: gearboxd not built"; exit 77; }
T=$(mktemp -d /tmp/gearboxd-config-XXXXXX)
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
export GEARBOX_CONFIG_DIR="$T/etc" GEARBOX_VENDOR_CONFIG_DIR="$T/vendor"
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -30 "$T/daemon.log"; } >&2
	exit 1
}
"$B/tests/tools/mkmodel" --arch tiny "$T/tiny.safetensors"
mkdir -p "$T/etc/gearboxd.conf.d" "$T/vendor/gearboxd.conf.d"

# the packaged vendor file parses (every key commented out)
"$B/gearboxd" --config "$B/daemon/gearboxd.conf" --cat-config | grep -q '^\[daemon\]' || fail "vendor file not printed"

cat >"$T/vendor/gearboxd.conf" <<CONF
[daemon]
model = $T/missing.safetensors
policy = powersave
CONF
# (PM QoS to a plain file of ours, never the machine's: this may run as root)
cat >"$T/vendor/gearboxd.conf.d/10-board.conf" <<CONF
[daemon]
policy = realtime
pm_qos = cpu-dma-latency
pm_qos_device = $T/cpu_dma_latency
CONF
cat >"$T/etc/gearboxd.conf.d/20-local.conf" <<CONF
[daemon]
model =
model = $T/tiny.safetensors
CONF
cat >"$T/vendor/gearboxd.conf.d/30-late.conf" <<CONF
[daemon]
socket = $T/vendor.sock
CONF
# the administrator's 30-late.conf masks the vendor's
cat >"$T/etc/gearboxd.conf.d/30-late.conf" <<CONF
[daemon]
socket = $T/gb.sock
CONF
"$B/gearboxd" --cat-config >"$T/cat"
grep '^# ' "$T/cat" | sed "s|$T/||" >"$T/order"
printf '%s\n' "# vendor/gearboxd.conf" "# vendor/gearboxd.conf.d/10-board.conf" "# etc/gearboxd.conf.d/20-local.conf" \
	"# etc/gearboxd.conf.d/30-late.conf" >"$T/want"
cmp -s "$T/order" "$T/want" || fail "--cat-config order: $(cat "$T/order")"
grep -q "^socket = $T/gb.sock" "$T/cat" || fail "--cat-config content"

# Started with no options, from those files: the socket of etc's 30-late.conf,
# the model of 20-local.conf (after its empty "model ="), the realtime policy.
unset JOURNAL_STREAM INVOCATION_ID || true
"$B/gearboxd" >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 600); do
	[ -S "$T/gb.sock" ] && grep -q "ready:" "$T/daemon.log" && break
	kill -0 "$DPID" 2>/dev/null || fail "gearboxd exited at start"
	sleep 0.1
done
[ -S "$T/gb.sock" ] || fail "gearboxd did not listen on the drop-in's socket"
"$B/gearboxctl" --socket "$T/gb.sock" status --json >"$T/status.json" || fail "status"
python3 - "$T/status.json" <<'PY' || fail "status: $(cat "$T/status.json")"
import json, sys
d = json.load(open(sys.argv[1]))
assert [m["name"] for m in d["models"]] == ["tiny"], d["models"]
assert d["default_policy"] == "realtime", d["default_policy"]
PY
grep -q "configuration: $T/vendor/gearboxd.conf, .*20-local.conf and .*etc/gearboxd.conf.d/30-late.conf" "$T/daemon.log" ||
	fail "the files read are not logged"
# plain text in a file: "gearboxd: ..." lines, no "<N>" prefixes
grep -q '^gearboxd: ready: 1 model' "$T/daemon.log" || fail "no plain ready line"
if grep -q '^<[0-7]>' "$T/daemon.log"; then fail "priority prefixes in a plain file"; fi
kill -HUP "$DPID"
for i in $(seq 1 100); do grep -q "reloaded " "$T/daemon.log" && break; sleep 0.1; done
grep -q "^gearboxd: reloaded $T/vendor/gearboxd.conf, " "$T/daemon.log" || fail "reload of the drop-ins not logged"
kill -TERM "$DPID"
wait "$DPID" || fail "gearboxd exited with $? on SIGTERM"
DPID=""

# JOURNAL_STREAM naming another stream (a parent's, inherited): still plain text
JOURNAL_STREAM=1:1 "$B/gearboxd" --model "$T/missing.safetensors" --socket "$T/x.sock" >"$T/daemon.log" 2>&1 && fail "a missing model started"
[ -s "$T/daemon.log" ] || fail "nothing logged for a missing model"
if grep -q '^<[0-7]>' "$T/daemon.log"; then fail "priority prefixes with a stale JOURNAL_STREAM"; fi
grep -q '^gearboxd: ' "$T/daemon.log" || fail "no plain text for a stale JOURNAL_STREAM: $(cat "$T/daemon.log")"
echo "ok: drop-in precedence, --cat-config, plain-text log"

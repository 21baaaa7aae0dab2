#!/bin/sh
# SPDX-License-Identifier: MIT
# gearbox platform against generated testbeds under umockdev (no root needed):
#   - discovery matches tests/platforms/NAME.expected.json for every platform
#     (GEARBOX_UPDATE_EXPECTED=1 rewrites them, as hwloc's tests do);
#   - set-freq / set-gpu-freq write the right files, and restore puts them back;
#   - a read-only attribute gives a clear error and changes nothing;
#   - a process killed with SIGKILL after a change is restored at the next start;
#   - real captures (tests/platforms/captures/) match their expected output,
#     with the OpenCL probe running; old cpufreq layout and boost set-freq.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
# A cross build runs its programs under qemu-user (make check sets this).
EMU=${GEARBOX_EMULATOR:-}
if [ -n "$EMU" ]; then
	# An Arm gearbox under qemu-user needs umockdev's Arm preload library
	# (scripts/cross.sh unpacks it), given to the Arm program alone.
	PRELOAD=${UMOCKDEV_PRELOAD:-}
	[ -f "$PRELOAD" ] || { echo "SKIP: no umockdev preload library for this architecture (UMOCKDEV_PRELOAD)"; exit 77; }
	PRELOAD_ENV="QEMU_SET_ENV=LD_PRELOAD=$PRELOAD"
else
	PRELOAD=$(ls /usr/lib/*/libumockdev-preload.so.0 /usr/lib/libumockdev-preload.so.0 2>/dev/null | head -n 1 || true)
	[ -n "$PRELOAD" ] || { echo "SKIP: umockdev is not installed (Debian packages umockdev, libumockdev-dev)"; exit 77; }
	PRELOAD_ENV="LD_PRELOAD=$PRELOAD"
fi
command -v python3 >/dev/null || { echo "SKIP: no python3 to generate testbeds"; exit 77; }
# A 32-bit program under qemu-user on a 64-bit host lists directories with the
# host's 64-bit getdents offsets, and ext4's hash cookies do not fit a 32-bit
# readdir (hwloc then sees no CPUs: EOVERFLOW); tmpfs numbers its entries
# 1, 2, 3..., so the testbeds go there under an emulator.
tmp=/tmp
if [ -n "$EMU" ] && [ -d /dev/shm ] && [ -w /dev/shm ]; then
	tmp=/dev/shm
fi
T=$(mktemp -d "$tmp/gearbox-platform-XXXXXX")
chmod 755 "$T"
trap 'rm -rf "$T"' EXIT
# umockdev's preload goes before the sanitizer runtime: tell ASan that is fine.
export ASAN_OPTIONS="${ASAN_OPTIONS:-}:verify_asan_link_order=0"
fail() { echo "FAIL: $*" >&2; exit 1; }

# run TESTBED gearbox-args...: gearbox with /sys redirected to the testbed.
run() {
	tb=$1
	shift
	env "$PRELOAD_ENV" UMOCKDEV_DIR="$tb" HWLOC_FSROOT="$tb" HWLOC_COMPONENTS=linux,stop $EMU "$B/gearbox" platform --state-dir "$tb.state" "$@"
}
token() { awk '{ print $1; exit }' "$1"; }
newbed() {
	rm -rf "$T/$1" "$T/$1.state"
	python3 "$S/tests/platforms/mktestbed.py" "$S/tests/platforms/$1.platform" "$T/$1"
}

# --- discovery against the expected output ----------------------------------
for desc in "$S"/tests/platforms/*.platform; do
	name=$(basename "$desc" .platform)
	newbed "$name"
	run "$T/$name" --json >"$T/$name.json"
	python3 - "$T/$name.json" "$S/tests/platforms/$name.expected.json" "${GEARBOX_UPDATE_EXPECTED:-0}" <<'PYEOF'
import json, sys
got = json.load(open(sys.argv[1]))
# OpenCL devices depend on the ICDs installed here, not on the testbed.
for key in ("opencl", "opencl_error"):
    got.pop(key)
for g in got["gpus"]:
    g.pop("opencl_device")
if sys.argv[3] == "1":
    json.dump(got, open(sys.argv[2], "w"), indent=1, sort_keys=True)
    open(sys.argv[2], "a").write("\n")
    print("updated", sys.argv[2])
    sys.exit(0)
want = json.load(open(sys.argv[2]))
# Power models are computed, not read: the last digit of a double may differ
# between architectures (AArch64 fuses multiply-adds), so 12 digits count.
def digits(v):
    if isinstance(v, float):
        return float(f"{v:.12g}")
    if isinstance(v, dict):
        return {k: digits(x) for k, x in v.items()}
    if isinstance(v, list):
        return [digits(x) for x in v]
    return v
got, want = digits(got), digits(want)
# Sources are listed in directory order, which is the filesystem's (ext4 hashes
# names, tmpfs lists the newest first): compare them by name.
for d in (got, want):
    d["energy_sources"] = sorted(d["energy_sources"], key=lambda e: e["name"])
if got != want:
    import difflib
    a = json.dumps(want, indent=1, sort_keys=True).splitlines()
    b = json.dumps(got, indent=1, sort_keys=True).splitlines()
    print("\n".join(difflib.unified_diff(a, b, "expected", "got", lineterm="")))
    sys.exit(f"{sys.argv[1]}: differs from {sys.argv[2]}")
PYEOF
	echo "ok: $name discovery"
done

# --- real captures from hwloc's and util-linux's test suites --------------------
# tests/platforms/captures/README.md says where each comes from. OpenCL is not
# turned off: the probe runs (PoCL aborts on most of these trees) and gearbox
# must carry on. Each tree matches NAME.expected.json (GEARBOX_UPDATE_EXPECTED=1
# rewrites them).
CAPS=$S/tests/platforms/captures
mkdir -p "$T/cap"
compare() { # compare GOT.json EXPECTED.json
	python3 - "$1" "$2" "${GEARBOX_UPDATE_EXPECTED:-0}" <<'PYEOF'
import json, sys
got = json.load(open(sys.argv[1]))
for key in ("opencl", "opencl_error"):
    got.pop(key)
for g in got["gpus"]:
    g.pop("opencl_device")
if sys.argv[3] == "1":
    json.dump(got, open(sys.argv[2], "w"), indent=1, sort_keys=True)
    open(sys.argv[2], "a").write("\n")
    print("updated", sys.argv[2])
    sys.exit(0)
want = json.load(open(sys.argv[2]))
# Power models are computed: the last digit of a double may differ between
# architectures (AArch64 fuses multiply-adds), so 12 digits count; sources are
# in directory order, which is the filesystem's: compare them by name.
def digits(v):
    if isinstance(v, float):
        return float(f"{v:.12g}")
    if isinstance(v, dict):
        return {k: digits(x) for k, x in v.items()}
    if isinstance(v, list):
        return [digits(x) for x in v]
    return v
got, want = digits(got), digits(want)
for d in (got, want):
    d["energy_sources"] = sorted(d.get("energy_sources", []), key=lambda e: e["name"])
if got != want:
    import difflib
    a = json.dumps(want, indent=1, sort_keys=True).splitlines()
    b = json.dumps(got, indent=1, sort_keys=True).splitlines()
    print("\n".join(difflib.unified_diff(a, b, "expected", "got", lineterm="")))
    sys.exit(f"{sys.argv[1]}: differs from {sys.argv[2]}")
PYEOF
}
ncap=0
for cap in "$CAPS"/*.tar.gz; do
	name=$(basename "$cap" .tar.gz)
	tar xzf "$cap" -C "$T/cap"
	run "$T/cap/$name" --json >"$T/cap/$name.json" 2>"$T/cap/$name.err" ||
		fail "$name: gearbox platform exited $? ($(tail -n 2 "$T/cap/$name.err"))"
	compare "$T/cap/$name.json" "$CAPS/$name.expected.json"
	ncap=$((ncap + 1))
done
[ "$ncap" -ge 20 ] || fail "only $ncap captures found in $CAPS"
echo "ok: $ncap real captures match their expected output"

# The phone capture without its cpuN/topology folders (hwloc reads nothing):
# the same clusters, from cpu/online and the cpufreq policies.
phone=$T/cap/lscpu-arm-A510-A710-A715-X3
cp -a "$phone" "$T/cap/notopo"
rm -rf "$T/cap/notopo"/sys/devices/system/cpu/cpu*/topology
run "$T/cap/notopo" --json >"$T/cap/notopo.json" 2>/dev/null || fail "no topology: exit $?"
python3 - "$T/cap/notopo.json" "$phone.json" <<'PYEOF' || fail "no topology: other clusters"
import json, sys
a, b = (json.load(open(f))["clusters"] for f in sys.argv[1:])
assert [(c["cpus"], c["cpufreq"]["policies"]) for c in a] == [("0-2", [0]), ("3-6", [3]), ("7", [7])], a
assert a == b, "clusters differ from the capture with its topology"
PYEOF
echo "ok: no cpuN/topology: clusters from cpu/online and cpufreq"

# A missing file is unknown, not 0.
rm "$phone/sys/devices/system/cpu/cpufreq/policy7/scaling_max_freq"
run "$phone" | grep -q "now 864 MHz, limits 864 MHz-unknown" || fail "missing scaling_max_freq: $(run "$phone" | grep limits)"
run "$phone" --json | python3 -c "import json,sys; f=json.load(sys.stdin)['clusters'][2]['cpufreq']; assert f['max_khz'] is None and f['min_khz'] == 864000, f" ||
	fail "missing scaling_max_freq in JSON"
echo "ok: a missing value is unknown"

# Old cpufreq layout (cpuN/cpufreq, no policyN): set-freq and restore.
tb=$T/cap/hwloc-2arm-2c
pol=$tb/sys/devices/system/cpu/cpu0/cpufreq
run "$tb" set-freq cluster0 400000
[ "$(token "$pol/scaling_governor")" = userspace ] && [ "$(token "$pol/scaling_setspeed")" = 400000 ] ||
	fail "old layout: userspace set-freq ($(token "$pol/scaling_governor"), $(token "$pol/scaling_setspeed"))"
run "$tb" --json | python3 -c "import json,sys; f=json.load(sys.stdin)['clusters'][0]['cpufreq']; assert f['governor'] == 'userspace' and f['layout'] == 'cpuN/cpufreq', f" ||
	fail "old layout: platform does not show the change"
run "$tb" restore
[ "$(token "$pol/scaling_governor")" = ondemand ] || fail "old layout: governor not restored"
[ ! -e "$tb.state/state.json" ] || fail "old layout: state left"
tb=$T/cap/lscpu-x86_64-64cpu # 4 acpi-cpufreq policies in cpuN/cpufreq, clamped
for c in 0 1 2 3; do rm -f "$tb/sys/devices/system/cpu/cpu$c/cpufreq/scaling_setspeed"; done
run "$tb" set-freq cluster0 1330000
for c in 0 1 2 3; do
	d=$tb/sys/devices/system/cpu/cpu$c/cpufreq
	[ "$(token "$d/scaling_min_freq")" = 1330000 ] && [ "$(token "$d/scaling_max_freq")" = 1330000 ] || fail "old layout clamp: cpu$c"
done
run "$tb" restore
[ "$(token "$tb/sys/devices/system/cpu/cpu3/cpufreq/scaling_min_freq")" = 1064000 ] &&
	[ "$(token "$tb/sys/devices/system/cpu/cpu3/cpufreq/scaling_max_freq")" = 1996000 ] || fail "old layout clamp: restore"
echo "ok: old cpufreq layout: set-freq (setspeed and clamping) and restore"

# A boost frequency: in the table, and set-freq takes it.
tb=$T/cap/lscpu-arm-A510-A710-A715-X3
rm -rf "$tb" && tar xzf "$CAPS/lscpu-arm-A510-A710-A715-X3.tar.gz" -C "$T/cap"
pol=$tb/sys/devices/system/cpu/cpufreq/policy7
run "$tb" --json | python3 -c "
import json, sys
f = json.load(sys.stdin)['clusters'][2]['cpufreq']
assert f['boost_frequencies_khz'] == [3187200] and f['frequencies_khz'][-1] == 3187200 and f['boost'] is True, f" ||
	fail "boost: not in the table"
run "$tb" set-freq cluster2 3187200
[ "$(token "$pol/scaling_min_freq")" = 3187200 ] && [ "$(token "$pol/scaling_max_freq")" = 3187200 ] || fail "boost: not set"
run "$tb" restore
[ "$(token "$pol/scaling_min_freq")" = 864000 ] && [ "$(token "$pol/scaling_max_freq")" = 998400 ] || fail "boost: not restored"
[ "$(token "$pol/scaling_governor")" = walt ] || fail "boost: governor"
echo 0 >"$tb/sys/devices/system/cpu/cpufreq/boost"
if run "$tb" set-freq cluster2 3187200 2>"$T/err"; then fail "boost off: 3187200 accepted"; fi
grep -q "3187200 kHz is a boost frequency and boost is off" "$T/err" || fail "boost off: message $(cat "$T/err")"
echo "ok: boost frequency set and restored; refused while boost is off"

# --- userspace governor: Odroid XU3 big cluster and Mali devfreq --------------
tb=$T/odroid-xu3
pol=$tb/sys/devices/system/cpu/cpufreq/policy4
run "$tb" set-freq cluster1 1000000
[ "$(token "$pol/scaling_governor")" = userspace ] || fail "xu3: governor not userspace"
[ "$(token "$pol/scaling_setspeed")" = 1000000 ] || fail "xu3: setspeed not written"
[ -f "$tb.state/state.json" ] || fail "xu3: no saved state"
run "$tb" --json | python3 -c "import json,sys; d=json.load(sys.stdin); assert d['saved_state'] and d['clusters'][1]['cpufreq']['governor'] == 'userspace'" || fail "xu3: platform does not show the change"
run "$tb" set-gpu-freq 11800000.gpu 350000000
[ "$(token "$tb/sys/class/devfreq/11800000.gpu/governor")" = userspace ] || fail "xu3 gpu governor"
[ "$(token "$tb/sys/class/devfreq/11800000.gpu/userspace/set_freq")" = 350000000 ] || fail "xu3 gpu set_freq"
run "$tb" restore
[ "$(token "$pol/scaling_governor")" = ondemand ] || fail "xu3: governor not restored"
[ "$(token "$pol/scaling_min_freq")" = 200000 ] && [ "$(token "$pol/scaling_max_freq")" = 2000000 ] || fail "xu3: limits not restored"
[ "$(token "$tb/sys/class/devfreq/11800000.gpu/governor")" = simple_ondemand ] || fail "xu3 gpu governor not restored"
[ ! -e "$tb.state/state.json" ] || fail "xu3: state not removed after restore"
echo "ok: userspace set-freq, set-gpu-freq, restore"

# A frequency outside the table: clear error, exit 1, nothing saved or changed.
if run "$tb" set-freq cluster0 1450000 2>"$T/err"; then fail "xu3: 1450000 kHz accepted"; fi
grep -q "1450000 kHz is not in its frequency table (200000 300000" "$T/err" || fail "xu3: bad message: $(cat "$T/err")"
[ ! -e "$tb.state/state.json" ] && [ "$(token "$tb/sys/devices/system/cpu/cpufreq/policy0/scaling_governor")" = ondemand ] || fail "xu3: state after refused freq"
echo "ok: frequency not in the table"

# --- no userspace governor: phone clamps min/max, one cluster at a time --------
tb=$T/phone-3cluster
run "$tb" set-freq cpu5 1401600
p4=$tb/sys/devices/system/cpu/cpufreq/policy4
[ "$(token "$p4/scaling_min_freq")" = 1401600 ] && [ "$(token "$p4/scaling_max_freq")" = 1401600 ] || fail "phone: clamp"
[ "$(token "$tb/sys/devices/system/cpu/cpufreq/policy0/scaling_max_freq")" = 1804800 ] || fail "phone: other cluster touched"
run "$tb" set-freq cluster1 499200
[ "$(token "$p4/scaling_min_freq")" = 499200 ] && [ "$(token "$p4/scaling_max_freq")" = 499200 ] || fail "phone: clamp down"
run "$tb" restore
[ "$(token "$p4/scaling_min_freq")" = 499200 ] && [ "$(token "$p4/scaling_max_freq")" = 2419200 ] || fail "phone: restore"
[ "$(token "$p4/scaling_governor")" = schedutil ] || fail "phone: governor"
echo "ok: min/max clamping and restore"

# --- intel_pstate: continuous range, one policy per CPU ------------------------
tb=$T/intel-hybrid
run "$tb" set-freq cluster1 2000000
for c in 0 5 11; do
	[ "$(token "$tb/sys/devices/system/cpu/cpufreq/policy$c/scaling_max_freq")" = 2000000 ] || fail "intel: policy$c"
done
[ "$(token "$tb/sys/devices/system/cpu/cpufreq/policy12/scaling_max_freq")" = 3900000 ] || fail "intel: E cores touched"
if run "$tb" set-freq cluster0 6000000 2>"$T/err"; then fail "intel: 6 GHz accepted"; fi
grep -q "6000000 kHz is outside 400000-3900000 kHz" "$T/err" || fail "intel: message $(cat "$T/err")"
run "$tb" restore
[ "$(token "$tb/sys/devices/system/cpu/cpufreq/policy4/scaling_max_freq")" = 5200000 ] || fail "intel: boost core max not restored"
echo "ok: per-CPU policies"

# --- no cpufreq: a clear refusal -------------------------------------------------
if run "$T/no-cpufreq" set-freq cluster0 1000000 2>"$T/err"; then fail "no-cpufreq accepted a frequency"; fi
grep -q "no cpufreq on CPUs of this cluster (DVFS unavailable)" "$T/err" || fail "no-cpufreq message: $(cat "$T/err")"
run "$T/no-cpufreq" | grep -q "DVFS unavailable: no cpufreq on this machine" || fail "no-cpufreq text"
echo "ok: no cpufreq"

# --- a read-only attribute: clear error naming the path, nothing changed ---------
newbed phone-3cluster
tb=$T/phone-3cluster
p4=$tb/sys/devices/system/cpu/cpufreq/policy4
chmod -R a+rwX "$tb"
chmod 444 "$p4/scaling_min_freq"
mkdir -m 777 "$tb.state"
AS=""
if [ "$(id -u)" = 0 ]; then
	# root writes read-only files anyway: drop to nobody for this check.
	AS="setpriv --reuid=65534 --regid=65534 --clear-groups"
fi
if env "$PRELOAD_ENV" UMOCKDEV_DIR="$tb" HWLOC_FSROOT="$tb" HWLOC_COMPONENTS=linux,stop $AS $EMU "$B/gearbox" platform --state-dir "$tb.state" \
	set-freq cluster1 1171200 2>"$T/err"; then
	fail "read-only scaling_min_freq accepted"
fi
grep -q "policy4/scaling_min_freq: Permission denied (EACCES)" "$T/err" || fail "read-only: message $(cat "$T/err")"
[ "$(token "$p4/scaling_max_freq")" = 2419200 ] && [ "$(token "$p4/scaling_min_freq")" = 499200 ] || fail "read-only: partial state left"
[ ! -e "$tb.state/state.json" ] || fail "read-only: state file left behind"
echo "ok: read-only attribute"

# --- a crash after a change is restored at the next start ------------------------
newbed odroid-xu3
tb=$T/odroid-xu3
pol=$tb/sys/devices/system/cpu/cpufreq/policy0
env "$PRELOAD_ENV" UMOCKDEV_DIR="$tb" HWLOC_FSROOT="$tb" HWLOC_COMPONENTS=linux,stop $EMU "$B/gearbox" platform --state-dir "$tb.state" \
	set-freq cluster0 600000 --hold 120 2>/dev/null &
holder=$!
for i in $(seq 1 100); do
	[ -f "$tb.state/state.json" ] && [ "$(token "$pol/scaling_setspeed")" = 600000 ] && break
	sleep 0.1
done
[ "$(token "$pol/scaling_governor")" = userspace ] || fail "crash: change not applied"
kill -9 "$holder"
wait "$holder" 2>/dev/null || true
[ "$(token "$pol/scaling_governor")" = userspace ] || fail "crash: SIGKILL should leave the change"
run "$tb" 2>"$T/err" >/dev/null
grep -q "restored cpufreq/devfreq settings left changed" "$T/err" || fail "crash: next start did not say it restored"
[ "$(token "$pol/scaling_governor")" = ondemand ] || fail "crash: governor not restored"
[ ! -e "$tb.state/state.json" ] || fail "crash: state left"
# An operator's hold (set-freq without --hold) is not a crash: it stays.
run "$tb" set-freq cluster0 600000
run "$tb" >/dev/null
[ "$(token "$pol/scaling_governor")" = userspace ] || fail "operator hold was undone"
run "$tb" restore
echo "ok: crash recovery"

# --- a platform file gives power tables; bad ones are refused with file:line ----
tb=$T/odroid-xu3
printf '# big cores\n[cluster1]\npower = 200000:0.15 1000000:0.60 2000000:1.90\n' >"$T/good.conf"
run "$tb" --json --platform-file "$T/good.conf" | python3 -c "
import json, sys
m = json.load(sys.stdin)['clusters'][1]['power_model']
assert m['kind'] == 'table' and [p['khz'] for p in m['points']] == [200000, 1000000, 2000000], m" || fail "platform file table"
printf '[cluster1]\npower = 200000:0.15 1000000:lots\n' >"$T/bad1.conf"
printf '[cluster7]\npower = 200000:0.15\n' >"$T/bad2.conf"
printf '[cluster0]\nvoltage = 1\n' >"$T/bad3.conf"
printf '[cluster0]\npower = 900000:0.2 300000:0.1\n' >"$T/bad4.conf"
for c in "bad1.conf:2: '1000000:lots' is not KHZ:WATTS" "bad2.conf:2: \[cluster7\] is not a cluster" \
	"bad3.conf:2: unknown key 'voltage'" "bad4.conf:2: power table point 1: frequencies must rise"; do
	f=${c%%:*}
	if run "$tb" --platform-file "$T/$f" >/dev/null 2>"$T/err"; then fail "$f accepted"; fi
	grep -q "$c" "$T/err" || fail "$f: message $(cat "$T/err")"
done
echo "ok: platform file"

# --- the generator against the real capture, when shared/ is beside us -----------
CAP=$S/../shared/platforms/intel-hybrid-20em64t.tar.bz2
if [ -f "$CAP" ]; then
	mkdir "$T/capture" && tar xjf "$CAP" -C "$T/capture"
	python3 "$S/tests/platforms/mktestbed.py" --compare "$T/capture"/* "$S/tests/platforms/intel-hybrid.platform"
	echo "ok: generator matches the real capture"
fi

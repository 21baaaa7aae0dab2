#!/bin/sh
# SPDX-License-Identifier: MIT
# gearbox solve as a user runs it: the shipped four-tenant file on the XU3
# and Nano models (a plan that meets every deadline, utilisation, frequency
# and power constraint, labelled simulated, never worse than greedy), a
# tenant no point can serve, an overloaded platform (the lightest tenants are
# dropped and the binding constraint named), bad files refused by file:line.
set -eu
B=${top_builddir:-.}
S=$(cd "${top_srcdir:-.}" && pwd)
EMU=${GEARBOX_EMULATOR:-}
T=$(mktemp -d /tmp/gearbox-solve-XXXXXX)
trap 'rm -rf "$T"' EXIT
GEARBOX="$B/gearbox"
MODEL="$S/models/fmnist-alexnet-g4.safetensors"
export GEARBOX_POLICY_DIR="$S/policies" GEARBOX_CACHE_DIR="$T/cache" OPENBLAS_NUM_THREADS=1
PY=python3
fail() { echo "FAIL: $*" >&2; exit 1; }

if ! grep -q '^#define HAVE_LPSOLVE 1' "$B/config.h"; then
	# without lp_solve the command says so
	if $EMU "$GEARBOX" solve --platform xu3 --tenants "$S/policies/tenants/four.tenants" >"$T/out" 2>&1; then
		fail "solve worked without a solver"
	fi
	grep -q "built without lp_solve" "$T/out" || fail "no reason: $(cat "$T/out")"
	echo "lp_solve not built in: checked the refusal only"
	exit 77
fi

check_plan() { # FILE: every constraint holds, and the MIP is not below greedy
	$PY - "$1" <<'PY'
import json, sys
d = json.load(open(sys.argv[1]))
assert d["simulated"] is True
served = [t for t in d["tenants"] if t["served"]]
for t in served:
    assert t["deadline_us"] == 0 or t["latency_us"] <= t["deadline_us"], t
for p in d["places"]:
    assert p["util"] <= p["capacity"] + 1e-9, p
    if p["used"]:
        # one frequency per placement: every tenant on it runs at its khz
        assert all(t["khz"] == p["khz"] for t in served if t["placement"] == p["name"]), p
assert d["power_cap_w"] == 0 or d["power_w"] <= d["power_cap_w"] + 1e-9
g = d["greedy"]
assert d["dropped_weight"] < g["dropped_weight"] + 1e-9
if abs(d["dropped_weight"] - g["dropped_weight"]) < 1e-9:
    assert d["objective_value"] >= g["objective_value"] - 1e-6, (d["objective_value"], g)
m = d["mip"]
assert m["rows"] > 0 and m["cols"] >= m["binaries"] > 0 and m["candidates_kept"] <= m["candidates_total"]
assert all(t["why"] for t in d["tenants"])
PY
}

for plat in xu3 nano; do
	$EMU "$GEARBOX" solve --platform $plat --tenants "$S/policies/tenants/four.tenants" --json >"$T/$plat.json" ||
		fail "solve on $plat"
	check_plan "$T/$plat.json" || fail "plan on $plat: $(cat "$T/$plat.json")"
	$EMU "$GEARBOX" solve --platform $plat --tenants "$S/policies/tenants/four.tenants" >"$T/$plat.txt"
	grep -q '^\[simulated\]' "$T/$plat.txt" || fail "text output not labelled simulated"
	grep -q '^binding:' "$T/$plat.txt" || fail "no binding constraints in the text"
done
[ "$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["all_served"])' "$T/xu3.json")" = True ] ||
	fail "the four tenants do not all fit the XU3"

# a tenant no point can serve, beside one that fits
cat >"$T/hopeless.tenants" <<EOT
[tenant fine]
model = $MODEL
deadline_us = 50000
[tenant hopeless]
model = $MODEL
deadline_us = 5
EOT
$EMU "$GEARBOX" solve --platform nano --tenants "$T/hopeless.tenants" --json >"$T/h.json"
check_plan "$T/h.json" || fail "hopeless plan"
$PY - "$T/h.json" <<'PY' || fail "hopeless tenant: $(cat "$T/h.json")"
import json, sys
d = {t["name"]: t for t in json.load(open(sys.argv[1]))["tenants"]}
assert d["fine"]["served"] and not d["hopeless"]["served"]
assert "even alone" in d["hopeless"]["why"], d["hopeless"]["why"]
PY

# overload: eight heavy streams on the Nano; the lightest go, and the
# constraint that binds is named
{
	for i in 1 2 3 4 5 6 7 8; do
		printf '[tenant t%s]\nmodel = %s\nrate_hz = 400\ndeadline_us = 4000\nweight = %s\nmacs_scale = 8\n' "$i" "$MODEL" "$i"
	done
} >"$T/over.tenants"
$EMU "$GEARBOX" solve --platform nano --tenants "$T/over.tenants" --json >"$T/o.json"
check_plan "$T/o.json" || fail "overloaded plan"
$PY - "$T/o.json" <<'PY' || fail "overload: $(cat "$T/o.json")"
import json, sys
d = json.load(open(sys.argv[1]))
served = [t["weight"] for t in d["tenants"] if t["served"]]
dropped = [t["weight"] for t in d["tenants"] if not t["served"]]
assert dropped and served, (served, dropped)
assert all("dropped" in t["why"] for t in d["tenants"] if not t["served"])
assert any(c["binds"] and c["what"].startswith("utilisation of") and c["weight_gain"] > 0 for c in d["constraints"]), d["constraints"]
assert d["dropped_weight"] == sum(dropped)
PY

# memory: two tenants of the bundled model share its weights; a third is a
# what-if of it at twice the size, a model of its own. At g=4 that is
# 2.0 + 2 x 1.4 MiB and 4.1 + 1.4 MiB, 10.3 MiB under 12 (counted per
# tenant, 12.3 would not fit)
$EMU "$GEARBOX" model info "$MODEL" --json >"$T/info.json" || fail "gearbox model info"
printf '[solve]\nmemory_mb = 12\n' >"$T/mem.tenants"
for t in a b big; do
	printf '[tenant %s]\nmodel = %s\ndeadline_us = 50000\n' "$t" "$MODEL"
	[ $t = big ] && printf 'macs_scale = 2\n'
done >>"$T/mem.tenants"
$EMU "$GEARBOX" solve --platform xu3 --tenants "$T/mem.tenants" --json >"$T/m.json" || fail "solve under memory"
check_plan "$T/m.json" || fail "plan under memory"
$PY - "$T/m.json" "$T/info.json" <<'PY' || fail "memory: $(cat "$T/m.json")"
import json, sys
d = json.load(open(sys.argv[1]))
per = {g["active"]: g for g in json.load(open(sys.argv[2]))["per_group"]}
ts = {t["name"]: t for t in d["tenants"]}
assert all(t["served"] and t["groups"] == 4 for t in ts.values()), ts
assert ts["a"]["model"] == ts["b"]["model"] != ts["big"]["model"], ts
assert ts["big"]["model"].endswith(" x2"), ts["big"]["model"]
w = per[4]["weight_bytes"] * 3  # once for a and b, twice that for big
assert abs(d["weight_bytes"] - w) < 1, (d["weight_bytes"], w)
assert abs(d["memory_bytes"] - (w + 3 * per[4]["buffer_bytes"])) < 1, d["memory_bytes"]
assert d["memory_bytes"] <= 12 * 1048576
PY

# bad files and arguments
printf '[tenant a]\nmodel = %s\nrate_hz = fast\n' "$MODEL" >"$T/bad.tenants"
if $EMU "$GEARBOX" solve --platform xu3 --tenants "$T/bad.tenants" 2>"$T/err"; then fail "bad rate accepted"; fi
grep -q "bad.tenants:3: rate_hz" "$T/err" || fail "no file:line: $(cat "$T/err")"
printf '[tenants a]\nrate_hz = 1\n' >"$T/bad2.tenants"
if $EMU "$GEARBOX" solve --platform xu3 --tenants "$T/bad2.tenants" 2>"$T/err"; then fail "bad section accepted"; fi
grep -q "bad2.tenants:2: unknown section" "$T/err" || fail "no file:line: $(cat "$T/err")"
if $EMU "$GEARBOX" solve --platform xu3 2>/dev/null; then fail "no --tenants accepted"; fi

if command -v gnuplot >/dev/null 2>&1 && [ -z "$EMU" ]; then
	"$GEARBOX" solve --platform xu3 --tenants "$S/policies/tenants/four.tenants" --plot "$T/front.png" >/dev/null
	[ -s "$T/front.png" ] || fail "no plot"
fi
echo "gearbox solve: ok"

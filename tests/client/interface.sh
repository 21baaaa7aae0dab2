#!/bin/sh
# SPDX-License-Identifier: MIT
# The command-line interface as a user sees it (issue 20's defects, each
# checked here so that it cannot come back):
#   1. quoting: every --json output of gearbox and gearboxctl is valid JSON and
#      gives back a model name and class labels holding '"' and '\';
#   2. a --plot that cannot be written fails with a message that names it and
#      prints nothing on stdout (gnuplot used to write the PNG to the terminal);
#   3. text output: accuracies as percentages (not 0.90649999999999997),
#      reload says "reloaded";
#   4. option parity between gearbox and gearboxctl for the commands both
#      have (pareto, platform): the same options, --json before the command,
#      the same column names; COMMAND --help shows only that command's options;
#   5. names: STATUS and INFER name the energy source the same way; an unknown
#      policy is named with the folders searched; a socket without access
#      says to join the gearbox group;
#   6. a PGM with '# comment' lines (as GIMP writes them) is read;
#   7. bench/adaptation stops only what it started and writes no results
#      into the source tree.
# Runs its own gearboxd on a synthetic model, on a private socket and state.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
[ -x "$B/gearboxd" ] || { echo "SKIP: gearboxd not built (no libsystemd)"; exit 77; }
command -v python3 >/dev/null || { echo "SKIP: no python3"; exit 77; }
T=$(mktemp -d /tmp/gearbox-iface-XXXXXX)
chmod 755 "$T"
DPID=""
cleanup() {
	[ -n "$DPID" ] && kill "$DPID" 2>/dev/null && wait "$DPID" 2>/dev/null
	rm -rf "$T"
}
trap cleanup EXIT
export OPENBLAS_NUM_THREADS=1 GEARBOX_STATE_DIR="$T/state" GEARBOX_CACHE_DIR="$T/cache" XDG_CACHE_HOME="$T/xdg-cache"
mkdir -p "$T/state" "$T/cache"
fail() {
	echo "FAIL: $*" >&2
	[ -f "$T/daemon.log" ] && { echo "--- daemon log"; tail -20 "$T/daemon.log"; } >&2
	exit 1
}
ok() { echo "ok: $*"; }

# A model whose name and labels need escaping in JSON.
NAME='q"uo\te'
LABEL='l"b\'
MODEL=$T/model.safetensors
"$B/tests/tools/mkmodel" --arch tiny --name "$NAME" --label-prefix "$LABEL" "$MODEL"
SOCK=$T/gearboxd.sock
CTL="$B/gearboxctl --socket $SOCK"
# a policy that always runs all groups, for comparing classes across inputs
# (the synthetic model's classes differ between group counts)
mkdir -p "$T/policies"
printf '[policy]\ncontroller = fixed\ngroups = 4\n' >"$T/policies/all-groups.conf"
# (PM QoS to a plain file of ours, never the machine's)
printf '[daemon]\npolicies = %s/policies\npm_qos = cpu-dma-latency\npm_qos_device = %s/cpu_dma_latency\n' "$T" "$T" >"$T/gearboxd.conf"
"$B/gearboxd" --socket "$SOCK" --model "$MODEL" --config "$T/gearboxd.conf" -v >"$T/daemon.log" 2>&1 &
DPID=$!
for i in $(seq 1 600); do
	[ -S "$SOCK" ] && $CTL status >/dev/null 2>&1 && break
	kill -0 "$DPID" 2>/dev/null || fail "gearboxd exited at start"
	sleep 0.1
done
$CTL status >/dev/null || fail "gearboxd did not come up"

# The tiny model takes 2x8x8 = 128 values: a 16x8 PGM with comments (as GIMP
# writes one), and the same pixels as floats.
python3 - "$T" <<'EOF'
import struct, sys
t = sys.argv[1]
px = bytes((i * 37) % 256 for i in range(128))
open(f"{t}/img.pgm", "wb").write(b"P5\n# CREATOR: GIMP PNM Filter Version 1.1\n16 8\n# maxval next\n255\n" + px)
open(f"{t}/plain.pgm", "wb").write(b"P5 16 8 255\n" + px)
open(f"{t}/img.raw", "wb").write(struct.pack("<128f", *[(p / 255 - 0.25) / 0.5 for p in px]))
EOF

# --- 1. quoting in every --json output -------------------------------------
# check_json FILE KIND: FILE holds one JSON document (KIND doc) or JSON lines
# (KIND lines); every string that names the model or a label is checked.
check_json() {
	python3 - "$1" "$2" "$NAME" "$LABEL" <<'EOF' || fail "invalid JSON or lost quoting in $1: $(head -c 400 "$1")"
import json, sys
path, kind, name, label = sys.argv[1:5]
text = open(path).read()
docs = [json.loads(text)] if kind == "doc" else [json.loads(l) for l in text.splitlines() if l.strip()]
assert docs, "no output"
seen = set()
def walk(v):
    if isinstance(v, dict):
        for k, x in v.items():
            # "name" is a model's name in model objects (clusters have names too)
            is_model = any(m in v for m in ("labels", "input_shape", "calibrated_points", "file_bytes"))
            if (k == "model" or (k == "name" and is_model)) and isinstance(x, str):
                assert x == name, (k, x)
                seen.add("name")
            if k == "label" and isinstance(x, str):
                assert x.startswith(label), x
                seen.add("label")
            if k == "labels":
                assert all(l.startswith(label) for l in x), x
                seen.add("label")
            walk(x)
    elif isinstance(v, list):
        for x in v:
            walk(x)
for d in docs:
    walk(d)
print(path.rsplit("/", 1)[-1], kind, len(docs), "document(s), saw", sorted(seen))
EOF
}
$CTL --json status >"$T/status.json" && check_json "$T/status.json" doc
$CTL models --json >"$T/models.json" && check_json "$T/models.json" doc
grep -q 'l\\"b\\\\' "$T/models.json" || fail "labels not escaped in models --json"
$CTL infer --image "$T/img.pgm" --count 3 --deadline-us 100000 --json >"$T/infer.jsonl" && check_json "$T/infer.jsonl" lines
python3 - "$T/infer.jsonl" "$LABEL" <<'EOF' || fail "infer --json has no label"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]["label"].startswith(sys.argv[2]) and rows[-1]["summary"] is True, rows
assert all(k in rows[0] for k in ("latency_us", "class", "groups", "placement", "energy_source", "fallback", "reason")), rows[0]
EOF
$CTL --json pareto >"$T/pareto.json" && check_json "$T/pareto.json" doc
$CTL pareto --all --json >"$T/pareto-all.json" && check_json "$T/pareto-all.json" doc
$CTL --json platform >"$T/platform.json" && check_json "$T/platform.json" doc
$CTL budget 99999999 --deadline-us 1 --json >/dev/null 2>&1 && fail "budget on no session"
$CTL infer --raw "$T/img.raw" --json >"$T/raw.jsonl" && check_json "$T/raw.jsonl" lines
"$B/gearbox" model info "$MODEL" --json >"$T/info.json" && check_json "$T/info.json" doc
"$B/gearbox" pareto "$MODEL" --json >"$T/gpareto.json" 2>/dev/null && check_json "$T/gpareto.json" doc
"$B/gearbox" pareto "$MODEL" --all --validate --runs 2 --json >"$T/gpareto-all.json" 2>/dev/null &&
	check_json "$T/gpareto-all.json" doc
"$B/gearbox" simulate --platform xu3 --model "$MODEL" --duration 1 --json >"$T/sim.jsonl" && check_json "$T/sim.jsonl" lines
python3 - "$T/sim.jsonl" <<'EOF' || fail "simulate --json summary"
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert rows[0]["dynamic_range"] and rows[-1]["summary"] and rows[-1]["model"] == 'q"uo\\te', rows[-1]
assert len([r for r in rows if "t_s" in r]) == 30, len(rows)
EOF
# watch --json: status lines and events, every line JSON
timeout 3 $CTL watch --json --interval 0.5 >"$T/watch.jsonl" 2>"$T/watch.err" &
WPID=$!
sleep 1
$CTL infer --image "$T/img.pgm" --deadline-us 1 >/dev/null # a budget-violation event
wait "$WPID" || true
check_json "$T/watch.jsonl" lines
python3 -c "
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1])]
assert any(r.get('event') == 'budget-violation' for r in rows) and any('session_list' in r for r in rows), rows
" "$T/watch.jsonl" || fail "watch --json: no status line or no event: $(head -c 600 "$T/watch.jsonl")"
ok "quoting: every --json output parses and keeps '\"' and '\\' in names and labels"

# --- 2. a plot that cannot be written ---------------------------------------
for cmd in "$CTL pareto" "$B/gearbox pareto $MODEL"; do
	if $cmd --plot /nonexistent/dir/x.png >"$T/plot.out" 2>"$T/plot.err"; then fail "$cmd --plot /nonexistent succeeded"; fi
	[ ! -s "$T/plot.out" ] || fail "$cmd --plot /nonexistent printed $(wc -c <"$T/plot.out") bytes on stdout"
	grep -q "/nonexistent/dir/x.png" "$T/plot.err" || fail "$cmd --plot: the error does not name the file: $(cat "$T/plot.err")"
done
if command -v gnuplot >/dev/null; then
	$CTL pareto --plot "$T/front.png" >/dev/null || fail "gearboxctl pareto --plot"
	head -c 8 "$T/front.png" | od -An -c | grep -q "P   N   G" || fail "gearboxctl pareto --plot wrote no PNG"
	ok "plots: an unwritable path is refused by name with nothing on stdout; a writable one gets a PNG"
else
	ok "plots: an unwritable path is refused by name with nothing on stdout (no gnuplot: no PNG drawn)"
fi

# What the plots draw: a stand-in gnuplot first on PATH keeps the script it
# is fed (the PNG file itself is made by gearbox before gnuplot runs).
mkdir -p "$T/fakebin"
cat >"$T/fakebin/gnuplot" <<'EOF'
#!/bin/sh
cat >"$GP_KEEP/gnuplot.$$.gp"
EOF
chmod +x "$T/fakebin/gnuplot"
export GP_KEEP=$T
rm -f "$T"/gnuplot.*.gp
PATH="$T/fakebin:$PATH" $CTL pareto --all --plot "$T/all.png" >/dev/null || fail "pareto --plot with the stand-in gnuplot"
gp=$(ls "$T"/gnuplot.*.gp)
if grep -q "with labels" $gp; then fail "pareto plot: text labels among the points (they overlap)"; fi
grep -q 'y2tics ("g=1"' $gp || fail "pareto plot: no g on the right-hand axis: $(cat $gp)"
grep -q "title \"cluster0 x1\"" $gp || fail "pareto plot: no key per placement: $(cat $gp)"
grep -q "logscale x" $gp || fail "pareto plot: linear time axis"
rm -f "$T"/gnuplot.*.gp
PATH="$T/fakebin:$PATH" "$B/gearbox" simulate --platform xu3 --model "$MODEL" --duration 2 --plot "$T/sim.png" >/dev/null ||
	fail "simulate --plot with the stand-in gnuplot"
gp=$(ls "$T"/gnuplot.*.gp)
[ "$(grep -io "simulated" $gp | wc -l)" -ge 1 ] || fail "simulate plot: not labelled simulated"
grep "multiplot" $gp | grep -qi "simulated.*simulated" && fail "simulate plot: 'simulated' twice in the title: $(grep multiplot $gp)"
grep -q "set ytics 1$" $gp || fail "simulate plot: g axis without whole-number ticks"
grep -q "set ytics (\"little\" 0" $gp && grep -q "frequency (MHz)" $gp && grep -q "energy per inference" $gp ||
	fail "simulate plot: no placement, frequency or energy panel: $(cat $gp)"
ok "plot scripts: pareto keys placements and puts g on the right (no labels among points), log time; simulate has g ticks of 1, placement, frequency and energy, 'simulated' once"

# --- 3. text output -----------------------------------------------------------
$CTL models >"$T/models.txt"
grep -q "accuracy per g:" "$T/models.txt" || fail "models text: $(cat "$T/models.txt")"
if grep -Eq "[0-9]\.[0-9]{7,}" "$T/models.txt"; then fail "models text has json-c's 17 digits: $(cat "$T/models.txt")"; fi
$CTL reload >"$T/reload.txt" || fail "reload"
[ "$(cat "$T/reload.txt")" = "reloaded" ] || fail "reload text: $(cat "$T/reload.txt")"
if grep -q "{" "$T/reload.txt"; then fail "reload printed JSON without --json"; fi
$CTL reload --json | python3 -c "import json,sys; assert json.load(sys.stdin)['reloaded'] is True" || fail "reload --json"
ok "text: models and reload print words and short numbers"

# --- 4. option parity and per-command help ------------------------------------
# The options of a command, from its --help.
opts_of() { "$@" --help | grep -oE -- '--[a-z][a-z-]+' | sort -u; }
# shared commands: what only one side can have, and why
#   gearbox pareto: --runs, --recalibrate, --validate measure here (the daemon has its calibration);
#   --plan, --sensitivity: a plan file's speed-up measured here and the accuracy predictor's file
#   gearboxctl: --socket; --model names a hosted model (gearbox takes a model FILE)
opts_of "$B/gearbox" pareto | grep -vxE -- '--(runs|recalibrate|validate|plan|sensitivity|help)' >"$T/g-pareto"
opts_of $CTL pareto | grep -vxE -- '--(socket|model|help)' >"$T/c-pareto"
diff "$T/g-pareto" "$T/c-pareto" >"$T/diff" || fail "pareto options differ (gearbox < > gearboxctl): $(cat "$T/diff")"
opts_of "$B/gearbox" platform | grep -xE -- '--json' >"$T/g-platform"
opts_of $CTL platform | grep -vxE -- '--(socket|help)' >"$T/c-platform"
diff "$T/g-platform" "$T/c-platform" >"$T/diff" || fail "platform options differ: $(cat "$T/diff")"
# and they run: --all on both sides, --json before the command on both sides
$CTL pareto --all >/dev/null || fail "gearboxctl pareto --all"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['all']) == d['points'] >= d['front_points'] == len(json.load(open(sys.argv[2]))['front']), d" \
	"$T/pareto-all.json" "$T/pareto.json" || fail "gearboxctl pareto --all --json lists every point"
python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d['all']) == d['points'] and all('measured_us' in p for p in d['all']), d" \
	"$T/gpareto-all.json" || fail "gearbox pareto --all --json"
"$B/gearbox" --json platform | python3 -c "import json,sys; assert 'clusters' in json.load(sys.stdin)" || fail "gearbox --json platform"
$CTL --json platform | python3 -c "import json,sys; assert 'clusters' in json.load(sys.stdin)" || fail "gearboxctl --json platform"
# the same column names in both pareto tables
"$B/gearbox" pareto "$MODEL" 2>/dev/null | sed -n 2p | tr -s ' ' >"$T/g-cols"
$CTL pareto | sed -n 2p | tr -s ' ' >"$T/c-cols"
diff "$T/g-cols" "$T/c-cols" >"$T/diff" || fail "pareto columns differ: $(cat "$T/diff")"
grep -qw MHz "$T/c-cols" || fail "no MHz column: $(cat "$T/c-cols")"
# COMMAND --help: that command's options, not its siblings'
$CTL status --help >"$T/h" || fail "status --help"
grep -q "gearboxctl .*status" "$T/h" || fail "status --help: $(cat "$T/h")"
if grep -qE -- "--idx|--interval|--plot" "$T/h"; then fail "gearboxctl status --help lists other commands' options"; fi
$CTL infer --help | grep -q -- "--idx" || fail "infer --help has no --idx"
if $CTL infer --help | grep -qE -- "--interval|--all"; then fail "gearboxctl infer --help lists other commands' options"; fi
"$B/gearbox" model info --help >"$T/h"
if grep -qE -- "--dataset|--iterations" "$T/h"; then fail "gearbox model info --help lists eval/bench options"; fi
"$B/gearbox" model bench --help | grep -q -- "--iterations" || fail "gearbox model bench --help"
ok "parity: pareto and platform take the same options in gearbox and gearboxctl, --json before the command, one help per command"

# --- 5. names -----------------------------------------------------------------
python3 - "$T/status.json" "$T/infer.jsonl" <<'EOF' || fail "energy source named two ways"
import json, sys
st = json.load(open(sys.argv[1]))["energy_source"]
inf = json.loads(open(sys.argv[2]).readline())["energy_source"]
assert st == inf and st != "model", (st, inf)
print("energy source, STATUS and INFER:", st)
EOF
if "$B/gearbox" pareto "$MODEL" --policy no-such >/dev/null 2>"$T/err"; then fail "gearbox pareto with an unknown policy"; fi
grep -q "no policy 'no-such'.*looked in .*policies" "$T/err" || fail "unknown policy message: $(cat "$T/err")"
if "$B/gearbox" simulate --platform xu3 --model "$MODEL" --policy no-such >/dev/null 2>"$T/err"; then fail "simulate with an unknown policy"; fi
grep -q "no policy 'no-such'.*looked in" "$T/err" || fail "simulate's unknown policy message: $(cat "$T/err")"
if $CTL pareto --policy no-such >/dev/null 2>"$T/err"; then fail "gearboxctl pareto with an unknown policy"; fi
grep -q "no policy 'no-such' in .*policies.* (have: " "$T/err" || fail "gearboxctl's unknown policy message: $(cat "$T/err")"
# a socket this user may not open: the message says what to do
python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX); s.bind(sys.argv[1]); s.listen(1)
import os; os.chmod(sys.argv[1], 0)
" "$T/closed.sock"
if [ "$(id -u)" = 0 ]; then
	as_user="setpriv --reuid=65534 --regid=65534 --clear-groups"
	command -v setpriv >/dev/null || as_user=""
else
	as_user="env"
fi
if [ -n "$as_user" ]; then
	if $as_user "$B/gearboxctl" --socket "$T/closed.sock" status 2>"$T/err"; then fail "connected to a closed socket"; fi
	grep -q "Permission denied.*join it" "$T/err" && grep -q "'gearbox' group" "$T/err" || fail "no group hint: $(cat "$T/err")"
	ok "names: one energy source name, unknown policies named with the folders, 'join the gearbox group' on EACCES"
else
	ok "names: one energy source name, unknown policies named with the folders (no setpriv: EACCES not tried)"
fi

# --- 6. PGM with comments -----------------------------------------------------
$CTL infer --image "$T/img.pgm" --policy all-groups --json >"$T/c.json" || fail "PGM with comments refused"
$CTL infer --image "$T/plain.pgm" --policy all-groups --json >"$T/p.json" || fail "plain PGM refused"
$CTL infer --raw "$T/img.raw" --policy all-groups --json >"$T/r.json"
python3 -c "
import json, sys
c, p, r = (json.loads(open(f).readline()) for f in sys.argv[1:4])
assert c['groups'] == p['groups'] == r['groups'] == 4 and c['class'] == p['class'] == r['class'], (c, p, r)" "$T/c.json" "$T/p.json" "$T/r.json" || fail "PGM classes differ"
printf 'P5\n# no size\n' >"$T/bad.pgm"
if $CTL infer --image "$T/bad.pgm" 2>"$T/err"; then fail "a PGM without a size was read"; fi
grep -q "not an 8-bit binary PGM" "$T/err" || fail "bad PGM message: $(cat "$T/err")"
ok "PGM: comment lines are skipped (same class as the plain PGM and the float input)"

# --- 7. bench/adaptation ------------------------------------------------------
if grep -nE '^[^#]*\b(pkill|killall)\b' "$S/bench/adaptation"; then fail "bench/adaptation kills by name"; fi
grep -q 'OUT=${OUT:-$B/' "$S/bench/adaptation" || fail "bench/adaptation's results default into the source tree"
"$S/bench/adaptation" --help | grep -q "never into the source tree" || fail "bench/adaptation --help"
ok "bench/adaptation: kills by pid, results under the build tree"

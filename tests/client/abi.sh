#!/bin/sh
# SPDX-License-Identifier: MIT
# libgearbox's ABI as a distribution ships it:
#   1. the exported symbols are exactly client/libgearbox.map's list, all
#      versioned GEARBOX_0, and exactly the functions gearbox.h declares
#      (nothing internal, such as wake_ahead_*, leaks);
#   2. the installed headers stand alone: a program built against copies of
#      gearbox.h and gearbox/protocol.h only uses gbx_call with GBX_MSG_STATUS
#      and the accessors, and struct gbx_result is opaque (declaring one fails
#      to compile), struct gbx_budget carries its size;
#   3. `pkg-config --cflags --libs gearbox` works where json-c's .pc is
#      absent (no Requires.private: json-c), and --static still names json-c.
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
LIB=$B/.libs/libgearbox.so
[ -f "$LIB" ] || { echo "SKIP: no shared libgearbox (static build?)"; exit 77; }
command -v nm >/dev/null && command -v objdump >/dev/null || { echo "SKIP: no binutils"; exit 77; }
T=$(mktemp -d /tmp/gearbox-abi-XXXXXX)
trap 'rm -rf "$T"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

# --- 1. symbols -----------------------------------------------------------------
sed -n '/global:/,/local:/p' "$S/client/libgearbox.map" | grep -oE '^[[:space:]]*gbx_[a-z0-9_]+' | tr -d ' \t' | sort >"$T/map"
nm -D --defined-only "$LIB" | awk '$2 ~ /^[TDBR]$/ { print $3 }' | sed 's/@.*//' | sort -u >"$T/exported"
diff "$T/map" "$T/exported" >"$T/diff" || fail "exported symbols differ from client/libgearbox.map (< map > library): $(cat "$T/diff")"
objdump -T "$LIB" | awk '/ gbx_/ { print $(NF-1), $NF }' | grep -v '^GEARBOX_0 ' >"$T/unversioned" || true
[ ! -s "$T/unversioned" ] || fail "symbols without the GEARBOX_0 version: $(cat "$T/unversioned")"
# the functions gearbox.h declares
grep -oE '\bgbx_[a-z0-9_]+\(' "$S/client/gearbox.h" | tr -d '(' | sort -u >"$T/declared"
diff "$T/map" "$T/declared" >"$T/diff" || fail "gearbox.h and the symbol list differ (< map > header): $(cat "$T/diff")"
echo "ok: $(wc -l <"$T/map") symbols exported, all GEARBOX_0, exactly those gearbox.h declares"

# --- 2. the installed headers alone ----------------------------------------------
mkdir -p "$T/include/gearbox"
cp "$S/client/gearbox.h" "$T/include/gearbox.h"
cp "$S/proto/protocol.h" "$T/include/gearbox/protocol.h"
cat >"$T/user.c" <<'EOF'
#include <stdio.h>
#include <stdlib.h>
#include <gearbox.h>
#include <gearbox/protocol.h>

int
main(int argc, char **argv)
{
	struct gbx_budget b = GBX_BUDGET_INIT;
	struct gbx_result *r = gbx_result_new();
	struct gbx_conn *c;
	char *reply = NULL;

	b.deadline_us = 2000;
	if (r == NULL || gbx_result_nscores(r) != 0 || b.size != sizeof(b))
		return 3;
	if ((c = gbx_connect(argc > 1 ? argv[1] : "/nonexistent/gearbox.sock")) == NULL) {
		printf("%s\n", gbx_connect_error());
		gbx_result_free(r);
		return 1;
	}
	if (gbx_call(c, GBX_MSG_STATUS, "{}", &reply) != 0)
		return 2;
	free(reply);
	gbx_result_free(r);
	gbx_disconnect(c);
	return 0;
}
EOF
CC=${CC:-cc}
# a sanitizer build's library wants its runtime loaded first: build the user so too
if objdump -p "$LIB" | grep -q 'NEEDED.*libasan'; then CC="$CC -fsanitize=address,undefined"; fi
$CC -std=c99 -Wall -Werror -I"$T/include" "$T/user.c" -o "$T/user" -L"$B/.libs" -lgearbox -Wl,-rpath,"$B/.libs" ||
	fail "a program against the installed headers alone does not build"
set +e
LD_LIBRARY_PATH=$B/.libs "$T/user" "$T/no.sock" >"$T/out"
rc=$?
set -e
[ "$rc" = 1 ] && grep -q "is gearboxd running" "$T/out" || fail "the program's connect error ($rc): $(cat "$T/out")"
printf '#include <gearbox.h>\nint main(void) { struct gbx_result r; (void)r; return 0; }\n' >"$T/opaque.c"
if $CC -std=c99 -I"$T/include" -c "$T/opaque.c" -o "$T/opaque.o" 2>/dev/null; then
	fail "struct gbx_result is not opaque (a program could depend on its layout)"
fi
echo "ok: gearbox.h and gearbox/protocol.h alone build a gbx_call program; struct gbx_result is opaque"

# --- 3. pkg-config without json-c's .pc ----------------------------------------
command -v pkg-config >/dev/null || { echo "ok: (no pkg-config: the .pc file not tried)"; exit 0; }
mkdir -p "$T/pc"
cp "$B/client/gearbox.pc" "$T/pc/"
if grep -q '^Requires' "$T/pc/gearbox.pc"; then fail "gearbox.pc requires other .pc files: $(grep '^Requires' "$T/pc/gearbox.pc")"; fi
PKG_CONFIG_LIBDIR=$T/pc PKG_CONFIG_PATH= pkg-config --cflags --libs gearbox >"$T/flags" 2>&1 ||
	fail "pkg-config gearbox fails without json-c's .pc: $(cat "$T/flags")"
grep -q -- "-lgearbox" "$T/flags" || fail "pkg-config --libs gearbox: $(cat "$T/flags")"
PKG_CONFIG_LIBDIR=$T/pc PKG_CONFIG_PATH= pkg-config --static --libs gearbox | grep -q -- "-ljson-c" ||
	fail "pkg-config --static --libs gearbox does not name json-c"
echo "ok: pkg-config --cflags --libs gearbox needs no json-c .pc; --static names -ljson-c"

#!/bin/sh
# SPDX-License-Identifier: MIT
# debian/ agrees with the build (cheap; scripts/package.sh builds the .debs):
#   - the symbols libgearbox exports are the ones debian/libgearbox0.symbols
#     lists (a new or removed gbx_ function must be recorded there);
#   - its SONAME is libgearbox.so.0, which the package name libgearbox0 says;
#   - debian/changelog's upstream version is configure's;
#   - python/pyproject.toml's version is configure's, and python3-gearbox packages it;
#   - every package of debian/control has an .install list (pybuild fills python3-gearbox).
set -eu
B=${top_builddir:-.}
S=${top_srcdir:-.}
fail() { echo "FAIL: $*" >&2; exit 1; }
[ -d "$S/debian" ] || { echo "SKIP: no debian/ (a release tarball)"; exit 77; }
lib=$B/.libs/libgearbox.so
[ -f "$lib" ] || { echo "SKIP: no $lib (a static-only build?)"; exit 77; }
command -v readelf >/dev/null || { echo "SKIP: no readelf"; exit 77; }
T=$(mktemp -d /tmp/gearbox-debian-XXXXXX)
trap 'rm -rf "$T"' EXIT

# readelf reads any architecture's ELF (nm does not, in a cross build); the
# version node (GEARBOX_0, an ABS symbol) is not a function
readelf -W --dyn-syms "$lib" | awk '$5 == "GLOBAL" && $7 != "UND" && $7 != "ABS" && ($4 == "FUNC" || $4 == "OBJECT") { print $8 }' |
	sed 's/@.*//' | sort -u >"$T/exported"
# " gbx_call@Base 0.1.0" or, with a version script, " gbx_call@GEARBOX_0 0.1.0"
# (the version node's own line, " GEARBOX_0@GEARBOX_0", is not a function)
grep -v '^[a-z*(|#]' "$S/debian/libgearbox0.symbols" | sed -n 's/^ \(gbx_[^@ ]*\)@[A-Za-z0-9_.]* .*/\1/p' | sort -u >"$T/listed"
if ! cmp -s "$T/exported" "$T/listed"; then
	echo "exported by $lib (<) and listed in debian/libgearbox0.symbols (>):" >&2
	diff "$T/exported" "$T/listed" >&2 || true
	fail "debian/libgearbox0.symbols is out of date: run scripts/update-symbols.sh BUILD_DIR (new symbols get the version that adds them)"
fi
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
[ "$soname" = libgearbox.so.0 ] || fail "SONAME $soname: rename libgearbox0 (debian/control, .install, .symbols)"
head -n 1 "$S/debian/libgearbox0.symbols" | grep -q "^$soname libgearbox0 " || fail "the symbols file names another library"

version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$B/config.h")
deb=$(sed -n '1s/^gearbox (\([^)-]*\)-[^)]*).*/\1/p' "$S/debian/changelog")
[ "$deb" = "$version" ] || fail "debian/changelog says $deb, configure.ac $version"

if [ -f "$S/python/pyproject.toml" ]; then
	py=$(sed -n 's/^version = "\(.*\)"/\1/p' "$S/python/pyproject.toml")
	[ "$py" = "$version" ] || fail "python/pyproject.toml says $py, configure.ac $version"
	grep -q '^Package: python3-gearbox$' "$S/debian/control" || fail "python/ is not packaged (python3-gearbox)"
fi

for p in $(sed -n 's/^Package: //p' "$S/debian/control"); do
	[ -f "$S/debian/$p.install" ] || [ "$p" = python3-gearbox ] || fail "debian/$p.install missing"
done
echo "ok: debian/ matches the build ($(wc -l <"$T/exported") symbols, $soname, $version)"

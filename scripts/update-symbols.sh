#!/bin/sh
# SPDX-License-Identifier: MIT
# Rewrite debian/libgearbox0.symbols from the libgearbox a build made:
#   scripts/update-symbols.sh [BUILD_DIR]      (default build/)
# Symbols already listed keep the version that added them; new ones get
# configure's version; removed ones are dropped (an ABI break: bump the
# soname instead, unless the library was never released). tests/misc/debian.sh
# checks the file against the library.
set -eu
cd "$(dirname "$0")/.."
B=${1:-build}
lib=$B/.libs/libgearbox.so
F=debian/libgearbox0.symbols
[ -f "$lib" ] || { echo "update-symbols: no $lib (build first)" >&2; exit 1; }
version=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"/\1/p' "$B/config.h")
soname=$(readelf -d "$lib" | sed -n 's/.*(SONAME).*\[\(.*\)\]/\1/p')
tmp=$(mktemp)
{
	echo "$soname libgearbox0 #MINVER#"
	echo "* Build-Depends-Package: libgearbox-dev"
	# name@version-node (Base without a version script), as dpkg-gensymbols writes them
	readelf -W --dyn-syms "$lib" |
		awk '$5 == "GLOBAL" && $7 != "UND" && ($4 == "FUNC" || $4 == "OBJECT") { print $8 }' |
		sed -e 's/@@\{0,1\}/@/' -e '/@/!s/$/@Base/' | sort -u |
		while read -r sym; do
			old=$(grep -F " $sym " "$F" 2>/dev/null | awk '{ print $2 }' | head -n 1)
			echo " $sym ${old:-$version}"
		done
} >"$tmp"
mv "$tmp" "$F"
echo "update-symbols: $F: $(($(wc -l <"$F") - 2)) symbols of $soname"

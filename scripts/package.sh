#!/bin/sh
# SPDX-License-Identifier: MIT
# Build the Debian packages (debian/) from a clean clone of this checkout's
# HEAD, as a distribution's builder would, then run lintian on them:
#
#   scripts/package.sh            (OUT_DIR=build-deb by default)
#
# As root it installs what the build needs first (the Build-Depends of
# debian/control, debhelper, lintian); else it prints the apt-get line.
# The .debs, .buildinfo, .changes and lintian.txt end up in OUT_DIR/.
# Then, as root: apt-get install ./build-deb/*.deb
set -eu
cd "$(dirname "$0")/.."
OUT=${OUT_DIR:-build-deb}

# Packaging tools, by Debian package name (the build's own dependencies
# come from debian/control below).
PACKAGES="dpkg-dev debhelper fakeroot lintian git"
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "^install ok installed$" || missing="$missing $p"
done
# Build-Depends not satisfied, names only (dpkg-checkbuilddeps lists them with versions).
unmet=$(dpkg-checkbuilddeps debian/control 2>&1 | sed -n 's/.*Unmet build dependencies: //p' |
	sed -e 's/([^)]*)//g' -e 's/|[^ ]*//g' -e 's/:[a-z0-9]*//g') || true
missing="$missing $unmet"
if [ -n "$(echo "$missing" | tr -d ' ')" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "package: installing:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing >/dev/null
	else
		echo "package: these Debian packages are missing. Run as root:" >&2
		echo "  apt-get install --no-install-recommends$missing" >&2
		exit 1
	fi
fi

rm -rf "$OUT"
mkdir -p "$OUT"
git clone --quiet --no-hardlinks . "$OUT/gearbox"
# A distribution's build environment: Debian's tools only (an interpreter
# first on PATH, e.g. a pyenv python3, would otherwise build the Python part).
(cd "$OUT/gearbox" && env PATH=/usr/sbin:/usr/bin:/sbin:/bin dpkg-buildpackage -us -uc -b) >"$OUT/build.log" 2>&1 || {
	tail -40 "$OUT/build.log"
	echo "package: dpkg-buildpackage failed (whole log: $OUT/build.log)" >&2
	exit 1
}
rm -rf "$OUT/gearbox"
ls "$OUT"/*.deb
lintian --info --display-info "$OUT"/*.changes >"$OUT/lintian.txt" 2>&1 || true
echo "package: lintian: $(grep -c '^E:' "$OUT/lintian.txt" || true) errors, $(grep -c '^W:' "$OUT/lintian.txt" || true) warnings ($OUT/lintian.txt)"
grep -E '^(E|W):' "$OUT/lintian.txt" || true
! grep -q '^E:' "$OUT/lintian.txt"

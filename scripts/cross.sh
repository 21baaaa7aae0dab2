#!/bin/sh
# SPDX-License-Identifier: MIT
# Cross-build gearbox for Arm and run its tests under qemu-user:
#
#   scripts/cross.sh arm64|armhf [--no-check]
#
#   - as root, adds the Debian architecture (dpkg --add-architecture) and
#     installs the cross compiler, qemu-user and the :arm64/:armhf development
#     packages of every dependency (without root it prints the lines to run);
#   - umockdev's preload library cannot be installed for a second
#     architecture beside the native one (the package is not Multi-Arch: same;
#     apt would remove the native umockdev), so its Arm .deb is downloaded and
#     unpacked into build-ARCH/sysroot instead;
#   - configures build-ARCH/ with --host and -Werror, builds every program and
#     the unit tests, and runs `make check`: the check unit tests and the
#     command-line tests that need no daemon, each Arm program through
#     qemu-user (TEST_EMULATOR); the full-model checks use a subset of images.
#
# Ends with automake's totals as one line: "N passed, N failed, N skipped".
# GEARBOX_NATIVE=path/to/native/gearbox makes parity.sh also compare every
# image's top-1 class with the native build's.
set -eu
cd "$(dirname "$0")/.."
arch=${1:-}
check=yes
[ "${2:-}" = --no-check ] && check=no
case "$arch" in
arm64) host=aarch64-linux-gnu qemu=qemu-aarch64 ;;
armhf) host=arm-linux-gnueabihf qemu=qemu-arm ;;
*)
	echo "usage: scripts/cross.sh arm64|armhf [--no-check]" >&2
	exit 2
	;;
esac

# --- packages -----------------------------------------------------------------
native="autoconf automake libtool pkg-config make gcc gcc-$host qemu-user file"
foreign="libc6-dev libhwloc-dev libopenblas-dev libjson-c-dev libinih-dev check libsystemd-dev zlib1g-dev libpng-dev
  ocl-icd-opencl-dev"
# Unpacked into the sysroot, not installed (see above).
unpacked="umockdev"

missing=""
for p in $native; do
	dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
for p in $foreign; do
	dpkg-query -W -f='${Status}\n' "$p:$arch" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p:$arch"
done
has_arch=no
dpkg --print-foreign-architectures | grep -qx "$arch" && has_arch=yes
if [ -n "$missing" ] || [ $has_arch = no ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "cross: installing Debian packages:$missing"
		export DEBIAN_FRONTEND=noninteractive
		[ $has_arch = yes ] || dpkg --add-architecture "$arch"
		apt-get update -q >/dev/null
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing >/dev/null
	else
		echo "cross: these Debian packages are missing. Run as root:" >&2
		[ $has_arch = yes ] || echo "  dpkg --add-architecture $arch && apt-get update" >&2
		echo "  apt-get install --no-install-recommends$missing" >&2
		exit 1
	fi
fi

B=build-$arch
sysroot=$PWD/$B/sysroot
mkdir -p "$B/debs"
for p in $unpacked; do
	if ! ls "$B/debs/${p}_"*"_$arch.deb" >/dev/null 2>&1; then
		(cd "$B/debs" && apt-get download -q "$p:$arch" >/dev/null 2>&1) ||
			echo "cross: could not download $p:$arch; building without it"
	fi
done
for deb in "$B"/debs/*.deb; do
	[ -f "$deb" ] || continue
	stamp="$sysroot/.$(basename "$deb")"
	[ -f "$stamp" ] || { dpkg-deb -x "$deb" "$sysroot" && touch "$stamp"; }
done

# --- configure and build --------------------------------------------------------
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	./autogen.sh >"$B/autogen.out" 2>&1 || {
		cat "$B/autogen.out"
		exit 1
	}
fi
libdir=$sysroot/usr/lib/$host
set -- --host="$host" --enable-werror \
	PKG_CONFIG=pkg-config PKG_CONFIG_LIBDIR="/usr/lib/$host/pkgconfig:/usr/share/pkgconfig" \
	CPPFLAGS="-I$sysroot/usr/include" LDFLAGS="-L$libdir -Wl,-rpath,$libdir" \
	TEST_EMULATOR="$qemu" UMOCKDEV_PRELOAD="$libdir/libumockdev-preload.so.0"
cd "$B"
opts="$*"
if [ ! -f Makefile ] || [ "$(cat .configure-opts 2>/dev/null)" != "$opts" ]; then
	[ -f Makefile ] && { make clean >/dev/null 2>&1 || true; }
	../configure "$@" >configure.out 2>&1 || {
		cat configure.out
		exit 1
	}
	sed -n '/configuration summary/,$p' configure.out
	echo "$opts" >.configure-opts
fi
make -j"$(nproc)" >make.out 2>&1 || {
	grep -E 'error|warning' make.out || tail -40 make.out
	exit 1
}
make -j"$(nproc)" check TESTS= >>make.out 2>&1 || {
	grep -E 'error|warning' make.out || tail -40 make.out
	exit 1
}
echo "cross: built in $B/: gearboxd: $(file -b gearboxd | cut -d, -f1-3); $("$host-readelf" -h gearboxd | sed -n 's/^ *Flags: *//p')"
[ $check = yes ] || exit 0

# --- tests under qemu-user --------------------------------------------------------
status=0
make -j"$(nproc)" check >check.out 2>&1 || status=$?
for log in $(find tests -name '*.log' ! -name test-suite.log); do
	trs="${log%.log}.trs"
	if [ -f "$trs" ] && grep -q -E '^:test-result: (FAIL|ERROR|XPASS)' "$trs"; then
		echo "===== FAILED ($arch): ${log%.log} ====="
		cat "$log"
	fi
done
count() { sed -n "s/^# $1: *\([0-9]*\)\$/\1/p" check.out | tail -n 1; }
pass=$(count PASS) failed=$(count FAIL) errors=$(count ERROR) xpass=$(count XPASS) skip=$(count SKIP)
if [ -z "$pass" ]; then
	echo "cross: make check did not run the test suite:"
	tail -40 check.out
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
echo "${pass} passed, $((${failed:-0} + ${errors:-0} + ${xpass:-0})) failed, ${skip:-0} skipped"
exit "$status"

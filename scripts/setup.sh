#!/bin/sh
# SPDX-License-Identifier: MIT
# Shared set-up for scripts/demo.sh and scripts/test.sh: make sure the Debian
# packages gearbox needs are present (installing them when run as root, else
# printing the one apt-get line to run), then configure and build in build/.
#
#   scripts/setup.sh [configure options...]      (BUILD_DIR=dir to build elsewhere)
set -eu
cd "$(dirname "$0")/.."

# Build and test dependencies, by Debian package name.
# One line per purpose, so that additions do not collide.
PACKAGES="autoconf automake libtool pkg-config make gcc"
PACKAGES="$PACKAGES libhwloc-dev hwloc-nox libsystemd-dev ocl-icd-opencl-dev opencl-headers pocl-opencl-icd"
PACKAGES="$PACKAGES libopenblas-dev libjson-c-dev libinih-dev zlib1g-dev libpng-dev check"
PACKAGES="$PACKAGES dataset-fashion-mnist python3-torch python3-numpy"   # training, parity
PACKAGES="$PACKAGES umockdev libumockdev-dev valgrind systemd gnuplot-nox stress-ng"   # tests, benches
PACKAGES="$PACKAGES clang libclang-rt-dev"   # fuzz harnesses (libFuzzer)
PACKAGES="$PACKAGES python3-pil"   # the Python client's tests (PIL images; numpy is above)
PACKAGES="$PACKAGES liblpsolve55-dev lp-solve"   # tenant solver (MIP, LGPL-2.1+)

# Installed for this machine's architecture (or arch-independent): an :arm64
# or :armhf copy that scripts/cross.sh installed does not count.
native_arch=$(dpkg --print-architecture)
missing=""
for p in $PACKAGES; do
	dpkg-query -W -f='${Status} ${Architecture}\n' "$p" 2>/dev/null |
		grep -Eq "^install ok installed ($native_arch|all)\$" || missing="$missing $p"
done
if [ -n "$missing" ]; then
	if [ "$(id -u)" = 0 ]; then
		echo "setup: installing Debian packages:$missing"
		export DEBIAN_FRONTEND=noninteractive
		apt-get update -q >/dev/null
		# shellcheck disable=SC2086
		apt-get install -y -q --no-install-recommends $missing >/dev/null
	else
		echo "setup: these Debian packages are missing. Run as root:" >&2
		echo "  apt-get install --no-install-recommends$missing" >&2
		exit 1
	fi
fi

BUILD_DIR=${BUILD_DIR:-build}
mkdir -p "$BUILD_DIR"
if [ ! -x configure ] || [ configure.ac -nt configure ] || [ Makefile.am -nt Makefile.in ]; then
	./autogen.sh >"$BUILD_DIR/autogen.out" 2>&1 || {
		cat "$BUILD_DIR/autogen.out"
		exit 1
	}
fi
cd "$BUILD_DIR"
# Reconfigure when the options change. make does not rebuild objects when only
# the compiler flags changed, so objects built the other way (for example
# with the sanitizers of scripts/test.sh, before scripts/demo.sh) go first.
opts="$*"
if [ ! -f Makefile ] || [ "$(cat .configure-opts 2>/dev/null)" != "$opts" ]; then
	if [ -f Makefile ]; then
		echo "setup: $BUILD_DIR/ was configured with other options; rebuilding it from clean"
		make clean >/dev/null 2>&1 || true
	fi
	# shellcheck disable=SC2086
	../configure $opts >configure.out 2>&1 || {
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
echo "setup: built in $BUILD_DIR/ ($opts)"

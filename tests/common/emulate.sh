#!/bin/sh
# SPDX-License-Identifier: MIT
# make check's LOG_COMPILER in a cross build: `emulate.sh EMULATOR TEST`.
# Test programs (Arm ELF files) run under the emulator (qemu-user); test
# scripts run here as they are and find the emulator in GEARBOX_EMULATOR.
emu=$1
shift
case $(head -c 4 "$1" | od -An -c | tr -d ' ') in
*ELF*) exec $emu "$@" ;;
esac
exec "$@"

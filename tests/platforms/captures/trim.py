#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Keep only what gearbox's platform discovery (and hwloc, for the CPU
topology) reads from a captured sysfs/procfs tree, and pack it:

  tests/platforms/captures/trim.py CAPTURE_DIR NAME OUT.tar.gz

CAPTURE_DIR is an unpacked capture (hwloc's tests/hwloc/linux/*.tar.bz2,
util-linux's tests/ts/lscpu/dumps/*.tar.gz); the archive unpacks to one
folder NAME/ that serves as UMOCKDEV_DIR and HWLOC_FSROOT. Kept: the CPU
lists, each CPU's topology/, cpu_capacity, midr_el1 and cpufreq/ (without
stats/), cpufreq/ policies and boost, intel_pstate/no_turbo, cpu_core and
cpu_atom, devfreq, powercap, hwmon and the kernel Energy Model, and
/proc/cpuinfo. Symbolic links inside the tree stay links.
"""
import io
import os
import re
import sys
import tarfile

CPU = "sys/devices/system/cpu"
KEEP = [
    rf"{CPU}/(online|possible|present|kernel_max)",
    rf"{CPU}/cpu\d+/(online|cpu_capacity)",
    rf"{CPU}/cpu\d+/topology(/[^/]+)?",
    rf"{CPU}/cpu\d+/regs(/identification(/midr_el1)?)?",
    rf"{CPU}/cpu\d+/cpufreq(/(?!stats)[^/]+)?",
    rf"{CPU}/cpufreq(/boost|/policy\d+(/(?!stats)[^/]+)?)?",
    rf"{CPU}/intel_pstate(/no_turbo)?",
    r"sys/devices/cpu_(core|atom)(/cpus)?",
    r"sys/class/(devfreq|powercap|hwmon)(/.*)?",
    r"sys/kernel/debug/energy_model(/.*)?",
    r"proc/cpuinfo",
]
PATTERN = re.compile("^(" + "|".join(KEEP) + ")$")


def parents_of(rel):
    parts = rel.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def main(src, name, out):
    keep = []
    for root, dirs, files in os.walk(src):
        for entry in dirs + files:
            full = os.path.join(root, entry)
            rel = os.path.relpath(full, src)
            if PATTERN.match(rel):
                keep.append(rel)
    wanted = set(keep)
    for rel in keep:
        wanted.update(parents_of(rel))
    with tarfile.open(out, "w:gz", format=tarfile.GNU_FORMAT) as tar:
        for rel in sorted(wanted):
            full = os.path.join(src, rel)
            info = tar.gettarinfo(full, arcname=f"{name}/{rel}")
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            info.mtime = 0
            if info.isdir():
                info.mode = 0o755
                tar.addfile(info)
            elif info.issym():
                tar.addfile(info)
            elif info.isfile():
                info.mode = 0o644
                with open(full, "rb") as f:
                    tar.addfile(info, f)


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    main(*sys.argv[1:])

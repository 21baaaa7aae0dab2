#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Build a sysfs/procfs testbed from a compact platform description.

The testbed serves both as UMOCKDEV_DIR (umockdev redirects /sys, so
gearbox's own sysfs access sees it) and as HWLOC_FSROOT (hwloc
reads sys/ and proc/ below it):

  tests/platforms/mktestbed.py tests/platforms/odroid-xu3.platform OUTDIR
  LD_PRELOAD=libumockdev-preload.so.0 UMOCKDEV_DIR=OUTDIR HWLOC_FSROOT=OUTDIR gearbox platform

  tests/platforms/mktestbed.py --compare CAPTURE_DIR DESCRIPTION
      checks the generated tree against a real capture (same CPU topology,
      cpufreq policies and attribute names), e.g. ../shared/platforms.

Description format (INI): see the *.platform files beside this script.
"""
import configparser
import os
import sys


def cpu_list(text):
    cpus = []
    for part in text.replace(" ", "").split(","):
        if "-" in part:
            a, b = part.split("-")
            cpus += range(int(a), int(b) + 1)
        elif part:
            cpus.append(int(part))
    return cpus


def list_text(cpus):
    cpus = sorted(cpus)
    out, start = [], None
    for i, c in enumerate(cpus):
        if start is None:
            start = c
        if i + 1 == len(cpus) or cpus[i + 1] != c + 1:
            out.append(f"{start}-{c}" if c != start else f"{c}")
            start = None
    return ",".join(out)


def mask_text(cpus):
    value = 0
    for c in cpus:
        value |= 1 << c
    text = f"{value:x}"
    text = text.rjust((len(text) + 7) // 8 * 8, "0")
    return ",".join(text[i:i + 8] for i in range(0, len(text), 8))


def write(root, path, value):
    full = os.path.join(root, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    with open(full, "w") as f:
        f.write(f"{value}\n")


def build(desc_path, root):
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.optionxform = str
    if not cfg.read(desc_path):
        sys.exit(f"mktestbed: cannot read {desc_path}")
    plat = cfg["platform"]
    clusters = [(s.split(None, 1)[1], cfg[s]) for s in cfg.sections() if s.startswith("cluster ")]
    all_cpus = sorted(c for _, cl in clusters for c in cpu_list(cl["cpus"]))
    n = len(all_cpus)
    cpu = "sys/devices/system/cpu"
    for f in ("possible", "present", "online"):
        write(root, f"{cpu}/{f}", list_text(all_cpus))
    write(root, f"{cpu}/kernel_max", 8191)
    has_cpufreq = any("freqs" in cl or "max_freq" in cl for _, cl in clusters)
    cpuinfo = []
    core_id = 0
    for cname, cl in clusters:
        cpus = cpu_list(cl["cpus"])
        smt = int(cl.get("threads_per_core", "1"))
        per_cpu_policy = cl.get("policy", "cluster") == "per-cpu"
        freqs = [int(x) for x in cl.get("freqs", "").split()]
        fmin = int(cl.get("min_freq", freqs[0] if freqs else 0))
        fmax = int(cl.get("max_freq", freqs[-1] if freqs else 0))
        # "CPUS:KHZ" -- favoured cores that boost higher than their siblings.
        boost = {}
        if "max_freq_override" in cl:
            which, khz = cl["max_freq_override"].split(":")
            boost = {c: int(khz) for c in cpu_list(which)}
        governors = cl.get("governors", "performance powersave")
        governor = cl.get("governor", governors.split()[0])
        for i, c in enumerate(cpus):
            d = f"{cpu}/cpu{c}"
            siblings = cpus[i - i % smt:i - i % smt + smt]
            if i % smt == 0 and i:
                core_id += 1
            topo = {"physical_package_id": 0, "die_id": 0, "core_id": core_id if smt > 1 else c,
                    "cluster_id": cl.get("cluster_id", clusters.index((cname, cl))),
                    "core_cpus_list": list_text(siblings), "core_cpus": mask_text(siblings),
                    "thread_siblings_list": list_text(siblings), "thread_siblings": mask_text(siblings),
                    "cluster_cpus_list": list_text(cpus), "cluster_cpus": mask_text(cpus),
                    "package_cpus_list": list_text(all_cpus), "package_cpus": mask_text(all_cpus),
                    "core_siblings_list": list_text(all_cpus), "core_siblings": mask_text(all_cpus),
                    "die_cpus_list": list_text(all_cpus), "die_cpus": mask_text(all_cpus)}
            for k, v in topo.items():
                write(root, f"{d}/topology/{k}", v)
            write(root, f"{d}/online", 1)
            if "capacity" in cl:
                write(root, f"{d}/cpu_capacity", cl["capacity"])
            if "midr" in cl:  # arm64: MIDR_EL1 names the CPU part
                write(root, f"{d}/regs/identification/midr_el1", cl["midr"])
            block = (f"processor\t: {c}\nmodel name\t: {cl.get('model', cname)}\n"
                     f"physical id\t: 0\ncore id\t\t: {topo['core_id']}\n")
            if "cpu_part" in cl:  # Arm: "IMPLEMENTER:PART", as /proc/cpuinfo lists them
                impl, part = cl["cpu_part"].split(":")
                block += f"CPU implementer\t: {impl}\nCPU part\t: {part}\n"
            cpuinfo.append(block)
            if not has_cpufreq or not (freqs or "max_freq" in cl):
                continue
            policy_cpus = [c] if per_cpu_policy else cpus
            policy = c if per_cpu_policy else cpus[0]
            p = f"{cpu}/cpufreq/policy{policy}"
            # cpuN/cpufreq is a link to its policy, as in the kernel.
            link = os.path.join(root, d, "cpufreq")
            if not os.path.lexists(link):
                os.symlink(f"../cpufreq/policy{policy}", link)
            if policy != c:
                continue
            attrs = {"related_cpus": " ".join(map(str, policy_cpus)),
                     "affected_cpus": " ".join(map(str, policy_cpus)),
                     "cpuinfo_min_freq": fmin, "cpuinfo_max_freq": boost.get(c, fmax),
                     "cpuinfo_transition_latency": cl.get("transition_latency", 100000),
                     "scaling_driver": cl.get("driver", "cpufreq-dt"),
                     "scaling_available_governors": governors, "scaling_governor": governor,
                     "scaling_min_freq": int(cl.get("scaling_min", fmin)),
                     "scaling_max_freq": int(cl.get("scaling_max", boost.get(c, fmax))),
                     "scaling_cur_freq": int(cl.get("cur_freq", fmax))}
            if freqs:
                attrs["scaling_available_frequencies"] = " ".join(map(str, freqs))
            if "base_freq" in cl:
                attrs["base_frequency"] = cl["base_freq"]
            if "userspace" in governors.split():
                attrs["scaling_setspeed"] = "<unsupported>" if governor != "userspace" else fmax
            for k, v in attrs.items():
                write(root, f"{p}/{k}", v)
        # Kernel Energy Model (debugfs), when the description has one.
        if "energy_model" in cl:
            em = f"sys/kernel/debug/energy_model/cpu{cpus[0]}"
            write(root, f"{em}/cpus", list_text(cpus))
            for entry in cl["energy_model"].split():
                khz, uw = entry.split(":")
                write(root, f"{em}/ps:{khz}/frequency", khz)
                write(root, f"{em}/ps:{khz}/power", uw)
                write(root, f"{em}/ps:{khz}/cost", int(uw) // 1000)
    write(root, "proc/cpuinfo", "\n".join(cpuinfo))
    write(root, "proc/meminfo", "MemTotal:       4000000 kB\n")
    node = "sys/devices/system/node"
    for f in ("possible", "online", "has_cpu", "has_memory", "has_normal_memory"):
        write(root, f"{node}/{f}", 0)
    write(root, f"{node}/node0/cpumap", mask_text(all_cpus))
    write(root, f"{node}/node0/cpulist", list_text(all_cpus))
    write(root, f"{node}/node0/distance", 10)
    write(root, f"{node}/node0/meminfo", "Node 0 MemTotal:        4000000 kB\nNode 0 MemFree:         3000000 kB\n")

    for s in cfg.sections():
        kind, _, name = s.partition(" ")
        sec = cfg[s]
        if kind == "devfreq":
            d = f"sys/class/devfreq/{name}"
            freqs = sec["freqs"].split()
            attrs = {"available_frequencies": " ".join(freqs), "min_freq": freqs[0], "max_freq": freqs[-1],
                     "cur_freq": sec.get("cur_freq", freqs[-1]), "target_freq": freqs[-1],
                     "governor": sec.get("governor", "simple_ondemand"),
                     "available_governors": sec.get("governors", "userspace simple_ondemand performance powersave"),
                     "name": name}
            if "userspace" in attrs["available_governors"].split():
                attrs["userspace/set_freq"] = freqs[-1]
            for k, v in attrs.items():
                write(root, f"{d}/{k}", v)
            # What the device is: its device-tree node and its driver.
            if "compatible" in sec:
                full = os.path.join(root, d, "device/of_node/compatible")
                os.makedirs(os.path.dirname(full), exist_ok=True)
                with open(full, "wb") as f:
                    f.write(b"".join(c.encode() + b"\0" for c in sec["compatible"].split()))
            if "driver" in sec:
                os.makedirs(os.path.join(root, "sys/bus/platform/drivers", sec["driver"]), exist_ok=True)
                os.makedirs(os.path.join(root, d, "device"), exist_ok=True)
                os.symlink(f"../../../../bus/platform/drivers/{sec['driver']}", os.path.join(root, d, "device/driver"))
        elif kind == "ina231":  # Odroid XU3 sensors: sensor_W in watts
            d = f"sys/bus/i2c/drivers/INA231/{name}"
            write(root, f"{d}/enable", sec.get("enable", 1))
            write(root, f"{d}/sensor_W", sec.get("watts", "0.000000"))
            write(root, f"{d}/sensor_V", sec.get("volts", "1.000000"))
            write(root, f"{d}/sensor_A", sec.get("amps", "0.000000"))
            write(root, f"{d}/name", sec.get("label", name))
        elif kind == "ina3221":  # Jetson Nano: in_power{0,1,2}_input in mW
            d = f"sys/bus/i2c/drivers/ina3221x/{name}/iio:device0"
            for i, rail in enumerate(sec["rails"].split()):
                label, mw = rail.split(":")
                write(root, f"{d}/rail_name_{i}", label)
                write(root, f"{d}/in_power{i}_input", mw)
        elif kind == "rapl":
            d = f"sys/class/powercap/{name}"
            write(root, f"{d}/name", sec["name"])
            write(root, f"{d}/energy_uj", sec.get("energy_uj", 0))
            write(root, f"{d}/max_energy_range_uj", sec.get("max_energy_range_uj", 262143328850))
            write(root, f"{d}/enabled", 1)
        elif kind == "hwmon":
            d = f"sys/class/hwmon/{name}"
            write(root, f"{d}/name", sec["name"])
            for key, value in sec.items():
                if key != "name":
                    write(root, f"{d}/{key}", value)
    return root


def compare(capture, desc_path):
    """The generated testbed has the capture's CPUs, cpufreq policies (with
    their related CPUs and limits) and the attribute files gearbox reads."""
    import tempfile
    gen = build(desc_path, tempfile.mkdtemp(prefix="gearbox-cmp-"))
    problems = []
    for rel in ("sys/devices/system/cpu/possible", "sys/devices/system/cpu/online"):
        a, b = (open(os.path.join(r, rel)).read().strip() for r in (capture, gen))
        if a != b:
            problems.append(f"{rel}: capture {a!r}, generated {b!r}")
    pol = "sys/devices/system/cpu/cpufreq"
    cap_pols = sorted(os.listdir(os.path.join(capture, pol)))
    gen_pols = sorted(os.listdir(os.path.join(gen, pol)))
    if cap_pols != gen_pols:
        problems.append(f"policies differ: {cap_pols} vs {gen_pols}")
    for p in cap_pols:
        for attr in ("related_cpus", "cpuinfo_max_freq", "cpuinfo_min_freq", "scaling_driver",
                     "scaling_available_governors", "base_frequency"):
            fa, fb = os.path.join(capture, pol, p, attr), os.path.join(gen, pol, p, attr)
            if not os.path.exists(fa):
                continue
            a = open(fa).read().split()
            b = open(fb).read().split() if os.path.exists(fb) else None
            if a != b:
                problems.append(f"{p}/{attr}: capture {a}, generated {b}")
    for c in range(len(os.listdir(os.path.join(capture, pol)))):
        rel = f"sys/devices/system/cpu/cpu{c}/topology/core_cpus_list"
        fa = os.path.join(capture, rel)
        if os.path.exists(fa):
            a, b = open(fa).read().strip(), open(os.path.join(gen, rel)).read().strip()
            if a != b:
                problems.append(f"cpu{c} core_cpus_list: capture {a}, generated {b}")
    return problems


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--compare":
        found = compare(sys.argv[2], sys.argv[3])
        for p in found:
            print(p)
        print("testbed matches the capture" if not found else f"{len(found)} differences")
        sys.exit(1 if found else 0)
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    build(sys.argv[1], sys.argv[2])

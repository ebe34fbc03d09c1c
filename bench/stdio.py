#!/usr/bin/python3
"""The stdio channel's paths side by side in one TCG guest (docs/stdio.md).

Boots the `make image` guest once through build/bench/husk-stdio-driver and
runs its `bench` scenario STDIO_BENCH_ROUNDS times (default 3): per round,
guest->host (dd of zeros in 64 KiB writes to stdout) and host->guest (the
host writes stdin into `cat >/dev/null`) through (a) vsockfwd.ko, (b) the
agent's user-space relay and (c) ReadStdout/WriteStdin RPCs, as Kata's shim
uses them.  Throughput is end to end through libhusk; guest CPU is the whole
guest's busy time (/proc/stat) per GiB, the producer's included.  Prints the
absolute medians, then the ratios.  Environment: STDIO_BENCH_MIB (default
128), STDIO_BENCH_ROUNDS (default 3).
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))


def bundle_dir(build, tmp):
    with open(os.path.join(build, "demo", "config.json")) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = os.path.join(build, "demo", cfg["root"]["path"])
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    return tmp


def main():
    build = os.environ.get("HUSK_BUILD", os.path.join(TOP, "build"))
    mib = int(os.environ.get("STDIO_BENCH_MIB", "128"))
    rounds = int(os.environ.get("STDIO_BENCH_ROUNDS", "3"))
    driver = os.path.join(build, "bench", "husk-stdio-driver")
    kernel = os.path.join(build, "guest", "vmlinux")
    initrd = os.path.join(build, "guest", "initramfs.img")
    for path in (driver, kernel, initrd, os.path.join(build, "demo", "config.json")):
        if not os.path.exists(path):
            print(f"stdio bench: {path} missing (make image all)", file=sys.stderr)
            return 1
    state = tempfile.mkdtemp(prefix="husk-bench.", dir="/tmp")
    tmp = tempfile.mkdtemp(prefix="husk-bench-bundle.", dir="/tmp")
    env = dict(os.environ, HUSK_STATE_ROOT=state,
               HUSK_VSOCKD=os.path.join(build, "bin", "husk-vsockd"))
    env.pop("HUSK_STDIO", None)
    try:
        p = subprocess.run([driver, "--kernel", kernel, "--initrd", initrd,
                            "--bundle", bundle_dir(build, tmp)] +
                           [f"bench:{mib << 20}"] * rounds,
                           capture_output=True, text=True, timeout=3600, env=env)
    finally:
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(tmp, ignore_errors=True)
    rows = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    if p.returncode != 0 or not rows or not all(r["ok"] for r in rows):
        print(f"stdio bench failed ({p.returncode}):\n{p.stdout}{p.stderr}", file=sys.stderr)
        return 1
    med = {}
    for d in ("guest-to-host", "host-to-guest"):
        for path in ("vsockfwd", "relay", "rpc"):
            sel = [r for r in rows if r["direction"] == d and r["path"] == path]
            med[d, path] = (statistics.median(r["mb_s"] for r in sel),
                            statistics.median(r["guest_cpu_s_per_gib"] for r in sel))
    print(f"stdio channel, {mib} MiB per run, {rounds} rounds, TCG guest, medians")
    print(f"{'direction':<14} {'path':<9} {'MB/s':>8} {'guest CPU s/GiB':>16}")
    for (d, path), (mbs, cpu) in med.items():
        print(f"{d:<14} {path:<9} {mbs:>8.1f} {cpu:>16.2f}")
    print("ratios (vsockfwd over the others; CPU: how many times less)")
    for d in ("guest-to-host", "host-to-guest"):
        a = med[d, "vsockfwd"]
        for other in ("relay", "rpc"):
            o = med[d, other]
            print(f"{d:<14} vsockfwd/{other:<6} throughput x{a[0] / o[0]:.2f}  "
                  f"cpu x{o[1] / a[1]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""vsockfwd.ko against user-space relays, side by side in one TCG guest.

Boots the guest of kmod-vsockfwd/tests/vsockfwd_vm.py once and runs
`vsockfwd-test bench MIB ROUNDS`: per round and direction, the same stream
through vsockfwd.ko, a read/write relay and (pipe -> vsock) a splice relay,
plus a pipe-only baseline, and a 100-byte round trip through both
directions (kmod and read/write relay).  Prints the absolute figures, then the per-round
ratios and their medians.  Environment: VSOCKFWD_BENCH_MIB (default 128),
VSOCKFWD_BENCH_ROUNDS (default 3), VSOCKFWD_BENCH_SMP (vCPUs, default 2),
VSOCKFWD_BENCH_WRITE (producer write size in bytes, default 65536).
"""
import os
import re
import statistics
import sys

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(TOP, "kmod-vsockfwd", "tests"))
import vsockfwd_vm  # noqa: E402


def main():
    build = os.environ.get("HUSK_BUILD", os.path.join(TOP, "build"))
    ko = os.path.join(build, "guest", "vsockfwd.ko")
    tool = os.path.join(build, "guest", "vsockfwd-test")
    mib = os.environ.get("VSOCKFWD_BENCH_MIB", "128")
    rounds = os.environ.get("VSOCKFWD_BENCH_ROUNDS", "3")
    smp = int(os.environ.get("VSOCKFWD_BENCH_SMP", "2"))
    write = os.environ.get("VSOCKFWD_BENCH_WRITE", "65536")
    for path in (ko, tool):
        if not os.path.exists(path):
            print(f"vsockfwd bench: {path} missing (make kmod all)", file=sys.stderr)
            return 1
    text, kernel = vsockfwd_vm.run_guest(ko, tool, build, ["bench", mib, rounds, write],
                                         timeout=1800, smp=smp)
    rows = []
    for line in text.splitlines():
        if line.startswith("BENCH "):
            rows.append(dict(kv.split("=", 1) for kv in line.split()[1:]))
    if not rows or "DONE failures=0" not in text:
        print(text[-3000:])
        print("vsockfwd bench: the guest run failed", file=sys.stderr)
        return 1

    print(f"guest kernel {kernel}, TCG, {smp} vCPUs, vsock loopback, {mib} MiB per run,"
          f" {rounds} rounds, {write}-byte producer writes")
    print(f"{'direction':15} {'method':12} {'MB/s (median)':>14} {'guest CPU s/GiB':>16}"
          f" {'worker runs/MiB':>16}")
    table = {}
    for r in rows:
        table.setdefault((r["dir"], r["method"]), []).append(r)
    for (d, m), rs in table.items():
        mbps = statistics.median(float(r["mbps"]) for r in rs)
        cpu = statistics.median(float(r["cpu_s_per_gib"]) for r in rs)
        runs = statistics.median(float(r["runs_per_mib"]) for r in rs)
        runs_text = f"{runs:16.1f}" if m == "kmod" else f"{'-':>16}"
        print(f"{d:15} {m:12} {mbps:14.1f} {cpu:16.2f} {runs_text}")

    print("ratios of kmod, per round (same direction, same round):")
    for d in sorted({r["dir"] for r in rows}):
        for other in ("user-rw", "user-splice", "pipe-only"):
            ratios = []
            for rnd in sorted({r["round"] for r in rows}):
                by = {r["method"]: r for r in rows if r["dir"] == d and r["round"] == rnd}
                if "kmod" in by and other in by and float(by[other]["mbps"]) > 0:
                    ratios.append(float(by["kmod"]["mbps"]) / float(by[other]["mbps"]))
            if ratios:
                print(f"  {d:15} kmod/{other:12} median {statistics.median(ratios):.2f}x"
                      f"  (rounds: {', '.join(f'{x:.2f}' for x in ratios)})")

    lat = {}
    for line in text.splitlines():
        if line.startswith("LATENCY "):
            r = dict(kv.split("=", 1) for kv in line.split()[1:])
            lat.setdefault(r["method"], []).append(r)
    if lat:
        print("round trip of 100 bytes, pipe -> vsock -> (echo) -> vsock -> pipe,"
              " median over rounds:")
        for m, rs in lat.items():
            p50 = statistics.median(float(r["p50_us"]) for r in rs)
            p99 = statistics.median(float(r["p99_us"]) for r in rs)
            print(f"  {m:12} p50 {p50:8.0f} us   p99 {p99:8.0f} us")
    return 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/python3
"""Guest kernels and machines, and `husk run`, measured side by side (TCG).

For each row (guest image x machine type x TCG translation cache):
  agent ready   husk_sandbox_create() called -> the agent answers Health/Check
                (`husk run --timings`: QEMU and husk-vsockd start inside it)
  run           `husk run --rootfs build/demo/rootfs -- true`, start to exit
  bare          the same kernel, machine and devices booting an init that
                powers off at once: `husk vm-run` start to QEMU's exit, the
                floor any init pays (it includes guest shutdown and QEMU exit)
Rows are interleaved round by round; medians (minimum in parentheses).
Ratio agent-ready / bare: goal <= 1.05; agent ready: goal <= 1.0 s.

Memory: PSS of QEMU + husk-vsockd for one idle 128 MiB VM with the agent
ready (goal <= 60 MB), for several translation-cache sizes, and husk-agent's
RSS inside the guest (goal <= 1 MiB), read through the demo bundle.
Env: HUSK_BENCH_ROUNDS (default 5).
"""
import os
import re
import select
import statistics
import subprocess
import sys
import tempfile
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("HUSK_BUILD", os.path.join(TOP, "build"))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))

import guestimage  # noqa: E402

HUSK = os.path.join(BUILD, "bin", "husk")
DEMO = os.path.join(BUILD, "demo")
ROUNDS = int(os.environ.get("HUSK_BENCH_ROUNDS", "5"))
QEMU_DEFAULT_TB = 1024	# MiB: what QEMU 7.2 reserves when not told
HUSK_DEFAULT_TB = 16	# HUSK_VM_TCG_TB_MIB in husk.h

# (image, machine, tb-size MiB or None for husk's default)
ROWS = [
    ("minimal", "microvm", None),
    ("minimal", "q35", None),
    ("debian", "q35", None),
    ("minimal", "microvm", QEMU_DEFAULT_TB),
]
# (image, tb-size or None, VMs running together)
MEMORY_ROWS = [
    ("minimal", QEMU_DEFAULT_TB, 1), ("minimal", 32, 1), ("minimal", None, 1),
    ("minimal", 8, 1), ("debian", None, 1), ("minimal", None, 4),
]


def kernel_file(image):
    parts = ["guest", "vmlinux"] if image == "minimal" else ["guest", image, "vmlinux"]
    return os.path.join(BUILD, *parts)


def tb_args(tb):
    return ["--tb-size", str(tb)] if tb else []


def label(image, machine, tb):
    return f"{image} {machine}" + (f" tb={tb}M" if tb else "")


def husk_run(root, image, machine, tb, *args, **kw):
    env = dict(os.environ, HUSK_STATE_ROOT=root)
    return subprocess.Popen([HUSK, "run", "--accel", "tcg", "--kernel", image,
                             "--machine", machine, *tb_args(tb), *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def run_true(root, image, machine, tb):
    """(wall seconds, agent-ready seconds) of one `husk run ... true`."""
    t0 = time.monotonic()
    p = husk_run(root, image, machine, tb, "--timings", "--rootfs",
                 os.path.join(DEMO, "rootfs"), "--", "true")
    _, err = p.communicate(timeout=180)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"husk run ({label(image, machine, tb)}) failed: {err.decode()}")
    m = re.search(r"husk: +([0-9.]+) s  agent ready", err.decode())
    return wall, float(m.group(1))


def bare_boot(root, image, machine, tb, initrd):
    """Seconds from `husk vm-run` to QEMU's exit; the init powers off at once."""
    t0 = time.monotonic()
    p = subprocess.run([HUSK, "vm-run", "--kernel", kernel_file(image), "--initrd", initrd,
                        "--accel", "tcg", "--machine", machine, *tb_args(tb),
                        "--vsock", "vhost-user", "--state-root", root,
                        "--append", "quiet husk.test=poweroff"],
                       capture_output=True, text=True, timeout=180)
    elapsed = time.monotonic() - t0
    if '"guest_shutdown":true' not in p.stdout:
        raise RuntimeError(f"bare boot ({label(image, machine, tb)}): no guest shutdown: "
                           + p.stdout + p.stderr)
    return elapsed


def pss_kib(pid):
    with open(f"/proc/{pid}/smaps_rollup") as f:
        for line in f:
            if line.startswith("Pss:"):
                return int(line.split()[1])
    return 0


def pids_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read()
        except OSError:
            continue
        if text.encode() in cmd:
            found.append((int(pid), cmd))
    return found


def start_idle_vm(root, image, tb):
    """A husk run whose container prints the agent's memory, then idles."""
    # smaps_rollup walks the page tables; status's VmRSS lags behind in a
    # process that faults rarely (per-task RSS counters are synced lazily).
    script = "grep -E '^(Rss|Anonymous):' /run/guest-proc/1/smaps_rollup; echo ready; sleep 60"
    return husk_run(root, image, "microvm", tb, "--vm-memory", "128M", DEMO,
                    "--", "sh", "-c", script)


def wait_ready(p):
    out = b""
    deadline = time.monotonic() + 180
    while b"ready\n" not in out:
        r, _, _ = select.select([p.stdout], [], [], max(0.1, deadline - time.monotonic()))
        if not r or time.monotonic() > deadline:
            p.kill()
            raise RuntimeError("VM did not come up")
        out += os.read(p.stdout.fileno(), 4096)
    return out


def idle_memory(root, image, tb, count=1):
    """(QEMU PSS, husk-vsockd PSS, (agent RSS, its anonymous part) in the
    guest), KiB, per VM of `count` idle 128 MiB VMs running together (the
    kernel file's page cache and QEMU's text are shared between them)."""
    vms = [start_idle_vm(root, image, tb) for _ in range(count)]
    try:
        outs = [wait_ready(p) for p in vms]
        time.sleep(2)	# idle: no boot work left in the guest
        qemu = vsockd = 0
        for pid, cmd in pids_mentioning(root):
            if b"qemu-system" in cmd:
                qemu += pss_kib(pid)
            elif b"husk-vsockd" in cmd:
                vsockd += pss_kib(pid)
    finally:
        for p in vms:
            p.terminate()
            p.communicate(timeout=60)
    agent = (int(re.search(rb"Rss:\s+(\d+) kB", outs[0]).group(1)),
             int(re.search(rb"Anonymous:\s+(\d+) kB", outs[0]).group(1)))
    return qemu / count, vsockd / count, agent


def fmt(values):
    return f"{statistics.median(values):5.2f} ({min(values):.2f})"


def main():
    for need in (HUSK, os.path.join(DEMO, "config.json"), kernel_file("minimal"),
                 kernel_file("debian")):
        if not os.path.exists(need):
            print(f"run: {need} missing (make bench builds it)")
            return 1
    init = os.path.join(BUILD, "e2e", "husk-test-init")
    ready = {r: [] for r in ROWS}
    wall = {r: [] for r in ROWS}
    bare = {r: [] for r in ROWS}
    with tempfile.TemporaryDirectory(prefix="husk-bench.", dir="/tmp") as root:
        # The bare init needs no modules: one small initramfs for every kernel.
        initrd = guestimage.build_initramfs(init, None, os.path.join(root, "bare.cpio.gz"),
                                            modules=[])
        for _ in range(ROUNDS):
            for row in ROWS:
                bare[row].append(bare_boot(root, *row, initrd))
                w, r = run_true(root, *row)
                wall[row].append(w)
                ready[row].append(r)
        memory = {row: idle_memory(root, *row) for row in MEMORY_ROWS}

    m = statistics.median
    print(f"guest boot and husk run (TCG, {ROUNDS} interleaved rounds; "
          "seconds, median (min))")
    print(f"  {'image machine':<24} {'agent ready':>12} {'run true':>12} {'bare':>12}"
          f" {'ready/bare':>10} {'run/ready':>9}")
    for row in ROWS:
        print(f"  {label(*row):<24} {fmt(ready[row]):>12} {fmt(wall[row]):>12}"
              f" {fmt(bare[row]):>12} {m(ready[row]) / m(bare[row]):>10.2f}"
              f" {m(wall[row]) / m(ready[row]):>9.2f}")
    default = ROWS[0]
    print(f"  default ({label(*default)}): agent ready {m(ready[default]):.2f} s (goal <= 1.0),"
          f" {m(ready[default]) / m(bare[default]):.2f}x bare (goal <= 1.05)")
    print("idle 128 MiB VM on microvm, PSS in MiB per VM (goal <= 60 MB = 57.2 MiB)")
    for (image, tb, count), (qemu, vsockd, agent) in memory.items():
        tb_text = (f"tb-size {tb or HUSK_DEFAULT_TB} MiB" + ("" if tb else " (default)")
                   + (f", {count} VMs" if count > 1 else ""))
        print(f"  {image:<8} {tb_text:<34} QEMU {qemu / 1024:6.1f} + husk-vsockd "
              f"{vsockd / 1024:4.1f} = {(qemu + vsockd) / 1024:6.1f}"
              f"   husk-agent RSS {agent[0]} KiB, {agent[1]} KiB anonymous (goal <= 1024)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

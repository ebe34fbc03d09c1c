#!/usr/bin/python3
"""`husk run` benchmarks, measured side by side in one run (TCG).

(a) floor       QEMU + the same kernel + an init that powers off at once,
                start to QEMU exit (bench/vm-boot.py's boot_poweroff)
(b) run         `husk run --rootfs build/demo/rootfs -- true`, start to exit
(c) agent-ready from (b)'s --timings timeline
Ratios: agent-ready / floor (goal <= 1.05) and run / agent-ready.

Memory: host RSS of QEMU + husk-vsockd for an idle 128 MiB VM with the agent
ready (goal <= 60 MB together), and husk-agent's RSS inside the guest
(goal <= 1 MiB), read from the guest's /proc through the demo bundle.
Env: HUSK_BENCH_ROUNDS (default 3).
"""
import importlib.util
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
HUSK = os.path.join(BUILD, "bin", "husk")
DEMO = os.path.join(BUILD, "demo")
ROUNDS = int(os.environ.get("HUSK_BENCH_ROUNDS", "3"))

_spec = importlib.util.spec_from_file_location("vm_boot", os.path.join(TOP, "bench", "vm-boot.py"))
vm_boot = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(vm_boot)


def husk_run(root, *args, **kw):
    env = dict(os.environ, HUSK_STATE_ROOT=root)
    return subprocess.Popen([HUSK, "run", "--accel", "tcg", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kw)


def run_true(root):
    """(wall seconds, agent-ready seconds) of one `husk run ... true`."""
    t0 = time.monotonic()
    p = husk_run(root, "--timings", "--rootfs", os.path.join(DEMO, "rootfs"), "--", "true")
    out, err = p.communicate(timeout=180)
    wall = time.monotonic() - t0
    if p.returncode != 0:
        raise RuntimeError(f"husk run failed: {err.decode()}")
    m = re.search(r"husk: +([0-9.]+) s  agent ready", err.decode())
    return wall, float(m.group(1))


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pids_mentioning(text):
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def idle_memory(root):
    """(QEMU RSS, husk-vsockd RSS, agent RSS in the guest), KiB, idle 128 MiB VM."""
    script = "grep VmRSS /run/guest-proc/1/status; echo ready; sleep 30"
    p = husk_run(root, "--vm-memory", "128M", DEMO, "--", "sh", "-c", script)
    out = b""
    deadline = time.monotonic() + 180
    while b"ready\n" not in out:
        r, _, _ = select.select([p.stdout], [], [], max(0.1, deadline - time.monotonic()))
        if not r or time.monotonic() > deadline:
            p.kill()
            raise RuntimeError("VM did not come up")
        out += os.read(p.stdout.fileno(), 4096)
    time.sleep(1)	# let the guest settle: idle means no boot work left
    qemu = vsockd = 0
    for pid in pids_mentioning(root):
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read()
        if b"qemu-system" in cmd:
            qemu = rss_kib(pid)
        elif b"husk-vsockd" in cmd:
            vsockd = rss_kib(pid)
    p.terminate()
    p.communicate(timeout=60)
    agent = int(re.search(rb"VmRSS:\s+(\d+) kB", out).group(1))
    return qemu, vsockd, agent


def main():
    _, _, initrd = vm_boot.guestimage.guest_files(BUILD)
    kernel = os.path.join(BUILD, "guest", "vmlinux")
    floor, wall, ready = [], [], []
    with tempfile.TemporaryDirectory(prefix="husk-bench.", dir="/tmp") as root:
        for _ in range(ROUNDS):
            floor.append(vm_boot.boot_poweroff(root, kernel, initrd))
            w, r = run_true(root)
            wall.append(w)
            ready.append(r)
        qemu, vsockd, agent = idle_memory(root)
    m = statistics.median
    print(f"husk run (TCG, {ROUNDS} interleaved rounds, medians; min in parentheses)")
    print(f"  (a) floor: boot to poweroff-at-once init:  {m(floor):6.2f} s ({min(floor):.2f})")
    print(f"  (b) husk run --rootfs demo true:           {m(wall):6.2f} s ({min(wall):.2f})")
    print(f"  (c) agent ready (from (b)'s timeline):     {m(ready):6.2f} s ({min(ready):.2f})")
    # The box is shared: the minima are the least disturbed pair.
    print(f"  ratio agent-ready / floor:                 {m(ready) / m(floor):6.2f}"
          f"  (minima {min(ready) / min(floor):.2f}; goal <= 1.05)")
    print(f"  ratio run / agent-ready:                   {m(wall) / m(ready):6.2f}"
          f"  (minima {min(wall) / min(ready):.2f})")
    print(f"  idle 128 MiB VM: QEMU RSS {qemu / 1024:.1f} MiB + husk-vsockd RSS "
          f"{vsockd / 1024:.1f} MiB = {(qemu + vsockd) / 1024:.1f} MiB  (goal <= 60 MB)")
    print(f"  husk-agent RSS in the guest: {agent} KiB  (goal <= 1024 KiB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

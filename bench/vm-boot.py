#!/usr/bin/python3
"""libhusk VM benchmarks, measured side by side in one run (TCG).

boot-ready     `husk vm-run` start -> the test init accepts a vsock
               connection (modules loaded, services listening); also when
               husk_vm_start returned (husk-vsockd ready, QMP negotiated)
boot-poweroff  same start -> same kernel, an init that powers off at once
               (QEMU exit): the floor any init pays; and the same with the
               test init loading its modules and listening before it powers
               off, both ending at QEMU's exit
bzImage        boot-poweroff with the compressed bzImage instead of the
               extracted PVH vmlinux
throughput     64 MiB host->guest and guest->host over husk-vsockd

Each boot variant runs ROUNDS times, interleaved; medians are reported
with their ratios.  Env: HUSK_BENCH_ROUNDS (default 5).
"""
import hashlib
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import shutil
import time

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
BUILD = os.environ.get("HUSK_BUILD", os.path.join(TOP, "build"))
sys.path.insert(0, os.path.join(TOP, "tests", "e2e"))
sys.path.insert(0, os.path.join(TOP, "tests"))

import guestimage  # noqa: E402

HUSK = os.path.join(BUILD, "bin", "husk")
ROUNDS = int(os.environ.get("HUSK_BENCH_ROUNDS", "5"))
PORT_SINK, PORT_SOURCE, PORT_CONTROL = 5001, 5002, 5003
MIB = 1 << 20


def vm_run(root, kernel, initrd, append, vsock=True):
    args = [HUSK, "vm-run", "--kernel", kernel, "--initrd", initrd, "--accel", "tcg",
            "--state-root", root, "--append", f"quiet {append}".strip()]
    if vsock:
        args += ["--vsock", "vhost-user"]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def hybrid(path, port, timeout=10):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(b"CONNECT %d\n" % port)
        line = b""
        while not line.endswith(b"\n"):
            c = s.recv(1)
            if not c:
                raise ConnectionRefusedError(port)
            line += c
        return s
    except OSError:
        s.close()
        raise


def recv_line(s):
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        line += c
    return line


def boot_ready(root, kernel, initrd):
    """Seconds from `husk vm-run` to a pong from the guest's control port."""
    t0 = time.monotonic()
    p = vm_run(root, kernel, initrd, "")
    info = json.loads(p.stdout.readline())
    started = time.monotonic() - t0
    while True:
        try:
            s = hybrid(info["vsock"], PORT_CONTROL)
            s.sendall(b"ping\n")
            if recv_line(s) == b"pong\n":
                break
        except OSError:
            pass
        if time.monotonic() - t0 > 120 or p.poll() is not None:
            raise RuntimeError("guest never answered: " + p.stderr.read())
        time.sleep(0.01)
    elapsed = time.monotonic() - t0
    s.sendall(b"poweroff\n")
    p.communicate(timeout=60)
    return elapsed, started


def boot_poweroff(root, kernel, initrd, mode="poweroff"):
    """Seconds from `husk vm-run` to QEMU's exit after the init powers off."""
    t0 = time.monotonic()
    p = vm_run(root, kernel, initrd, f"husk.test={mode}")
    out, err = p.communicate(timeout=180)
    elapsed = time.monotonic() - t0
    if '"guest_shutdown":true' not in out:
        raise RuntimeError("no guest shutdown: " + out + err)
    return elapsed


def throughput(root, kernel, initrd, rounds=3):
    p = vm_run(root, kernel, initrd, "")
    info = json.loads(p.stdout.readline())
    t0 = time.monotonic()
    while True:
        try:
            hybrid(info["vsock"], PORT_CONTROL).close()
            break
        except OSError:
            if time.monotonic() - t0 > 120:
                raise
            time.sleep(0.05)
    data = os.urandom(64 * MIB)
    digest = hashlib.sha256(data).hexdigest().encode()
    up, down = [], []
    for _ in range(rounds):
        s = hybrid(info["vsock"], PORT_SINK, timeout=300)
        t = time.monotonic()
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        line = recv_line(s)
        up.append(64 / (time.monotonic() - t))
        s.close()
        assert line.split()[0] == digest, line
        s = hybrid(info["vsock"], PORT_SOURCE, timeout=300)
        t = time.monotonic()
        s.sendall(b"%d\n" % (64 * MIB))
        got = 0
        while got < 64 * MIB:
            c = s.recv(min(MIB, 64 * MIB - got))
            assert c
            got += len(c)
        down.append(64 / (time.monotonic() - t))
        s.close()
    s = hybrid(info["vsock"], PORT_CONTROL)
    s.sendall(b"poweroff\n")
    p.communicate(timeout=60)
    return statistics.median(up), statistics.median(down)


def main():
    for need in (HUSK, os.path.join(BUILD, "bin", "husk-vsockd")):
        if not os.path.exists(need):
            print(f"vm-boot: {need} missing, skipping (make all)")
            return 0
    vmlinux, bzimage, initrd = guestimage.guest_files(BUILD)
    root = tempfile.mkdtemp(prefix="husk-bench.", dir="/tmp")
    try:
        ready, started, floor, bz, full = [], [], [], [], []
        for _ in range(ROUNDS):
            r, st = boot_ready(root, vmlinux, initrd)
            ready.append(r)
            started.append(st)
            floor.append(boot_poweroff(root, vmlinux, initrd))
            full.append(boot_poweroff(root, vmlinux, initrd, "ready-poweroff"))
            bz.append(boot_poweroff(root, bzimage, initrd))
        up, down = throughput(root, vmlinux, initrd)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    m = statistics.median
    print(f"kernel: {vmlinux} (PVH) / {bzimage}; {ROUNDS} rounds, medians (min)")
    print(f"  husk_vm_start returned (QMP ready):  {m(started):6.2f} s ({min(started):.2f})")
    print(f"  boot to init ready (vsock accepted): {m(ready):6.2f} s ({min(ready):.2f})")
    print(f"  boot to poweroff-at-once init exit:  {m(floor):6.2f} s ({min(floor):.2f})")
    print(f"  same, init loads modules + listens:  {m(full):6.2f} s ({min(full):.2f})")
    print(f"  same, bzImage instead of vmlinux:    {m(bz):6.2f} s ({min(bz):.2f})")
    print(f"  ratio ready / poweroff floor:        {m(ready) / m(floor):6.2f}"
          "  (ready stops at accept; the floor includes guest shutdown + QEMU exit)")
    print(f"  ratio full / poweroff floor:         {m(full) / m(floor):6.2f}"
          "  (both end at QEMU exit: the test init's own cost)")
    print(f"  ratio bzImage / PVH vmlinux:         {m(bz) / m(floor):6.2f}")
    print(f"  vsock host->guest: {up:6.1f} MB/s   guest->host: {down:6.1f} MB/s"
          " (64 MiB, median of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

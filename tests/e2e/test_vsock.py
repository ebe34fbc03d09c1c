"""vsock between host and guest through libhusk + husk-vsockd under real
QEMU (TCG): both directions, 64 MiB each way with SHA-256 checked, 50
concurrent connections, resets, and a VM shutdown with connections open."""
import hashlib
import os
import shutil
import signal
import socket
import struct
import tempfile
import threading
import time

import pytest

from vmtest import (PORT_ECHO, PORT_SINK, PORT_SOURCE, Vm,
                      assert_no_leftovers, processes_mentioning, recv_line)

MIB = 1 << 20


@pytest.fixture(scope="module")
def served_vm(husk, guest, vsockd):
    root = tempfile.mkdtemp(prefix="husk-e2e.", dir="/tmp")
    vm = Vm(husk, guest, root)
    vm.started()
    yield vm
    if vm.proc.poll() is None:
        vm.control("poweroff")
        vm.wait_exit()
    assert_no_leftovers(root)
    for pid in processes_mentioning(root):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(root, ignore_errors=True)


def recv_exact(s, n):
    chunks, got = [], 0
    while got < n:
        c = s.recv(min(1 << 20, n - got))
        assert c, f"EOF after {got} of {n} bytes"
        chunks.append(c)
        got += len(c)
    return b"".join(chunks)


def test_host_to_guest_echo(served_vm):
    s = served_vm.connect(PORT_ECHO)
    for msg in (b"x", b"hello guest\n", os.urandom(100000)):
        s.sendall(msg)
        assert recv_exact(s, len(msg)) == msg
    s.shutdown(socket.SHUT_WR)
    assert s.recv(1) == b""      # the guest saw our EOF and closed
    s.close()


def test_guest_to_host_connect(served_vm):
    port = 6000
    listener = served_vm.listen(port)
    listener.settimeout(60)
    result = {}

    def accept():
        c, _ = listener.accept()
        c.settimeout(60)
        data = recv_exact(c, 4096)
        result["digest_line"] = recv_line(c).strip()
        result["data"] = data
        c.close()

    t = threading.Thread(target=accept)
    t.start()
    answer = served_vm.control(f"connect {port} 4096")
    t.join(60)
    listener.close()
    assert answer.startswith("ok "), answer
    digest = hashlib.sha256(result["data"]).hexdigest()
    assert result["digest_line"] == digest
    assert answer == f"ok {digest}"


def test_64mib_host_to_guest(served_vm):
    data = os.urandom(64 * MIB)
    s = served_vm.connect(PORT_SINK, timeout=300)
    t = time.monotonic()
    s.sendall(data)
    s.shutdown(socket.SHUT_WR)
    answer = recv_line(s).split()
    elapsed = time.monotonic() - t
    s.close()
    assert answer == [hashlib.sha256(data).hexdigest(), str(len(data))]
    print(f"host->guest 64 MiB: {64 / elapsed:.1f} MB/s")


def test_64mib_guest_to_host(served_vm):
    s = served_vm.connect(PORT_SOURCE, timeout=300)
    t = time.monotonic()
    s.sendall(b"%d\n" % (64 * MIB))
    data = recv_exact(s, 64 * MIB)
    digest = recv_line(s).strip()
    elapsed = time.monotonic() - t
    assert s.recv(1) == b""
    s.close()
    assert hashlib.sha256(data).hexdigest() == digest
    print(f"guest->host 64 MiB: {64 / elapsed:.1f} MB/s")


def test_50_concurrent_connections(served_vm):
    conns = [served_vm.connect(PORT_ECHO, timeout=120) for _ in range(50)]
    payloads = [os.urandom(64 * 1024) for _ in conns]
    errors = []

    def roundtrip(s, p):
        try:
            s.sendall(p)
            if recv_exact(s, len(p)) != p:
                errors.append("mismatch")
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(repr(e))

    # All 50 are open before any data moves, then all move at once.
    threads = [threading.Thread(target=roundtrip, args=a) for a in zip(conns, payloads)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(180)
    for s in conns:
        s.close()
    assert errors == []


def test_refused_and_reset_connections(served_vm):
    # Nothing listens on guest port 4999: the guest resets, no OK line.
    assert served_vm.connect(4999) is None
    # The host side aborts mid-transfer with unread echo data queued.
    s = served_vm.connect(PORT_ECHO)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.sendall(os.urandom(512 * 1024))
    s.close()
    # A guest connection to a host port nobody serves is reset (ECONNRESET).
    assert served_vm.control("connect 6999 10") == "err 104"
    # Everything keeps working afterwards.
    assert served_vm.control("ping") == "pong"
    s = served_vm.connect(PORT_ECHO)
    s.sendall(b"still alive")
    assert recv_exact(s, 11) == b"still alive"
    s.close()


def test_shutdown_with_connections_open(husk, guest, state_root, vsockd):
    vm = Vm(husk, guest, state_root)
    vm.started()
    idle = [vm.connect(PORT_ECHO) for _ in range(5)]
    busy = vm.connect(PORT_SOURCE, timeout=60)
    busy.sendall(b"%d\n" % (1 << 34))      # an endless-looking transfer
    busy.recv(65536)
    vm.control("poweroff")
    ex = vm.wait_exit(timeout=60)
    assert ex["guest_shutdown"] is True
    # Every host end sees the end of its stream, none hangs.
    for s in idle + [busy]:
        s.settimeout(30)
        try:
            while s.recv(1 << 20):
                pass
        except ConnectionResetError:
            pass
        s.close()
    assert_no_leftovers(state_root)

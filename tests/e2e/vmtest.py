"""Helpers for libhusk's e2e tests: real QEMU (TCG) VMs driven through
`husk vm-run`, the thin CLI over libhusk's vm API."""
import json
import os
import select
import signal
import socket
import subprocess
import time


READY = "HUSK-TEST-READY"
PORT_ECHO, PORT_SINK, PORT_SOURCE, PORT_CONTROL = 5000, 5001, 5002, 5003


def processes_mentioning(text):
    """Pids whose command line contains text (our VMs' state paths)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if text.encode() in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def hybrid_connect(path, port, timeout=30):
    """Connect through husk-vsockd's hybrid socket; None when refused."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    s.sendall(b"CONNECT %d\n" % port)
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            s.close()
            return None
        line += c
    assert line.startswith(b"OK "), line
    return s


def recv_line(s):
    line = b""
    while not line.endswith(b"\n"):
        c = s.recv(1)
        if not c:
            break
        line += c
    return line.decode()


class Vm:
    """One `husk vm-run` process and the VM it supervises."""

    def __init__(self, husk, guest, state_root, append="", vsock=True,
                 extra=(), stop_timeout_ms=3000, kernel=None):
        self.state_root = state_root
        args = [husk, "vm-run", "--kernel", kernel or guest.vmlinux,
                "--initrd", guest.initrd, "--accel", "tcg",
                "--state-root", state_root, "--append", f"quiet {append}".strip(),
                "--wait-console", READY, "--timeout", "120",
                "--stop-timeout", str(stop_timeout_ms)]
        if vsock:
            args += ["--vsock", "vhost-user"]
        args += list(extra)
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        self.info = None
        self.exit = None

    def started(self, timeout=150):
        """Wait for the 'started' line, printed after the READY marker."""
        line = self._line(timeout)
        assert line, f"vm-run ended before start: {self.proc.stderr.read()}"
        self.info = json.loads(line)
        assert self.info["event"] == "started"
        return self.info

    def _line(self, timeout):
        r, _, _ = select.select([self.proc.stdout], [], [], timeout)
        if not r:
            return None
        return self.proc.stdout.readline()

    def wait_exit(self, timeout=60):
        """Wait for vm-run to end; returns its 'exited' record (or None)."""
        # Not communicate(): it reads the raw fd and would miss what
        # started()'s readline() already buffered (a VM that powers off at
        # once prints "started" and "exited" together).  vm-run prints a
        # few lines only, so waiting first cannot fill the pipes.
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise
        out = self.proc.stdout.read()
        self.stderr = self.proc.stderr.read()
        for line in out.splitlines():
            rec = json.loads(line)
            if rec["event"] == "exited":
                self.exit = rec
        return self.exit

    def connect(self, port, timeout=30):
        return hybrid_connect(self.info["vsock"], port, timeout)

    def listen(self, port):
        """Host service for guest connections to host port `port`."""
        path = f"{self.info['vsock']}_{port}"
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(64)
        return s

    def control(self, command, timeout=60):
        s = self.connect(PORT_CONTROL)
        s.settimeout(timeout)
        s.sendall(command.encode() + b"\n")
        answer = recv_line(s)
        s.close()
        return answer.strip()

    def terminate(self):
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit()


def assert_no_leftovers(state_root):
    """Nothing of ours survives: processes, sockets, directories."""
    deadline = time.monotonic() + 10
    while processes_mentioning(state_root) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(state_root) == []
    assert os.listdir(state_root) == [], os.listdir(state_root)


class Guest:
    def __init__(self, vmlinux, bzimage, initrd):
        self.vmlinux, self.bzimage, self.initrd = vmlinux, bzimage, initrd

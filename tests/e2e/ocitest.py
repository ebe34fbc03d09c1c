"""Driving husk as containerd's runc shim does, for the OCI e2e tests
(test_oci*.py): the runtime with runc's global flags, a subreaper to reap
monitors, console sockets, and a state root cleaned up afterwards."""
import contextlib
import ctypes
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

PR_SET_CHILD_SUBREAPER = 36


def become_subreaper():
    """Adopt orphans, as containerd's shim does: a husk monitor's exit
    status is then observable with waitpid."""
    libc = ctypes.CDLL(None, use_errno=True)
    assert libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) == 0


class Runtime:
    """husk with runc's global flags, as containerd's shim calls it."""

    def __init__(self, husk, root, state_root):
        self.husk, self.root = husk, root
        self.log = os.path.join(root, "log.json")
        self.env = dict(os.environ, HUSK_ACCEL="tcg", HUSK_STATE_ROOT=state_root)

    def argv(self, *args):
        return [self.husk, "--root", self.root, "--log", self.log,
                "--log-format", "json", *args]

    def __call__(self, *args, check=True, timeout=180, stdin=subprocess.DEVNULL,
                 stdout=None, stderr=None):
        # A monitor inherits the stdio of create and exec --detach: pipes
        # would stay open after the command returns, so files stand in.
        with tempfile.TemporaryFile() as fo, tempfile.TemporaryFile() as fe:
            p = subprocess.run(self.argv(*args), env=self.env, stdin=stdin,
                               stdout=stdout or fo, stderr=stderr or fe, timeout=timeout)
            fo.seek(0)
            fe.seek(0)
            p.stdout, p.stderr = fo.read(), fe.read()
        if check:
            assert p.returncode == 0, (args, p.returncode, p.stderr)
        return p

    def container_ids(self):
        return [c for c in os.listdir(self.root) if os.path.isdir(os.path.join(self.root, c))]

    def is_pod_sandbox(self, cid):
        p = self("state", cid, check=False)
        if p.returncode != 0:
            return False
        notes = json.loads(p.stdout).get("annotations", {})
        return (notes.get("io.kubernetes.cri.container-type") == "sandbox"
                or notes.get("husk.sandbox") == cid)

    def state(self, cid):
        return json.loads(self("state", cid).stdout)

    def last_log_error(self):
        with open(self.log) as f:
            lines = [json.loads(line) for line in f if line.strip()]
        errors = [e for e in lines if e["level"] == "error"]
        assert errors, lines
        assert set(errors[-1]) == {"level", "msg", "time"}
        return errors[-1]["msg"]



@contextlib.contextmanager
def runtime(husk, state_root):
    """A Runtime on a fresh --root; every container is deleted afterwards,
    pod sandboxes last (a member's delete asks its sandbox's monitor)."""
    root = tempfile.mkdtemp(prefix="husk-oci.", dir="/tmp")
    rt = Runtime(husk, root, state_root)
    try:
        yield rt
    finally:
        for cid in sorted(rt.container_ids(), key=rt.is_pod_sandbox):
            rt("delete", "--force", cid, check=False)
        shutil.rmtree(root, ignore_errors=True)


def wait_pid(pid, timeout=60):
    """The exit status of a reparented monitor, as the shim reaps it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got, status = os.waitpid(pid, os.WNOHANG)
        if got == pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    raise AssertionError(f"monitor {pid} did not exit")


def read_until(fd, marker, timeout=60):
    data = b""
    deadline = time.monotonic() + timeout
    while marker not in data:
        assert time.monotonic() < deadline, data
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            time.sleep(0.05)
            continue
        except OSError:
            break
        if not chunk:
            break
        data += chunk
    return data


def console_listener(tmp_path):
    path = str(tmp_path / "console.sock")
    srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    srv.bind(path)
    srv.listen(1)
    return srv, path


def receive_master(srv):
    srv.settimeout(120)
    conn, _ = srv.accept()
    msg, fds, _, _ = socket.recv_fds(conn, 1024, 1)
    conn.close()
    assert len(fds) == 1 and msg.startswith(b"/dev/pts/"), msg
    os.set_blocking(fds[0], False)
    return fds[0]


def mounts_under(path):
    """Mount points below path, from this process's mountinfo."""
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(path + "/")]

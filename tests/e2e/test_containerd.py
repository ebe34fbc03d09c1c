"""containerd drives husk as the runc shim's runtime binary.

The test starts its own containerd (private config, root, state and
socket; stopped by pid afterwards), imports a busybox-static image it
assembles as an OCI image tarball (no network), and runs containers with
`ctr run --runtime io.containerd.runc.v2 --runc-binary husk`.
"""
import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time

import pytest

import husktest
from vmtest import assert_no_leftovers, processes_mentioning

IMAGE = "docker.io/library/husk-busybox:test"
APPLETS = ["sh", "echo", "cat", "sleep", "true", "false", "ls", "id", "hostname",
           "uname", "env", "test", "read"]


def blob(layout, data):
    digest = hashlib.sha256(data).hexdigest()
    path = os.path.join(layout, "blobs", "sha256", digest)
    with open(path, "wb") as f:
        f.write(data)
    return {"digest": f"sha256:{digest}", "size": len(data)}


def busybox_layer():
    """A gzipped tar of /bin/busybox and its applet links."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for d in ("bin", "tmp", "proc", "dev", "sys", "etc"):
            info = tarfile.TarInfo(d)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, 0
            tar.addfile(info)
        with open("/bin/busybox", "rb") as f:
            data = f.read()
        info = tarfile.TarInfo("bin/busybox")
        info.size, info.mode, info.mtime = len(data), 0o755, 0
        tar.addfile(info, io.BytesIO(data))
        for applet in APPLETS:
            info = tarfile.TarInfo(f"bin/{applet}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", 0
            tar.addfile(info)
    uncompressed = raw.getvalue()
    return gzip.compress(uncompressed, mtime=0), hashlib.sha256(uncompressed).hexdigest()


def build_image(path):
    """An OCI image layout tarball at path with one busybox layer."""
    layout = tempfile.mkdtemp(prefix="husk-img.", dir="/tmp")
    try:
        os.makedirs(os.path.join(layout, "blobs", "sha256"))
        layer, diff_id = busybox_layer()
        layer_desc = dict(blob(layout, layer),
                          mediaType="application/vnd.oci.image.layer.v1.tar+gzip")
        config = {"architecture": "amd64", "os": "linux",
                  "config": {"Env": ["PATH=/bin"], "Cmd": ["/bin/sh"]},
                  "rootfs": {"type": "layers", "diff_ids": [f"sha256:{diff_id}"]}}
        config_desc = dict(blob(layout, json.dumps(config).encode()),
                           mediaType="application/vnd.oci.image.config.v1+json")
        manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                    "config": config_desc, "layers": [layer_desc]}
        manifest_desc = dict(blob(layout, json.dumps(manifest).encode()),
                             mediaType="application/vnd.oci.image.manifest.v1+json",
                             platform={"architecture": "amd64", "os": "linux"},
                             annotations={"io.containerd.image.name": IMAGE,
                                          "org.opencontainers.image.ref.name": "test"})
        with open(os.path.join(layout, "index.json"), "w") as f:
            json.dump({"schemaVersion": 2, "manifests": [manifest_desc]}, f)
        with open(os.path.join(layout, "oci-layout"), "w") as f:
            json.dump({"imageLayoutVersion": "1.0.0"}, f)
        with tarfile.open(path, "w") as tar:
            tar.add(layout, arcname=".")
    finally:
        shutil.rmtree(layout)


class Containerd:
    def __init__(self, husk, state_root):
        self.husk = husk
        self.dir = tempfile.mkdtemp(prefix="husk-ctrd.", dir="/tmp")
        self.sock = os.path.join(self.dir, "c.sock")
        self.runc_root = os.path.join(self.dir, "runc")
        self.ns = f"husktest{os.getpid()}"
        config = os.path.join(self.dir, "config.toml")
        with open(config, "w") as f:
            f.write(f"""version = 2
root = "{self.dir}/root"
state = "{self.dir}/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "{self.sock}"
[ttrpc]
  address = "{self.sock}.ttrpc"
""")
        env = dict(os.environ, HUSK_ACCEL="tcg", HUSK_STATE_ROOT=state_root)
        self.log = open(os.path.join(self.dir, "containerd.log"), "wb")
        self.proc = subprocess.Popen(["containerd", "--config", config], env=env,
                                     stdout=self.log, stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while self.ctr("version", check=False).returncode != 0:
            assert self.proc.poll() is None, self.logtext()
            assert time.monotonic() < deadline, self.logtext()
            time.sleep(0.2)

    def logtext(self):
        with open(os.path.join(self.dir, "containerd.log")) as f:
            return f.read()[-4000:]

    def ctr(self, *args, check=True, timeout=240, **kw):
        kw.setdefault("stdout", subprocess.PIPE)
        kw.setdefault("stderr", subprocess.PIPE)
        kw.setdefault("stdin", subprocess.DEVNULL)
        p = subprocess.run(["ctr", "--address", self.sock, "--namespace", self.ns, *args],
                           timeout=timeout, **kw)
        if check:
            assert p.returncode == 0, (args, p.returncode, p.stdout, p.stderr)
        return p

    def run_args(self, *rest):
        return ["run", "--runtime", "io.containerd.runc.v2", "--runc-binary", self.husk,
                "--runc-root", self.runc_root, *rest]

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()
        # Shims outlive containerd by design: ours go once their tasks do.
        for pid in processes_mentioning(self.dir):
            os.kill(pid, signal.SIGKILL)
        subprocess.run(["umount", "-R", "-l", os.path.join(self.dir, "root")],
                       stderr=subprocess.DEVNULL)
        shutil.rmtree(self.dir, ignore_errors=True)


def assert_nothing_left(c):
    """No task, VM, husk state or shim of ours remains."""
    assert c.ctr("containers", "list", "--quiet").stdout == b""
    assert_no_leftovers(c.state_root)
    assert os.listdir(f"{c.runc_root}/{c.ns}") == []
    # Shims are started with -address <our socket>; each exits after its task.
    deadline = time.monotonic() + 30
    while processes_mentioning(c.sock) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert processes_mentioning(c.sock) == []


@pytest.fixture(scope="module")
def containerd(husk, tmp_path_factory):
    husktest.require_root()
    husktest.require_program("containerd")
    husktest.require_program("ctr")
    husktest.require_built("guest", "vmlinux", target="image")
    state_root = tempfile.mkdtemp(prefix="husk-e2e.", dir="/tmp")
    c = Containerd(husk, state_root)
    image = str(tmp_path_factory.mktemp("image") / "busybox.tar")
    build_image(image)
    c.ctr("images", "import", image)
    c.state_root = state_root
    yield c
    c.stop()
    for pid in processes_mentioning(state_root):
        os.kill(pid, signal.SIGKILL)
    shutil.rmtree(state_root, ignore_errors=True)


def test_run_output_exit_code_stdin(containerd):
    c = containerd
    p = c.ctr(*c.run_args("--rm", IMAGE, "ct-out", "/bin/sh", "-c",
                          "echo hello from husk; echo to-stderr >&2; exit 3"), check=False)
    assert p.returncode == 3, (p.stdout, p.stderr, c.logtext())
    assert p.stdout == b"hello from husk\n"
    assert b"to-stderr" in p.stderr

    p = c.ctr(*c.run_args("--rm", IMAGE, "ct-in", "/bin/sh", "-c", "read x; echo got:$x"),
              input=b"typed\n", stdin=None, check=False)
    assert p.returncode == 0, (p.stderr, c.logtext())
    assert p.stdout == b"got:typed\n"
    assert_nothing_left(c)


def test_bind_mount(containerd, tmp_path):
    """ctr's --mount: a host directory read and written in the VM, then unmounted."""
    c = containerd
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("from the host\n")
    p = c.ctr(*c.run_args("--rm", "--mount", f"type=bind,src={data},dst=/data,options=rbind:rw",
                          IMAGE, "ct-mnt", "/bin/sh", "-c",
                          "cat /data/in.txt; echo from-ctr > /data/out.txt"), check=False)
    assert p.returncode == 0, (p.stderr, c.logtext())
    assert p.stdout == b"from the host\n"
    assert (data / "out.txt").read_text() == "from-ctr\n"
    with open("/proc/self/mountinfo") as f:
        assert [m for m in f if c.runc_root in m.split()[4]] == []
    assert_nothing_left(c)


def test_exec_kill_delete(containerd):
    c = containerd
    c.ctr(*c.run_args("--detach", IMAGE, "ct-long", "/bin/sh", "-c",
                      "trap 'exit 42' TERM; while true; do sleep 0.2; done"))
    state = json.loads(subprocess.run(
        [c.husk, "--root", f"{c.runc_root}/{c.ns}", "state", "ct-long"],
        stdout=subprocess.PIPE, check=True).stdout)
    assert state["status"] == "running"

    p = c.ctr("tasks", "exec", "--exec-id", "e1", "ct-long", "/bin/sh", "-c",
              "echo exec-out; exit 5", check=False)
    assert p.returncode == 5, (p.stderr, c.logtext())
    assert p.stdout == b"exec-out\n"
    tasks = c.ctr("tasks", "list").stdout.decode()
    assert "ct-long" in tasks and "RUNNING" in tasks

    c.ctr("tasks", "kill", "ct-long")
    deadline = time.monotonic() + 60
    while "STOPPED" not in c.ctr("tasks", "list").stdout.decode():
        assert time.monotonic() < deadline
        time.sleep(0.2)
    # ctr has no "exit status" column: tasks delete warns about a non-zero one.
    p = c.ctr("tasks", "delete", "ct-long")
    assert b"exit code 42" in p.stdout + p.stderr, (p.stdout, p.stderr)
    c.ctr("containers", "delete", "ct-long")
    assert_nothing_left(c)


def run_on_pty(argv, timeout=240):
    """Run argv with a pty as its stdio; returns (exit code, output)."""
    master, slave = os.openpty()
    p = subprocess.Popen(argv, stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    while True:
        assert time.monotonic() < deadline, out
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: every slave fd is closed
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    return p.wait(timeout=60), out


def test_tty_run_and_exec_then_force_delete(containerd):
    c = containerd
    base = ["ctr", "--address", c.sock, "--namespace", c.ns]
    # ctr -t hands husk a console socket; the guest process sees a terminal.
    rc, out = run_on_pty(base + c.run_args("--rm", "-t", IMAGE, "ct-tty", "/bin/sh", "-c",
                                           "test -t 0 && test -t 1 && echo tty-yes; exit 6"))
    assert rc == 6 and b"tty-yes" in out, (rc, out, c.logtext())

    c.ctr(*c.run_args("--detach", "--annotation", "husk.vm.memory=160", IMAGE, "ct-force",
                      "/bin/sleep", "1000"))
    rc, out = run_on_pty(base + ["tasks", "exec", "-t", "--exec-id", "t1", "ct-force",
                                 "/bin/sh", "-c", "test -t 0 && echo exec-tty; exit 2"])
    assert rc == 2 and b"exec-tty" in out, (rc, out)
    state = json.loads(subprocess.run(
        [c.husk, "--root", f"{c.runc_root}/{c.ns}", "state", "ct-force"],
        stdout=subprocess.PIPE, check=True).stdout)
    assert state["annotations"]["husk.vm.memory"] == "160"
    # A forced delete of a running task: the shim sends kill --all 9, then delete.
    c.ctr("tasks", "delete", "--force", "ct-force")
    c.ctr("containers", "delete", "ct-force")
    assert_nothing_left(c)

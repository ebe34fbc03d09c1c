"""husk as a runc-compatible runtime: the lifecycle in the style of runc's
integration tests (create/start/state, exec, kill, delete, console socket,
pid files, list/ps, hooks, error cases) with real VMs under TCG.

Each container gets its own VM, so the tests share boots where they can.
The monitor processes are reparented to this test process (a subreaper),
as they are to containerd's shim, so their exit status is observable.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import pytest

from ocitest import console_listener, read_until, receive_master, wait_pid
from vmtest import assert_no_leftovers, processes_mentioning

pytestmark = pytest.mark.usefixtures("subreaper")


BUNDLES = []


@pytest.fixture(autouse=True)
def remove_bundles():
    yield
    while BUNDLES:
        shutil.rmtree(BUNDLES.pop(), ignore_errors=True)


def make_bundle(rootfs, args, terminal=False, hooks=None, annotations=None, extra=None):
    bundle = tempfile.mkdtemp(prefix="husk-bundle.", dir="/tmp")
    BUNDLES.append(bundle)
    os.symlink(rootfs, os.path.join(bundle, "rootfs"))
    config = {
        "ociVersion": "1.0.2",
        "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/bin:/usr/bin", "TERM=xterm"], "cwd": "/"},
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "oci-test",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "mode=755", "size=65536k"]},
            {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        ],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                 {"type": "uts"}]},
    }
    if hooks:
        config["hooks"] = hooks
    if annotations:
        config["annotations"] = annotations
    if extra:
        config.update(extra)
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    return bundle


def test_errors_without_a_vm(rt, rootfs, tmp_path):
    p = rt("state", "nosuch", check=False)
    assert p.returncode == 1 and b"container does not exist" in p.stderr
    assert rt.last_log_error() == "container does not exist"
    for args in (("kill", "nosuch", "KILL"), ("delete", "nosuch"), ("start", "nosuch"),
                 ("exec", "nosuch", "true"), ("ps", "nosuch")):
        p = rt(*args, check=False)
        assert p.returncode == 1 and b"does not exist" in p.stderr, (args, p.stderr)
    assert rt("delete", "--force", "nosuch").returncode == 0
    assert json.loads(rt("list", "--format", "json").stdout) == []

    # A bundle without config.json, a bad field, a bad id: nothing recorded.
    p = rt("create", "--bundle", str(tmp_path), "c1", check=False)
    assert p.returncode == 1 and b"config.json" in p.stderr
    bundle = make_bundle(rootfs, ["true"], extra={"bogus": 1})
    p = rt("create", "--bundle", bundle, "c1", check=False)
    assert p.returncode == 1 and b"bogus" in p.stderr, p.stderr
    bundle = make_bundle(rootfs, ["true"])
    p = rt("create", "--bundle", bundle, "-bad-", check=False)
    assert p.returncode != 0
    p = rt("create", "--bundle", bundle, "c/1", check=False)
    assert p.returncode == 1 and b"invalid container id" in p.stderr
    p = rt("kill", "c1", "NOTASIGNAL", check=False)
    assert p.returncode == 1
    # Checked before any VM boots: a bad VM size, a pod member.
    # Accepted but not enforced fields are named in a warning.
    seccomp = {"linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}],
                         "seccomp": {"defaultAction": "SCMP_ACT_ALLOW"}}}
    bundle = make_bundle(rootfs, ["true"], annotations={"husk.vm.cpus": "0"}, extra=seccomp)
    p = rt("create", "--bundle", bundle, "c1", check=False)
    assert p.returncode == 1 and b"annotation husk.vm.cpus: bad value '0'" in p.stderr
    assert b"linux.seccomp is ignored" in p.stderr, p.stderr
    bundle = make_bundle(rootfs, ["true"], annotations={
        "io.kubernetes.cri.container-type": "container",
        "io.kubernetes.cri.sandbox-id": "pod1"})
    p = rt("create", "--bundle", bundle, "c1", check=False)
    assert p.returncode == 1 and b"joining sandbox pod1" in p.stderr
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []

    # spec writes a config.json once; features is JSON.
    assert rt("spec", "--bundle", str(tmp_path)).returncode == 0
    spec = json.loads((tmp_path / "config.json").read_text())
    assert spec["process"]["args"] == ["sh"] and spec["root"]["path"] == "rootfs"
    p = rt("spec", "--bundle", str(tmp_path), check=False)
    assert p.returncode == 1 and b"exists" in p.stderr
    p = rt("spec", "--rootless", check=False)
    assert p.returncode == 1 and b"rootless" in p.stderr
    features = json.loads(rt("features").stdout)
    assert "prestart" in features["hooks"] and features["linux"]["cgroup"]["v2"]


def test_lifecycle(rt, rootfs, state_root, tmp_path):
    script = ("trap 'echo got-term; exit 42' TERM; trap 'echo got-usr1' USR1; "
              "echo init-out; echo init-err >&2; "
              "read line; echo stdin=$line; while true; do sleep 0.2; done")
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", script],
                         annotations={"org.example/key": "value", "husk.vm.memory": "192"})
    pid_file = tmp_path / "init.pid"
    out, err = tmp_path / "out", tmp_path / "err"
    r_in, w_in = os.pipe()
    with open(out, "wb") as fo, open(err, "wb") as fe:
        rt("create", "--bundle", bundle, "--pid-file", str(pid_file), "c1",
           stdin=r_in, stdout=fo, stderr=fe)
    os.close(r_in)
    pid = int(pid_file.read_text())
    st = rt.state("c1")
    assert st == {"ociVersion": st["ociVersion"], "id": "c1", "status": "created",
                  "pid": pid, "bundle": bundle,
                  "annotations": {"org.example/key": "value", "husk.vm.memory": "192"}}
    # The monitor holds the VM; create has returned.
    assert processes_mentioning(bundle)

    p = rt("create", "--bundle", bundle, "c1", check=False)
    assert p.returncode == 1 and b"already exists" in p.stderr
    p = rt("exec", "c1", "true", check=False)
    assert p.returncode == 1 and b"not running" in p.stderr

    rt("start", "c1")
    assert rt.state("c1")["status"] == "running"
    p = rt("start", "c1", check=False)
    assert p.returncode == 1 and b"already running" in p.stderr
    os.write(w_in, b"hello\n")
    deadline = time.monotonic() + 60
    while b"stdin=hello" not in out.read_bytes():
        assert time.monotonic() < deadline, out.read_bytes()
        time.sleep(0.1)
    assert b"init-err" in err.read_bytes()

    table = rt("list").stdout.decode().splitlines()
    assert len(table) == 2, table
    assert table[0].split()[:3] == ["ID", "PID", "STATUS"]
    assert table[1].split()[:3] == ["c1", str(pid), "running"]
    listed = json.loads(rt("list", "--format", "json").stdout)
    assert [(c["id"], c["pid"], c["status"], c["bundle"]) for c in listed] == \
        [("c1", pid, "running", bundle)]

    # exec in the foreground: output and exit status come back.
    p = rt("exec", "--env", "FOO=bar", "--cwd", "/tmp", "c1", "/bin/sh", "-c",
           "echo exec:$FOO:$(pwd); echo exec-err >&2; exit 3", check=False)
    assert p.returncode == 3, p.stderr
    assert p.stdout == b"exec:bar:/tmp\n" and b"exec-err" in p.stderr

    # husk.vm.memory=192 sized the VM (the default is 256 MiB).
    p = rt("exec", "c1", "/bin/sh", "-c", "head -1 /proc/meminfo")
    assert p.stdout.startswith(b"MemTotal:"), (p.stdout, p.stderr)
    mem_kib = int(p.stdout.split()[1])
    assert 100 * 1024 < mem_kib < 192 * 1024, p.stdout

    # exec --detach with a process.json: its monitor's pid goes to the pid file.
    proc = {"terminal": False, "args": ["/bin/sh", "-c", "read x; echo exec-$x; exit 5"],
            "env": ["PATH=/bin"], "cwd": "/", "user": {"uid": 0, "gid": 0}}
    (tmp_path / "process.json").write_text(json.dumps(proc))
    exec_pid_file = tmp_path / "exec.pid"
    exec_out = tmp_path / "exec.out"
    r2, w2 = os.pipe()
    with open(exec_out, "wb") as fo:
        rt("exec", "--process", str(tmp_path / "process.json"), "--detach",
           "--pid-file", str(exec_pid_file), "c1", stdin=r2, stdout=fo)
    os.close(r2)
    exec_pid = int(exec_pid_file.read_text())
    pids = json.loads(rt("ps", "--format", "json", "c1").stdout)
    assert pids == [pid, exec_pid]
    assert rt("ps", "c1").stdout.decode().startswith("PID")
    os.write(w2, b"data\n")
    os.close(w2)
    assert wait_pid(exec_pid) == 5
    assert exec_out.read_bytes() == b"exec-data\n"

    p = rt("delete", "c1", check=False)
    assert p.returncode == 1 and b"not stopped" in p.stderr

    # The shim signals monitors with kill(2): they forward to the guest.
    os.kill(pid, signal.SIGUSR1)
    deadline = time.monotonic() + 60
    while b"got-usr1" not in out.read_bytes():
        assert time.monotonic() < deadline, out.read_bytes()
        time.sleep(0.1)
    proc["args"] = ["/bin/sh", "-c", "trap 'exit 33' USR2; echo armed; "
                    "while true; do sleep 0.2; done"]
    (tmp_path / "process.json").write_text(json.dumps(proc))
    exec_out.write_bytes(b"")
    with open(exec_out, "wb") as fo:
        rt("exec", "--process", str(tmp_path / "process.json"), "--detach",
           "--pid-file", str(exec_pid_file), "c1", stdout=fo)
    exec_pid = int(exec_pid_file.read_text())
    deadline = time.monotonic() + 60
    while b"armed" not in exec_out.read_bytes():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    os.kill(exec_pid, signal.SIGUSR2)
    assert wait_pid(exec_pid) == 33

    # kill --all reaches exec'd processes too.
    proc["args"] = ["/bin/sleep", "1000"]
    (tmp_path / "process.json").write_text(json.dumps(proc))
    rt("exec", "--process", str(tmp_path / "process.json"), "--detach",
       "--pid-file", str(exec_pid_file), "c1")
    exec_pid = int(exec_pid_file.read_text())
    # USR1: the init traps it and lives on; the sleep dies of it.
    rt("kill", "--all", "c1", "USR1")
    assert wait_pid(exec_pid) == 128 + signal.SIGUSR1
    assert rt.state("c1")["status"] == "running"
    rt("kill", "c1", "SIGTERM")

    assert wait_pid(pid) == 42
    os.close(w_in)
    assert b"got-term" in out.read_bytes()
    assert rt.state("c1")["status"] == "stopped"
    p = rt("kill", "c1", "9", check=False)
    assert p.returncode == 1 and "container not running" in rt.last_log_error()
    rt("delete", "c1")
    assert not os.path.exists(os.path.join(rt.root, "c1"))
    assert_no_leftovers(state_root)
    assert processes_mentioning(bundle) == []


def test_kill_created_and_force_delete(rt, rootfs, state_root, tmp_path):
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", "sleep 1000"])
    rt("create", "--bundle", bundle, "--pid-file", str(tmp_path / "a.pid"), "ca")
    rt("create", "--bundle", bundle, "--pid-file", str(tmp_path / "b.pid"), "cb")
    a, b = int((tmp_path / "a.pid").read_text()), int((tmp_path / "b.pid").read_text())
    # A created container dies of a deadly signal without ever running;
    # SIGCONT leaves it alone.
    rt("kill", "ca", "CONT")
    assert rt.state("ca")["status"] == "created"
    rt("kill", "ca", "TERM")
    assert wait_pid(a) == 143
    rt("delete", "ca")
    # A running one goes with delete --force.
    rt("start", "cb")
    rt("delete", "--force", "cb")
    assert wait_pid(b) == 137
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert_no_leftovers(state_root)


def test_monitor_crash_then_delete(rt, rootfs, state_root, tmp_path):
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", "sleep 1000"])
    rt("create", "--bundle", bundle, "--pid-file", str(tmp_path / "c.pid"), "cc")
    rt("start", "cc")
    pid = int((tmp_path / "c.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    assert wait_pid(pid) == -signal.SIGKILL
    # The VM outlived its monitor; state says stopped, delete reaps the VM.
    assert rt.state("cc")["status"] == "stopped"
    rt("delete", "cc")
    assert_no_leftovers(state_root)
    assert processes_mentioning(bundle) == []


def test_create_killed_while_booting(rt, rootfs, state_root, tmp_path):
    """The shim gave up on create: the monitor boots on; delete still cleans."""
    bundle = make_bundle(rootfs, ["/bin/sleep", "1000"])
    with open(tmp_path / "out", "wb") as fo:
        create = subprocess.Popen(rt.argv("create", "--bundle", bundle, "ck"), env=rt.env,
                                  stdin=subprocess.DEVNULL, stdout=fo, stderr=fo)
    deadline = time.monotonic() + 30
    while not os.path.exists(os.path.join(rt.root, "ck", "state.json")):
        assert time.monotonic() < deadline
        time.sleep(0.02)
    create.kill()
    create.wait()
    assert rt.state("ck")["status"] in ("stopped", "created")
    rt("delete", "ck")
    assert not os.path.exists(os.path.join(rt.root, "ck"))
    # The monitor notices create's death and abandons the boot by itself.
    deadline = time.monotonic() + 30
    while processes_mentioning(bundle) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert processes_mentioning(bundle) == []
    assert_no_leftovers(state_root)


def test_console_socket_and_tty_exec(rt, rootfs, state_root, tmp_path):
    bundle = make_bundle(rootfs, ["/bin/sh", "-c",
                                  "test -t 0 && echo init-tty; read x; echo got=$x; sleep 1000"],
                         terminal=True)
    srv, path = console_listener(tmp_path)
    p = rt("create", "--bundle", bundle, "ct", check=False)
    assert p.returncode == 1 and b"console-socket" in p.stderr
    rt("create", "--bundle", bundle, "--console-socket", path,
       "--pid-file", str(tmp_path / "pid"), "ct")
    master = receive_master(srv)
    rt("start", "ct")
    assert b"init-tty" in read_until(master, b"init-tty")
    os.write(master, b"typed\r")
    assert b"got=typed" in read_until(master, b"got=typed")

    # exec -t: its own pty through the console socket.
    rt("exec", "--tty", "--detach", "--console-socket", path,
       "--pid-file", str(tmp_path / "exec.pid"), "ct", "/bin/sh", "-c",
       "test -t 1 && echo exec-tty; exit 4")
    exec_master = receive_master(srv)
    assert b"exec-tty" in read_until(exec_master, b"exec-tty")
    assert wait_pid(int((tmp_path / "exec.pid").read_text())) == 4
    os.close(exec_master)

    # exec -t in the foreground without a console socket: our own terminal.
    master2, slave2 = os.openpty()
    proc = subprocess.Popen(rt.argv("exec", "-t", "ct", "/bin/sh", "-c",
                                    "test -t 0 && echo own-tty; read x; echo typed=$x; exit 6"),
                            env=rt.env, stdin=slave2, stdout=slave2, stderr=slave2,
                            start_new_session=True)
    os.close(slave2)
    os.set_blocking(master2, False)
    assert b"own-tty" in read_until(master2, b"own-tty")
    os.write(master2, b"abc\r")
    assert b"typed=abc" in read_until(master2, b"typed=abc")
    assert proc.wait(timeout=60) == 6
    os.close(master2)
    p = rt("exec", "-t", "ct", "true", check=False)
    assert p.returncode == 1 and b"needs a terminal" in p.stderr

    rt("kill", "ct", "KILL")
    assert wait_pid(int((tmp_path / "pid").read_text())) == 137
    os.close(master)
    srv.close()
    rt("delete", "ct")
    assert_no_leftovers(state_root)


def test_hooks_order(rt, rootfs, state_root, tmp_path):
    log = tmp_path / "hooks.log"
    hook = tmp_path / "hook.sh"
    hook.write_text("#!/bin/sh\nstate=$(cat)\necho \"$1 $state\" >> " + str(log) + "\n")
    hook.chmod(0o755)

    def h(name):
        return [{"path": str(hook), "args": ["hook.sh", name]}]
    hooks = {k: h(k) for k in ("prestart", "createRuntime", "poststart", "poststop")}
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", "exit 0"], hooks=hooks)
    rt("create", "--bundle", bundle, "--pid-file", str(tmp_path / "pid"), "hk")
    rt("start", "hk")
    assert wait_pid(int((tmp_path / "pid").read_text())) == 0
    rt("delete", "hk")
    entries = [line.split(" ", 1) for line in log.read_text().splitlines()]
    assert [e[0] for e in entries] == ["prestart", "createRuntime", "poststart", "poststop"]
    states = [json.loads(e[1]) for e in entries]
    assert all(s["id"] == "hk" and s["bundle"] == bundle for s in states)
    assert [s["status"] for s in states] == ["created", "created", "running", "stopped"]

    # A failing createRuntime hook fails create and leaves nothing behind.
    bad = dict(hooks, createRuntime=[{"path": "/bin/false"}])
    bundle = make_bundle(rootfs, ["/bin/true"], hooks=bad)
    p = rt("create", "--bundle", bundle, "hk2", check=False)
    assert p.returncode == 1 and b"createRuntime hook /bin/false" in p.stderr
    assert not os.path.exists(os.path.join(rt.root, "hk2"))
    assert_no_leftovers(state_root)


def test_runc_style_run(rt, rootfs, state_root, tmp_path):
    """`husk --root R run`: create, start, wait, delete, the init's status."""
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", "echo run-out; exit 9"])
    out = tmp_path / "out"
    with open(out, "wb") as fo:
        p = rt("run", "--bundle", bundle, "rr", stdout=fo, check=False)
    assert p.returncode == 9, p.stderr
    assert out.read_bytes() == b"run-out\n"
    assert not os.path.exists(os.path.join(rt.root, "rr"))
    assert_no_leftovers(state_root)

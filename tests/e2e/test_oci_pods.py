"""Pods: containers whose annotations name a sandbox run in that sandbox's
VM (docs/oci-runtime.md, "Pods").  One pod VM under TCG carries every
member: each sees its own rootfs, they share the guest kernel, each
member's monitor gets its own stdio and exit status, a member's delete
takes its bind mount away, and deleting the sandbox leaves nothing.
"""
import json
import os
import shutil
import subprocess
import tempfile

import pytest

from ocitest import console_listener, mounts_under, read_until, receive_master, wait_pid
from vmtest import assert_no_leftovers, processes_mentioning

pytestmark = pytest.mark.usefixtures("subreaper")
BOOT_ID = "/proc/sys/kernel/random/boot_id"
CRI_SANDBOX = {"io.kubernetes.cri.container-type": "sandbox",
               "io.kubernetes.cri.sandbox-id": "pod1"}
CRI_MEMBER = {"io.kubernetes.cri.container-type": "container",
              "io.kubernetes.cri.sandbox-id": "pod1"}
HUSK_MEMBER = {"husk.sandbox": "pod1"}


@pytest.fixture
def bundles():
    made = []

    def make(name, rootfs, args, annotations, terminal=False, cgroup=False):
        """A bundle with a rootfs of its own, holding /whoami = name; cgroup:
        the container's cgroup at /sys/fs/cgroup."""
        bundle = tempfile.mkdtemp(prefix=f"husk-pod-{name}.", dir="/tmp")
        made.append(bundle)
        shutil.copytree(rootfs, os.path.join(bundle, "rootfs"), symlinks=True)
        with open(os.path.join(bundle, "rootfs", "whoami"), "w") as f:
            f.write(name + "\n")
        if cgroup:
            os.makedirs(os.path.join(bundle, "rootfs", "sys", "fs", "cgroup"))
        config = {
            "ociVersion": "1.0.2",
            "process": {"terminal": terminal, "user": {"uid": 0, "gid": 0}, "args": args,
                        "env": ["PATH=/bin:/usr/bin"], "cwd": "/"},
            "root": {"path": "rootfs", "readonly": True},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                     {"type": "uts"}]},
            "annotations": annotations,
        }
        if cgroup:
            config["mounts"].append({"destination": "/sys/fs/cgroup", "type": "cgroup2",
                                     "source": "cgroup"})
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f)
        return bundle

    yield make
    for bundle in made:
        shutil.rmtree(bundle, ignore_errors=True)


def is_qemu(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return b"qemu-system" in f.read().split(b"\0")[0]
    except OSError:
        return False


def create(rt, bundle, cid, tmp, stdin=None, console=()):
    """create with files for the monitor's stdout/stderr; returns (pid, out, err)."""
    out, err = tmp / f"{cid}.out", tmp / f"{cid}.err"
    pid_file = tmp / f"{cid}.pid"
    with open(out, "wb") as fo, open(err, "wb") as fe:
        p = rt("create", "--bundle", bundle, "--pid-file", str(pid_file), *console, cid,
               stdin=stdin if stdin is not None else open(os.devnull), stdout=fo, stderr=fe,
               check=False)
    assert p.returncode == 0, (cid, err.read_bytes())
    return int(pid_file.read_text()), out, err


def test_join_errors(rt, rootfs, bundles, state_root):
    member = bundles("m1", rootfs, ["true"], HUSK_MEMBER)
    p = rt("create", "--bundle", member, "m1", check=False)
    assert p.returncode == 1
    assert b"joining sandbox pod1: no such sandbox" in p.stderr, p.stderr
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []

    # A container that is not a pod sandbox cannot be joined.
    plain = bundles("pod1", rootfs, ["sleep", "1000"], {})
    rt("create", "--bundle", plain, "pod1", stdout=subprocess.DEVNULL,
       stderr=subprocess.DEVNULL)
    p = rt("create", "--bundle", member, "m1", check=False)
    assert p.returncode == 1 and b"not a pod sandbox" in p.stderr, p.stderr
    assert "joining sandbox pod1" in rt.last_log_error()
    assert not os.path.exists(os.path.join(rt.root, "m1"))
    rt("delete", "--force", "pod1")
    p = rt("create", "--bundle", member, "m1", check=False)
    assert p.returncode == 1 and b"no such sandbox" in p.stderr, p.stderr
    assert_no_leftovers(state_root)


def test_pod(rt, rootfs, bundles, state_root, tmp_path):
    pod = bundles("pod1", rootfs, ["sleep", "1000"], CRI_SANDBOX)
    # m1 waits for its stdin: it outlives m2 and exits 7 when told.
    m1 = bundles("m1", rootfs, ["sh", "-c", f"cat /whoami {BOOT_ID}; echo m1-stderr >&2; "
                                "read x; exit 7"], CRI_MEMBER)
    m2 = bundles("m2", rootfs, ["sh", "-c", f"cat /whoami {BOOT_ID}; exec sleep 1000"],
                 dict(HUSK_MEMBER, **{"husk.vm.memory": "128"}), cgroup=True)
    share = os.path.join(rt.root, "pod1", "shared")

    pod_pid, _, _ = create(rt, pod, "pod1", tmp_path)
    rt("start", "pod1")
    r, w = os.pipe()
    try:
        m1_pid, m1_out, m1_err = create(rt, m1, "m1", tmp_path, stdin=r)
    finally:
        os.close(r)
    m2_pid, m2_out, m2_err = create(rt, m2, "m2", tmp_path)
    assert "annotation husk.vm.memory is ignored" in m2_err.read_text()
    assert rt.state("m1")["status"] == "created"
    assert rt.state("m1")["pid"] == m1_pid != pod_pid
    assert sorted(mounts_under(share)) == [f"{share}/m1/rootfs", f"{share}/m2/rootfs"]
    # One VM: the sandbox's QEMU is the only one.
    assert len([p for p in processes_mentioning(state_root) if is_qemu(p)]) == 1

    rt("start", "m1")
    rt("start", "m2")
    assert rt.state("m2")["status"] == "running"
    # Each member's own rootfs; one guest kernel for all.
    boot_id = rt("exec", "pod1", "cat", BOOT_ID).stdout.decode().strip()
    assert rt("exec", "pod1", "cat", "/whoami").stdout == b"pod1\n"
    assert rt("exec", "m1", "cat", "/whoami").stdout == b"m1\n"
    assert rt("exec", "m2", "cat", BOOT_ID).stdout.decode().strip() == boot_id
    exec_pid_file = tmp_path / "exec.pid"
    rt("exec", "--detach", "--pid-file", str(exec_pid_file), "m2", "sleep", "1000")
    exec_pid = int(exec_pid_file.read_text())
    assert json.loads(rt("ps", "--format", "json", "m2").stdout) == [m2_pid, exec_pid]
    assert json.loads(rt("ps", "--format", "json", "m1").stdout) == [m1_pid]

    # pause, resume, update and events reach one member's cgroup in the shared VM.
    rt("pause", "m2")
    assert rt.state("m2")["status"] == "paused"
    assert rt.state("m1")["status"] == "running"
    assert rt("exec", "m1", "cat", "/whoami").stdout == b"m1\n"
    p = rt("exec", "m2", "true", check=False)
    assert p.returncode == 1 and b"cannot exec in a paused container" in p.stderr, p.stderr
    p = rt("pause", "m2", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not running"
    rt("resume", "m2")
    assert rt.state("m2")["status"] == "running"
    rt("update", "--pids-limit", "42", "m2")
    assert rt("exec", "m2", "cat", "/sys/fs/cgroup/pids.max").stdout == b"42\n"
    events = rt("events", "--stats", "m2").stdout.decode().splitlines()
    assert len(events) == 1, events
    event = json.loads(events[0])
    assert event["type"] == "stats" and event["id"] == "m2", event
    assert event["data"]["pids"]["limit"] == 42 and event["data"]["pids"]["current"] >= 2
    # A paused member still dies of KILL below: the kill thaws it.
    rt("pause", "m2")

    # Killing one member (--all: its exec'd process too) leaves the others running.
    rt("kill", "--all", "m2", "KILL")
    assert wait_pid(exec_pid) == 137
    assert wait_pid(m2_pid) == 137
    assert m2_out.read_text() == f"m2\n{boot_id}\n"
    assert rt.state("m2")["status"] == "stopped"
    assert rt.state("m1")["status"] == "running"
    assert rt.state("pod1")["status"] == "running"
    rt("delete", "m2")
    assert mounts_under(share) == [f"{share}/m1/rootfs"]
    assert not os.path.exists(os.path.join(share, "m2"))
    assert not os.path.exists(os.path.join(rt.root, "m2"))
    assert rt("exec", "m1", "true").returncode == 0

    # m1's stdin reaches it; its output and status reach its own monitor.
    os.write(w, b"go\n")
    os.close(w)
    assert wait_pid(m1_pid) == 7
    assert m1_out.read_text() == f"m1\n{boot_id}\n"
    assert "m1-stderr" in m1_err.read_text()
    rt("delete", "m1")
    assert mounts_under(share) == []

    # A member on a console; deleting the sandbox takes it along, and everything else.
    m3 = bundles("m3", rootfs, ["sh", "-c", "test -t 0 && echo m3-tty; read x; echo got=$x; "
                                "exec sleep 1000"], HUSK_MEMBER, terminal=True)
    srv, sock = console_listener(tmp_path)
    m3_pid, _, _ = create(rt, m3, "m3", tmp_path, console=("--console-socket", sock))
    master = receive_master(srv)
    srv.close()
    rt("start", "m3")
    assert b"m3-tty" in read_until(master, b"m3-tty")
    os.write(master, b"typed\r")
    assert b"got=typed" in read_until(master, b"got=typed")
    assert mounts_under(share) == [f"{share}/m3/rootfs"]
    p = rt("delete", "pod1", check=False)
    assert p.returncode == 1 and b"not stopped" in p.stderr
    rt("delete", "--force", "pod1")
    assert wait_pid(pod_pid) == 137
    assert wait_pid(m3_pid) == 137
    os.close(master)
    assert rt.state("m3")["status"] == "stopped"
    p = rt("exec", "m3", "true", check=False)
    assert p.returncode == 1
    rt("delete", "m3")
    assert mounts_under(rt.root) == []
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert_no_leftovers(state_root)

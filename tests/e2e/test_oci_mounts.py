"""Host bind mounts travel into the VM (docs/oci-runtime.md, "Mounts"): a
directory read and written from both sides, a file, read-only binds, and
nothing mounted or left behind afterwards.  One VM each for a single OCI
container, a pod member and `husk run` with a bundle, under TCG.
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

from ocitest import mounts_under, wait_pid
from vmtest import assert_no_leftovers

pytestmark = pytest.mark.usefixtures("subreaper")
HOSTS = "127.0.0.1 localhost\n10.1.2.3 from-the-host\n"


@pytest.fixture
def host(tmp_path):
    """What the host offers: a directory with a file in it, and a hosts file."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "in.txt").write_text("written on the host\n")
    hosts = tmp_path / "hosts"
    hosts.write_text(HOSTS)
    return data, hosts


def bind_mounts(data, hosts):
    return [
        {"destination": "/data", "type": "bind", "source": str(data),
         "options": ["rbind", "rw"]},
        {"destination": "/etc/hosts", "type": "bind", "source": str(hosts),
         "options": ["bind", "ro"]},
        {"destination": "/ro", "type": "none", "source": str(data),
         "options": ["rbind", "ro"]},
    ]


@pytest.fixture
def bundles():
    made = []

    def make(rootfs, args, mounts=(), annotations=None):
        """A read-only rootfs of its own, with the mount points a read-only root needs."""
        bundle = tempfile.mkdtemp(prefix="husk-mnt-bundle.", dir="/tmp")
        made.append(bundle)
        root = os.path.join(bundle, "rootfs")
        shutil.copytree(rootfs, root, symlinks=True)
        os.mkdir(os.path.join(root, "data"))
        os.mkdir(os.path.join(root, "ro"))
        open(os.path.join(root, "etc", "hosts"), "w").close()
        config = {
            "ociVersion": "1.0.2",
            "process": {"terminal": False, "user": {"uid": 0, "gid": 0}, "args": args,
                        "env": ["PATH=/bin:/usr/bin"], "cwd": "/"},
            "root": {"path": "rootfs", "readonly": True},
            "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                       {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
                       *mounts],
            "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}, {"type": "ipc"},
                                     {"type": "uts"}]},
            "annotations": annotations or {},
        }
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f)
        return bundle

    yield make
    for bundle in made:
        shutil.rmtree(bundle, ignore_errors=True)


def check_binds_in(rt, cid, data):
    """Through exec in cid: both directions of /data, the file, the read-only binds."""
    assert rt("exec", cid, "cat", "/data/in.txt").stdout == b"written on the host\n"
    rt("exec", cid, "sh", "-c", f"echo written in {cid} > /data/out.txt")
    assert (data / "out.txt").read_text() == f"written in {cid}\n"
    (data / "late.txt").write_text("after start\n")
    assert rt("exec", cid, "cat", "/data/late.txt").stdout == b"after start\n"
    assert rt("exec", cid, "cat", "/etc/hosts").stdout.decode() == HOSTS
    for target in ("/ro/f", "/etc/hosts"):
        p = rt("exec", cid, "sh", "-c", f"echo x >> {target}", check=False)
        assert p.returncode != 0 and b"Read-only file system" in p.stderr, p.stderr
    assert not (data / "f").exists()
    assert rt("exec", cid, "cat", "/ro/in.txt").stdout == b"written on the host\n"


def test_single_container(rt, rootfs, bundles, host, state_root):
    data, hosts = host
    bundle = bundles(rootfs, ["sleep", "1000"], bind_mounts(data, hosts))
    rt("create", "--bundle", bundle, "--pid-file", os.path.join(bundle, "pid"), "c1")
    pid = int(open(os.path.join(bundle, "pid")).read())
    shared = os.path.join(rt.root, "c1", "shared")
    # mounts[2..4]: bound by the monitor below the container's shared directory.
    assert sorted(mounts_under(shared)) == [f"{shared}/c1/mounts/{i}" for i in (2, 3, 4)]
    rt("start", "c1")
    check_binds_in(rt, "c1", data)

    rt("kill", "c1", "KILL")
    assert wait_pid(pid) == 137
    rt("delete", "c1")
    assert mounts_under(rt.root) == []
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    # The host's files are where they were: only mount points went.
    assert sorted(os.listdir(data)) == ["in.txt", "late.txt", "out.txt"]
    assert hosts.read_text() == HOSTS
    assert_no_leftovers(state_root)


def test_monitor_killed(rt, rootfs, bundles, host, state_root):
    """A SIGKILLed monitor cannot unmount: delete does it from the mount table."""
    data, hosts = host
    bundle = bundles(rootfs, ["sleep", "1000"], bind_mounts(data, hosts))
    rt("create", "--bundle", bundle, "--pid-file", os.path.join(bundle, "pid"), "c1")
    pid = int(open(os.path.join(bundle, "pid")).read())
    assert len(mounts_under(rt.root)) == 3
    os.kill(pid, signal.SIGKILL)
    assert wait_pid(pid) == -signal.SIGKILL
    assert rt.state("c1")["status"] == "stopped"
    rt("delete", "c1")
    assert mounts_under(rt.root) == []
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert sorted(os.listdir(data)) == ["in.txt"]
    assert_no_leftovers(state_root)


def test_errors_name_the_field(rt, rootfs, bundles, host, state_root):
    data, _ = host
    for source, expect in (("relative/dir", b"mounts[2].source: 'relative/dir' is not an "
                                            b"absolute host path"),
                           (str(data / "nosuch"), b"mounts[2].source: " +
                            str(data / "nosuch").encode() + b": No such file")):
        bundle = bundles(rootfs, ["true"], [{"destination": "/data", "type": "bind",
                                             "source": source}])
        p = rt("create", "--bundle", bundle, "c1", check=False)
        assert p.returncode == 1 and expect in p.stderr, p.stderr
        assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert mounts_under(rt.root) == []

    # Refused in the guest (no mount point on a read-only root) after the
    # host bound it: the failed create unbinds it.
    bundle = bundles(rootfs, ["true"], [{"destination": "/nosuch", "type": "bind",
                                         "source": str(data)}])
    p = rt("create", "--bundle", bundle, "c1", check=False)
    assert p.returncode == 1 and b"/nosuch: Read-only file system" in p.stderr, p.stderr
    assert mounts_under(rt.root) == []
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert sorted(os.listdir(data)) == ["in.txt"]
    assert_no_leftovers(state_root)


def test_pod_member(rt, rootfs, bundles, host, state_root):
    data, hosts = host
    pod = bundles(rootfs, ["sleep", "1000"],
                  annotations={"io.kubernetes.cri.container-type": "sandbox",
                               "io.kubernetes.cri.sandbox-id": "pod1"})
    member = bundles(rootfs, ["sleep", "1000"], bind_mounts(data, hosts),
                     annotations={"husk.sandbox": "pod1"})
    shared = os.path.join(rt.root, "pod1", "shared")
    rt("create", "--bundle", pod, "--pid-file", os.path.join(pod, "pid"), "pod1",
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    rt("start", "pod1")
    rt("create", "--bundle", member, "--pid-file", os.path.join(member, "pid"), "m1",
       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    m1_pid = int(open(os.path.join(member, "pid")).read())
    assert sorted(mounts_under(shared)) == sorted(
        [f"{shared}/m1/rootfs"] + [f"{shared}/m1/mounts/{i}" for i in (2, 3, 4)])
    rt("start", "m1")
    check_binds_in(rt, "m1", data)
    # The sandbox's own container does not see them.
    p = rt("exec", "pod1", "cat", "/data/in.txt", check=False)
    assert p.returncode != 0

    rt("kill", "m1", "KILL")
    assert wait_pid(m1_pid) == 137
    rt("delete", "m1")
    assert mounts_under(shared) == []
    assert not os.path.exists(os.path.join(shared, "m1"))
    rt("delete", "--force", "pod1")
    assert wait_pid(int(open(os.path.join(pod, "pid")).read())) == 137
    assert mounts_under(rt.root) == []
    assert [e for e in os.listdir(rt.root) if e != "log.json"] == []
    assert sorted(os.listdir(data)) == ["in.txt", "late.txt", "out.txt"]
    assert_no_leftovers(state_root)


def test_husk_run_bundle(husk, rootfs, bundles, host, state_root):
    data, hosts = host
    script = ("cat /data/in.txt /etc/hosts; echo from-run > /data/out.txt; "
              "echo x > /ro/f || echo ro-refused")
    bundle = bundles(rootfs, ["sh", "-c", script], bind_mounts(data, hosts))
    env = dict(os.environ, HUSK_STATE_ROOT=state_root)
    p = subprocess.run([husk, "run", "--accel", "tcg", bundle], env=env,
                       capture_output=True, timeout=180)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode() == "written on the host\n" + HOSTS + "ro-refused\n"
    assert b"Read-only file system" in p.stderr
    assert (data / "out.txt").read_text() == "from-run\n"
    assert mounts_under(state_root) == []
    assert_no_leftovers(state_root)

    # A relative source: refused before any VM boots, naming the field.
    with open(os.path.join(bundle, "config.json")) as f:
        config = json.load(f)
    config["mounts"][3]["source"] = "hosts"
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f)
    p = subprocess.run([husk, "run", "--accel", "tcg", bundle], env=env,
                       capture_output=True, timeout=60)
    assert p.returncode == 125
    assert b"mounts[3].source: 'hosts' is not an absolute host path" in p.stderr
    assert_no_leftovers(state_root)

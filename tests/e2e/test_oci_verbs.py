"""runc's pause, resume, update and events against one running container
in a real VM under TCG (one boot for the whole module).

The container's init counts in /tmp/counter; its cgroup is mounted at /sys
(the agent bind-mounts the container's own leaf), so exec can read the
limits the guest kernel enforces.
"""
import json
import os
import select
import shutil
import subprocess
import tempfile
import time

import pytest

import test_oci
from ocitest import Runtime, wait_pid
from test_oci import make_bundle
from vmtest import assert_no_leftovers

COUNTER = "i=0; while true; do i=$((i+1)); echo $i > /tmp/counter; sleep 0.1; done"


class Container:
    def __init__(self, rt, cid, pid, rootfs):
        self.rt, self.id, self.pid, self.rootfs = rt, cid, pid, rootfs

    def exec(self, script, check=True):
        return self.rt("exec", self.id, "/bin/sh", "-c", script, check=check)

    def read(self, path):
        return self.exec(f"cat {path}").stdout.decode().strip()

    def stats(self):
        out = self.rt("events", "--stats", self.id).stdout.decode().splitlines()
        assert len(out) == 1, out
        event = json.loads(out[0])
        assert event["type"] == "stats" and event["id"] == self.id, event
        return event["data"]


@pytest.fixture(scope="module")
def ctr(husk, subreaper, rootfs):
    state_root = tempfile.mkdtemp(prefix="husk-e2e.", dir="/tmp")
    root = tempfile.mkdtemp(prefix="husk-oci.", dir="/tmp")
    rt = Runtime(husk, root, state_root)
    mounts = {"mounts": [
        {"destination": "/proc", "type": "proc", "source": "proc"},
        {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"},
        {"destination": "/sys", "type": "cgroup2", "source": "cgroup"},
    ]}
    bundle = make_bundle(rootfs, ["/bin/sh", "-c", COUNTER], extra=mounts)
    pid_file = os.path.join(root, "init.pid")
    rt("create", "--bundle", bundle, "--pid-file", pid_file, "v1")
    rt("start", "v1")
    c = Container(rt, "v1", int(open(pid_file).read()), rootfs)
    try:
        yield c
    finally:
        rt("delete", "--force", "v1", check=False)
        try:
            wait_pid(c.pid, timeout=30)
        except (AssertionError, ChildProcessError):
            pass
        shutil.rmtree(root, ignore_errors=True)
        while test_oci.BUNDLES:
            shutil.rmtree(test_oci.BUNDLES.pop(), ignore_errors=True)
        assert_no_leftovers(state_root)
        shutil.rmtree(state_root, ignore_errors=True)


def wait_counter_above(c, value, timeout=60):
    deadline = time.monotonic() + timeout
    while True:
        # The loop rewrites the file: a read may catch it truncated.
        text = c.read("/tmp/counter")
        if text.isdigit() and int(text) > value:
            return int(text)
        assert time.monotonic() < deadline, (text, value)
        time.sleep(0.2)


def test_errors(ctr):
    rt = ctr.rt
    for verb in ("pause", "resume", "events"):
        p = rt(verb, "nosuch", check=False)
        assert p.returncode == 1 and b"container does not exist" in p.stderr, (verb, p.stderr)
    p = rt("update", "--memory", "64m", "nosuch", check=False)
    assert p.returncode == 1 and b"container does not exist" in p.stderr
    # Flags are checked before the container is looked at.
    p = rt("update", "--memory", "lots", "v1", check=False)
    assert p.returncode == 1
    assert rt.last_log_error() == "invalid value for --memory: 'lots'"
    p = rt("update", "--kernel-memory", "1m", "v1", check=False)
    assert p.returncode == 1 and b"--kernel-memory is not supported" in p.stderr
    p = rt("update", "v1", check=False)
    assert p.returncode == 1 and b"nothing to change" in p.stderr
    p = rt("events", "--interval", "0s", "v1", check=False)
    assert p.returncode == 1 and b"must be greater than 0" in p.stderr
    # The guest agent checks ranges and names the field.
    p = rt("update", "--cpu-share", "1", "v1", check=False)
    assert p.returncode == 1 and b"shares" in p.stderr, p.stderr
    p = rt("resume", "v1", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not paused"


def test_pause_resume(ctr):
    rt = ctr.rt
    before = wait_counter_above(ctr, 0)
    rt("pause", "v1")
    assert rt.state("v1")["status"] == "paused"
    listed = json.loads(rt("list", "--format", "json").stdout)
    assert [(c["id"], c["status"]) for c in listed] == [("v1", "paused")]
    assert rt("list").stdout.decode().splitlines()[1].split()[2] == "paused"

    # Frozen: not a nanosecond of cpu between two samples.
    first = ctr.stats()["cpu"]["usage"]["total"]
    time.sleep(1.5)
    assert ctr.stats()["cpu"]["usage"]["total"] == first

    p = rt("pause", "v1", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not running"
    p = ctr.exec("true", check=False)
    assert p.returncode == 1 and b"cannot exec in a paused container" in p.stderr
    p = rt("delete", "v1", check=False)
    assert p.returncode == 1 and b"not stopped: paused" in p.stderr

    rt("resume", "v1")
    assert rt.state("v1")["status"] == "running"
    assert ctr.read("/sys/cgroup.events").startswith("populated 1\nfrozen 0")
    after = wait_counter_above(ctr, before)
    wait_counter_above(ctr, after)


def test_update(ctr, tmp_path):
    rt = ctr.rt
    rt("update", "--memory", "64m", "--memory-reservation", "32m", "--cpu-quota", "20000",
       "--cpu-period", "100000", "--cpu-share", "512", "v1")
    assert ctr.read("/sys/memory.max") == str(64 << 20)
    assert ctr.read("/sys/memory.low") == str(32 << 20)
    assert ctr.read("/sys/cpu.max") == "20000 100000"
    assert ctr.stats()["memory"]["usage"]["limit"] == 64 << 20

    # The pids limit bites: forks beyond it fail inside the container.
    current = ctr.stats()["pids"]["current"]
    rt("update", "--pids-limit", str(current + 3), "v1")
    assert ctr.read("/sys/pids.max") == str(current + 3)
    p = ctr.exec("for i in 1 2 3 4 5 6 7 8; do sleep 2 & done; wait", check=False)
    assert b"fork" in p.stderr, (p.returncode, p.stderr)
    rt("update", "--pids-limit", "-1", "v1")
    assert ctr.read("/sys/pids.max") == "max"

    # -r: a linux.resources document from a file or stdin, strictly checked.
    res = tmp_path / "res.json"
    res.write_text(json.dumps({"memory": {"limit": 96 << 20}, "pids": {"limit": 50}}))
    rt("update", "-r", str(res), "v1")
    assert ctr.read("/sys/memory.max") == str(96 << 20)
    assert ctr.read("/sys/pids.max") == "50"
    with open(res, "w") as f:
        json.dump({"memory": {"limit": -1}, "cpu": {"quota": -1, "period": 50000}}, f)
    with open(res) as f:
        rt("update", "--resources", "-", "v1", stdin=f)
    assert ctr.read("/sys/memory.max") == "max"
    assert ctr.read("/sys/cpu.max") == "max 50000"
    res.write_text(json.dumps({"memory": {"limit": 1}, "bogus": 1}))
    p = rt("update", "-r", str(res), "v1", check=False)
    assert p.returncode == 1 and b"bogus" in p.stderr, p.stderr


def read_events(stream, until, timeout=60):
    """Event lines from stream up to the first one until(event) accepts."""
    events, buf = [], b""
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, events
        ready, _, _ = select.select([stream], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(stream.fileno(), 4096)
        assert chunk, events
        buf += chunk
        while b"\n" in buf:
            line, buf = buf.split(b"\n", 1)
            events.append(json.loads(line))
            if until(events[-1]):
                return events


def test_events_then_kill_paused(ctr):
    rt = ctr.rt
    data = ctr.stats()
    assert data["memory"]["usage"]["usage"] > 0
    assert data["pids"]["current"] >= 1 and data["pids"]["limit"] == 50
    assert data["cpu"]["usage"]["total"] > 0

    events = subprocess.Popen(rt.argv("events", "--interval", "300ms", "v1"), env=rt.env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    try:
        seen = read_events(events.stdout, lambda e: e["type"] == "stats")
        seen += read_events(events.stdout, lambda e: e["type"] == "stats")
        assert [e["type"] for e in seen] == ["stats", "stats"]
        assert all(e["id"] == "v1" and e["data"]["pids"]["current"] for e in seen)

        # An allocation past the limit is OOM-killed; events reports it.
        rt("update", "--memory", "32m", "v1")
        p = ctr.exec("x=$(head -c 80000000 /dev/zero | tr '\\0' a); echo ${#x}",
                     check=False)
        assert p.returncode == 137, (p.returncode, p.stdout, p.stderr)
        seen = read_events(events.stdout, lambda e: e["type"] == "oom")
        assert seen[-1] == {"type": "oom", "id": "v1"}
        assert ctr.stats()["memory"]["usage"]["limit"] == 32 << 20

        # SIGKILL reaches a paused container (husk thaws it, as runc does);
        # events ends with the container.
        rt("pause", "v1")
        rt("kill", "v1", "KILL")
        assert wait_pid(ctr.pid) == 137
        assert events.wait(timeout=60) == 0
    finally:
        if events.poll() is None:
            events.kill()
            events.wait()
    assert rt.state("v1")["status"] == "stopped"
    p = rt("pause", "v1", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not running"
    p = rt("events", "--stats", "v1", check=False)
    assert p.returncode == 1 and b"is not running" in p.stderr
    p = rt("update", "--memory", "64m", "v1", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not running"
    rt("delete", "v1")


def test_force_delete_paused(ctr, tmp_path):
    """A second VM: pause needs a running container; delete --force takes a
    frozen one down at once."""
    rt = ctr.rt
    bundle = make_bundle(ctr.rootfs, ["/bin/sh", "-c", COUNTER])
    pid_file = tmp_path / "v2.pid"
    rt("create", "--bundle", bundle, "--pid-file", str(pid_file), "v2")
    p = rt("pause", "v2", check=False)
    assert p.returncode == 1 and rt.last_log_error() == "container not running"
    rt("start", "v2")
    rt("pause", "v2")
    p = rt("start", "v2", check=False)
    assert p.returncode == 1
    rt("delete", "--force", "v2")
    assert wait_pid(int(pid_file.read_text())) == 137
    assert not os.path.exists(os.path.join(rt.root, "v2"))
    assert "v2" not in [c["id"] for c in json.loads(rt("list", "--format", "json").stdout)]

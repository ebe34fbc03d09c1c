"""The agent's loop keeps serving while a container is being set up.

A slow setup is made real, not simulated: the test freezes the sandbox's
cgroup (cgroup.freeze, behind the agent's back), so a container process
cloned into it, or one already in it, stops where it is.  CreateContainer,
StartContainer and ExecProcess then wait on a process that cannot answer,
and other connections must still get prompt answers.  A slow remove needs
a process SIGKILL cannot end at once: one frozen by the cgroup v1 freezer
stays in uninterruptible sleep until thawed (the v2 freezer lets SIGKILL
through).
"""
import os
import time

import husktest

import pytest

from helpers import Sandbox, make_process, make_spec
from ttrpc_client import ALREADY_EXISTS, DEADLINE_EXCEEDED, NOT_FOUND, RpcError

SANDBOX = "async-sb"
# A loop serving between events answers a health check in well under a
# millisecond; these bounds leave room for a shared, overloaded test machine
# (a blocked loop would not answer before the test lets the setup go on).
PROMPT_S = 0.4
PROMPT_MEDIAN_S = 0.05
# How long the setup is held up: the slow RPC must last at least this.
HOLD_S = 0.5


@pytest.fixture
def setup(agent_factory, pb, rootfs):
    agent = agent_factory()
    c = agent.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id=SANDBOX))
    sb = Sandbox(agent, c, pb, rootfs)
    freezer = Freezer(os.path.join(agent.cgroup, "husk", SANDBOX))
    yield agent, sb, freezer
    freezer.thaw()
    sb.cleanup()


class Freezer:
    """cgroup.freeze of the sandbox's cgroup (made here if no container made it yet)."""

    def __init__(self, path):
        self.path = path
        self.frozen = False

    def _write(self, value):
        with open(os.path.join(self.path, "cgroup.freeze"), "w") as f:
            f.write(value)

    def freeze(self):
        os.makedirs(self.path, exist_ok=True)
        self._write("1")
        self.frozen = True

    def thaw(self):
        if self.frozen and os.path.isdir(self.path):  # gone with its last container
            self._write("0")
        self.frozen = False


def health_latencies(agent, pb, n=10):
    """Health.Check round trips on a fresh connection, in seconds."""
    c = agent.client()
    out = []
    try:
        for _ in range(n):
            t0 = time.monotonic()
            r = c.call("Check", pb.health.CheckRequest(), service="grpc.Health", timeout=5)
            out.append(time.monotonic() - t0)
            assert r.status == pb.health.HealthCheckResponse.SERVING
    finally:
        c.close()
    return out


def hold_and_probe(agent, pb, pending):
    """While `pending` is held up: the loop answers others promptly, the call stays open."""
    lat = health_latencies(agent, pb)
    time.sleep(max(0.0, HOLD_S - sum(lat)))
    assert not pending.done(), "the slow call finished while its process was frozen"
    assert_prompt(lat)
    return lat


def assert_prompt(lat):
    lat = sorted(lat)
    assert lat[-1] < PROMPT_S, f"health checks took up to {lat[-1] * 1000:.0f} ms"
    assert lat[len(lat) // 2] < PROMPT_MEDIAN_S, f"median {lat[len(lat) // 2] * 1000:.0f} ms"


def test_loop_serves_during_a_slow_create(setup, pb):
    agent, sb, freezer = setup
    # Output waiting in a pipe of a running container, read on another connection.
    talker = sb.create(["sh", "-c", "echo ready; exec sleep 100"])
    sb.start(talker)
    time.sleep(0.2)

    freezer.freeze()
    spec_cid = sb.new_id("slow")
    t0 = time.monotonic()
    pending = sb.c.start("CreateContainer", pb.agent.CreateContainerRequest(
        container_id=spec_cid, exec_id=spec_cid,
        OCI=make_spec(pb, sb.rootfs, ["sh", "-c", "echo made; exit 4"])))
    sb.created.append(spec_cid)

    other = agent.client()
    t1 = time.monotonic()
    r = other.call("ReadStdout", pb.agent.ReadStreamRequest(
        container_id=talker, exec_id=talker, len=100), timeout=5)
    read_s = time.monotonic() - t1
    other.close()
    assert r.data == b"ready\n"
    assert read_s < PROMPT_S, f"ReadStdout took {read_s * 1000:.0f} ms"
    lat = hold_and_probe(agent, pb, pending)

    freezer.thaw()
    pending.result(timeout=10)
    create_s = time.monotonic() - t0
    assert create_s >= HOLD_S
    print(f"create held {create_s * 1000:.0f} ms; health check max "
          f"{max(lat) * 1000:.1f} ms, ReadStdout {read_s * 1000:.1f} ms")
    # The container that waited is whole.
    sb.start(spec_cid)
    assert sb.collect(spec_cid, spec_cid) == (4, b"made\n", b"")


def test_loop_serves_during_a_slow_start_and_exec(setup, pb):
    agent, sb, freezer = setup
    cid = sb.create(["sh", "-c", "echo started; exec sleep 100"])
    freezer.freeze()
    pending = sb.c.start("StartContainer", pb.agent.StartContainerRequest(container_id=cid))
    hold_and_probe(agent, pb, pending)
    freezer.thaw()
    pending.result(timeout=10)
    r = sb.c.call("ReadStdout", pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid,
                                                            len=100))
    assert r.data == b"started\n"

    freezer.freeze()
    pending = sb.c.start("ExecProcess", pb.agent.ExecProcessRequest(
        container_id=cid, exec_id="slow-exec",
        process=make_process(pb, ["sh", "-c", "echo execd; exit 7"])))
    hold_and_probe(agent, pb, pending)
    freezer.thaw()
    pending.result(timeout=10)
    assert sb.collect(cid, "slow-exec") == (7, b"execd\n", b"")


def test_create_of_a_taken_id_while_pending(setup, pb):
    agent, sb, freezer = setup
    freezer.freeze()
    cid = sb.new_id("dup")
    req = pb.agent.CreateContainerRequest(
        container_id=cid, exec_id=cid, OCI=make_spec(pb, sb.rootfs, ["true"]))
    first = sb.c.start("CreateContainer", req)
    sb.created.append(cid)
    time.sleep(0.1)
    # The id is taken while its create is in flight; the container is not yet visible.
    with pytest.raises(RpcError) as dup:
        agent.client().call("CreateContainer", req, timeout=5)
    assert dup.value.code == ALREADY_EXISTS
    with pytest.raises(RpcError) as early:
        agent.client().call("StartContainer",
                            pb.agent.StartContainerRequest(container_id=cid), timeout=5)
    assert early.value.code == NOT_FOUND
    assert not first.done()
    freezer.thaw()
    first.result(timeout=10)
    sb.start(cid)
    assert sb.wait(cid, cid) == 0


def test_remove_of_a_frozen_container_completes(setup, pb):
    """SIGKILL reaches frozen tasks: RemoveContainer needs no thaw and leaves no cgroup."""
    agent, sb, freezer = setup
    cid = sb.create(["sleep", "100"])
    sb.start(cid)
    eid = sb.exec(cid, ["sleep", "100"])
    waiter = sb.c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid,
                                                                     exec_id=eid))
    freezer.freeze()
    t0 = time.monotonic()
    sb.remove(cid)
    print(f"remove of a frozen container: {(time.monotonic() - t0) * 1000:.0f} ms")
    assert waiter.result(timeout=5).status == 128 + 9
    assert not os.path.exists(os.path.join(freezer.path, cid))


V1_FREEZER = "/sys/fs/cgroup/freezer"


def v1_freezer_mounted():
    with open("/proc/self/mounts") as f:
        return any(line.split()[1] == V1_FREEZER and line.split()[2] == "cgroup"
                   for line in f)


class V1Freezer:
    """A cgroup of the v1 freezer hierarchy holding a container's processes."""

    def __init__(self, name):
        self.path = os.path.join(V1_FREEZER, name)
        os.mkdir(self.path)

    def freeze(self, pids):
        for pid in pids:
            with open(os.path.join(self.path, "cgroup.procs"), "w") as f:
                f.write(str(pid))
        self._state("FROZEN")
        deadline = time.monotonic() + 5
        while open(os.path.join(self.path, "freezer.state")).read().strip() != "FROZEN":
            assert time.monotonic() < deadline, "v1 freezer did not freeze"
            time.sleep(0.01)

    def thaw(self):
        self._state("THAWED")

    def _state(self, value):
        with open(os.path.join(self.path, "freezer.state"), "w") as f:
            f.write(value)

    def remove(self):
        self.thaw()
        deadline = time.monotonic() + 5
        while True:
            try:
                os.rmdir(self.path)
                return
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)


def test_loop_serves_during_a_slow_remove(setup, pb):
    husktest.require_host_feature(v1_freezer_mounted(),
                                  "no cgroup v1 freezer to hold a killed process "
                                  "(the create/start/exec cases above cover the loop)")
    agent, sb, _ = setup
    cid = sb.create(["sleep", "100"])
    sb.start(cid)
    sb.exec(cid, ["sleep", "100"])
    leaf = os.path.join(agent.cgroup, "husk", SANDBOX, cid)
    with open(os.path.join(leaf, "cgroup.procs")) as f:
        pids = [int(p) for p in f.read().split()]
    assert len(pids) == 2
    v1 = V1Freezer(f"husk-async-test-{os.getpid()}")
    try:
        v1.freeze(pids)
        # A bounded remove gives up, says why, and leaves the container.
        t0 = time.monotonic()
        pending = sb.c.start("RemoveContainer", pb.agent.RemoveContainerRequest(
            container_id=cid, timeout=1))
        lat = health_latencies(agent, pb)
        with pytest.raises(RpcError) as timed_out:
            pending.result(timeout=10)
        assert timed_out.value.code == DEADLINE_EXCEEDED
        assert "processes still alive after 1 s" in timed_out.value.message
        assert time.monotonic() - t0 >= 1.0
        assert_prompt(lat)
        assert os.path.isdir(leaf)

        # Retried, it waits for the thaw, serving others meanwhile.
        t0 = time.monotonic()
        pending = sb.c.start("RemoveContainer", pb.agent.RemoveContainerRequest(
            container_id=cid, timeout=10))
        lat = hold_and_probe(agent, pb, pending)
        v1.thaw()
        pending.result(timeout=10)
        print(f"remove held {(time.monotonic() - t0) * 1000:.0f} ms by a frozen process; "
              f"health check max {max(lat) * 1000:.1f} ms")
        sb.created.remove(cid)
        assert not os.path.exists(leaf)
    finally:
        v1.remove()

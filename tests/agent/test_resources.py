"""cgroup-backed RPCs: pause/resume, update, stats, process listing, OOM events."""
import json
import os
import time

import pytest

import husktest
from conftest import cgroup_controllers
from ttrpc_client import FAILED_PRECONDITION, INVALID_ARGUMENT, RpcError


def container_cgroup(agent, cid):
    return os.path.join(agent.cgroup, "husk", "sb-test", cid)


def read(path):
    with open(path) as f:
        return f.read()


def wait_events(cg, word, timeout=2.0):
    """cgroup.freeze completes asynchronously; cgroup.events reports when."""
    deadline = time.time() + timeout
    while word not in read(os.path.join(cg, "cgroup.events")):
        assert time.time() < deadline, f"{cg}: never {word}"
        time.sleep(0.02)


def test_pause_resume(shared_agent, sandbox, pb):
    cid = sandbox.create(["sh", "-c", "while :; do echo tick; sleep 0.05; done"])
    sandbox.start(cid)
    cg = container_cgroup(shared_agent, cid)
    rd = pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid, len=65536)
    assert b"tick" in sandbox.c.call("ReadStdout", rd).data
    req = pb.agent.PauseContainerRequest(container_id=cid)
    sandbox.c.call("PauseContainer", req)
    wait_events(cg, "frozen 1")
    with pytest.raises(RpcError) as e:
        sandbox.c.call("PauseContainer", req)
    assert e.value.code == FAILED_PRECONDITION
    # Drain what was written before the freeze; then nothing comes while frozen.
    for _ in range(5):
        pending = sandbox.c.start("ReadStdout", rd)
        time.sleep(0.3)
        if not pending.done():
            break
    assert not pending.done()
    sandbox.c.call("ResumeContainer", pb.agent.ResumeContainerRequest(container_id=cid))
    wait_events(cg, "frozen 0")
    assert b"tick" in pending.result().data
    sandbox.remove(cid)


def test_stats_cpu(shared_agent, sandbox, pb):
    cid = sandbox.create(["sh", "-c", "i=0; while [ $i -lt 20000 ]; do i=$((i+1)); done; sleep 100"])
    sandbox.start(cid)
    time.sleep(0.5)
    r = sandbox.c.call("StatsContainer", pb.agent.StatsContainerRequest(container_id=cid))
    usage = r.cgroup_stats.cpu_stats.cpu_usage
    assert usage.total_usage > 0
    assert usage.total_usage >= usage.usage_in_usermode
    cg = container_cgroup(shared_agent, cid)
    if "pids" in cgroup_controllers(cg) or os.path.exists(os.path.join(cg, "pids.current")):
        assert r.cgroup_stats.pids_stats.current >= 1
    sandbox.remove(cid)


def test_list_processes(sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sleep", "99"])
    r = sandbox.c.call("ListProcesses", pb.agent.ListProcessesRequest(container_id=cid,
                                                                       format="json"))
    pids = json.loads(r.process_list)
    comms = sorted(read(f"/proc/{p}/cmdline").replace("\0", " ").strip() for p in pids)
    assert comms == ["sleep 100", "sleep 99"]
    table = sandbox.c.call("ListProcesses", pb.agent.ListProcessesRequest(
        container_id=cid, format="table")).process_list.decode().splitlines()
    assert table[0] == "PID CMD"
    assert sorted(int(line.split()[0]) for line in table[1:]) == sorted(pids)
    with pytest.raises(RpcError) as e:
        sandbox.c.call("ListProcesses", pb.agent.ListProcessesRequest(container_id=cid,
                                                                       format="yaml"))
    assert e.value.code == INVALID_ARGUMENT and "format" in e.value.message
    sandbox.signal(cid, eid, 9)
    assert sandbox.wait(cid, eid) == 137
    sandbox.remove(cid)


def test_update_container_pids(shared_agent, sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    cg = container_cgroup(shared_agent, cid)
    with pytest.raises(RpcError) as e:
        sandbox.c.call("UpdateContainer", pb.agent.UpdateContainerRequest(container_id=cid))
    assert e.value.code == INVALID_ARGUMENT and "resources" in e.value.message
    has_pids = os.path.exists(os.path.join(cg, "pids.max"))
    husktest.require_host_feature(has_pids, "host cgroup2 has no pids controller for containers "
                     "(covered by the VM tests)")
    res = pb.oci.LinuxResources()
    res.Pids.Limit = 7
    sandbox.c.call("UpdateContainer", pb.agent.UpdateContainerRequest(container_id=cid,
                                                                       resources=res))
    assert read(os.path.join(cg, "pids.max")).strip() == "7"
    sandbox.remove(cid)


def test_pids_max_enforced(shared_agent, sandbox, pb):
    husktest.require_host_feature("pids" in cgroup_controllers(shared_agent.cgroup),
                     "host cgroup2 has no pids controller (covered by the VM tests)")
    res = pb.oci.LinuxResources()
    res.Pids.Limit = 3
    cid = sandbox.create(["sleep", "100"], resources=res)
    sandbox.start(cid)
    cg = container_cgroup(shared_agent, cid)
    assert read(os.path.join(cg, "pids.max")).strip() == "3"
    failures = 0
    for _ in range(5):
        try:
            sandbox.exec(cid, ["sleep", "100"])
        except RpcError:
            failures += 1
    assert failures >= 1
    assert int(read(os.path.join(cg, "pids.current"))) <= 3
    sandbox.remove(cid)


def test_oom_event(shared_agent, sandbox, pb):
    husktest.require_host_feature("memory" in cgroup_controllers(shared_agent.cgroup),
                     "host cgroup2 has no memory controller (covered by the VM tests)")
    res = pb.oci.LinuxResources()
    res.Memory.Limit = 8 << 20
    res.Memory.Swap = 8 << 20
    waiter = sandbox.c.start("GetOOMEvent", pb.agent.GetOOMEventRequest())
    cid = sandbox.create(["sh", "-c", "x=a; while :; do x=$x$x; done"], resources=res)
    sandbox.start(cid)
    assert waiter.result(30).container_id == cid
    assert sandbox.wait(cid, cid) == 137
    sandbox.remove(cid)


def test_oom_event_is_deferred(shared_agent, pb):
    c = shared_agent.client()
    waiter = c.start("GetOOMEvent", pb.agent.GetOOMEventRequest())
    r = c.call("Check", pb.health.CheckRequest(), service="grpc.Health")
    assert r.status == pb.health.HealthCheckResponse.SERVING
    time.sleep(0.2)
    assert not waiter.done()


def test_remove_paused_container(shared_agent, sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    sandbox.c.call("PauseContainer", pb.agent.PauseContainerRequest(container_id=cid))
    cg = container_cgroup(shared_agent, cid)
    wait_events(cg, "frozen 1")
    pending = sandbox.c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid,
                                                                          exec_id=cid))
    sandbox.remove(cid)
    assert pending.result().status == 137
    assert not os.path.exists(cg)

"""50 containers created and removed leave nothing behind in the agent."""
import os

from helpers import Sandbox


def snapshot(agent):
    pid = agent.pid
    fds = sorted(os.listdir(f"/proc/{pid}/fd"))
    with open(f"/proc/{pid}/mountinfo") as f:
        mounts = f.read().splitlines()
    cgroups = sorted(d for d, _, _ in os.walk(agent.cgroup))
    children = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            children.append(int(p))
    return {"fds": len(fds), "mounts": len(mounts), "cgroups": cgroups, "children": children}


def test_fifty_containers_leak_nothing(agent_factory, pb, rootfs):
    agent = agent_factory()
    c = agent.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="leaks"))
    sb = Sandbox(agent, c, pb, rootfs)
    # Warm up once so lazily created state (sandbox cgroup) is in the baseline.
    assert sb.run(["true"])[0] == 0
    before = snapshot(agent)
    for i in range(50):
        # Every fifth one has a terminal, every third an exec'd process too.
        terminal = i % 5 == 0
        exec_too = i % 3 == 0
        # An exec needs a live init (a dead pid namespace refuses new
        # processes): that init waits for the exec'd process to let it go.
        init = (f"echo {i}; until [ -e /tmp/go ]; do sleep 0.01; done" if exec_too
                else f"echo {i}; sleep 0.05")
        cid = sb.create(["sh", "-c", init], cid=f"leak{i}", terminal=terminal)
        sb.start(cid)
        if exec_too:
            eid = sb.exec(cid, ["sh", "-c", "echo exec; touch /tmp/go"])
            assert sb.read_all(cid, eid) == b"exec\n"
            assert sb.wait(cid, eid) == 0
        out = sb.read_all(cid, cid).replace(b"\r", b"")
        assert (sb.wait(cid, cid), out) == (0, f"{i}\n".encode())
        sb.remove(cid)
    for i in range(10):
        # Removed while still running, with an exec'd process and parked calls.
        cid = sb.create(["sleep", "100"], cid=f"busy{i}")
        sb.start(cid)
        eid = sb.exec(cid, ["sleep", "100"])
        c.start("ReadStdout", pb.agent.ReadStreamRequest(container_id=cid, exec_id=eid, len=10))
        sb.remove(cid)
    after = snapshot(agent)
    assert after == before

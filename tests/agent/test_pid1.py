"""husk-agent as PID 1 of a new pid namespace: early mounts, reaping, signals."""
import os
import signal
import subprocess
import time

import husktest


def zombies_of(pid):
    out = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] == "Z":
            out.append(int(p))
    return out


def check(agent, pb):
    r = agent.client().call("Check", pb.health.CheckRequest(), service="grpc.Health")
    return r.status == pb.health.HealthCheckResponse.SERVING


def test_pid1_serves_and_mounts(agent_factory, pb):
    agent = agent_factory(pid1=True)
    assert check(agent, pb)
    with open(f"/proc/{agent.pid}/status") as f:
        nspid = [line for line in f if line.startswith("NSpid:")][0].split()
    assert nspid[-1] == "1"
    with open(f"/proc/{agent.pid}/mountinfo") as f:
        mounts = {line.split(" - ")[0].split()[4]: line.split(" - ")[1].split()[0]
                  for line in f}
    for target, fstype in [("/proc", "proc"), ("/sys", "sysfs"), ("/dev/pts", "devpts"),
                           ("/dev/shm", "tmpfs"), ("/run", "tmpfs"),
                           ("/sys/fs/cgroup", "cgroup2")]:
        assert mounts.get(target) == fstype, target
    assert os.readlink(f"/proc/{agent.pid}/root/dev/fd") == "/proc/self/fd"
    details = agent.client().call("GetGuestDetails", pb.agent.GuestDetailsRequest())
    assert details.agent_details.init_daemon is True


def test_pid1_reaps_orphans(agent_factory, pb):
    husktest.require_program("nsenter")
    agent = agent_factory(pid1=True)
    # sh runs in the agent's pid namespace and leaves a background child
    # behind: the orphans are reparented to PID 1, which must reap them.
    subprocess.run(["nsenter", "-t", str(agent.pid), "-p", "--", "sh", "-c",
                    "for i in 1 2 3 4 5; do sleep 0.2 & done; exit 0"], check=True)
    time.sleep(1.0)
    assert zombies_of(agent.pid) == []
    with open(f"/proc/{agent.pid}/task/{agent.pid}/children") as f:
        assert f.read().split() == []
    assert check(agent, pb)


def test_pid1_survives_sigterm_and_sigint(agent_factory, pb):
    agent = agent_factory(pid1=True)
    for sig in (signal.SIGTERM, signal.SIGINT):
        os.kill(agent.pid, sig)
        time.sleep(0.2)
        assert agent.alive()
        assert check(agent, pb)
    # Also from inside its own namespace, where the kernel would deliver it.
    subprocess.run(["nsenter", "-t", str(agent.pid), "-p", "--", "kill", "-TERM", "1"],
                   check=True)
    time.sleep(0.2)
    assert check(agent, pb)
    log = agent.read_log()
    assert "ignoring" in log and "PID 1" in log


def test_pid1_destroy_sandbox_exits(agent_factory, pb):
    agent = agent_factory(pid1=True)
    c = agent.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="pid1sb"))
    c.call("DestroySandbox", pb.agent.DestroySandboxRequest())
    # reboot(RB_POWER_OFF) from a pid namespace's init ends that namespace.
    agent.proc.wait(10)
    assert not os.path.exists(f"/proc/{agent.pid}") or zombies_of(agent.proc.pid) is not None


def test_pid1_loads_listed_modules_in_order(agent_factory, pb, tmp_path):
    husktest.require(os.path.isdir("/lib/modules"), "needs /lib/modules to mount over")
    listing = tmp_path / "husk.list"
    not_a_module = tmp_path / "not-a-module.ko"
    not_a_module.write_bytes(b"plain text, not an ELF module\n")
    listing.write_text(f"# dependency order\n/nonexistent/first.ko\n\n{not_a_module}\n")
    # A tmpfs over /lib/modules inside the agent's own mount namespace only.
    agent = agent_factory(pid1=True, setup=(
        f'mount -t tmpfs husk-test /lib/modules && cp "{listing}" /lib/modules/husk.list &&'))
    assert check(agent, pb)
    log = agent.read_log()
    first = log.find("module /nonexistent/first.ko: No such file")
    second = log.find(f"module {not_a_module}: finit_module:")
    assert first >= 0 and second > first, log
    assert "dependency order" not in log
    with open("/proc/self/mountinfo") as f:
        assert "husk-test" not in f.read()


def test_pid1_loads_out_of_tree_modules_after_serving(agent_factory, pb, tmp_path):
    # Modules in /lib/modules/extra/ (vsockfwd.ko) load in a child once the
    # agent serves; the others before, whatever the list order.
    husktest.require(os.path.isdir("/lib/modules"), "needs /lib/modules to mount over")
    listing = tmp_path / "husk.list"
    listing.write_text("/lib/modules/extra/late.ko\n/nonexistent/boot.ko\n")
    agent = agent_factory(pid1=True, setup=(
        f'mount -t tmpfs husk-test /lib/modules && cp "{listing}" /lib/modules/husk.list &&'))
    assert check(agent, pb)
    deadline = time.monotonic() + 10
    while "module loader: not every" not in agent.read_log():
        assert time.monotonic() < deadline, agent.read_log()
        time.sleep(0.05)
    log = agent.read_log()
    boot = log.find("module /nonexistent/boot.ko: No such file")
    serving = log.find("serving on")
    late = log.find("module /lib/modules/extra/late.ko: No such file")
    assert 0 <= boot < serving < late, log


def test_pid1_runs_containers(agent_factory, pb, rootfs):
    from helpers import Sandbox
    agent = agent_factory(pid1=True)
    c = agent.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="guest"))
    sb = Sandbox(agent, c, pb, rootfs)
    status, out, _ = sb.run(["sh", "-c", "echo $$; cat /proc/self/cgroup"])
    assert status == 0
    lines = out.decode().split()
    assert lines[0] == "1"
    # The container's cgroup2 path, below the agent's cgroup namespace root.
    unified = [line for line in lines[1:] if line.startswith("0::")]
    assert len(unified) == 1 and unified[0].startswith("0::/husk/guest/"), lines
    cid = sb.create(["sleep", "100"])
    sb.start(cid)
    sb.signal(cid, cid, 9)
    assert sb.wait(cid, cid) == 137
    sb.remove(cid)
    assert zombies_of(agent.pid) == []

"""Sandbox, guest housekeeping, CopyFile and network listing RPCs."""
import json
import os
import stat
import subprocess
import time

import pytest

import husktest
from ttrpc_client import (ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT,
                          NOT_FOUND, UNIMPLEMENTED, RpcError)


def test_create_sandbox_twice(shared_agent, pb):
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="again"))
    assert e.value.code == ALREADY_EXISTS


def test_create_sandbox_validation(agent_factory, pb):
    c = agent_factory().client()
    with pytest.raises(RpcError) as e:
        c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="a/b"))
    assert e.value.code == INVALID_ARGUMENT and "sandbox_id" in e.value.message
    with pytest.raises(RpcError) as e:
        c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="sb", dns=["a\nb"]))
    assert e.value.code == INVALID_ARGUMENT and "dns[0]" in e.value.message
    with pytest.raises(RpcError) as e:
        c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="sb",
                                                               sandbox_pidns=True))
    assert e.value.code == UNIMPLEMENTED and "sandbox_pidns" in e.value.message
    # A guest hook path is only logged; the host's hostname is left alone.
    name = os.uname().nodename
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(
        sandbox_id="sb", hostname="not-the-host", guest_hook_path="/hooks"))
    assert os.uname().nodename == name


def test_destroy_sandbox_stops_agent(agent_factory, pb):
    a = agent_factory()
    c = a.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="doomed"))
    c.call("DestroySandbox", pb.agent.DestroySandboxRequest())
    assert a.proc.wait(10) == 0
    assert "DestroySandbox" in a.read_log()


def test_sigterm_stops_plain_agent(agent_factory, pb):
    a = agent_factory()
    os.kill(a.pid, 15)
    assert a.proc.wait(10) == 0


def test_guest_details(shared_agent, pb):
    c = shared_agent.client()
    r = c.call("GetGuestDetails", pb.agent.GuestDetailsRequest(mem_block_size=True,
                                                                mem_hotplug_probe=True))
    assert r.agent_details.version == "0.1.0"
    assert r.agent_details.init_daemon is False
    path = "/sys/devices/system/memory/block_size_bytes"
    if os.path.exists(path):
        with open(path) as f:
            assert r.mem_block_size_bytes == int(f.read(), 16)
    else:
        assert r.mem_block_size_bytes == 0


def test_set_guest_date_time(shared_agent, pb):
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("SetGuestDateTime", pb.agent.SetGuestDateTimeRequest(Sec=1, Usec=1000000))
    assert e.value.code == INVALID_ARGUMENT and "Usec" in e.value.message
    with pytest.raises(RpcError) as e:
        c.call("SetGuestDateTime", pb.agent.SetGuestDateTimeRequest(Sec=-5))
    assert e.value.code == INVALID_ARGUMENT and "Sec" in e.value.message
    # Not PID 1: the host's clock is not the agent's to set.
    with pytest.raises(RpcError) as e:
        c.call("SetGuestDateTime", pb.agent.SetGuestDateTimeRequest(Sec=int(time.time())))
    assert e.value.code == FAILED_PRECONDITION


def copy(c, pb, path, data, **kw):
    size = kw.pop("file_size", len(data))
    chunk = kw.pop("chunk", len(data) or 1)
    off = 0
    while True:
        piece = data[off:off + chunk]
        c.call("CopyFile", pb.agent.CopyFileRequest(path=path, file_size=size, offset=off,
                                                     data=piece, **kw))
        off += len(piece)
        if off >= len(data):
            return


def test_copy_file_chunks_mode_owner(shared_agent, pb):
    c = shared_agent.client()
    root = shared_agent.copy_root
    dest = os.path.join(root, "sub", "dir", "file.bin")
    data = bytes(range(256)) * 100
    c.call("CopyFile", pb.agent.CopyFileRequest(path=dest, file_size=len(data), offset=0,
                                                 data=data[:1000], file_mode=0o640,
                                                 dir_mode=0o750, uid=1234, gid=4321))
    # Atomic: nothing at the destination until the last chunk.
    assert not os.path.exists(dest)
    copy(c, pb, dest, data, file_mode=0o640, dir_mode=0o750, uid=1234, gid=4321, chunk=7000)
    with open(dest, "rb") as f:
        assert f.read() == data
    st = os.stat(dest)
    assert stat.S_IMODE(st.st_mode) == 0o640
    assert (st.st_uid, st.st_gid) == (1234, 4321)
    assert stat.S_IMODE(os.stat(os.path.join(root, "sub")).st_mode) == 0o750
    assert sorted(os.listdir(os.path.dirname(dest))) == ["file.bin"]
    # Replacing keeps the path consistent.
    copy(c, pb, dest, b"new", file_mode=0o600)
    with open(dest, "rb") as f:
        assert f.read() == b"new"


def test_copy_file_confined(shared_agent, pb, tmp_path):
    c = shared_agent.client()
    root = shared_agent.copy_root
    os.makedirs(root, exist_ok=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(str(outside), os.path.join(root, "escape"))
    for path in [os.path.join(root, "..", "x"), "/etc/husk-test-should-not-exist",
                 os.path.join(root, "a", ".", "b"), "relative/path", root + "/"]:
        with pytest.raises(RpcError) as e:
            copy(c, pb, path, b"data")
        assert e.value.code == INVALID_ARGUMENT, path
        assert "path" in e.value.message
    with pytest.raises(RpcError):
        copy(c, pb, os.path.join(root, "escape", "x"), b"data")
    assert os.listdir(outside) == []
    with pytest.raises(RpcError) as e:
        c.call("CopyFile", pb.agent.CopyFileRequest(path=os.path.join(root, "f"), file_size=2,
                                                     offset=1, data=b"abc"))
    assert e.value.code == INVALID_ARGUMENT and "offset" in e.value.message


def test_copy_file_directory(shared_agent, pb):
    c = shared_agent.client()
    d = os.path.join(shared_agent.copy_root, "adir")
    c.call("CopyFile", pb.agent.CopyFileRequest(path=d, file_mode=stat.S_IFDIR | 0o711))
    assert stat.S_ISDIR(os.stat(d).st_mode)
    assert stat.S_IMODE(os.stat(d).st_mode) == 0o711


def test_list_interfaces(shared_agent, pb):
    r = shared_agent.client().call("ListInterfaces", pb.agent.ListInterfacesRequest())
    names = {i.name: i for i in r.Interfaces}
    assert set(names) == set(os.listdir("/sys/class/net"))
    lo = names["lo"]
    assert lo.mtu == int(open("/sys/class/net/lo/mtu").read())
    if any(a.address == "127.0.0.1" for a in lo.IPAddresses):
        a = [a for a in lo.IPAddresses if a.address == "127.0.0.1"][0]
        assert a.mask == "8" and a.family == pb.types.v4


def test_list_routes(shared_agent, pb):
    r = shared_agent.client().call("ListRoutes", pb.agent.ListRoutesRequest())
    with open("/proc/net/route") as f:
        v4 = len(f.readlines()) - 1
    got_v4 = [x for x in r.Routes if x.family == pb.types.v4]
    assert len(got_v4) == v4
    devs = set(os.listdir("/sys/class/net"))
    assert all(x.device in devs for x in r.Routes)


def test_online_cpu_mem(agent_factory, pb, tmp_path):
    """Offline CPUs and memory blocks are switched online (sysfs faked in the agent's mounts)."""
    fake = tmp_path / "system"
    for name, value in [("cpu/cpu1/online", "0"), ("cpu/cpu2/online", "1"),
                        ("cpu/cpu3/online", "0"), ("memory/memory0/state", "online"),
                        ("memory/memory1/state", "offline"), ("cpu/online", "0-3")]:
        (fake / name).parent.mkdir(parents=True, exist_ok=True)
        (fake / name).write_text(value + "\n")
    (fake / "cpu" / "cpu0").mkdir()
    a = agent_factory(setup=f'mount --bind "{fake}" /sys/devices/system &&')
    c = a.client()
    c.call("OnlineCPUMem", pb.agent.OnlineCPUMemRequest(nb_cpus=4, cpu_only=True))
    assert [(fake / f"cpu/cpu{i}/online").read_text().strip() for i in (1, 2, 3)] == ["1"] * 3
    assert (fake / "memory/memory1/state").read_text().strip() == "offline"
    c.call("OnlineCPUMem", pb.agent.OnlineCPUMemRequest(wait=True))
    assert (fake / "memory/memory1/state").read_text().strip() == "online"
    with pytest.raises(RpcError) as e:
        c.call("OnlineCPUMem", pb.agent.OnlineCPUMemRequest(nb_cpus=64))
    assert e.value.code == FAILED_PRECONDITION and "nb_cpus" in e.value.message


@pytest.fixture
def net_agent(agent_factory):
    """An agent in a network namespace of its own, with a veth pair v0/v1 in it."""
    husktest.require_program("ip")
    husktest.require_program("nsenter")
    a = agent_factory(netns=True)

    def ip(*args):
        return subprocess.run(["nsenter", "-t", str(a.pid), "-n", "ip", *args],
                              check=True, capture_output=True, text=True).stdout
    a.ip = ip
    ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    ip("link", "set", "v1", "up")
    return a


def test_update_interface(net_agent, pb):
    a = net_agent
    mac = json.loads(a.ip("-j", "link", "show", "v0"))[0]["address"]
    iface = pb.types.Interface(hwAddr=mac, name="eth7", mtu=1400)
    iface.IPAddresses.add(family=pb.types.v4, address="10.9.8.7", mask="24")
    iface.IPAddresses.add(family=pb.types.v6, address="fd00::7", mask="64")
    c = a.client()
    out = c.call("UpdateInterface", pb.agent.UpdateInterfaceRequest(interface=iface))
    assert out.name == "eth7"
    link = json.loads(a.ip("-j", "addr", "show", "eth7"))[0]
    assert link["mtu"] == 1400 and "UP" in link["flags"]
    addrs = {(x["local"], x["prefixlen"]) for x in link["addr_info"] if x["scope"] == "global"}
    assert addrs == {("10.9.8.7", 24), ("fd00::7", 64)}
    listed = {i.name: i for i in c.call("ListInterfaces", pb.agent.ListInterfacesRequest()).Interfaces}
    assert listed["eth7"].mtu == 1400 and listed["eth7"].hwAddr == mac
    # A second update replaces the addresses.
    iface2 = pb.types.Interface(hwAddr=mac, name="eth7")
    iface2.IPAddresses.add(family=pb.types.v4, address="10.9.9.9", mask="16")
    c.call("UpdateInterface", pb.agent.UpdateInterfaceRequest(interface=iface2))
    link = json.loads(a.ip("-j", "addr", "show", "eth7"))[0]
    assert {x["local"] for x in link["addr_info"] if x["scope"] == "global"} == {"10.9.9.9"}


def test_update_interface_validation(net_agent, pb):
    c = net_agent.client()
    for iface, field, code in [
        (pb.types.Interface(hwAddr="zz:zz"), "hwAddr", INVALID_ARGUMENT),
        (pb.types.Interface(hwAddr="02:00:00:00:00:99"), "hwAddr", NOT_FOUND),
        (pb.types.Interface(device="v0", mtu=10), "mtu", INVALID_ARGUMENT),
        (pb.types.Interface(device="v0", name="x" * 20), "name", INVALID_ARGUMENT),
        (pb.types.Interface(device="v0", IPAddresses=[pb.types.IPAddress(address="1.2.3.400",
                                                                          mask="24")]),
         "IPAddresses[0]", INVALID_ARGUMENT),
    ]:
        with pytest.raises(RpcError) as e:
            c.call("UpdateInterface", pb.agent.UpdateInterfaceRequest(interface=iface))
        assert e.value.code == code, (field, e.value.message)
        assert field in e.value.message


def test_update_routes_and_neighbors(net_agent, pb):
    a = net_agent
    c = a.client()
    iface = pb.types.Interface(device="v0", name="eth0")
    iface.IPAddresses.add(family=pb.types.v4, address="10.9.8.7", mask="24")
    c.call("UpdateInterface", pb.agent.UpdateInterfaceRequest(interface=iface))
    routes = pb.agent.Routes()
    routes.Routes.add(dest="", gateway="10.9.8.1", device="eth0")
    routes.Routes.add(dest="10.20.0.0/16", gateway="10.9.8.254", device="eth0")
    routes.Routes.add(dest="192.168.77.0/24", device="eth0")
    out = c.call("UpdateRoutes", pb.agent.UpdateRoutesRequest(routes=routes))
    got = {(r.dest, r.gateway, r.device) for r in out.Routes if r.family == pb.types.v4}
    assert {("", "10.9.8.1", "eth0"), ("10.20.0.0/16", "10.9.8.254", "eth0"),
            ("192.168.77.0/24", "", "eth0")} <= got
    table = a.ip("-4", "route", "show")
    assert "default via 10.9.8.1 dev eth0" in table
    assert "10.20.0.0/16 via 10.9.8.254 dev eth0" in table
    # The full set is replaced, not merged.
    routes2 = pb.agent.Routes()
    routes2.Routes.add(dest="10.30.0.0/16", gateway="10.9.8.1", device="eth0")
    c.call("UpdateRoutes", pb.agent.UpdateRoutesRequest(routes=routes2))
    table = a.ip("-4", "route", "show")
    assert "10.30.0.0/16 via 10.9.8.1" in table and "default" not in table
    assert "10.9.8.0/24 dev eth0" in table      # the kernel's own route stays
    bad = pb.agent.Routes()
    bad.Routes.add(dest="10.40.0.0/16", device="nope0")
    with pytest.raises(RpcError) as e:
        c.call("UpdateRoutes", pb.agent.UpdateRoutesRequest(routes=bad))
    assert e.value.code == NOT_FOUND and "Routes[0].device" in e.value.message
    assert "10.30.0.0/16" in a.ip("-4", "route", "show")   # validated before flushing

    neigh = pb.agent.ARPNeighbors()
    neigh.ARPNeighbors.add(toIPAddress=pb.types.IPAddress(address="10.9.8.2"),
                           device="eth0", lladdr="02:00:00:00:00:02")
    c.call("AddARPNeighbors", pb.agent.AddARPNeighborsRequest(neighbors=neigh))
    shown = a.ip("neigh", "show", "dev", "eth0")
    assert "10.9.8.2 lladdr 02:00:00:00:00:02 PERMANENT" in shown
    neigh.ARPNeighbors[0].lladdr = "not-a-mac"
    with pytest.raises(RpcError) as e:
        c.call("AddARPNeighbors", pb.agent.AddARPNeighborsRequest(neighbors=neigh))
    assert e.value.code == INVALID_ARGUMENT and "lladdr" in e.value.message


def read_until(sock, needle, timeout=5):
    sock.settimeout(timeout)
    buf = b""
    while needle not in buf:
        chunk = sock.recv(4096)
        assert chunk, f"log stream closed before {needle!r}; got {buf!r}"
        buf += chunk
    return buf


def test_log_stream(agent_factory, pb, tmp_path):
    import socket
    path = str(tmp_path / "log.sock")
    a = agent_factory(extra_args=["--log-listen", f"unix:{path}"])
    first, second = socket.socket(socket.AF_UNIX), socket.socket(socket.AF_UNIX)
    first.connect(path)
    second.connect(path)
    time.sleep(0.1)
    c = a.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="logged"))
    for s in (first, second):
        text = read_until(s, b"sandbox logged created")
        assert b"husk-agent: " in text and b"<" not in text.split(b"\n")[0][:1]
    # A reader that goes away is dropped; the others keep receiving.
    first.close()
    with pytest.raises(RpcError):
        c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="again"))
    c.call("DestroySandbox", pb.agent.DestroySandboxRequest())
    read_until(second, b"DestroySandbox")
    assert a.proc.wait(10) == 0
    second.close()


def test_destroy_sandbox_with_running_containers(agent_factory, pb, rootfs):
    from helpers import Sandbox
    a = agent_factory()
    c = a.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="busy"))
    sb = Sandbox(a, c, pb, rootfs)
    pids = []
    for i in range(3):
        cid = sb.create(["sleep", "100"])
        sb.start(cid)
        sb.exec(cid, ["sleep", "100"])
        with open(os.path.join(a.cgroup, "husk", "busy", cid, "cgroup.procs")) as f:
            pids += [int(p) for p in f.read().split()]
    waiter = c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    c.call("DestroySandbox", pb.agent.DestroySandboxRequest())
    assert a.proc.wait(10) == 0
    with pytest.raises(ConnectionError):
        waiter.result(5)
    for p in pids:
        assert not os.path.exists(f"/proc/{p}")
    assert not os.path.exists(os.path.join(a.cgroup, "husk", "busy"))

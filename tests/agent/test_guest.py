"""Sandbox, guest housekeeping, CopyFile and network listing RPCs."""
import os
import stat
import time

import pytest

from ttrpc_client import (ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT,
                          UNIMPLEMENTED, RpcError)


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


@pytest.mark.parametrize("method,req", [
    ("UpdateInterface", "UpdateInterfaceRequest"),
    ("UpdateRoutes", "UpdateRoutesRequest"),
    ("AddARPNeighbors", "AddARPNeighborsRequest"),
    ("OnlineCPUMem", "OnlineCPUMemRequest"),
])
def test_unimplemented_guest_rpcs(shared_agent, pb, method, req):
    with pytest.raises(RpcError) as e:
        shared_agent.client().call(method, getattr(pb.agent, req)())
    assert e.value.code == UNIMPLEMENTED
    assert method in e.value.message

"""ttRPC edge cases: unknown methods, bad payloads, oversize and bad frames,
request validation with field names."""
import socket
import struct

import pytest

import ttrpc_client
from ttrpc_client import (FAILED_PRECONDITION, INVALID_ARGUMENT, NOT_FOUND,
                          UNIMPLEMENTED, RpcError)


def check(c, pb):
    r = c.call("Check", pb.health.CheckRequest(), service="grpc.Health")
    return r.status == pb.health.HealthCheckResponse.SERVING


def test_unknown_method_and_service(shared_agent, pb):
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("GetMetrics", pb.agent.Empty(), resp_cls=pb.agent.Empty)
    assert e.value.code == UNIMPLEMENTED
    assert "GetMetrics" in e.value.message
    with pytest.raises(RpcError) as e:
        c.call("Check", pb.health.CheckRequest(), service="grpc.Nope")
    assert e.value.code == UNIMPLEMENTED
    assert check(c, pb)


def test_malformed_payload(shared_agent, pb):
    c = shared_agent.client()
    # Field 1 declared as a 100-byte string, but the payload ends after 2 bytes.
    call = c.start_raw("grpc.AgentService", "StartContainer", b"\x0a\x64ab", pb.agent.Empty)
    with pytest.raises(RpcError) as e:
        call.result()
    assert e.value.code == INVALID_ARGUMENT
    assert check(c, pb)


def test_garbage_envelope(shared_agent, pb):
    c = shared_agent.client()
    call = c.raw_call(101, b"\xff\xff\xff\xff", pb.agent.Empty)
    with pytest.raises(RpcError) as e:
        call.result()
    assert e.value.code == INVALID_ARGUMENT
    assert check(c, pb)


def test_oversize_frame_answered_and_connection_kept(shared_agent, pb):
    c = shared_agent.client()
    other = shared_agent.client()
    size = ttrpc_client.MAX_FRAME + 1
    call = c.raw_call(1001, b"", pb.agent.Empty, length=size)
    # The agent reads and discards the body, then answers on that stream.
    c.sock.sendall(b"\0" * size)
    with pytest.raises(RpcError) as e:
        call.result()
    assert e.value.code == INVALID_ARGUMENT
    c.next_id = 1003
    assert check(c, pb)
    assert check(other, pb)


def test_bad_frame_type_closes_only_that_connection(shared_agent, pb):
    bad = shared_agent.client()
    good = shared_agent.client()
    bad.send_raw(1, 9, b"")
    bad.reader.join(5)
    assert bad.closed
    assert check(good, pb)
    assert shared_agent.alive()


def test_half_frame_then_disconnect(shared_agent, pb):
    s = socket.socket(socket.AF_UNIX)
    s.connect(shared_agent.sock)
    s.sendall(struct.pack(">IIBB", 100, 1, 1, 0) + b"abc")
    s.close()
    assert check(shared_agent.client(), pb)


@pytest.mark.parametrize("bad_id", ["", "../etc", "a/b", "x" * 300, "-lead", "a b"])
def test_invalid_container_ids(shared_agent, pb, bad_id):
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("StartContainer", pb.agent.StartContainerRequest(container_id=bad_id))
    assert e.value.code == INVALID_ARGUMENT
    assert "container_id" in e.value.message


def test_not_found(shared_agent, pb):
    c = shared_agent.client()
    for method, req in [
        ("StartContainer", pb.agent.StartContainerRequest(container_id="missing")),
        ("WaitProcess", pb.agent.WaitProcessRequest(container_id="missing", exec_id="missing")),
        ("StatsContainer", pb.agent.StatsContainerRequest(container_id="missing")),
        ("PauseContainer", pb.agent.PauseContainerRequest(container_id="missing")),
    ]:
        with pytest.raises(RpcError) as e:
            c.call(method, req)
        assert e.value.code == NOT_FOUND, method
        assert "missing" in e.value.message


def test_create_validation_names_fields(shared_agent, pb, rootfs):
    from helpers import make_spec
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("CreateContainer", pb.agent.CreateContainerRequest(container_id="nospec",
                                                                    exec_id="nospec"))
    assert e.value.code == INVALID_ARGUMENT and "OCI" in e.value.message
    spec = make_spec(pb, rootfs, ["true"], rlimits=[("RLIMIT_BOGUS", 1, 1)])
    with pytest.raises(RpcError) as e:
        c.call("CreateContainer", pb.agent.CreateContainerRequest(
            container_id="badrl", exec_id="badrl", OCI=spec))
    assert e.value.code == INVALID_ARGUMENT and "rlimit" in e.value.message.lower()
    spec = make_spec(pb, rootfs, ["true"])
    with pytest.raises(RpcError) as e:
        c.call("CreateContainer", pb.agent.CreateContainerRequest(
            container_id="stor", exec_id="stor", OCI=spec,
            storages=[pb.agent.Storage(driver="9p")]))
    assert e.value.code == UNIMPLEMENTED and "storages" in e.value.message


def test_read_len_zero_rejected(shared_agent, pb):
    c = shared_agent.client()
    with pytest.raises(RpcError) as e:
        c.call("ReadStdout", pb.agent.ReadStreamRequest(container_id="missing",
                                                         exec_id="missing", len=0))
    assert e.value.code in (NOT_FOUND, INVALID_ARGUMENT)


def test_create_container_needs_sandbox(agent_factory, pb, rootfs):
    from helpers import make_spec
    a = agent_factory()
    c = a.client()
    with pytest.raises(RpcError) as e:
        c.call("CreateContainer", pb.agent.CreateContainerRequest(
            container_id="early", exec_id="early", OCI=make_spec(pb, rootfs, ["true"])))
    assert e.value.code == FAILED_PRECONDITION


def cpu_ticks(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return int(fields[11]) + int(fields[12])


def test_out_of_fds_refuses_without_spinning(agent_factory, pb):
    import os
    import subprocess
    import time
    agent = agent_factory()
    keep = agent.client()
    nfds = len(os.listdir(f"/proc/{agent.pid}/fd"))
    subprocess.run(["prlimit", f"--pid={agent.pid}", f"--nofile={nfds + 2}:"], check=True)
    extra = []
    try:
        for _ in range(6):
            s = socket.socket(socket.AF_UNIX)
            s.connect(agent.sock)
            extra.append(s)
        time.sleep(0.3)
        before = cpu_ticks(agent.pid)
        time.sleep(1.0)
        assert cpu_ticks(agent.pid) - before < 20     # < 0.2 s of CPU: no busy loop
        assert check(keep, pb)
    finally:
        for s in extra:
            s.close()
        subprocess.run(["prlimit", f"--pid={agent.pid}", "--nofile=1024:"], check=True)
    assert check(agent.client(), pb)
    assert "connection refused" in agent.read_log()


def test_client_that_never_reads_does_not_stall_others(shared_agent, pb):
    import time
    req = pb.ttrpc.Request(service="grpc.Health", method="Version",
                           payload=pb.health.CheckRequest().SerializeToString()).SerializeToString()
    hog = socket.socket(socket.AF_UNIX)
    hog.connect(shared_agent.sock)
    hog.setblocking(False)
    sent, sid = 0, 1
    deadline = time.time() + 5
    # Pipeline requests and never read a reply, until the agent stops taking them.
    while time.time() < deadline:
        frame = struct.pack(">IIBB", len(req), sid, 1, 0) + req
        try:
            n = hog.send(frame)
        except BlockingIOError:
            break
        if n < len(frame):
            break
        sent += 1
        sid += 2
    assert sent > 200
    t0 = time.time()
    assert check(shared_agent.client(), pb)
    assert time.time() - t0 < 2
    hog.close()
    assert check(shared_agent.client(), pb)

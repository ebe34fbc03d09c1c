"""Container lifecycle and process RPCs, end to end against husk-agent."""
import os
import time

import pytest

from ttrpc_client import (ALREADY_EXISTS, FAILED_PRECONDITION, INVALID_ARGUMENT,
                          NOT_FOUND, RpcError)


def test_health(shared_agent, pb):
    c = shared_agent.client()
    r = c.call("Check", pb.health.CheckRequest(), service="grpc.Health")
    assert r.status == pb.health.HealthCheckResponse.SERVING
    v = c.call("Version", pb.health.CheckRequest(), service="grpc.Health")
    assert v.agent_version == "0.1.0"
    assert v.grpc_version


def test_run_output_and_exit_code(sandbox):
    status, out, err = sandbox.run(["sh", "-c", "echo hello; echo oops >&2; exit 3"])
    assert (status, out, err) == (3, b"hello\n", b"oops\n")


def test_binary_output_is_exact(sandbox):
    # 200 KiB through the pipe, more than its capacity: reads are deferred and resumed.
    status, out, _ = sandbox.run(["sh", "-c", "head -c 204800 /dev/zero | tr '\\0' x"])
    assert status == 0
    assert out == b"x" * 204800


def test_killed_process_reports_128_plus_signal(sandbox):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    sandbox.signal(cid, cid, 9)
    assert sandbox.wait(cid, cid) == 137
    sandbox.remove(cid)


def test_sigterm_to_shell_with_handler(sandbox):
    cid = sandbox.create(["sh", "-c", "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done"])
    sandbox.start(cid)
    first = sandbox.c.call("ReadStdout", sandbox.pb.agent.ReadStreamRequest(
        container_id=cid, exec_id=cid, len=100))
    assert first.data == b"ready\n"
    sandbox.signal(cid, cid, 15)
    assert sandbox.wait(cid, cid) == 42
    sandbox.remove(cid)


def test_env_cwd_user(sandbox):
    status, out, _ = sandbox.run(
        ["sh", "-c", 'echo "$FOO|$(pwd)|$(id -u):$(id -g)|$(id -G)"'],
        env=["PATH=/bin", "FOO=bar baz"], cwd="/tmp", uid=65534, gid=65534, gids=[5, 7])
    assert status == 0
    fields = out.decode().strip().split("|")
    assert fields[:3] == ["bar baz", "/tmp", "65534:65534"]
    assert set(fields[3].split()) == {"65534", "5", "7"}


def test_hostname_and_uts(sandbox):
    status, out, _ = sandbox.run(["hostname"], hostname="inner-host")
    assert (status, out) == (0, b"inner-host\n")
    assert os.uname().nodename != "inner-host"


def test_mounts_visible(sandbox, pb):
    mounts = __import__("helpers").default_mounts(pb)
    mounts.append(pb.oci.Mount(destination="/mnt", source="tmpfs", type="tmpfs",
                               options=["ro", "nosuid", "size=1m"]))
    status, out, _ = sandbox.run(
        ["sh", "-c", "cat /marker; grep -E ' /(tmp|mnt|proc) ' /proc/mounts"], mounts=mounts)
    assert status == 0
    text = out.decode()
    assert text.startswith("husk rootfs\n")
    lines = {line.split()[1]: line.split() for line in text.splitlines()[1:]}
    assert lines["/tmp"][2] == "tmpfs"
    assert lines["/proc"][2] == "proc"
    assert lines["/mnt"][2] == "tmpfs" and lines["/mnt"][3].startswith("ro")


def test_readonly_root(sandbox):
    status, out, _ = sandbox.run(["sh", "-c", "touch /newfile 2>/dev/null; echo $?"],
                                 readonly=True)
    assert (status, out) == (0, b"1\n")


def test_capabilities_and_no_new_privs(sandbox):
    caps = ["CAP_CHOWN", "CAP_KILL"]   # bits 0 and 5
    status, out, _ = sandbox.run(["grep", "-E", "^(CapBnd|CapEff|CapPrm|NoNewPrivs)",
                                  "/proc/self/status"], caps=caps, no_new_privs=True)
    assert status == 0
    got = dict(line.split(":\t") for line in out.decode().splitlines())
    assert int(got["CapBnd"], 16) == (1 << 0) | (1 << 5)
    assert int(got["CapEff"], 16) == (1 << 0) | (1 << 5)
    assert int(got["CapPrm"], 16) == (1 << 0) | (1 << 5)
    assert got["NoNewPrivs"].strip() == "1"


def test_rlimits(sandbox):
    status, out, _ = sandbox.run(["sh", "-c", "ulimit -n; ulimit -Hn"],
                                 rlimits=[("RLIMIT_NOFILE", 77, 99)])
    assert (status, out) == (0, b"77\n99\n")


def test_pid_namespace(sandbox):
    status, out, _ = sandbox.run(["sh", "-c", "echo $$"])
    assert (status, out) == (0, b"1\n")


def test_exec_in_running_container(sandbox):
    cid = sandbox.create(["sleep", "100"], hostname="exec-host")
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sh", "-c", "hostname; echo err >&2; exit 5"])
    assert sandbox.collect(cid, eid) == (5, b"exec-host\n", b"err\n")
    # Kata semantics: after WaitProcess the process is forgotten.
    with pytest.raises(RpcError) as e:
        sandbox.read_all(cid, eid)
    assert e.value.code == NOT_FOUND
    sandbox.remove(cid)


def test_exec_id_taken_and_exec_before_start(sandbox):
    cid = sandbox.create(["sleep", "100"])
    with pytest.raises(RpcError) as e:
        sandbox.exec(cid, ["true"])
    assert e.value.code == FAILED_PRECONDITION
    sandbox.start(cid)
    with pytest.raises(RpcError) as e:
        sandbox.exec(cid, ["true"], eid=cid)
    assert e.value.code == ALREADY_EXISTS
    sandbox.remove(cid)


def test_stdin_roundtrip_and_close(sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sh", "-c", "tr a-z A-Z; echo done"])
    w = sandbox.c.call("WriteStdin", pb.agent.WriteStreamRequest(
        container_id=cid, exec_id=eid, data=b"hello stdin\n"))
    assert w.len == 12
    sandbox.c.call("CloseStdin", pb.agent.CloseStdinRequest(container_id=cid, exec_id=eid))
    assert sandbox.collect(cid, eid) == (0, b"HELLO STDIN\ndone\n", b"")
    sandbox.remove(cid)


def test_write_after_close_stdin_fails(sandbox, pb):
    cid = sandbox.create(["cat"])
    sandbox.start(cid)
    sandbox.c.call("CloseStdin", pb.agent.CloseStdinRequest(container_id=cid, exec_id=cid))
    with pytest.raises(RpcError) as e:
        sandbox.c.call("WriteStdin", pb.agent.WriteStreamRequest(
            container_id=cid, exec_id=cid, data=b"x"))
    assert e.value.code == FAILED_PRECONDITION
    assert sandbox.wait(cid, cid) == 0
    sandbox.remove(cid)


def test_concurrent_calls_on_one_connection(sandbox, pb):
    """WaitProcess and a deferred ReadStdout are pending while other calls answer."""
    cid = sandbox.create(["sh", "-c", "read line; echo got $line; exit 7"])
    sandbox.start(cid)
    c = sandbox.c
    wait = c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    read = c.start("ReadStdout", pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid,
                                                             len=1024))
    # Both are parked: the process waits for stdin.
    for _ in range(3):
        r = c.call("Check", pb.health.CheckRequest(), service="grpc.Health")
        assert r.status == pb.health.HealthCheckResponse.SERVING
    time.sleep(0.2)
    assert not wait.done() and not read.done()
    c.call("WriteStdin", pb.agent.WriteStreamRequest(container_id=cid, exec_id=cid,
                                                      data=b"ping\n"))
    assert read.result().data == b"got ping\n"
    # Everything was read: WaitProcess answers, then the process is forgotten.
    assert wait.result().status == 7
    with pytest.raises(RpcError) as e:
        sandbox.read_all(cid, cid)
    assert e.value.code == NOT_FOUND
    sandbox.remove(cid)


def test_wait_holds_until_output_is_read(sandbox, pb):
    """Exit ordering: unread output of a stream being read holds WaitProcess back."""
    cid = sandbox.create(["sh", "-c", "echo one; sleep 0.3; echo two; echo three"])
    sandbox.start(cid)
    c = sandbox.c
    rd = pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid, len=4)
    assert c.call("ReadStdout", rd).data == b"one\n"
    wait = c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    time.sleep(0.8)
    assert not wait.done()
    rest = b""
    while not wait.done():
        try:
            data = c.call("ReadStdout", rd).data
        except RpcError as e:
            assert e.code == NOT_FOUND   # forgotten once WaitProcess answered
            break
        if not data:
            break
        rest += data
    assert rest == b"two\nthree\n"
    assert wait.result().status == 0
    sandbox.remove(cid)


def test_wait_on_two_connections(shared_agent, sandbox, pb):
    cid = sandbox.create(["sleep", "0.3"])
    sandbox.start(cid)
    other = shared_agent.client()
    w1 = sandbox.c.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    w2 = other.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    assert w1.result().status == 0 and w2.result().status == 0
    sandbox.remove(cid)


def test_signal_all_processes(sandbox):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sleep", "100"])
    sandbox.signal(cid, "", 9)
    assert sandbox.wait(cid, eid) == 137
    assert sandbox.wait(cid, cid) == 137
    sandbox.remove(cid)


def test_signal_errors(sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    with pytest.raises(RpcError) as e:
        sandbox.signal(cid, cid, 0)
    assert e.value.code == INVALID_ARGUMENT and "signal" in e.value.message
    with pytest.raises(RpcError) as e:
        sandbox.signal(cid, "nope", 9)
    assert e.value.code == NOT_FOUND and "exec_id" in e.value.message
    sandbox.remove(cid)


def test_terminal_process_and_resize(sandbox, pb):
    cid = sandbox.create(["sh", "-c", "sleep 0.5; stty size; [ -t 0 ] && [ -t 1 ] && echo tty"],
                         terminal=True)
    sandbox.start(cid)
    sandbox.c.call("TtyWinResize", pb.agent.TtyWinResizeRequest(
        container_id=cid, exec_id=cid, row=33, column=77))
    out = sandbox.read_all(cid, cid)
    assert sandbox.wait(cid, cid) == 0, out
    lines = out.replace(b"\r", b"").decode().split("\n")
    assert lines[0] == "33 77"
    assert lines[1] == "tty"
    sandbox.remove(cid)


def test_resize_without_terminal_fails(sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    with pytest.raises(RpcError) as e:
        sandbox.c.call("TtyWinResize", pb.agent.TtyWinResizeRequest(
            container_id=cid, exec_id=cid, row=10, column=10))
    assert e.value.code == FAILED_PRECONDITION
    sandbox.remove(cid)


def test_remove_kills_and_cleans(shared_agent, sandbox):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sleep", "100"])
    cg = os.path.join(shared_agent.cgroup, "husk", "sb-test", cid)
    assert os.path.isdir(cg)
    with open(os.path.join(cg, "cgroup.procs")) as f:
        pids = [int(p) for p in f.read().split()]
    assert len(pids) >= 2
    pending = sandbox.c.start("WaitProcess", sandbox.pb.agent.WaitProcessRequest(
        container_id=cid, exec_id=eid))
    sandbox.remove(cid)
    assert pending.result().status == 137
    assert not os.path.exists(cg)
    for p in pids:
        assert not os.path.exists(f"/proc/{p}") or open(f"/proc/{p}/stat").read().split()[2] == "Z"
    with pytest.raises(RpcError) as e:
        sandbox.remove(cid)
    assert e.value.code == NOT_FOUND


def test_start_twice_and_create_twice(sandbox, pb):
    cid = sandbox.create(["sleep", "100"])
    with pytest.raises(RpcError) as e:
        sandbox.create(["true"], cid=cid)
    assert e.value.code == ALREADY_EXISTS
    sandbox.start(cid)
    with pytest.raises(RpcError) as e:
        sandbox.start(cid)
    assert e.value.code == FAILED_PRECONDITION
    sandbox.remove(cid)


def test_failed_create_leaves_nothing(shared_agent, sandbox, pb):
    before = sorted(os.listdir(os.path.join(shared_agent.cgroup, "husk", "sb-test"))) \
        if os.path.isdir(os.path.join(shared_agent.cgroup, "husk", "sb-test")) else []
    spec_rootfs = sandbox.rootfs
    sandbox.rootfs = "/nonexistent-rootfs"
    try:
        with pytest.raises(RpcError) as e:
            sandbox.create(["true"], cid="failing")
    finally:
        sandbox.rootfs = spec_rootfs
    assert e.value.code == INVALID_ARGUMENT
    sandbox.created.remove("failing") if "failing" in sandbox.created else None
    after = sorted(os.listdir(os.path.join(shared_agent.cgroup, "husk", "sb-test"))) \
        if os.path.isdir(os.path.join(shared_agent.cgroup, "husk", "sb-test")) else []
    assert before == after
    # A bad program only fails at start; the container can then be removed.
    cid = sandbox.create(["/does/not/exist"])
    with pytest.raises(RpcError):
        sandbox.start(cid)
    sandbox.remove(cid)


def test_parked_calls_of_a_closed_connection_lose_nothing(shared_agent, sandbox, pb):
    """A read or wait parked by a client that went away neither eats output nor the status."""
    cid = sandbox.create(["sh", "-c", "read x; echo late-$x"])
    sandbox.start(cid)
    gone = shared_agent.client()
    gone.start("ReadStdout", pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid, len=100))
    gone.start("WaitProcess", pb.agent.WaitProcessRequest(container_id=cid, exec_id=cid))
    time.sleep(0.1)
    gone.close()
    time.sleep(0.1)
    sandbox.c.call("WriteStdin", pb.agent.WriteStreamRequest(container_id=cid, exec_id=cid,
                                                              data=b"bytes\n"))
    assert sandbox.collect(cid, cid) == (0, b"late-bytes\n", b"")
    sandbox.remove(cid)


def test_masked_and_readonly_paths(sandbox):
    status, out, _ = sandbox.run(
        ["sh", "-c", "cat /proc/kcore 2>/dev/null | wc -c; "
                     "echo 1 > /proc/sys/kernel/domainname 2>/dev/null; echo $?"],
        masked=["/proc/kcore"], readonly_paths=["/proc/sys"])
    assert status == 0
    assert out.decode().split() == ["0", "1"]


def test_sysctl(sandbox):
    status, out, _ = sandbox.run(["cat", "/proc/sys/kernel/shmmni"],
                                 sysctl={"kernel.shmmni": "1234"})
    assert (status, out) == (0, b"1234\n")


def test_terminal_has_no_stderr_stream(sandbox, pb):
    cid = sandbox.create(["sleep", "100"], terminal=True)
    sandbox.start(cid)
    with pytest.raises(RpcError) as e:
        sandbox.c.call("ReadStderr", pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid,
                                                                 len=10))
    assert e.value.code == FAILED_PRECONDITION
    sandbox.remove(cid)


def test_remove_created_container(shared_agent, sandbox):
    cid = sandbox.create(["sleep", "100"])
    cg = os.path.join(shared_agent.cgroup, "husk", "sb-test", cid)
    assert os.path.isdir(cg)
    sandbox.remove(cid)
    assert not os.path.exists(cg)


def test_close_stdin_ends_terminal_input(sandbox, pb):
    cid = sandbox.create(["sh", "-c", "cat; echo after-eof"], terminal=True)
    sandbox.start(cid)
    sandbox.c.call("WriteStdin", pb.agent.WriteStreamRequest(container_id=cid, exec_id=cid,
                                                              data=b"typed\n"))
    time.sleep(0.2)
    sandbox.c.call("CloseStdin", pb.agent.CloseStdinRequest(container_id=cid, exec_id=cid))
    out = sandbox.read_all(cid, cid).replace(b"\r", b"")
    assert sandbox.wait(cid, cid) == 0
    assert out.endswith(b"after-eof\n") and b"typed\n" in out
    sandbox.remove(cid)

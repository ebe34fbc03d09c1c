"""The stdio channel (port 1027 in a guest) against husk-agent on a host.

The agent listens for stdio connections on a unix socket (--stdio-listen)
standing in for vsock; with no /dev/vsockfwd on the host every stream goes
through the user-space relay.  The kernel forwarder is covered by the VM
tier (tests/e2e/test_stdio.py).
"""
import hashlib
import os
import socket
import threading
import time

import pytest

import husktest
from helpers import Sandbox
from ttrpc_client import FAILED_PRECONDITION


@pytest.fixture(scope="module")
def stdio_agent(pb, agent_bin, rootfs, tmp_path_factory):
    from conftest import Agent
    work = tmp_path_factory.mktemp("stdio-agent")
    path = str(work / "stdio.sock")
    a = Agent(pb, agent_bin, work, extra_args=("--stdio-listen", f"unix:{path}",
                                               "--stdio", "user"))
    a.stdio_path = path
    a.client().call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="sb-stdio"))
    yield a
    a.stop()


@pytest.fixture
def sb(stdio_agent, pb, rootfs):
    s = Sandbox(stdio_agent, stdio_agent.client(), pb, rootfs)
    yield s
    s.cleanup()


def read_line(s, limit=512):
    line = b""
    while not line.endswith(b"\n") and len(line) < limit:
        c = s.recv(1)
        if not c:
            break
        line += c
    return line.decode()


def connect(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    s.connect(path)
    return s


def handshake(path, line):
    s = connect(path)
    s.sendall(line if isinstance(line, bytes) else line.encode())
    return s, read_line(s)


def attach(path, cid, eid, stream):
    s, ans = handshake(path, f"husk-stdio 1 {cid} {eid} {stream}\n")
    assert ans == "OK\n", ans
    return s


def read_to_eof(s):
    chunks = []
    while True:
        b = s.recv(1 << 20)
        if not b:
            return b"".join(chunks)
        chunks.append(b)


def agent_fds(agent):
    """The agent's open fds once the count holds still: connections, relays and
    containers of an earlier test wind down on the loop after their replies."""
    def count():
        return len(os.listdir(f"/proc/{agent.pid}/fd"))
    last, deadline = count(), time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = count()
        if now == last:
            return now
        last = now
    return last


# -- handshake ---------------------------------------------------------------

@pytest.mark.parametrize("line", [
    b"\n",
    b"husk-stdio 1 c e stdout",                 # no newline: waits, so sent with EOF below
    b"husk-stdio 2 c e stdout\n",
    b"HUSK-STDIO 1 c e stdout\n",
    b"husk-stdio 1 c e stdout \n",
    b"husk-stdio  1 c e stdout\n",
    b"husk-stdio 1 c e stdio\n",
    b"husk-stdio 1 c e\n",
    b"husk-stdio 1 c e stdout extra\n",
    b"husk-stdio 1 -c e stdout\n",
    b"husk-stdio 1 c e/x stdout\n",
    b"husk-stdio 1 c e stdout\r\n",
    b"husk-stdio 1 c\0 e stdout\n",
    b"husk-stdio 1 " + b"c" * 129 + b" e stdout\n",
])
def test_malformed_handshake_is_refused(stdio_agent, line):
    s = connect(stdio_agent.stdio_path)
    s.sendall(line)
    if not line.endswith(b"\n"):
        s.shutdown(socket.SHUT_WR)
        assert read_line(s) == ""        # closed without an answer
    else:
        ans = read_line(s)
        assert ans.startswith("ERR invalid "), ans
        assert s.recv(1) == b""          # and the connection closed
    s.close()
    assert stdio_agent.alive()


def test_overlong_line_is_refused_at_the_bound(stdio_agent):
    s = connect(stdio_agent.stdio_path)
    s.sendall(b"x" * 320)                 # STDIO_HANDSHAKE_MAX bytes, no newline
    assert read_line(s).startswith("ERR invalid ")
    s.close()


def test_unknown_process_busy_and_no_stream(sb, stdio_agent):
    path = stdio_agent.stdio_path
    _, ans = handshake(path, "husk-stdio 1 nosuch nosuch stdout\n")
    assert ans.startswith("ERR not-found container nosuch"), ans
    cid = sb.create(["sleep", "30"])
    _, ans = handshake(path, f"husk-stdio 1 {cid} nosuch stdout\n")
    assert ans.startswith("ERR not-found "), ans
    s = attach(path, cid, cid, "stdout")
    _, ans = handshake(path, f"husk-stdio 1 {cid} {cid} stdout\n")
    assert ans.startswith("ERR busy "), ans
    s.close()
    tid = sb.create(["sleep", "30"], terminal=True)
    _, ans = handshake(path, f"husk-stdio 1 {tid} {tid} stderr\n")
    assert ans.startswith("ERR no-stream "), ans
    sb.remove(cid)
    sb.remove(tid)


def test_stream_read_over_rpc_cannot_be_attached_and_vice_versa(sb, stdio_agent, pb):
    cid = sb.create(["sh", "-c", "echo a; echo b >&2; sleep 30"])
    sb.start(cid)
    assert sb.c.call("ReadStdout", pb.agent.ReadStreamRequest(
        container_id=cid, exec_id=cid, len=10)).data == b"a\n"
    _, ans = handshake(stdio_agent.stdio_path, f"husk-stdio 1 {cid} {cid} stdout\n")
    assert ans.startswith("ERR busy "), ans
    s = attach(stdio_agent.stdio_path, cid, cid, "stderr")
    with pytest.raises(Exception) as e:
        sb.c.call("ReadStderr", pb.agent.ReadStreamRequest(container_id=cid, exec_id=cid,
                                                           len=10))
    assert getattr(e.value, "code", None) == FAILED_PRECONDITION
    assert s.recv(10) == b"b\n"
    sb.remove(cid)
    assert read_to_eof(s) == b""


def test_bytes_after_the_line_are_stdin(sb, stdio_agent):
    """The agent reads the handshake up to its newline only."""
    cid = sb.create(["cat"])
    out = attach(stdio_agent.stdio_path, cid, cid, "stdout")
    s = connect(stdio_agent.stdio_path)
    s.sendall(f"husk-stdio 1 {cid} {cid} stdin\nsame packet\n".encode())
    assert read_line(s) == "OK\n"
    s.shutdown(socket.SHUT_WR)
    sb.start(cid)
    assert read_to_eof(out) == b"same packet\n"
    assert sb.wait(cid, cid) == 0
    sb.remove(cid)


# -- the relay ---------------------------------------------------------------

def run_attached(sb, path, args, streams=("stdout", "stderr"), **kw):
    cid = sb.create(args, **kw)
    socks = {name: attach(path, cid, cid, name) for name in streams}
    sb.start(cid)
    return cid, socks


def test_large_stdout_is_exact(sb, stdio_agent):
    n = 64 << 20
    cid, socks = run_attached(sb, stdio_agent.stdio_path,
                              ["sh", "-c", f"{{ head -c {n} /dev/urandom | tee /proc/self/fd/3"
                               f" | md5sum >&2; }} 3>&1; exit 3"])
    got = {}
    t = threading.Thread(target=lambda: got.update(err=read_to_eof(socks["stderr"])))
    t.start()
    out = read_to_eof(socks["stdout"])
    t.join()
    assert len(out) == n
    assert got["err"].split()[0].decode() == hashlib.md5(out).hexdigest()
    assert sb.wait(cid, cid) == 3
    sb.remove(cid)


def test_large_stdin_is_exact(sb, stdio_agent):
    n = 16 << 20
    data = os.urandom(n)
    cid, socks = run_attached(sb, stdio_agent.stdio_path, ["sh", "-c", "sha256sum"],
                              streams=("stdin", "stdout"))
    socks["stdin"].sendall(data)
    socks["stdin"].shutdown(socket.SHUT_WR)
    out = read_to_eof(socks["stdout"])
    assert out.split()[0].decode() == hashlib.sha256(data).hexdigest()
    assert sb.wait(cid, cid) == 0
    assert socks["stdin"].recv(1) == b""   # the agent closed its end too
    sb.remove(cid)


def test_interleaved_stdout_stderr_keep_separate_integrity(sb, stdio_agent):
    script = ("i=0; while [ $i -lt 2000 ]; do echo out$i; echo err$i >&2; i=$((i+1)); done")
    cid, socks = run_attached(sb, stdio_agent.stdio_path, ["sh", "-c", script])
    got = {}
    t = threading.Thread(target=lambda: got.update(err=read_to_eof(socks["stderr"])))
    t.start()
    out = read_to_eof(socks["stdout"])
    t.join()
    assert out == "".join(f"out{i}\n" for i in range(2000)).encode()
    assert got["err"] == "".join(f"err{i}\n" for i in range(2000)).encode()
    assert sb.wait(cid, cid) == 0
    sb.remove(cid)


def test_exit_is_reported_after_the_last_byte(sb, stdio_agent):
    """Write and exit at once, many times: WaitProcess answers only once every
    byte sits in the socket, so after it the rest reads without waiting."""
    cid = sb.create(["sleep", "300"])
    sb.start(cid)
    for i in range(30):
        n = 1 + 2200 * i        # up to a pipe's 64 KiB: the socket buffers it all
        eid = sb.exec(cid, ["head", "-c", str(n), "/dev/urandom"])
        s = attach(stdio_agent.stdio_path, cid, eid, "stdout")
        # Nobody reads until the exit is reported, which is not the grace time's doing.
        t0 = time.time()
        assert sb.wait(cid, eid) == 0
        assert time.time() - t0 < 1.5
        s.setblocking(False)
        got = b""
        while True:
            b = s.recv(1 << 20)   # raises BlockingIOError if a byte were still missing
            if not b:
                break
            got += b
        assert len(got) == n, (i, len(got), n)
        s.close()
    sb.remove(cid)


def test_reader_gone_gives_the_writer_sigpipe(sb, stdio_agent):
    # Not yes itself as PID 1 of the container: a pid namespace's init ignores SIGPIPE.
    cid, socks = run_attached(sb, stdio_agent.stdio_path, ["sh", "-c", "yes; exit $?"],
                              streams=("stdout",))
    assert socks["stdout"].recv(4096)
    socks["stdout"].close()
    assert sb.wait(cid, cid, timeout=10) == 128 + 13
    sb.remove(cid)


def test_stdin_reader_gone_ends_the_forwarder(sb, stdio_agent):
    cid, socks = run_attached(sb, stdio_agent.stdio_path, ["sh", "-c", "head -c 10; exit 4"],
                              streams=("stdin",))
    socks["stdin"].sendall(b"0123456789")
    assert sb.wait(cid, cid) == 4
    # The pipe's reader is gone: the agent drops the connection, the writer sees it.
    deadline = time.time() + 5
    with pytest.raises(OSError):
        while time.time() < deadline:
            socks["stdin"].sendall(b"x" * 65536)
            time.sleep(0.01)
    sb.remove(cid)


def test_descendant_holding_stdout_delays_exit_at_most_the_grace(sb, stdio_agent):
    # An exec'd process: the container's init exiting would kill the whole pid namespace.
    cid = sb.create(["sleep", "300"])
    sb.start(cid)
    eid = sb.exec(cid, ["sh", "-c", "sleep 8 & echo parent; exit 5"])
    s = attach(stdio_agent.stdio_path, cid, eid, "stdout")
    assert read_line(s) == "parent\n"
    t0 = time.time()
    assert sb.wait(cid, eid) == 5
    waited = time.time() - t0
    assert 1.0 < waited < 4.0, waited
    assert "output still open 2000 ms after the exit" in stdio_agent.read_log()
    sb.remove(cid)
    assert read_to_eof(s) == b""   # the descendant died with its container


def test_terminal_stdout_through_the_relay(sb, stdio_agent):
    cid, socks = run_attached(sb, stdio_agent.stdio_path,
                              ["sh", "-c", "read x; echo got-$x; [ -t 1 ] && echo tty"],
                              streams=("stdin", "stdout"), terminal=True)
    socks["stdin"].sendall(b"hello\n")
    socks["stdin"].shutdown(socket.SHUT_WR)
    out = read_to_eof(socks["stdout"]).replace(b"\r", b"")
    assert b"got-hello\ntty\n" in out, out
    assert sb.wait(cid, cid) == 0
    sb.remove(cid)


def test_concurrent_streams_and_no_leak(sb, stdio_agent):
    cid = sb.create(["sleep", "300"])
    sb.start(cid)
    base = agent_fds(stdio_agent)
    eids, socks = [], []
    for i in range(40):
        eid = sb.exec(cid, ["head", "-c", str(100000 + i), "/dev/urandom"])
        eids.append(eid)
        socks.append(attach(stdio_agent.stdio_path, cid, eid, "stdout"))
    results = [None] * len(socks)

    def reader(i):
        results[i] = len(read_to_eof(socks[i]))
    threads = [threading.Thread(target=reader, args=(i,)) for i in range(len(socks))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [100000 + i for i in range(40)]
    for eid in eids:
        assert sb.wait(cid, eid) == 0
    for s in socks:
        s.close()
    assert agent_fds(stdio_agent) == base
    sb.remove(cid)


def test_default_mode_without_module_falls_back_to_the_relay(agent_factory, pb, rootfs,
                                                              tmp_path):
    husktest.require(not os.path.exists("/dev/vsockfwd"), "host has /dev/vsockfwd")
    path = str(tmp_path / "fallback-stdio.sock")
    a = agent_factory(extra_args=("--stdio-listen", f"unix:{path}"))
    a.client().call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="sb-fb"))
    sbx = Sandbox(a, a.client(), pb, rootfs)
    cid = sbx.create(["echo", "fallback"])
    s = attach(path, cid, cid, "stdout")
    sbx.start(cid)
    assert read_to_eof(s) == b"fallback\n"
    assert sbx.wait(cid, cid) == 0
    sbx.remove(cid)
    assert "using the user-space relay" in a.read_log()

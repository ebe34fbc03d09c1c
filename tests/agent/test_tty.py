"""Terminal processes: the pty comes from the container's own devpts.

`tty` (ttyname(0)) must name it as the process sees it, /dev/pts/N under the
container's /dev/pts, agreeing with isatty() and /proc/self/fd/0; and the
process's user owns it, so it can reopen its own terminal.
"""

SCRIPT = ("t=$(tty) || exit 9; echo tty=$t; [ -t 0 ] && echo isatty; "
          "echo fd0=$(readlink /proc/self/fd/0); echo pts=$(ls /dev/pts | tr '\\n' ,); "
          "echo owner=$(stat -c %u $t); echo reopened > $t")


def run_terminal(sandbox, cid, eid):
    out = sandbox.read_all(cid, eid).replace(b"\r", b"").decode()
    status = sandbox.wait(cid, eid)
    return status, dict(line.split("=", 1) for line in out.splitlines() if "=" in line), out


def test_tty_of_a_terminal_container(sandbox):
    cid = sandbox.create(["sh", "-c", SCRIPT], terminal=True)
    sandbox.start(cid)
    status, kv, out = run_terminal(sandbox, cid, cid)
    assert status == 0, out
    # A fresh devpts instance per container: the first pty is 0.
    assert kv["tty"] == "/dev/pts/0", out
    assert "isatty" in out
    assert kv["fd0"] == kv["tty"]
    assert kv["pts"] == "0,ptmx,"
    assert kv["owner"] == "0"
    assert "reopened" in out
    sandbox.remove(cid)


def test_tty_of_an_exec_terminal_and_a_non_root_user(sandbox):
    cid = sandbox.create(["sleep", "100"])
    sandbox.start(cid)
    eid = sandbox.exec(cid, ["sh", "-c", SCRIPT], terminal=True, uid=1000, gid=1000)
    status, kv, out = run_terminal(sandbox, cid, eid)
    assert status == 0, out
    assert kv["tty"] == "/dev/pts/0", out
    assert kv["fd0"] == kv["tty"]
    # Owned by the process's user: it could reopen its terminal above.
    assert kv["owner"] == "1000"
    assert "reopened" in out
    sandbox.remove(cid)

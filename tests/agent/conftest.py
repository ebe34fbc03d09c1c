"""Fixtures of the agent tier: husk-agent as a host process.

The agent runs inside a private mount namespace (unshare -m) listening on
a unix socket, with its container cgroups under a fresh cgroup of the
host's cgroup2 hierarchy, against a busybox-static rootfs built under
build/.  It is driven by the Python ttRPC client in ttrpc_client.py.
"""
import itertools
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import husktest  # noqa: E402
import protos  # noqa: E402
import ttrpc_client  # noqa: E402

_counter = itertools.count()


def cgroup2_mount():
    with open("/proc/self/mountinfo") as f:
        for line in f:
            pre, _, post = line.partition(" - ")
            if post.split()[0] == "cgroup2":
                return pre.split()[4]
    return None


def cgroup_controllers(path):
    try:
        with open(os.path.join(path, "cgroup.controllers")) as f:
            return f.read().split()
    except OSError:
        return []


def remove_cgroup_tree(path):
    """Kill what is left and remove path bottom-up."""
    if not os.path.isdir(path):
        return
    for dirpath, _dirs, _files in sorted(os.walk(path), key=lambda w: -len(w[0])):
        kill = os.path.join(dirpath, "cgroup.kill")
        if os.path.exists(kill):
            try:
                with open(kill, "w") as f:
                    f.write("1")
            except OSError:
                pass
        for _ in range(100):
            try:
                os.rmdir(dirpath)
                break
            except OSError:
                time.sleep(0.02)


def find_busybox():
    for p in ("/bin/busybox", "/usr/bin/busybox"):
        if os.path.exists(p):
            out = subprocess.run(["file", "-L", p], capture_output=True, text=True).stdout \
                if shutil.which("file") else "statically linked"
            if "statically linked" in out or "static-pie" in out:
                return p
    return None


@pytest.fixture(scope="session")
def pb(tmp_path_factory):
    husktest.require_program("protoc")
    return protos.load(str(tmp_path_factory.mktemp("pb")))


@pytest.fixture(scope="session")
def agent_bin():
    return husktest.require_built("bin", "husk-agent")


@pytest.fixture(scope="session")
def rootfs():
    """A busybox-static rootfs under build/agent-test/rootfs (rebuilt each session)."""
    husktest.require_root()
    busybox = find_busybox()
    husktest.require(busybox is not None, "needs busybox-static (/bin/busybox, static)")
    root = husktest.build_path("agent-test", "rootfs")
    if os.path.exists(root):
        shutil.rmtree(root)
    for d in ("bin", "proc", "sys", "dev", "tmp", "etc", "root", "mnt", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(busybox, os.path.join(root, "bin", "busybox"))
    applets = subprocess.run([busybox, "--list"], capture_output=True, text=True,
                             check=True).stdout.split()
    for a in applets:
        link = os.path.join(root, "bin", a)
        if not os.path.exists(link):
            os.symlink("busybox", link)
    with open(os.path.join(root, "etc", "passwd"), "w") as f:
        f.write("root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/sh\n")
    with open(os.path.join(root, "etc", "group"), "w") as f:
        f.write("root:x:0:\nnogroup:x:65534:\n")
    with open(os.path.join(root, "marker"), "w") as f:
        f.write("husk rootfs\n")
    return root


class Agent:
    """One husk-agent process and the resources it was given."""

    def __init__(self, pb, binary, workdir, pid1=False, extra_args=(), setup="",
                 netns=False):
        self.pb = pb
        self.workdir = str(workdir)
        self.sock = os.path.join(self.workdir, "agent.sock")
        self.copy_root = os.path.join(self.workdir, "copy")
        self.log_path = os.path.join(self.workdir, "agent.log")
        mnt = cgroup2_mount()
        husktest.require(mnt is not None, "needs a cgroup2 mount on the host")
        self.cgroup = os.path.join(mnt, f"husk-agent-test-{os.getpid()}-{next(_counter)}")
        os.mkdir(self.cgroup)
        self.pid1 = pid1
        self.clients = []
        args = [binary, "--listen", f"unix:{self.sock}", "--copy-root", self.copy_root,
                "--log-target", "stderr",
                "--log-level", "debug", *extra_args]
        if pid1:
            # PID 1 of a new pid namespace, in a cgroup namespace rooted at our
            # cgroup, so its early mounts and controllers touch only that.
            leaf = os.path.join(self.cgroup, "agent")
            os.mkdir(leaf)
            # setup (shell, ending in &&) runs first in the agent's private mount namespace.
            cmd = ["unshare", "-m", "--propagation", "private", "sh", "-c",
                   f'echo $$ > "{leaf}/cgroup.procs" && {setup} '
                   'exec unshare -p -f -C --kill-child "$@"', "sh"] + args
        else:
            # netns: a network namespace of its own, for the RPCs that change it.
            cmd = ["unshare", "-m", "--propagation", "private"] + (["-n"] if netns else [])
            if setup:
                cmd += ["sh", "-c", f'{setup} exec "$@"', "sh"]
            cmd += args + ["--cgroup-root", self.cgroup]
        self.log = open(self.log_path, "w+")
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self._wait_ready()
        self.pid = self._agent_pid()

    def _wait_ready(self):
        deadline = time.time() + 10
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"husk-agent exited {self.proc.returncode}:\n{self.read_log()}")
            try:
                s = socket.socket(socket.AF_UNIX)
                s.connect(self.sock)
                s.close()
                return
            except OSError:
                time.sleep(0.02)
        raise RuntimeError(f"husk-agent did not listen:\n{self.read_log()}")

    def _agent_pid(self):
        if not self.pid1:
            return self.proc.pid
        # unshare -f forks the agent; it is the only child of unshare.
        with open(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children") as f:
            return int(f.read().split()[0])

    def read_log(self):
        self.log.flush()
        with open(self.log_path) as f:
            return f.read()

    def client(self):
        c = ttrpc_client.Client(self.sock, self.pb)
        self.clients.append(c)
        return c

    def alive(self):
        return self.proc.poll() is None

    def stop(self):
        for c in self.clients:
            c.close()
        if self.proc.poll() is None:
            # SIGTERM ends a non-PID-1 agent; PID 1 ignores it, so kill then.
            os.kill(self.proc.pid, signal.SIGTERM if not self.pid1 else signal.SIGKILL)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(10)
        remove_cgroup_tree(self.cgroup)
        log = self.read_log()
        self.log.close()
        # SANITIZE=1 builds report into the log; any report fails the test.
        for marker in ("Sanitizer", "runtime error:"):
            assert marker not in log, f"husk-agent log has a {marker} report:\n{log}"


@pytest.fixture
def agent_factory(pb, agent_bin, rootfs, tmp_path):
    agents = []

    def start(pid1=False, extra_args=(), setup="", netns=False):
        a = Agent(pb, agent_bin, tmp_path / f"agent{len(agents)}", pid1=pid1,
                  extra_args=extra_args, setup=setup, netns=netns)
        agents.append(a)
        return a

    for d in range(4):
        os.makedirs(tmp_path / f"agent{d}", exist_ok=True)
    yield start
    for a in agents:
        a.stop()


@pytest.fixture(scope="module")
def shared_agent(pb, agent_bin, rootfs, tmp_path_factory):
    """One agent with a sandbox, shared by a test module."""
    a = Agent(pb, agent_bin, tmp_path_factory.mktemp("agent"))
    c = a.client()
    c.call("CreateSandbox", pb.agent.CreateSandboxRequest(sandbox_id="sb-test",
                                                           hostname="husk-test"))
    yield a
    a.stop()


@pytest.fixture
def sandbox(shared_agent, pb, rootfs):
    """A Sandbox helper on the shared agent; removes its containers afterwards."""
    from helpers import Sandbox
    sb = Sandbox(shared_agent, shared_agent.client(), pb, rootfs)
    yield sb
    sb.cleanup()

"""`husk run` end to end: real QEMU (TCG) VMs booting the `make image` guest
and running containers from the demo bundle's busybox rootfs (mk/demo.sh)."""
import fcntl
import json
import os
import pty
import re
import select
import shutil
import signal
import struct
import subprocess
import termios
import time

import pytest

import husktest
from vmtest import assert_no_leftovers, processes_mentioning

TIMEOUT = 180
FAILURE = 125  # husk run's own failures


@pytest.fixture(scope="module")
def image():
    kernel = husktest.require_built("guest", "vmlinux", target="image")
    initrd = husktest.require_built("guest", "initramfs.img", target="image")
    return kernel, initrd


@pytest.fixture(scope="module")
def demo():
    bundle = husktest.require_built("demo", "config.json", target="check-e2e")
    return os.path.dirname(bundle)


@pytest.fixture(scope="module")
def rootfs(demo):
    return os.path.join(demo, "rootfs")


def qemu_pids(state_root):
    pids = []
    for pid in processes_mentioning(state_root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"qemu-system" in f.read():
                    pids.append(pid)
        except OSError:
            pass  # gone meanwhile
    return pids


class Runner:
    """husk run with a private state root; checks nothing is left behind."""

    def __init__(self, husk, state_root):
        self.husk = husk
        self.state_root = state_root
        self.env = dict(os.environ, HUSK_STATE_ROOT=state_root)

    def argv(self, *args):
        return [self.husk, "run", "--accel", "tcg", *args]

    def run(self, *args, input=None, timeout=TIMEOUT):
        p = subprocess.run(self.argv(*args), input=input, capture_output=True,
                           timeout=timeout, env=self.env)
        assert_no_leftovers(self.state_root)
        return p

    def popen(self, *args, **kw):
        return subprocess.Popen(self.argv(*args), env=self.env, **kw)


@pytest.fixture
def runner(husk, image, state_root):
    return Runner(husk, state_root)


def one_line(stderr):
    """husk run reports a failure in exactly one line."""
    lines = stderr.decode().strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_stdout_stderr_bytes_exact(runner, rootfs):
    # Every byte value on stdout, a long counted stream after it; stderr apart.
    p = runner.run("--rootfs", rootfs, "--", "sh", "-c",
                   "i=0; while [ $i -lt 256 ]; do printf \"\\\\$(printf %o $i)\"; "
                   "i=$((i+1)); done; seq 1 60000; printf 'to stderr\\n\\0end' >&2")
    assert p.returncode == 0, p.stderr
    expected = bytes(range(256)) + b"".join(b"%d\n" % i for i in range(1, 60001))
    assert p.stdout == expected
    assert p.stderr == b"to stderr\n\0end"


def test_stdin_to_eof(runner, rootfs):
    data = os.urandom(300 * 1024)
    p = runner.run("-i", "--rootfs", rootfs, "--", "sh", "-c", "cat; echo EOF-SEEN >&2",
                   input=data)
    assert p.returncode == 0, p.stderr
    assert p.stdout == data
    assert p.stderr == b"EOF-SEEN\n"


def test_no_stdin_without_i(runner, rootfs):
    p = runner.run("--rootfs", rootfs, "--", "sh", "-c", "cat; echo done",
                   input=b"not forwarded")
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"done\n"


@pytest.mark.parametrize("script,code", [
    ("exit 0", 0),
    ("exit 3", 3),
    ("exit 255", 255),
    # The container's init is PID 1 of its namespace, which ignores a SIGKILL
    # from inside: the shell kills a child instead and reports its status.
    ("sleep 30 & kill -9 $!; wait $!", 137),
])
def test_exit_codes(runner, rootfs, script, code):
    p = runner.run("--rootfs", rootfs, "--", "sh", "-c", script)
    assert p.returncode == code, p.stderr


def read_until(stream, marker, timeout):
    got = b""
    deadline = time.monotonic() + timeout
    while marker not in got:
        left = deadline - time.monotonic()
        assert left > 0, f"no {marker!r} in {got!r}"
        r, _, _ = select.select([stream], [], [], left)
        if r:
            chunk = os.read(stream.fileno(), 4096)
            assert chunk, f"EOF before {marker!r}: {got!r}"
            got += chunk
    return got


def test_signals_forwarded(runner, rootfs):
    script = ("trap 'echo INT' INT; trap 'echo HUP' HUP; trap 'echo TERM; exit 7' TERM; "
              "echo ready; while :; do sleep 0.1; done")
    proc = runner.popen("--rootfs", rootfs, "--", "sh", "-c", script,
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        out = read_until(proc.stdout, b"ready\n", TIMEOUT)
        for sig, word in ((signal.SIGINT, b"INT\n"), (signal.SIGHUP, b"HUP\n")):
            proc.send_signal(sig)
            out += read_until(proc.stdout, word, 60)
        proc.send_signal(signal.SIGTERM)
        rest, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert (out + rest) == b"ready\nINT\nHUP\nTERM\n", err
    assert proc.returncode == 7, err
    assert_no_leftovers(runner.state_root)


def test_env_cwd_user_hostname(runner, rootfs):
    p = runner.run("-e", "GREETING=hello world", "-e", "PATH=/bin", "-w", "/tmp",
                   "-u", "1000:1001", "--hostname", "boxy", "--rootfs", rootfs, "--",
                   "sh", "-c", 'echo "$GREETING|$PATH|$(pwd)|$(id -u):$(id -g)|$(hostname)"')
    assert p.returncode == 0, p.stderr
    assert p.stdout == b"hello world|/bin|/tmp|1000:1001|boxy\n"


def test_tty(runner, rootfs):
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
    proc = runner.popen("-t", "-i", "--rootfs", rootfs, "--", "sh", "-c",
                        "tty; stty size; echo TERM=$TERM; read line; echo got:$line; exit 5",
                        stdin=slave, stdout=slave, stderr=subprocess.PIPE)
    os.close(slave)
    out = b""
    try:
        deadline = time.monotonic() + TIMEOUT
        sent = False
        while proc.poll() is None or select.select([master], [], [], 0)[0]:
            assert time.monotonic() < deadline, out
            r, _, _ = select.select([master], [], [], 0.5)
            if r:
                try:
                    chunk = os.read(master, 4096)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if not sent and b"TERM=" in out:
                os.write(master, b"hello\r")
                sent = True
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    err = proc.stderr.read()
    assert proc.returncode == 5, (out, err)
    assert b"/dev/pts/" in out
    assert b"30 100" in out
    assert b"TERM=xterm" in out
    assert b"got:hello" in out
    # A terminal gives one stream: no stderr apart.
    assert err == b""
    assert_no_leftovers(runner.state_root)


def test_memory_limit_oom(runner, rootfs):
    p = runner.run("--memory", "128M", "--rootfs", rootfs, "--", "sh", "-c",
                   "echo start; x=$(head -c 300000000 /dev/zero | tr '\\0' a); echo survived")
    assert p.returncode == 137, p.stderr
    assert p.stdout == b"start\n"
    assert b"ran out of memory" in p.stderr


def test_pids_limit(runner, rootfs):
    # Three sleeps fit under 4 tasks with the shell; the fourth fork fails.
    p = runner.run("--pids-limit", "4", "--rootfs", rootfs, "--", "sh", "-c",
                   "for i in 1 2 3 4 5 6; do sleep 3 & echo forked $i; done")
    assert p.stdout == b"forked 1\nforked 2\nforked 3\n", p.stderr
    assert b"can't fork" in p.stderr
    assert p.returncode == 2


def make_bundle(tmpdir, rootfs, args, readonly):
    spec = {
        "ociVersion": "1.0.2",
        "process": {"user": {"uid": 0, "gid": 0}, "args": args,
                    "env": ["PATH=/bin"], "cwd": "/"},
        "root": {"path": rootfs, "readonly": readonly},
        "mounts": [{"destination": "/proc", "type": "proc", "source": "proc"},
                   {"destination": "/tmp", "type": "tmpfs", "source": "tmpfs"}],
        "linux": {"namespaces": [{"type": "pid"}, {"type": "mount"}]},
    }
    with open(os.path.join(tmpdir, "config.json"), "w") as f:
        json.dump(spec, f)
    return tmpdir


def test_readonly_rootfs(runner, rootfs, tmp_path):
    bundle = make_bundle(str(tmp_path), rootfs, ["sh", "-c",
                         "touch /probe 2>&1; echo rc=$?; touch /tmp/ok && echo tmp-writable"],
                         readonly=True)
    p = runner.run(bundle)
    assert p.returncode == 0, p.stderr
    assert b"Read-only file system" in p.stdout
    assert b"rc=1\n" in p.stdout
    assert p.stdout.endswith(b"tmp-writable\n")
    assert not os.path.exists(os.path.join(rootfs, "probe"))


def test_bad_bundle_names_field(husk, image, tmp_path, state_root):
    bundle = make_bundle(str(tmp_path), "/", ["true"], readonly=True)
    spec = json.load(open(os.path.join(bundle, "config.json")))
    spec["process"]["user"]["uid"] = -1
    json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
    p = Runner(husk, state_root).run(bundle, timeout=30)
    assert p.returncode == FAILURE
    line = one_line(p.stderr)
    assert "process.user.uid" in line and "config.json" in line, line

    spec["process"]["user"]["uid"] = 0
    spec["process"]["colour"] = "blue"
    json.dump(spec, open(os.path.join(bundle, "config.json"), "w"))
    p = Runner(husk, state_root).run(bundle, timeout=30)
    assert p.returncode == FAILURE
    assert "process.colour: unknown field" in one_line(p.stderr)


def test_missing_kernel_file_is_named(husk, state_root, rootfs):
    p = Runner(husk, state_root).run("--kernel", "/nonexistent/vmlinux", "--rootfs", rootfs,
                                     timeout=30)
    assert p.returncode == FAILURE
    line = one_line(p.stderr)
    assert "guest kernel /nonexistent/vmlinux not found" in line, line


@pytest.mark.parametrize("name,expect", [
    ("nosuch", "'make image KERNEL=nosuch'"),
    ("Bad!", "not a file path (with a '/') nor an image name"),
])
def test_unknown_image_name_is_named(husk, state_root, rootfs, name, expect):
    p = Runner(husk, state_root).run("--kernel", name, "--rootfs", rootfs, timeout=30)
    assert p.returncode == FAILURE
    line = one_line(p.stderr)
    assert expect in line, line


def debian_release():
    path = husktest.require_built("guest", "debian/kernel.id", target="image KERNEL=debian")
    with open(path) as f:
        kind, release = f.read().split()
    assert kind == "debian"
    return release


# Both kernels on both machines: the default minimal image and Debian's
# (`--kernel debian`), each with its own vsockfwd.ko loaded by the agent.
@pytest.mark.parametrize("kernel,machine", [
    (None, None), ("minimal", "q35"), ("debian", None), ("debian", "q35")])
def test_kernel_and_machine_choice(runner, rootfs, kernel, machine):
    args = (["--kernel", kernel] if kernel else []) + (["--machine", machine] if machine else [])
    p = runner.run(*args, "--rootfs", rootfs, "--", "sh", "-c",
                   "uname -r; cut -d' ' -f1 /proc/modules")
    assert p.returncode == 0, p.stderr.decode()
    release, *modules = p.stdout.decode().split()
    if kernel == "debian":
        assert release == debian_release()
    else:
        assert release.endswith("-husk"), release
    assert "vsockfwd" in modules, modules


def test_qemu_fails_to_start(runner, rootfs, tmp_path):
    # The real QEMU, handed one device it cannot create.
    qemu = shutil.which("qemu-system-x86_64")
    fake = tmp_path / "qemu"
    fake.write_text(f'#!/bin/sh\ncase "$*" in *-help*) exec {qemu} "$@";; esac\n'
                    f'exec {qemu} "$@" -device no-such-device\n')
    fake.chmod(0o755)
    runner.env["HUSK_QEMU"] = str(fake)
    p = runner.run("--rootfs", rootfs, "--", "true", timeout=60)
    assert p.returncode == FAILURE
    line = one_line(p.stderr)
    assert "no-such-device" in line, line


@pytest.fixture
def no_agent_initrd(tmp_path):
    """An initramfs whose /init never starts an agent: the guest never gets
    ready, however fast it boots."""
    busybox = husktest.require_program("busybox")
    mkinitramfs = husktest.require_built("bin", "husk-mkinitramfs")
    init = tmp_path / "init"
    init.write_text("#!/bin/busybox sh\necho no-agent-in-this-guest\n"
                    "exec /bin/busybox sleep 3600\n")
    listing = tmp_path / "list"
    listing.write_text(f"dir /bin 0755 0 0\nfile /bin/busybox {busybox} 0755 0 0\n"
                       f"file /init {init} 0755 0 0\n")
    initrd = tmp_path / "no-agent.cpio.gz"
    subprocess.run([mkinitramfs, "--output", str(initrd), str(listing)], check=True)
    return str(initrd)


def test_agent_ready_timeout(runner, rootfs, no_agent_initrd):
    # 10 s: the guest's /init must have printed its line by then, also on a
    # loaded machine.  No --debug: with `quiet` no later kernel message
    # pushes the init's line out of the console tail the error quotes.
    start = time.monotonic()
    p = runner.run("--agent-timeout", "10", "--initrd", no_agent_initrd,
                   "--rootfs", rootfs, "--", "true", timeout=60)
    assert p.returncode == FAILURE
    line = one_line(p.stderr)
    assert "agent not ready after 10.000 s; guest console ends with: " in line, line
    assert "no-agent-in-this-guest" in line, line
    assert time.monotonic() - start < 40
    assert_no_leftovers(runner.state_root)


def mapped_rss_kib(pid, path):
    """Resident KiB of pid's mappings of the file at path (smaps)."""
    total, inside = 0, False
    with open(f"/proc/{pid}/smaps") as f:
        for line in f:
            fields = line.split()
            if "-" in fields[0] and len(fields) >= 5:
                inside = len(fields) >= 6 and fields[5] == path
            elif inside and fields[0] == "Rss:":
                total += int(fields[1])
    return total


def test_boot_files_released_after_boot(runner, rootfs, image):
    # QEMU maps the kernel and initramfs to reload them at a reset, which
    # husk's VMs never do: libhusk has the pages reclaimed once the guest
    # booted (process_madvise needs CAP_SYS_NICE: root here).
    husktest.require(os.geteuid() == 0, "needs root (CAP_SYS_NICE)")
    kernel, initrd = (os.path.realpath(f) for f in image)
    proc = runner.popen("--rootfs", rootfs, "--", "sh", "-c", "echo up; sleep 120",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc.stdout, b"up\n", TIMEOUT)
        qemus = qemu_pids(runner.state_root)
        assert len(qemus) == 1, qemus
        assert mapped_rss_kib(qemus[0], kernel) < 1024
        assert mapped_rss_kib(qemus[0], initrd) < 256
    finally:
        proc.kill()
        proc.communicate(timeout=60)


def test_qemu_killed_mid_run(runner, rootfs):
    proc = runner.popen("--rootfs", rootfs, "--", "sh", "-c", "echo up; sleep 120",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        read_until(proc.stdout, b"up\n", TIMEOUT)
        qemus = qemu_pids(runner.state_root)
        assert len(qemus) == 1, qemus
        os.kill(qemus[0], signal.SIGKILL)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == FAILURE
    line = one_line(err)
    assert "QEMU was killed by signal 9" in line, line
    assert_no_leftovers(runner.state_root)


def host_mounts():
    with open("/proc/self/mountinfo") as f:
        return sorted(line.split()[4] for line in f)


def test_twenty_sequential_runs_leave_nothing(runner, rootfs):
    # Other work on the box mounts things meanwhile: look only at ours.
    def our_mounts():
        return [m for m in host_mounts() if runner.state_root in m or m.startswith(rootfs)]

    fds = len(os.listdir("/proc/self/fd"))
    for i in range(20):
        p = runner.run("--rootfs", rootfs, "--", "echo", f"run {i}")
        assert p.returncode == 0, p.stderr
        assert p.stdout == f"run {i}\n".encode()
    assert our_mounts() == []
    assert len(os.listdir("/proc/self/fd")) == fds
    assert processes_mentioning(runner.state_root) == []


def test_timings_and_demo_bundle(runner, demo):
    p = runner.run("--timings", "-e", "HOST_KERNEL=host", demo)
    assert p.returncode == 0, p.stderr
    out = p.stdout.decode()
    assert "Hello from husk" in out
    assert "guest kernel: " in out
    # The guest's PID 1 is husk-agent, installed as /init: not the host's init.
    assert "guest PID 1: init (/init)" in out
    steps = [re.sub(r"^husk: +[0-9.]+ s  ", "", line) for line in p.stderr.decode().splitlines()]
    assert steps == ["start", "QEMU spawned", "agent ready", "container created",
                     "container started", "container exited", "VM gone"], steps


def test_interrupt_during_boot(runner, rootfs, no_agent_initrd):
    # The guest never gets ready, so the interrupt lands while husk waits
    # for the agent, once QEMU runs.
    proc = runner.popen("--initrd", no_agent_initrd, "--rootfs", rootfs, "--", "true",
                        stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not qemu_pids(runner.state_root):
        assert time.monotonic() < deadline and proc.poll() is None, "QEMU never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "interrupted while the VM booted" in one_line(err)
    assert_no_leftovers(runner.state_root)

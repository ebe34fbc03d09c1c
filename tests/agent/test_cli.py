"""husk-agent's command line."""
import subprocess


def run(agent_bin, *args):
    return subprocess.run([agent_bin, *args], capture_output=True, text=True, timeout=10)


def test_version_and_help(agent_bin):
    r = run(agent_bin, "--version")
    assert (r.returncode, r.stdout) == (0, "husk-agent 0.1.0\n")
    r = run(agent_bin, "--help")
    assert r.returncode == 0 and "--listen" in r.stdout and "--cgroup-root" in r.stdout


def test_bad_flags_name_the_flag(agent_bin):
    for args, word in [(["--listen", "tcp:1"], "--listen"),
                       (["--listen", "vsock:abc"], "--listen"),
                       (["--cgroup-root", "relative"], "--cgroup-root"),
                       (["--log-level", "loud"], "--log-level"),
                       (["--log-target", "syslog"], "--log-target"),
                       (["extra"], "extra")]:
        r = run(agent_bin, *args)
        assert r.returncode == 2, args
        assert word in r.stderr, (args, r.stderr)


def test_listen_failure_exits_1(agent_bin, tmp_path):
    r = run(agent_bin, "--listen", f"unix:{tmp_path}/missing-dir/agent.sock",
            "--log-target", "stderr", "--cgroup-root", str(tmp_path))
    assert r.returncode == 1
    assert "cannot serve" in r.stderr

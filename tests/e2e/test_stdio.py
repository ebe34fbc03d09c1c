"""The stdio channel end to end: the `make image` guest under TCG, driven
through libhusk by build/bench/husk-stdio-driver (one VM per mode, many
scenarios in it; docs/stdio.md).

Modes: kernel (vsockfwd.ko, the default), user (husk.stdio=user on the
kernel command line), and module absent (module_blacklist=vsockfwd: the
agent falls back to the relay by itself).
"""
import json
import os
import shutil
import signal
import subprocess
import tempfile

import pytest

import husktest
from vmtest import assert_no_leftovers, processes_mentioning

MIB = 1 << 20
# Scenarios every full mode runs; `module` first and last reads the counters.
FULL = ["module", f"echo:{256 * MIB}", f"stdout:{16 * MIB}", f"stdin:{64 * MIB}",
        "interleave:5000", "exitloss:200", "disconnect", "concurrent:100:65536",
        "module", "grace"]
ABSENT = ["module", f"echo:{4 * MIB}", "exitloss:20", "disconnect"]


def bundle_with_sys(tmp):
    """The demo bundle plus a read-only /sys, so a container sees vsockfwd's counters."""
    demo = husktest.require_built("demo", "config.json", target="check-e2e")
    with open(demo) as f:
        cfg = json.load(f)
    cfg["root"]["path"] = os.path.join(os.path.dirname(demo), cfg["root"]["path"])
    cfg["mounts"].append({"destination": "/sys", "type": "sysfs", "source": "sysfs",
                          "options": ["ro", "nosuid", "nodev", "noexec"]})
    with open(os.path.join(tmp, "config.json"), "w") as f:
        json.dump(cfg, f)
    return tmp


def run_driver(cmdline, scenarios):
    driver = husktest.require_built("bench", "husk-stdio-driver", target="check-e2e")
    husktest.require_program("qemu-system-x86_64")
    kernel = husktest.require_built("guest", "vmlinux", target="image")
    initrd = husktest.require_built("guest", "initramfs.img", target="image")
    state = tempfile.mkdtemp(prefix="husk-stdio.", dir="/tmp")
    bundle = tempfile.mkdtemp(prefix="husk-stdio-bundle.", dir="/tmp")
    env = dict(os.environ, HUSK_STATE_ROOT=state,
               HUSK_VSOCKD=husktest.build_path("bin", "husk-vsockd"))
    env.pop("HUSK_STDIO", None)
    try:
        p = subprocess.run([driver, "--kernel", kernel, "--initrd", initrd,
                            "--bundle", bundle_with_sys(bundle), "--cmdline", cmdline,
                            *scenarios], capture_output=True, text=True, timeout=1500,
                           env=env)
        assert_no_leftovers(state)
    finally:
        for pid in processes_mentioning(state):
            os.kill(pid, signal.SIGKILL)
        shutil.rmtree(state, ignore_errors=True)
        shutil.rmtree(bundle, ignore_errors=True)
    results = [json.loads(line) for line in p.stdout.splitlines() if line.startswith("{")]
    assert p.returncode in (0, 1), p.stderr
    return results, p


def by_name(results):
    out = {}
    for r in results:
        out.setdefault(r["scenario"], []).append(r)
    return out


@pytest.fixture(scope="module", params=["kernel", "user"])
def full_run(request):
    cmdline = "husk.stdio=user" if request.param == "user" else ""
    results, p = run_driver(cmdline, FULL)
    return request.param, by_name(results), p


def scenario(full_run, name, index=0):
    mode, res, p = full_run
    assert name in res and len(res[name]) > index, f"{mode}: no {name} result\n{p.stderr}"
    r = res[name][index]
    assert r["ok"], f"{mode}: {r}"
    return mode, r


def test_256mib_stdout_sha256_equal(full_run):
    _, r = scenario(full_run, "echo")
    assert r["bytes"] == 256 * MIB
    assert r["sha256_sent"] == r["sha256_received"]


def test_guest_generated_stdout_hashed_in_guest(full_run):
    _, r = scenario(full_run, "stdout")
    assert r["bytes"] == r["expected"] == 16 * MIB


def test_64mib_stdin(full_run):
    _, r = scenario(full_run, "stdin")
    assert r["bytes"] == 64 * MIB and r["status"] == 0


def test_interleaved_stdout_stderr(full_run):
    _, r = scenario(full_run, "interleave")
    assert r["out_bytes"] > 0 and r["err_bytes"] > 0


def test_write_and_exit_200_runs_lose_nothing(full_run):
    _, r = scenario(full_run, "exitloss")
    assert r["runs"] == 200 and r["bad"] == 0


def test_reader_disconnect_gives_sigpipe(full_run):
    _, r = scenario(full_run, "disconnect")
    assert r["status"] == 128 + 13


def test_100_concurrent_streams(full_run):
    _, r = scenario(full_run, "concurrent")
    assert r["streams"] == 100 and r["bad"] == 0


def test_exit_reported_despite_descendant_holding_stdout(full_run):
    _, r = scenario(full_run, "grace")
    assert r["status"] == 6 and r["seconds"] < 12


def test_forwarder_in_use_and_no_leak(full_run):
    mode, first = scenario(full_run, "module", 0)
    _, last = scenario(full_run, "module", 1)
    assert first["loaded"] and last["loaded"], "vsockfwd.ko is in the default image"
    if mode == "kernel":
        assert last["started"] > first["started"] + 300, (first, last)
        # Still running: the container's init (stdout, stderr) and the
        # reader's own two (the reader waits until the host attached them).
        assert last["active"] == 4, last
        assert last["started"] - last["finished"] == last["active"], last
    else:
        assert last["started"] == first["started"], "husk.stdio=user must not use the module"
        assert last["active"] == 0, last


def test_module_absent_falls_back_to_the_relay():
    results, p = run_driver("module_blacklist=vsockfwd", ABSENT)
    res = by_name(results)
    for name in ("module", "echo", "exitloss", "disconnect"):
        assert name in res and res[name][0]["ok"], (name, res.get(name), p.stderr)
    assert res["module"][0]["loaded"] is False

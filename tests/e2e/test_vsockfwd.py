"""vsockfwd.ko in a real guest kernel (TCG VM, vsock loopback inside it).

One boot per guest kernel runs every scenario of kmod-vsockfwd/tests/vsockfwd-test.c; each
test below asserts on that scenario's RESULT line.  Prerequisites: `make
kmod` (vsockfwd.ko) and `make` (the static test tool).
"""
import os
import shutil
import sys

import pytest

import husktest

sys.path.insert(0, os.path.join(husktest.TOP, "kmod-vsockfwd", "tests"))
import vsockfwd_vm  # noqa: E402

MIB = 1024 * 1024


# The module of each guest image, in its own kernel: the default minimal
# one (vsock built in) and Debian's (vsock as modules, loaded first).
@pytest.fixture(scope="module", params=["minimal", "debian"])
def guest(request):
    if request.param == "minimal":
        ko = husktest.require_built("guest", "vsockfwd.ko", target="kmod")
    else:
        ko = husktest.require_built("guest", "debian", "vsockfwd.ko",
                                    target="kmod KERNEL=debian")
    tool = husktest.require_built("guest", "vsockfwd-test")
    husktest.require_program("qemu-system-x86_64")
    husktest.require_program("modinfo")
    husktest.require(shutil.which("cpio") and os.path.exists("/bin/busybox"),
                     "needs cpio and busybox-static")
    release = vsockfwd_vm.module_release(ko)
    kernel, _ = vsockfwd_vm.find_kernel(release, husktest.BUILD)
    husktest.require(kernel is not None, f"no guest kernel for {release}")
    # A debug kernel (KASAN, lockdep) under TCG needs about 7 minutes.
    timeout = 1800 if os.environ.get("VSOCKFWD_GUEST_KERNEL") else 600
    text, _ = vsockfwd_vm.run_guest(ko, tool, husktest.BUILD, ["test"], timeout=timeout)
    return text, vsockfwd_vm.parse_results(text)


def scenario(guest, name):
    text, results = guest
    assert name in results, f"no RESULT for {name}; console:\n{text[-4000:]}"
    ok, fields = results[name]
    assert ok, f"{name} failed: {fields}"
    return fields


def test_guest_ran_to_the_end(guest):
    text, _ = guest
    assert "DONE failures=0" in text, text[-4000:]
    # Debug kernels (VSOCKFWD_GUEST_KERNEL) add lockdep, KASAN, might_sleep
    # and ODEBUG reports; all of them contain one of these.
    for bad in ("BUG:", "WARNING:", "Oops", "ODEBUG", "INIT insmod"):
        assert bad not in text, f"{bad!r} on the guest console:\n{text[-4000:]}"


def test_api_rejects_bad_arguments(guest):
    f = scenario(guest, "api")
    assert int(f["flags"]) == -22 and int(f["badf"]) == -9
    assert f["cloexec"] == "1"
    assert int(f["ext_nonzero"]) == -7 and f["ext_zero_ok"] == "1"  # E2BIG


@pytest.mark.parametrize("name", ["stdout_64m", "stdin_64m"])
def test_64m_stream_intact(guest, name):
    f = scenario(guest, name)
    assert int(f["bytes"]) == 64 * MIB
    assert f["hash"] == f["want_hash"]
    assert int(f["handle_bytes"]) == 64 * MIB and f["handle_error"] == "0"


def test_write_then_exit_loses_nothing(guest):
    f = scenario(guest, "exit_race")
    assert f["iterations"] == "200" and f["lost"] == "0" and f["bad"] == "0"


def test_peer_reset_ends_forwarder_with_error(guest):
    f = scenario(guest, "peer_reset")
    assert int(f["handle_error"]) < 0
    assert f["producer"] == "3"  # the writer got EPIPE, as on a plain pipe


def test_closing_handle_cancels(guest):
    f = scenario(guest, "cancel")
    assert float(f["close_ms"]) < 1000 and f["producer"] == "3"


def test_stalled_reader_bounds_buffering(guest):
    f = scenario(guest, "bounded")
    assert f["moved_at_500ms"] == f["moved_at_1s"]
    assert int(f["moved_at_1s"]) <= 512 * 1024


def test_killed_producer_is_a_clean_eof(guest):
    f = scenario(guest, "producer_killed")
    assert f["handle_error"] == "0"
    assert f["handle_bytes"] == f["received"]


def test_killed_agent_cancels_its_forwarders(guest):
    f = scenario(guest, "agent_killed")
    assert f["producer"] == "3" and f["active_delta"] == "0"


def test_stdin_forwarder_ends_when_reader_exits(guest):
    f = scenario(guest, "stdin_reader_exit")
    assert f["handle_error"] == "-32" and f["handle_bytes"] == "6"


def test_300_concurrent_forwarders(guest):
    f = scenario(guest, "concurrent")
    assert f["streams"] == "300" and f["bad"] == "0"
    assert f["active_peak"] == "300"


def test_no_leak_reported_by_kmemleak(guest):
    text, results = guest
    if "RESULT kmemleak skip" in text:
        pytest.skip("guest kernel has no kmemleak (VSOCKFWD_GUEST_KERNEL=debug build)")
    f = scenario(guest, "kmemleak")
    assert f["vsockfwd"] == "0"


def test_counters_balance(guest):
    f = scenario(guest, "counters")
    assert f["active"] == "0" and f["started"] == f["finished"]


def test_rmmod_refused_while_busy_then_succeeds(guest):
    f = scenario(guest, "rmmod")
    assert f["busy_errno"] == "11"  # EWOULDBLOCK
    assert f["unload_errno"] == "0" and f["reload_errno"] == "0"
    scenario(guest, "after_reload")

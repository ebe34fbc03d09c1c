"""libhusk VM lifecycle under real QEMU (TCG): boot judged by a guest
marker, exit reporting, stop escalation, and cleanup of every process,
socket and directory, also when QEMU or the caller is killed."""
import os
import signal
import subprocess
import time

from vmtest import Vm, assert_no_leftovers, processes_mentioning


def test_boot_marker_and_guest_poweroff(husk, guest, state_root):
    vm = Vm(husk, guest, state_root, append="husk.test=ready-poweroff", vsock=False)
    info = vm.started()
    # The directory is private and holds what the library made.
    assert info["state_dir"].startswith(state_root + "/")
    ex = vm.wait_exit()
    assert vm.proc.returncode == 0, vm.stderr
    assert ex["guest_shutdown"] is True
    assert ex["reason"] == "guest-shutdown"
    assert ex["exit_code"] == 0 and ex["signal"] == 0
    assert_no_leftovers(state_root)


def test_state_dir_is_private_and_locked(husk, guest, state_root, vsockd):
    vm = Vm(husk, guest, state_root)
    info = vm.started()
    d = info["state_dir"]
    assert os.stat(d).st_mode & 0o777 == 0o700
    with open(os.path.join(d, "lock")) as f:
        assert int(f.read()) == vm.proc.pid
    assert {"console.log", "lock", "qemu.pid", "qmp.sock", "vhost-user.sock",
            "vsock.sock", "vsockd.pid"} <= set(os.listdir(d))
    # A reaper must leave a VM with a live owner alone.
    out = subprocess.run([husk, "vm-reap", "--state-root", state_root],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "reaped 0"
    assert os.path.isdir(d)
    vm.control("poweroff")
    assert vm.wait_exit()["guest_shutdown"]
    assert_no_leftovers(state_root)


def test_qemu_refusal_is_reported(husk, guest, state_root):
    p = subprocess.run([husk, "vm-run", "--kernel", "/nonexistent/vmlinux", "--accel", "tcg",
                        "--state-root", state_root, "--wait-console", "X"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    # QEMU's own complaint reaches the caller through the error record.
    assert "QEMU did not start" in p.stderr and "/nonexistent/vmlinux" in p.stderr, p.stderr
    assert_no_leftovers(state_root)


def test_boot_timeout_cleans_up(husk, guest, state_root, tmp_path):
    bogus = tmp_path / "not-a-kernel"
    bogus.write_bytes(b"\0" * 4096)
    p = subprocess.run([husk, "vm-run", "--kernel", str(bogus), "--accel", "tcg",
                        "--state-root", state_root, "--wait-console", "NEVER",
                        "--timeout", "3"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "no 'NEVER' on the console within 3000 ms" in p.stderr, p.stderr
    assert_no_leftovers(state_root)


def test_missing_vsockd_is_reported(husk, guest, state_root):
    p = subprocess.run([husk, "vm-run", "--kernel", guest.vmlinux, "--accel", "tcg",
                        "--state-root", state_root, "--vsock", "vhost-user",
                        "--vsockd", "/nonexistent/husk-vsockd"],
                       capture_output=True, text=True, timeout=60)
    assert p.returncode != 0
    assert "/nonexistent/husk-vsockd" in p.stderr
    assert_no_leftovers(state_root)


def test_stop_escalates_when_guest_ignores_powerdown(husk, guest, state_root, vsockd):
    # The test init does not handle the ACPI power button: powerdown does
    # nothing, so the library must go on to QMP quit.
    vm = Vm(husk, guest, state_root, stop_timeout_ms=2000)
    vm.started()
    t = time.monotonic()
    ex = vm.terminate()
    elapsed = time.monotonic() - t
    assert ex is not None, vm.stderr
    assert ex["reason"] == "host-qmp-quit"
    assert ex["guest_shutdown"] is False
    assert elapsed < 8, elapsed
    assert_no_leftovers(state_root)


def test_qemu_killed_library_cleans_up(husk, guest, state_root, vsockd):
    vm = Vm(husk, guest, state_root)
    info = vm.started()
    vsockd_pid = int(open(os.path.join(info["state_dir"], "vsockd.pid")).read())
    os.kill(info["qemu_pid"], signal.SIGKILL)
    ex = vm.wait_exit(timeout=30)
    assert ex["signal"] == signal.SIGKILL
    assert ex["exit_code"] == -1
    assert not os.path.exists(f"/proc/{vsockd_pid}/cmdline") or \
        vsockd_pid not in processes_mentioning(state_root)
    assert_no_leftovers(state_root)


def test_caller_killed_next_open_reaps(husk, guest, state_root, vsockd):
    vm = Vm(husk, guest, state_root)
    info = vm.started()
    os.kill(vm.proc.pid, signal.SIGKILL)
    vm.proc.wait()
    # The owner is gone but QEMU and husk-vsockd still run.
    time.sleep(0.2)
    assert info["qemu_pid"] in processes_mentioning(state_root)
    out = subprocess.run([husk, "vm-reap", "--state-root", state_root],
                         capture_output=True, text=True, check=True).stdout
    assert out.strip() == "reaped 1"
    assert_no_leftovers(state_root)


def test_next_start_reaps_stale_vm(husk, guest, state_root, vsockd):
    stale = Vm(husk, guest, state_root)
    stale_info = stale.started()
    os.kill(stale.proc.pid, signal.SIGKILL)
    stale.proc.wait()
    # Starting another VM under the same root reaps the orphan first.
    vm = Vm(husk, guest, state_root, append="husk.test=ready-poweroff", vsock=False)
    vm.started()
    assert stale_info["qemu_pid"] not in processes_mentioning(state_root)
    assert not os.path.exists(stale_info["state_dir"])
    assert vm.wait_exit()["guest_shutdown"]
    assert_no_leftovers(state_root)


def test_twenty_boots_leave_nothing(husk, guest, state_root, vsockd):
    for i in range(20):
        vm = Vm(husk, guest, state_root, append="husk.test=ready-poweroff")
        vm.started()
        ex = vm.wait_exit()
        assert ex is not None, (i, vm.proc.returncode, vm.stderr)
        assert ex["guest_shutdown"], (i, vm.stderr)
        assert os.listdir(state_root) == [], (i, os.listdir(state_root))
    assert_no_leftovers(state_root)


def test_9p_shares_rw_and_readonly(husk, guest, state_root, vsockd, tmp_path):
    rw, ro = tmp_path / "rw,dir", tmp_path / "ro"    # a comma QEMU must not split on
    rw.mkdir()
    ro.mkdir()
    (ro / "hello.txt").write_text("hello from the host\n")
    vm = Vm(husk, guest, state_root,
            extra=["--share", f"data:{rw}", "--share", f"config:{ro}:ro"])
    vm.started()
    assert vm.control("mount9p data") == "ok"
    assert vm.control("mount9p config") == "ok"
    assert vm.control("read /mnt/config/hello.txt") == "ok hello from the host"
    assert vm.control("write /mnt/data/out.txt written-by-guest") == "ok"
    assert (rw / "out.txt").read_text() == "written-by-guest"
    assert vm.control("write /mnt/config/x.txt nope") == "err 30"    # EROFS
    assert not (ro / "x.txt").exists()
    vm.control("poweroff")
    assert vm.wait_exit()["guest_shutdown"]
    assert_no_leftovers(state_root)

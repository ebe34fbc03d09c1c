"""libhusk's vm API called directly (ctypes) against a real QEMU (TCG):
start, console marker, QMP query-status and powerdown, both vsock
directions through husk_vm_vsock_connect/listen, refusal, stop, destroy."""
import ctypes
import errno
import os
import select
import signal
import socket
import threading

import pytest

import husktest
from vmtest import PORT_CONTROL, READY, assert_no_leftovers, recv_line


class Error(ctypes.Structure):
    _fields_ = [("code", ctypes.c_int), ("msg", ctypes.c_char * 512)]


class Config(ctypes.Structure):
    _fields_ = [
        ("name", ctypes.c_char_p), ("qemu", ctypes.c_char_p),
        ("state_root", ctypes.c_char_p), ("machine", ctypes.c_int),
        ("accel", ctypes.c_int), ("cpus", ctypes.c_uint),
        ("memory_mib", ctypes.c_uint), ("kernel", ctypes.c_char_p),
        ("initrd", ctypes.c_char_p), ("cmdline", ctypes.c_char_p),
        ("vsock", ctypes.c_int), ("guest_cid", ctypes.c_uint32),
        ("vsockd", ctypes.c_char_p), ("shares", ctypes.c_void_p),
        ("n_shares", ctypes.c_size_t), ("extra_args", ctypes.c_void_p),
        ("keep_logs", ctypes.c_bool), ("reserved", ctypes.c_uint64 * 8),
    ]


class Exit(ctypes.Structure):
    _fields_ = [
        ("exited", ctypes.c_bool), ("exit_code", ctypes.c_int),
        ("signal", ctypes.c_int), ("guest_shutdown", ctypes.c_bool),
        ("guest_panicked", ctypes.c_bool), ("stopped", ctypes.c_bool),
        ("shutdown_reason", ctypes.c_char * 32), ("vsockd_died", ctypes.c_bool),
        ("reserved", ctypes.c_uint64 * 4),
    ]


ACCEL_TCG, VSOCK_VHOST_USER = 1, 1


@pytest.fixture(scope="module")
def lib():
    path = husktest.require_built("lib", "libhusk.so.0")
    lib = ctypes.CDLL(path)
    lib.husk_vm_start.argtypes = [ctypes.POINTER(Config), ctypes.POINTER(ctypes.c_void_p),
                                  ctypes.POINTER(Error)]
    for name in ("husk_vm_destroy", "husk_vm_process", "husk_vm_wait_console",
                 "husk_vm_query_status", "husk_vm_powerdown", "husk_vm_stop",
                 "husk_vm_vsock_connect", "husk_vm_vsock_listen", "husk_vm_get_exit",
                 "husk_vm_state_dir", "husk_vm_fd", "husk_vm_qemu_pid"):
        getattr(lib, name).argtypes = None
    lib.husk_vm_state_dir.restype = ctypes.c_char_p
    return lib


def start_vm(lib, guest, state_root, vsockd, cmdline=b"quiet"):
    err = Error()
    cfg = Config()
    lib.husk_vm_config_init(ctypes.byref(cfg))
    assert (cfg.cpus, cfg.memory_mib, cfg.guest_cid) == (1, 256, 3)
    cfg.state_root = state_root.encode()
    cfg.accel = ACCEL_TCG
    cfg.kernel = guest.vmlinux.encode()
    cfg.initrd = guest.initrd.encode()
    cfg.cmdline = cmdline
    cfg.vsock = VSOCK_VHOST_USER
    cfg.vsockd = vsockd.encode()
    vm = ctypes.c_void_p()
    assert lib.husk_vm_start(ctypes.byref(cfg), ctypes.byref(vm), ctypes.byref(err)) == 0, \
        err.msg
    return vm


def test_vm_api_end_to_end(lib, guest, state_root, vsockd):
    err = Error()
    vm = start_vm(lib, guest, state_root, vsockd)
    try:
        assert lib.husk_vm_wait_console(vm, READY.encode(), 120000, ctypes.byref(err)) == 0, \
            err.msg
        status = ctypes.create_string_buffer(32)
        assert lib.husk_vm_query_status(vm, status, 32, ctypes.byref(err)) == 0, err.msg
        assert status.value == b"running"
        assert lib.husk_vm_process(vm, None) == 0

        # host -> guest through the library's own hybrid client
        fd = lib.husk_vm_vsock_connect(vm, PORT_CONTROL, 30000, ctypes.byref(err))
        assert fd >= 0, err.msg
        control = socket.socket(fileno=fd)
        control.sendall(b"ping\n")
        assert recv_line(control) == "pong\n"

        # guest -> host through the library's listener
        lfd = lib.husk_vm_vsock_listen(vm, 6100, ctypes.byref(err))
        assert lfd >= 0, err.msg
        listener = socket.socket(fileno=lfd)
        listener.settimeout(60)
        got = {}

        def accept():
            c, _ = listener.accept()
            got["data"] = c.makefile("rb").read()
            c.close()

        t = threading.Thread(target=accept)
        t.start()
        control.sendall(b"connect 6100 1000\n")
        answer = recv_line(control)
        t.join(60)
        assert answer.startswith("ok "), answer
        assert len(got["data"]) == 1000 + 65

        # nothing listens on guest port 4999
        err = Error()
        assert lib.husk_vm_vsock_connect(vm, 4999, 30000, ctypes.byref(err)) == \
            -errno.ECONNREFUSED
        assert b"4999" in err.msg

        # powerdown is accepted; this init ignores it, stop escalates to quit
        assert lib.husk_vm_powerdown(vm, ctypes.byref(err)) == 0
        err = Error()
        assert lib.husk_vm_stop(vm, 2000, ctypes.byref(err)) == 0, err.msg
        assert lib.husk_vm_process(vm, None) == 1
        ex = Exit()
        lib.husk_vm_get_exit(vm, ctypes.byref(ex))
        assert ex.exited and ex.exit_code == 0
        assert ex.shutdown_reason == b"host-qmp-quit"
        # QMP is gone with QEMU: calls fail cleanly
        assert lib.husk_vm_query_status(vm, status, 32, None) == -errno.ESRCH
        state_dir = lib.husk_vm_state_dir(vm).decode()
        assert os.path.isdir(state_dir)
        control.close()
        listener.close()
    finally:
        lib.husk_vm_destroy(vm)
    assert not os.path.exists(state_dir)
    assert_no_leftovers(state_root)


def test_vsockd_death_is_reported(lib, guest, state_root, vsockd):
    err = Error()
    vm = start_vm(lib, guest, state_root, vsockd)
    try:
        assert lib.husk_vm_wait_console(vm, READY.encode(), 120000, ctypes.byref(err)) == 0, \
            err.msg
        state_dir = lib.husk_vm_state_dir(vm).decode()
        with open(os.path.join(state_dir, "vsockd.pid")) as f:
            os.kill(int(f.read()), 9)
        # husk_vm_fd() wakes up for it; QEMU itself keeps running.
        r, _, _ = select.select([lib.husk_vm_fd(vm)], [], [], 10)
        assert r
        assert lib.husk_vm_process(vm, None) == 0
        ex = Exit()
        lib.husk_vm_get_exit(vm, ctypes.byref(ex))
        assert ex.vsockd_died and not ex.exited
        assert not os.path.exists(os.path.join(state_dir, "vsockd.pid"))
        assert lib.husk_vm_vsock_connect(vm, PORT_CONTROL, 1000, ctypes.byref(err)) == \
            -errno.ENOTCONN
        assert b"husk-vsockd has exited" in err.msg
        assert lib.husk_vm_stop(vm, 1000, None) == 0
    finally:
        lib.husk_vm_destroy(vm)
    assert_no_leftovers(state_root)


def test_guest_panic_judged_by_marker_not_exit_code(lib, guest, state_root, vsockd):
    err = Error()
    vm = start_vm(lib, guest, state_root, vsockd, cmdline=b"quiet husk.test=panic")
    try:
        r = lib.husk_vm_wait_console(vm, READY.encode(), 120000, ctypes.byref(err))
        assert r == -errno.EPIPE, err.msg
        assert b"QEMU exited before the guest printed" in err.msg
        ex = Exit()
        lib.husk_vm_get_exit(vm, ctypes.byref(ex))
        # QEMU itself exits 0: panic=-1 reboots, -no-reboot turns that into an exit.
        assert ex.exited and ex.exit_code == 0
        assert ex.guest_shutdown and ex.shutdown_reason == b"guest-reset"
        console = open(os.path.join(lib.husk_vm_state_dir(vm).decode(), "console.log")).read()
        assert "Kernel panic" in console
    finally:
        lib.husk_vm_destroy(vm)
    assert_no_leftovers(state_root)


def test_stop_escalates_to_sigkill_for_a_frozen_qemu(lib, guest, state_root, vsockd):
    vm = start_vm(lib, guest, state_root, vsockd)
    try:
        pid = lib.husk_vm_qemu_pid(vm)
        # A frozen QEMU answers neither powerdown nor quit, and SIGTERM stays
        # pending: only the last rung, SIGKILL, ends it.
        os.kill(pid, signal.SIGSTOP)
        err = Error()
        assert lib.husk_vm_stop(vm, 1000, ctypes.byref(err)) == 0, err.msg
        ex = Exit()
        lib.husk_vm_get_exit(vm, ctypes.byref(ex))
        assert ex.exited and ex.signal == signal.SIGKILL and ex.exit_code == -1
        assert not os.path.exists(f"/proc/{pid}")
    finally:
        lib.husk_vm_destroy(vm)
    assert_no_leftovers(state_root)

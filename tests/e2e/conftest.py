"""Fixtures for libhusk's e2e tests (helpers live in vmtest.py)."""
import os
import shutil
import signal
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import guestimage  # noqa: E402
import husktest  # noqa: E402
import ocitest  # noqa: E402
from vmtest import Guest, processes_mentioning  # noqa: E402


@pytest.fixture(scope="session")
def husk():
    husktest.require_program("qemu-system-x86_64")
    return husktest.require_built("bin", "husk")


@pytest.fixture(scope="session")
def guest():
    try:
        return Guest(*guestimage.guest_files(husktest.BUILD))
    except FileNotFoundError as e:
        husktest.require(False, str(e))


@pytest.fixture(scope="session")
def vsockd():
    return husktest.require_built("bin", "husk-vsockd")


@pytest.fixture
def state_root():
    # Short path: AF_UNIX socket paths (vsock.sock_<port>) are capped at 107.
    root = tempfile.mkdtemp(prefix="husk-e2e.", dir="/tmp")
    yield root
    for pid in processes_mentioning(root):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    shutil.rmtree(root, ignore_errors=True)


# ---- the OCI runtime tests (test_oci*.py) ----------------------------------

@pytest.fixture(scope="module")
def subreaper():
    ocitest.become_subreaper()


@pytest.fixture(scope="session")
def rootfs():
    """The demo bundle's busybox rootfs (mk/demo.sh), with the guest image built."""
    husktest.require_built("guest", "vmlinux", target="image")
    return husktest.require_built("demo", "rootfs", target="build/demo/.stamp")


@pytest.fixture
def rt(husk, state_root, subreaper):
    with ocitest.runtime(husk, state_root) as runtime:
        yield runtime

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

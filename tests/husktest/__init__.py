"""Helpers shared by husk's pytest tiers."""
import os
import shutil

import pytest

TOP = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
BUILD = os.environ.get("HUSK_BUILD", os.path.join(TOP, "build"))


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(condition, why):
    """Skip when a prerequisite is missing; under CI=true fail instead.

    CI must not silently skip what it is able to run, so a missing QEMU,
    root or clang is a failure there, with the reason.
    """
    if condition:
        return
    if in_ci():
        pytest.fail(f"prerequisite missing under CI=true: {why}")
    pytest.skip(why)


def require_root():
    require(os.geteuid() == 0, "needs root")


def require_program(name):
    path = shutil.which(name)
    require(path is not None, f"needs {name} in PATH")
    return path


def build_path(*parts):
    return os.path.join(BUILD, *parts)


def require_built(*parts, target="all"):
    path = build_path(*parts)
    require(os.path.exists(path), f"{path} is missing (run 'make {target}')")
    return path


def require_host_feature(condition, why):
    """Skip, also under CI, when the host kernel lacks a feature.

    Only for what no install step can provide (e.g. a cgroup2 controller
    that this host binds to cgroup v1); every such case must also run in
    the VM tier, and `why` says where.
    """
    if not condition:
        pytest.skip(f"host lacks a kernel feature: {why}")

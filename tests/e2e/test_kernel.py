"""The minimal guest kernel: `make kernel` outputs, its cache, its KDIR, a boot.

Needs a built kernel (`make kernel`, cached in $HUSK_CACHE); the tests that
exercise the cache logic work on a throw-away cache that borrows the real
source tree, so they never rebuild or damage the shared entry.
"""
import os
import shutil
import subprocess
import tempfile
import time

import pytest

from husktest import TOP, build_path, require, require_built, require_program

BUILD_SH = os.path.join(TOP, "kernel", "build.sh")
SMOKE_SH = os.path.join(TOP, "kernel", "boot-smoke.sh")

# Files the cache manifest covers (kernel/build.sh MANIFEST_FILES).
MANIFEST_FILES = [
    "build/vmlinux",
    "build/arch/x86/boot/bzImage",
    "build/.config",
    "build/Module.symvers",
    "build/Makefile",
    "build/include/config/auto.conf",
    "build/include/generated/autoconf.h",
    "build/include/generated/utsrelease.h",
    "build/scripts/basic/fixdep",
    "build/scripts/mod/modpost",
]


def run(args, env=None, timeout=120):
    return subprocess.run(args, env=env, timeout=timeout, text=True,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def cache_entry():
    """The entry kernel/build.sh uses for the current inputs; must be valid."""
    require_built("kernel", "vmlinux", target="kernel")
    res = run([BUILD_SH, "--check"])
    require(res.returncode == 0, f"kernel cache entry not valid (run 'make kernel'): {res.stdout}")
    return run([BUILD_SH, "--print-entry"]).stdout.strip()


def release():
    with open(build_path("kernel", "build", "include", "config", "kernel.release")) as f:
        return f.read().strip()


@pytest.fixture
def scratch_cache():
    """A cache root whose source tree is the real one (a symlink) and whose
    entries are private to the test."""
    entry = cache_entry()
    real_kernel_dir = os.path.dirname(entry)
    src = os.path.realpath(os.path.join(entry, "build", "source"))
    root = tempfile.mkdtemp(prefix="husk-kcache-")
    try:
        os.makedirs(os.path.join(root, "kernel"))
        os.symlink(src, os.path.join(root, "kernel", os.path.basename(src)))
        yield root, os.path.join(root, "kernel", os.path.basename(entry)), real_kernel_dir
    finally:
        shutil.rmtree(root)


def copy_entry(entry, dest):
    """Copy the manifest-covered part of an entry; link the tree's source."""
    for rel in MANIFEST_FILES + ["manifest.sha256", "info"]:
        os.makedirs(os.path.dirname(os.path.join(dest, rel)), exist_ok=True)
        shutil.copy2(os.path.join(entry, rel), os.path.join(dest, rel))
    os.symlink(os.readlink(os.path.join(entry, "build", "source")),
               os.path.join(dest, "build", "source"))


def test_vmlinux_is_pvh_bootable_and_config_holds_fragment():
    vmlinux = require_built("kernel", "vmlinux", target="kernel")
    notes = run(["readelf", "-n", vmlinux]).stdout
    # XEN_ELFNOTE_PHYS32_ENTRY (0x12) is what QEMU looks for to boot PVH.
    assert "Xen" in notes and "0x00000012" in notes, notes
    with open(build_path("kernel", "config")) as f:
        config = f.read().splitlines()
    for line in ("CONFIG_PVH=y", "CONFIG_VIRTIO_VSOCKETS=y", "CONFIG_HIGH_RES_TIMERS=y",
                 "CONFIG_MODULES=y", 'CONFIG_LOCALVERSION="-husk"'):
        assert line in config
    assert release().endswith("-husk")
    assert os.path.getsize(build_path("kernel", "bzImage")) > 1 << 20


def test_out_of_tree_module_builds_against_kdir():
    cache_entry()
    kdir = build_path("kernel", "build")
    assert os.path.islink(kdir)
    with tempfile.TemporaryDirectory(prefix="husk-kmod-") as mod:
        with open(os.path.join(mod, "probe.c"), "w") as f:
            f.write('#include <linux/module.h>\n'
                    'static int __init probe_init(void) { return 0; }\n'
                    'module_init(probe_init);\n'
                    'MODULE_LICENSE("GPL");\n')
        with open(os.path.join(mod, "Kbuild"), "w") as f:
            f.write("obj-m := probe.o\n")
        res = run(["make", "-C", kdir, f"M={mod}", "modules"])
        assert res.returncode == 0, res.stdout
        vermagic = run(["modinfo", "-F", "vermagic", os.path.join(mod, "probe.ko")]).stdout
        assert vermagic.split()[0] == release()


def test_cache_hit_is_fast_and_publishes_copies(tmp_path):
    entry = cache_entry()
    t0 = time.monotonic()
    res = run([BUILD_SH, "--out", str(tmp_path)])
    elapsed = time.monotonic() - t0
    assert res.returncode == 0, res.stdout
    assert "cached:" in res.stdout
    assert elapsed < 30, f"cache hit took {elapsed:.1f} s"
    with open(tmp_path / "vmlinux", "rb") as a, open(os.path.join(entry, "build", "vmlinux"), "rb") as b:
        assert a.read() == b.read()
    assert os.path.realpath(tmp_path / "build") == os.path.realpath(os.path.join(entry, "build"))


@pytest.mark.parametrize("damage", ["flip-vmlinux-byte", "drop-symvers", "drop-manifest"])
def test_corrupt_cache_entry_is_detected(scratch_cache, damage):
    root, entry, real_dir = scratch_cache
    env = dict(os.environ, HUSK_CACHE=root)
    copy_entry(os.path.join(real_dir, os.path.basename(entry)), entry)
    assert run([BUILD_SH, "--check"], env=env).returncode == 0

    if damage == "flip-vmlinux-byte":
        with open(os.path.join(entry, "build", "vmlinux"), "r+b") as f:
            f.seek(4096)
            byte = f.read(1)
            f.seek(4096)
            f.write(bytes([byte[0] ^ 0xFF]))
    elif damage == "drop-symvers":
        os.unlink(os.path.join(entry, "build", "Module.symvers"))
    else:
        os.unlink(os.path.join(entry, "manifest.sha256"))
    res = run([BUILD_SH, "--check"], env=env)
    assert res.returncode == 1 and "missing or corrupt" in res.stdout


def test_dropped_fragment_option_is_named(scratch_cache, tmp_path):
    root, _, _ = scratch_cache
    # Sound is off in tinyconfig, so this setting cannot survive olddefconfig.
    extra = tmp_path / "extra.config"
    extra.write_text("CONFIG_SND_HDA_INTEL=y\n# CONFIG_VT is not set\n")
    res = run([BUILD_SH, "--out", str(tmp_path / "out"), "--fragment", str(extra)],
              env=dict(os.environ, HUSK_CACHE=root), timeout=300)
    assert res.returncode != 0
    assert "CONFIG_SND_HDA_INTEL=y (final: not set)" in res.stdout
    assert "CONFIG_VT" not in res.stdout.split("did not hold")[-1]
    # Nothing half-built is left behind as an entry.
    leftovers = [n for n in os.listdir(os.path.join(root, "kernel")) if ".tmp." in n]
    assert leftovers == []
    assert not (tmp_path / "out").exists()


def test_boots_to_init_on_microvm():
    cache_entry()
    require_program("qemu-system-x86_64")
    require(shutil.which("busybox") is not None, "needs busybox-static")
    res = run([SMOKE_SH, "--runs", "1"], timeout=120)
    assert res.returncode == 0, res.stdout
    assert "HUSK-BOOT-SMOKE-OK: 1 of 1 boots reached /init" in res.stdout


def test_interrupted_build_leaves_no_entry_and_no_processes(scratch_cache, tmp_path):
    root, _, _ = scratch_cache
    env = dict(os.environ, HUSK_CACHE=root)
    extra = tmp_path / "extra.config"
    extra.write_text("CONFIG_FUSE_FS=y\n")
    args = [BUILD_SH, "--out", str(tmp_path / "out"), "--fragment", str(extra)]
    proc = subprocess.Popen(args, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        for line in proc.stdout:
            if "compiling vmlinux" in line:
                break
        else:
            pytest.fail("build.sh ended before compiling")
        time.sleep(2)
        proc.terminate()
        assert proc.wait(timeout=30) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    kernel_dir = os.path.join(root, "kernel")
    assert [n for n in os.listdir(kernel_dir) if ".tmp." in n] == []
    assert run(args + ["--check"], env=env).returncode == 1
    # The kernel make ran in its own process group; it must be gone too.
    ps = run(["ps", "-eo", "args"]).stdout
    assert root not in ps

"""The guest image pieces against the real Debian kernel: the vmlinux
extractor on /boot/vmlinuz, and a booted initramfs whose modules, listed in
/lib/modules/husk.list, all load."""
import glob
import os
import re
import shutil
import struct
import subprocess
import tempfile

import pytest

import husktest

XEN_ELFNOTE_PHYS32_ENTRY = 18


def newest_vmlinuz():
    found = glob.glob("/boot/vmlinuz-*")
    husktest.require(found, "needs linux-image-amd64 (/boot/vmlinuz-*)")

    def version_key(path):
        return [int(p) if p.isdigit() else p for p in re.split(r"[.-]", path)]

    return sorted(found, key=version_key)[-1]


def pvh_entry(path):
    """Independent reading of the ELF program-header notes."""
    with open(path, "rb") as f:
        data = f.read()
    assert data[:4] == b"\x7fELF" and data[4] == 2 and data[5] == 1
    phoff, = struct.unpack_from("<Q", data, 0x20)
    phentsize, phnum = struct.unpack_from("<HH", data, 0x36)
    for i in range(phnum):
        p_type, _, p_offset, _, _, p_filesz = struct.unpack_from(
            "<IIQQQQ", data, phoff + i * phentsize)
        if p_type != 4:  # PT_NOTE
            continue
        off, end = p_offset, p_offset + p_filesz
        while off + 12 <= end:
            namesz, descsz, ntype = struct.unpack_from("<III", data, off)
            name = data[off + 12:off + 12 + namesz]
            desc = off + 12 + ((namesz + 3) & ~3)
            if name == b"Xen\0" and ntype == XEN_ELFNOTE_PHYS32_ENTRY:
                return struct.unpack_from("<I", data, desc)[0]
            off = desc + ((descsz + 3) & ~3)
    return None


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="husk-test-image.")
    yield d
    shutil.rmtree(d)


def test_extract_debian_vmlinuz(workdir):
    tool = husktest.require_built("bin", "husk-extract-vmlinux")
    vmlinuz = newest_vmlinuz()
    out = os.path.join(workdir, "vmlinux")
    res = subprocess.run([tool, vmlinuz, out], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    entry = pvh_entry(out)
    assert entry is not None, "extracted vmlinux has no PVH note"
    assert f"0x{entry:08x}" in res.stdout
    # the compressed bzImage is not itself accepted as the output format
    assert os.path.getsize(out) > 2 * os.path.getsize(vmlinuz)


def test_extract_rejects_non_kernel(workdir):
    tool = husktest.require_built("bin", "husk-extract-vmlinux")
    junk = os.path.join(workdir, "junk")
    with open(junk, "wb") as f:
        f.write(os.urandom(65536))
    out = os.path.join(workdir, "vmlinux")
    res = subprocess.run([tool, junk, out], capture_output=True, text=True)
    assert res.returncode == 1
    assert "no compressed payload" in res.stderr
    assert os.listdir(workdir) == ["junk"]


INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mkdir -p /bin /dev /proc
/bin/busybox --install -s /bin
export PATH=/bin
mount -t devtmpfs dev /dev
mount -t proc proc /proc
for m in $(cat /lib/modules/husk.list); do
    insmod "$m" || echo "HUSK-IMAGE-FAIL $m"
done
n=$(wc -l < /lib/modules/husk.list)
loaded=$(wc -l < /proc/modules)
[ -c /dev/vsock ] && echo "HUSK-IMAGE-OK modules=$n loaded=$loaded"
# hard links: the kernel's unpacker links the names, data from the last one
[ /sbin/true -ef /bin/busybox ] && /sbin/true && \
    echo "HUSK-LINKS-OK nlink=$(stat -c %h /bin/busybox) size=$(stat -c %s /sbin/true)"
poweroff -f
"""


def test_debian_image_boots_and_loads_modules(workdir):
    mkinitramfs = husktest.require_built("bin", "husk-mkinitramfs")
    extract = husktest.require_built("bin", "husk-extract-vmlinux")
    qemu = husktest.require_program("qemu-system-x86_64")
    husktest.require(os.path.exists("/bin/busybox"), "needs busybox-static")
    vmlinuz = newest_vmlinuz()
    version = vmlinuz.split("vmlinuz-", 1)[1]
    vmlinux = os.path.join(workdir, "vmlinux")
    subprocess.run([extract, vmlinuz, vmlinux], check=True, capture_output=True)

    init = os.path.join(workdir, "init")
    with open(init, "w") as f:
        f.write(INIT_SCRIPT)
    lst = os.path.join(workdir, "test.list")
    with open(lst, "w") as f:
        f.write("file /init ${TEST_DIR}/init 0755 0 0\n"
                "file /bin/busybox /bin/busybox 0755 0 0 /sbin/true\n")
    initrd = os.path.join(workdir, "initramfs.cpio.gz")
    modules = ["virtio_pci", "virtio_mmio", "vmw_vsock_virtio_transport",
               "9pnet_virtio", "9p"]
    cmd = [mkinitramfs, "--output", initrd,
           "--kernel-modules", f"/lib/modules/{version}"]
    for m in modules:
        cmd += ["--module", m]
    subprocess.run(cmd + [lst], check=True,
                   env=dict(os.environ, TEST_DIR=workdir))

    res = subprocess.run(
        [qemu, "-M", "q35", "-accel", "tcg", "-m", "256", "-smp", "1",
         "-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
         "-serial", "stdio", "-kernel", vmlinux, "-initrd", initrd,
         "-append", "console=ttyS0 panic=-1 quiet"],
        capture_output=True, text=True, timeout=180)
    out = res.stdout
    assert "HUSK-IMAGE-FAIL" not in out, out[-3000:]
    m = re.search(r"HUSK-IMAGE-OK modules=(\d+) loaded=(\d+)", out)
    assert m, out[-3000:]
    links = re.search(r"HUSK-LINKS-OK nlink=(\d+) size=(\d+)", out)
    assert links, out[-3000:]
    assert int(links.group(1)) == 2
    assert int(links.group(2)) == os.path.getsize("/bin/busybox")
    # every module in husk.list (the 8-module vsock chain at least) loaded
    listed, loaded = int(m.group(1)), int(m.group(2))
    assert listed >= 8 and loaded == listed, m.group(0)


def test_make_helper_builds_a_custom_image(workdir):
    """husk-initramfs-rule, as another fragment would use it for a test image."""
    husktest.require_program("make")
    newest_vmlinuz()
    init = os.path.join(workdir, "my-init")
    with open(init, "w") as f:
        f.write("#!/bin/sh\n")
    lst = os.path.join(workdir, "my.list")
    with open(lst, "w") as f:
        f.write(f"file /init {init} 0755 0 0\n")
    out = os.path.join(workdir, "my.cpio.gz")
    frag = os.path.join(workdir, "frag.mk")
    with open(frag, "w") as f:
        f.write(f"$(eval $(call husk-initramfs-rule,{out},{lst},{init}))\n")
    res = subprocess.run(
        ["make", "--no-print-directory", "-C", husktest.TOP, "-f", "Makefile",
         "-f", frag, f"BUILD={husktest.BUILD}", "KERNEL=debian", out],
        capture_output=True, text=True, timeout=300)
    assert res.returncode == 0, res.stdout + res.stderr
    names = subprocess.run(f"zcat {out} | cpio -it --quiet", shell=True,
                           capture_output=True, text=True, check=True).stdout.split()
    assert "init" in names
    assert "lib/modules/husk.list" in names
    assert any(n.endswith("/vmw_vsock_virtio_transport.ko") for n in names)

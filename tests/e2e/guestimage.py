"""Guest pieces for the e2e tests and benches, made by simple means.

The real image builder (husk-mkinitramfs, `make image`) lives elsewhere;
these helpers only need Debian's kernel and the static test init:
- an uncompressed PVH vmlinux extracted from /boot/vmlinuz-* (xz/gzip/zstd
  payload found by its magic), cached under build/e2e;
- a newc initramfs with /init = husk-test-init, /dev/console and the
  vsock and 9p module chains listed in /lib/modules/husk.list in load order.
"""
import glob
import gzip
import io
import lzma
import os
import shutil
import subprocess

# Debian 6.1: virtio, vsock and 9p are modules; this is their load order.
GUEST_MODULES = [
    "virtio_ring", "virtio", "virtio_pci_legacy_dev", "virtio_pci_modern_dev",
    "virtio_pci", "vsock", "vmw_vsock_virtio_transport_common",
    "vmw_vsock_virtio_transport", "9pnet", "9pnet_virtio", "netfs", "fscache",
    "9p",
]


def debian_kernel():
    """(bzImage path, kernel version) of the newest installed Debian kernel."""
    images = sorted(glob.glob("/boot/vmlinuz-*"))
    if not images:
        return None, None
    path = images[-1]
    return path, os.path.basename(path)[len("vmlinuz-"):]


def _decompress_payload(data):
    """Find the compressed vmlinux inside a bzImage and decompress it."""
    for magic, opener in ((b"\xfd7zXZ\x00", "xz"), (b"\x28\xb5\x2f\xfd", "zstd"),
                          (b"\x1f\x8b\x08", "gzip")):
        start = data.find(magic)
        while start >= 0:
            try:
                if opener == "xz":
                    out = lzma.LZMADecompressor().decompress(data[start:])
                elif opener == "gzip":
                    out = gzip.GzipFile(fileobj=io.BytesIO(data[start:])).read()
                else:
                    out = subprocess.run(["zstd", "-dc"], input=data[start:],
                                         capture_output=True).stdout
                if out[:4] == b"\x7fELF":
                    return out
            except (lzma.LZMAError, OSError, EOFError):
                pass
            start = data.find(magic, start + 1)
    return None


def extract_vmlinux(bzimage, out):
    """Write the ELF vmlinux inside bzimage to out (cached by mtime)."""
    if os.path.exists(out) and os.path.getmtime(out) >= os.path.getmtime(bzimage):
        return out
    with open(bzimage, "rb") as f:
        elf = _decompress_payload(f.read())
    if elf is None:
        raise RuntimeError(f"{bzimage}: no compressed ELF payload found")
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "wb") as f:
        f.write(elf)
    os.replace(out + ".tmp", out)
    return out


class Newc:
    """A minimal newc (SVR4 with no CRC) cpio writer."""

    def __init__(self):
        self.buf = io.BytesIO()
        self.ino = 1

    def _entry(self, name, mode, data=b"", rdev=(0, 0), nlink=1):
        name_b = name.encode() + b"\0"
        hdr = "070701" + "".join("%08x" % v for v in (
            self.ino, mode, 0, 0, nlink, 0, len(data), 0, 0,
            rdev[0], rdev[1], len(name_b), 0))
        self.ino += 1
        self.buf.write(hdr.encode() + name_b)
        self.buf.write(b"\0" * (-(110 + len(name_b)) % 4))
        self.buf.write(data)
        self.buf.write(b"\0" * (-len(data) % 4))

    def dir(self, name):
        self._entry(name, 0o040755, nlink=2)

    def file(self, name, data, mode=0o644):
        self._entry(name, 0o100000 | mode, data)

    def chardev(self, name, major, minor, mode=0o600):
        self._entry(name, 0o020000 | mode, rdev=(major, minor))

    def finish(self):
        self._entry("TRAILER!!!", 0)
        self.buf.write(b"\0" * (-self.buf.tell() % 512))
        return self.buf.getvalue()


def find_module(kver, name):
    root = f"/lib/modules/{kver}/kernel"
    for ext in (".ko", ".ko.xz"):
        hits = glob.glob(f"{root}/**/{name}{ext}", recursive=True)
        if hits:
            return hits[0]
    raise FileNotFoundError(f"module {name} not found under {root}")


def build_initramfs(init_binary, kver, out, modules=GUEST_MODULES):
    """A gzip newc initramfs: /init, /dev/console, modules + husk.list."""
    cpio = Newc()
    for d in ("dev", "proc", "sys", "lib", "lib/modules"):
        cpio.dir(d)
    cpio.chardev("dev/console", 5, 1)
    with open(init_binary, "rb") as f:
        cpio.file("init", f.read(), 0o755)
    listed = []
    for name in modules:
        path = find_module(kver, name)
        with open(path, "rb") as f:
            data = f.read()
        if path.endswith(".xz"):
            data = lzma.decompress(data)
        cpio.file(f"lib/modules/{name}.ko", data)
        listed.append(f"{name}.ko")
    cpio.file("lib/modules/husk.list", ("\n".join(listed) + "\n").encode())
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out + ".tmp", "wb") as f:
        f.write(gzip.compress(cpio.finish(), compresslevel=1, mtime=0))
    os.replace(out + ".tmp", out)
    return out


def guest_files(build_dir):
    """(vmlinux, bzImage, initramfs) for tests, building what is missing.

    Debian's kernel, whose modules the test initramfs carries: `make image
    KERNEL=debian`'s build/guest/debian/vmlinux when it exists.  (husk's
    default minimal kernel is booted by the husk run, OCI and stdio tests.)
    """
    bzimage, kver = debian_kernel()
    if bzimage is None:
        raise FileNotFoundError("no /boot/vmlinuz-* (install linux-image-amd64)")
    e2e = os.path.join(build_dir, "e2e")
    vmlinux = os.path.join(build_dir, "guest", "debian", "vmlinux")
    if not os.path.exists(vmlinux):
        vmlinux = extract_vmlinux(bzimage, os.path.join(e2e, "vmlinux"))
    init = os.path.join(e2e, "husk-test-init")
    if not os.path.exists(init):
        raise FileNotFoundError(f"{init} missing (make check-e2e builds it)")
    initrd = os.path.join(e2e, "test-initramfs.cpio.gz")
    if not os.path.exists(initrd) or os.path.getmtime(initrd) < max(
            os.path.getmtime(init), os.path.getmtime(__file__)):
        build_initramfs(init, kver, initrd)
    return vmlinux, bzimage, initrd


def have_vsockd(build_dir):
    return shutil.which(os.path.join(build_dir, "bin", "husk-vsockd")) is not None

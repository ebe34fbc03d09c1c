"""Boot a throwaway TCG guest that runs vsockfwd-test and return its output.

The guest is the kernel vsockfwd.ko was built for (its vermagic names the
release): Debian's /boot/vmlinuz-<release> with the vsock loopback modules
from /lib/modules/<release>, or the minimal kernel in build/kernel when the
module was built against it (vsock built in), or $VSOCKFWD_GUEST_KERNEL.  The initramfs is busybox
plus vsockfwd.ko and the static test tool, assembled in a temp dir.
"""
import os
import re
import shutil
import subprocess
import tempfile

VSOCK_MODULES = ("vsock", "vmw_vsock_virtio_transport_common", "vsock_loopback")

INIT = """#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev
mount -t debugfs debugfs /sys/kernel/debug 2>/dev/null
for m in {modules}; do
    insmod /lib/modules/$m.ko || echo "INIT insmod $m failed"
done
insmod /lib/modules/vsockfwd.ko || echo "INIT insmod vsockfwd failed"
args=$(sed -n 's/.*vsockfwd_test=\\([^ ]*\\).*/\\1/p' /proc/cmdline | tr , ' ')
/bin/vsockfwd-test $args
echo "INIT exit=$?"
poweroff -f
"""


def module_release(ko):
    out = subprocess.run(["modinfo", "-F", "vermagic", ko], check=True,
                         capture_output=True, text=True).stdout
    return out.split()[0]


def find_kernel(release, build_dir):
    """(kernel image, directory of vsock .ko files or None) for release.

    VSOCKFWD_GUEST_KERNEL names another image (vsock built in), e.g. a debug
    build with lockdep, KASAN and kmemleak.
    """
    override = os.environ.get("VSOCKFWD_GUEST_KERNEL")
    if override:
        return override, None
    debian = f"/boot/vmlinuz-{release}"
    if os.path.exists(debian):
        return debian, f"/lib/modules/{release}/kernel/net/vmw_vsock"
    rel_file = os.path.join(build_dir, "kernel", "build", "include", "config",
                            "kernel.release")
    vmlinux = os.path.join(build_dir, "kernel", "vmlinux")
    if os.path.exists(rel_file) and os.path.exists(vmlinux):
        with open(rel_file) as f:
            if f.read().strip() == release:
                return vmlinux, None
    return None, None


def build_initramfs(dest, ko, tool, vsock_dir):
    root = tempfile.mkdtemp(prefix="vsockfwd-initrd-")
    try:
        for d in ("bin", "dev", "proc", "sys", "lib/modules"):
            os.makedirs(os.path.join(root, d))
        shutil.copy("/bin/busybox", os.path.join(root, "bin", "busybox"))
        shutil.copy(tool, os.path.join(root, "bin", "vsockfwd-test"))
        shutil.copy(ko, os.path.join(root, "lib", "modules", "vsockfwd.ko"))
        loaded = []
        for m in VSOCK_MODULES:
            src = os.path.join(vsock_dir or "/nonexistent", m + ".ko")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(root, "lib", "modules"))
                loaded.append(m)
        init = os.path.join(root, "init")
        with open(init, "w") as f:
            f.write(INIT.format(modules=" ".join(loaded)))
        os.chmod(init, 0o755)
        files = subprocess.run("find . -print0", shell=True, cwd=root, check=True,
                               capture_output=True).stdout
        with open(dest, "wb") as out:
            subprocess.run(["cpio", "--null", "-o", "-H", "newc", "--quiet"],
                           cwd=root, input=files, stdout=out, check=True)
    finally:
        shutil.rmtree(root)


def run_guest(ko, tool, build_dir, args, timeout, smp=2):
    """Run `vsockfwd-test ARGS` in a guest; returns (console text, kernel)."""
    release = module_release(ko)
    kernel, vsock_dir = find_kernel(release, build_dir)
    if kernel is None:
        raise FileNotFoundError(f"no guest kernel for release {release}")
    with tempfile.TemporaryDirectory(prefix="vsockfwd-vm-") as tmp:
        initrd = os.path.join(tmp, "initrd.cpio")
        build_initramfs(initrd, ko, tool, vsock_dir)
        cmd = ["qemu-system-x86_64", "-M", "q35", "-accel", "tcg", "-smp", str(smp),
               "-m", "768", "-nodefaults", "-no-reboot", "-display", "none",
               "-serial", "stdio", "-kernel", kernel, "-initrd", initrd,
               "-append", "console=ttyS0 panic=-1 quiet loglevel=5 "
               "vsockfwd_test=" + ",".join(args)]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL)
        try:
            out, _ = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
            out += b"\nHOST timeout\n"
    return out.decode("utf-8", "replace").replace("\r", ""), kernel


def parse_results(text):
    """{name: (ok, {key: value})} from RESULT lines."""
    results = {}
    for m in re.finditer(r"^RESULT (\S+) (ok|fail) ?(.*)$", text, re.M):
        fields = dict(kv.split("=", 1) for kv in m.group(3).split() if "=" in kv)
        results[m.group(1)] = (m.group(2) == "ok", fields)
    return results

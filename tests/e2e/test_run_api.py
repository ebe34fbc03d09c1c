"""libhusk's sandbox/container API through one VM: tests/e2e/run-api.c runs
two containers, an exec, stats, new limits, pause and resume, a signal and
an OOM kill; this checks what it
observed and that nothing is left behind."""
import os
import subprocess

import husktest
from vmtest import assert_no_leftovers


def test_sandbox_api(state_root):
    husktest.require_program("qemu-system-x86_64")
    driver = husktest.require_built("e2e", "run-api", target="check-e2e")
    kernel = husktest.require_built("guest", "vmlinux", target="image")
    initrd = husktest.require_built("guest", "initramfs.img", target="image")
    rootfs = husktest.require_built("demo", "rootfs", target="check-e2e")
    env = dict(os.environ, HUSK_STATE_ROOT=state_root,
               HUSK_VSOCKD=husktest.require_built("bin", "husk-vsockd"))
    p = subprocess.run([driver, kernel, initrd, rootfs], capture_output=True, text=True,
                       timeout=300, env=env)
    assert p.returncode == 0, p.stdout + p.stderr
    assert p.stdout.splitlines() == [
        "sandbox ready",
        "c1 says init-up",
        "c1 stats pids>=1 yes memory>0 yes",
        # exec: separate streams, exit code, the sandbox's hostname in a uts namespace
        "e1 status 9 out exec-out|api-box| err exec-err",
        "resize without a tty: ENOTTY",
        # HUSK_0.3: update, pause, resume
        "updated pids.max 10 memory.max 104857600",
        "update with an unknown key: -22 resources: pids.max: unknown field",
        "paused; again: EBUSY",
        "resumed; again: EBUSY",
        # a second container from the same rootfs share, killed by its memory limit
        "c2 status 137",
        "oom event for c2",
        # more events for c2 may follow (one per rise of oom_kill seen), none for c1
        "wait_oom again: ETIMEDOUT",
        "c1 status 137",
        "done",
    ]
    assert_no_leftovers(state_root)

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * libhusk: run a QEMU micro-VM and talk to it.
 *
 * Conventions for every function here:
 *  - it returns 0 (or a non-negative value where documented) on success and
 *    a negative errno on failure;
 *  - when given a non-NULL struct husk_error, a failure also leaves a human
 *    message there naming the file, socket or field involved;
 *  - the library never prints, never exits and owns no event loop: calls
 *    block for at most the timeout they are given, and a VM exposes one fd
 *    to poll plus a call that processes what made it readable.
 *
 * Objects are opaque handles.  A handle is not thread-safe: use one VM
 * handle from one thread at a time.
 *
 * QEMU and husk-vsockd are children of the calling process, reaped through
 * their pidfds: a caller must not set SIGCHLD to SIG_IGN nor reap with
 * waitpid(-1, ...), or the library loses their exit status.
 */
#ifndef HUSK_HUSK_H
#define HUSK_HUSK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The error record (layout shared with husk's internal error.h). */
#ifndef HUSK_ERROR_MSG_MAX
#define HUSK_ERROR_MSG_MAX 512
struct husk_error {
	int code;			/* positive errno, 0 when unset */
	char msg[HUSK_ERROR_MSG_MAX];	/* human message, "" when unset */
};
#endif

/* ---- VM configuration ------------------------------------------------ */

enum husk_vm_machine {
	/* microvm with PCIe and ACPI: boots Debian's kernel, whose virtio-mmio
	 * lacks command-line device discovery, and husk's minimal kernel. */
	HUSK_VM_MACHINE_MICROVM = 0,
	HUSK_VM_MACHINE_Q35,
};

enum husk_vm_accel {
	HUSK_VM_ACCEL_AUTO = 0,	/* KVM when /dev/kvm can create a VM, else TCG */
	HUSK_VM_ACCEL_TCG,
	HUSK_VM_ACCEL_KVM,	/* fail at start when KVM is not usable */
};

enum husk_vm_vsock {
	HUSK_VM_VSOCK_NONE = 0,
	/* husk-vsockd behind vhost-user-vsock-pci; host side is a unix
	 * socket speaking the hybrid "CONNECT <port>\n" convention. */
	HUSK_VM_VSOCK_VHOST_USER,
	/* the kernel's vhost-vsock (/dev/vhost-vsock); host side is AF_VSOCK. */
	HUSK_VM_VSOCK_KERNEL,
};

/* A host directory shared with the guest over virtio-9p (mount_tag = tag). */
struct husk_vm_share {
	const char *tag;
	const char *path;
	bool readonly;
};

/*
 * Fill with husk_vm_config_init() first, then set what you need.  Strings
 * are borrowed: they must outlive husk_vm_start() (not the VM).
 */
struct husk_vm_config {
	const char *name;	/* [A-Za-z0-9][A-Za-z0-9_.-]*, <= 64; NULL: generated */
	const char *qemu;	/* NULL: $HUSK_QEMU, else qemu-system-x86_64 from PATH */
	const char *state_root;	/* NULL: $HUSK_STATE_ROOT, $XDG_RUNTIME_DIR/husk, /run/husk */
	enum husk_vm_machine machine;
	enum husk_vm_accel accel;
	unsigned int cpus;		/* default 1 */
	unsigned int memory_mib;	/* default 256 */
	const char *kernel;	/* required: PVH vmlinux or bzImage */
	const char *initrd;	/* optional */
	const char *cmdline;	/* appended after husk's own console/panic options */
	enum husk_vm_vsock vsock;
	uint32_t guest_cid;	/* default 3; must be unique per host for KERNEL */
	const char *vsockd;	/* NULL: $HUSK_VSOCKD, next to the program, PATH */
	const struct husk_vm_share *shares;
	size_t n_shares;
	const char *const *extra_args;	/* NULL-terminated, appended verbatim */
	bool keep_logs;		/* keep console.log and qemu.log after destroy */
	/* TCG's translation cache in MiB (QEMU's tb-size); 0: HUSK_VM_TCG_TB_MIB.
	 * QEMU's own default (1 GiB, filled as code is translated) costs an
	 * idle guest ~35 MiB of host memory; unused under KVM. */
	uint32_t tcg_tb_mib;
	/* Room for fields of later versions without an ABI break: zeroed by
	 * husk_vm_config_init(), leave it alone. */
	uint32_t reserved32;
	uint64_t reserved[7];
};

/* The translation cache husk asks TCG for (docs/vm.md: boot time and
 * host memory measured against it). */
#define HUSK_VM_TCG_TB_MIB 16

void husk_vm_config_init(struct husk_vm_config *cfg);

/*
 * The QEMU argv husk_vm_start() would run for cfg, with state files under
 * state_dir.  *argv_out is NULL-terminated; free it with husk_strv_free().
 * Host probes (KVM, -sandbox support, TSC frequency) run as for a start.
 */
int husk_vm_build_argv(const struct husk_vm_config *cfg, const char *state_dir,
		       char ***argv_out, struct husk_error *err);

void husk_strv_free(char **strv);

/* ---- VM lifecycle --------------------------------------------------- */

struct husk_vm;

/*
 * Create the VM's state directory (0700, with a lock file holding our pid),
 * start husk-vsockd if asked, start QEMU and finish the QMP handshake.
 * Stale VMs of dead owners under the same state root are reaped first.
 * The guest is running when this returns; booting is the caller's to judge.
 */
int husk_vm_start(const struct husk_vm_config *cfg, struct husk_vm **vm_out,
		  struct husk_error *err);

/*
 * Stop the VM if it still runs (SIGKILL, no grace), remove every file and
 * process the VM made, free the handle.  NULL is a no-op.
 */
void husk_vm_destroy(struct husk_vm *vm);

const char *husk_vm_name(const struct husk_vm *vm);
const char *husk_vm_state_dir(const struct husk_vm *vm);
const char *husk_vm_console_path(const struct husk_vm *vm);	/* guest serial log */
/* The hybrid-vsock unix socket (VHOST_USER only, else NULL). */
const char *husk_vm_vsock_path(const struct husk_vm *vm);
int husk_vm_qemu_pid(const struct husk_vm *vm);
uint32_t husk_vm_guest_cid(const struct husk_vm *vm);

/* How QEMU ended. */
struct husk_vm_exit {
	bool exited;		/* QEMU is gone and reaped */
	int exit_code;		/* when it exited normally, else -1 */
	int signal;		/* when a signal killed it, else 0 */
	bool guest_shutdown;	/* QMP SHUTDOWN with guest=true seen */
	bool guest_panicked;	/* QMP GUEST_PANICKED seen */
	bool stopped;		/* QMP STOP seen (VM paused) */
	char shutdown_reason[32];	/* from the SHUTDOWN event, "" if none */
	/* husk-vsockd ended while QEMU ran: the VM's vsock is gone (the
	 * library reports it; stopping the VM is the caller's choice). */
	bool vsockd_died;
	uint64_t reserved[4];	/* for later versions; zero */
};

/*
 * The fd to poll for readability: it fires on QMP events and on QEMU's
 * exit.  Call husk_vm_process() when it does.  Owned by the VM.
 */
int husk_vm_fd(const struct husk_vm *vm);

/*
 * Read pending QMP events and reap QEMU if it exited, without blocking.
 * Returns 1 when QEMU is gone (then the VM's helpers and sockets are
 * already cleaned up), 0 while it runs.
 */
int husk_vm_process(struct husk_vm *vm, struct husk_error *err);

/* What is known so far; exit->exited tells whether QEMU is gone. */
void husk_vm_get_exit(const struct husk_vm *vm, struct husk_vm_exit *exit);

/*
 * Wait up to timeout_ms (-1: forever) for QEMU to exit.  0 when it did,
 * -ETIMEDOUT when it still runs.
 */
int husk_vm_wait(struct husk_vm *vm, int timeout_ms, struct husk_error *err);

/*
 * Wait up to timeout_ms for the guest to write marker on its serial
 * console.  -EPIPE when QEMU exits first.
 */
int husk_vm_wait_console(struct husk_vm *vm, const char *marker,
			 int timeout_ms, struct husk_error *err);

/* QMP query-status: copies the run state ("running", "paused", ...). */
int husk_vm_query_status(struct husk_vm *vm, char *status, size_t size,
			 struct husk_error *err);

/* QMP system_powerdown: ask the guest (ACPI) to power off. */
int husk_vm_powerdown(struct husk_vm *vm, struct husk_error *err);

/*
 * Stop QEMU within about timeout_ms, escalating: system_powerdown (half the
 * time), QMP quit, SIGTERM, SIGKILL.  Returns 0 once QEMU is reaped and the
 * VM's helpers are gone; the handle stays valid for husk_vm_get_exit().
 */
int husk_vm_stop(struct husk_vm *vm, int timeout_ms, struct husk_error *err);

/*
 * Open a stream to the guest's vsock port: through husk-vsockd's hybrid
 * socket (VHOST_USER) or AF_VSOCK (KERNEL).  Returns a connected,
 * blocking, O_CLOEXEC fd.  -ECONNREFUSED when nothing listens there.
 */
int husk_vm_vsock_connect(struct husk_vm *vm, uint32_t port, int timeout_ms,
			  struct husk_error *err);

/*
 * Listen for guest connections to host vsock port `port`: a unix socket at
 * "<vsock path>_<port>" (VHOST_USER) or AF_VSOCK bound to the port
 * (KERNEL).  Returns the listening fd; accept() on it.
 */
int husk_vm_vsock_listen(struct husk_vm *vm, uint32_t port,
			 struct husk_error *err);

/*
 * Reap stale VMs under state_root (NULL: the default): every VM directory
 * whose lock is no longer held by a live owner has its QEMU and helper
 * killed and its directory removed.  Returns how many were reaped.
 */
int husk_state_reap(const char *state_root, struct husk_error *err);

/* Pick the default state root as husk_vm_start() would; 0 or -errno. */
int husk_state_root_default(char *buf, size_t size, struct husk_error *err);

#ifdef __cplusplus
}
#endif

#include "husk-sandbox.h"

#endif

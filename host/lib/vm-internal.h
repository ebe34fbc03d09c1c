/* SPDX-License-Identifier: LGPL-2.1-or-later */
/* libhusk vm internals shared by vm-*.c and the unit tests. */
#ifndef HUSK_LIB_VM_INTERNAL_H
#define HUSK_LIB_VM_INTERNAL_H

#include <stdbool.h>
#include <sys/types.h>

#include "husk-common/error.h"
#include "husk/husk.h"
#include "qmp.h"
#include "util.h"

/* QEMU gets its QMP listening socket as this fd number. */
#define VM_QMP_CHILD_FD 3
/* husk-vsockd gets its readiness pipe as this fd number. */
#define VM_READY_CHILD_FD 3

#define VM_NAME_MAX 64

/* What the host offers, probed once per process (vm-probe.c). */
struct vm_host_caps {
	bool kvm;		/* /dev/kvm can create a VM */
	bool sandbox;		/* this QEMU was built with -sandbox (seccomp) */
	unsigned long tsc_khz;	/* host TSC, 0 when unknown */
};

/* Files of one VM inside its state directory. */
struct vm_paths {
	char *dir;
	char *qmp;		/* QMP listening socket (bound by us) */
	char *console;		/* guest serial log */
	char *qemu_log;		/* QEMU's stderr */
	char *vsockd_log;	/* husk-vsockd's stderr */
	char *vhost_user;	/* husk-vsockd <-> QEMU */
	char *vsock;		/* hybrid-vsock socket for host clients */
};

int vm_paths_init(struct vm_paths *p, const char *dir);
void vm_paths_release(struct vm_paths *p);

int vm_config_validate(const struct husk_vm_config *cfg, struct husk_error *err);
/* Resolve the QEMU binary: cfg->qemu, $HUSK_QEMU, PATH. */
int vm_find_qemu(const struct husk_vm_config *cfg, char **path,
		 struct husk_error *err);
int vm_find_vsockd(const struct husk_vm_config *cfg, char **path,
		   struct husk_error *err);

/* Pure: the argv for cfg with the given paths and host capabilities. */
int vm_argv_build(const struct husk_vm_config *cfg, const char *qemu,
		  const struct vm_paths *paths, const struct vm_host_caps *caps,
		  struct strv *argv, struct husk_error *err);

/* Probe KVM, -sandbox and the TSC (cached per QEMU binary). */
int vm_host_caps_probe(const char *qemu, enum husk_vm_accel accel,
		       struct vm_host_caps *caps, struct husk_error *err);
/* KVM usable: open + KVM_GET_API_VERSION + KVM_CREATE_VM. */
bool vm_probe_kvm(void);
unsigned long vm_probe_tsc_khz(void);
/* Parse "cpu MHz : 2600.000" lines of a cpuinfo text; 0 if none. */
unsigned long vm_tsc_khz_from_cpuinfo(const char *text);

/* ---- processes (vm-spawn.c) ---- */

/*
 * fork + exec argv with fds[i] as fd 3+i in the child, stdin /dev/null,
 * stdout and stderr to log_fd, every other fd closed, signals reset.
 */
int vm_spawn(char *const argv[], const int *fds, unsigned int n_fds,
	     int log_fd, pid_t *pid_out, int *pidfd_out,
	     struct husk_error *err);
/*
 * Wait up to timeout_ms for a child of ours to exit and reap it.
 * 0 with *status (wait status) or -ETIMEDOUT.
 */
int vm_child_wait(int pidfd, int timeout_ms, int *status);

/*
 * Ask the kernel to reclaim the pages the child (pid, pidfd) has mapped
 * from the file at path, e.g. the kernel image QEMU keeps for a reset.
 * Best effort: returns how many mappings were found, or -errno.
 */
int vm_child_release_file(pid_t pid, int pidfd, const char *path);

/* The same for the VM's QEMU, once it has loaded path (vm.c says when). */
struct husk_vm;
int vm_release_file(struct husk_vm *vm, const char *path);
/*
 * Make sure a process is gone: SIGTERM, grace_ms, then SIGKILL; reaps it
 * when it is our child (reap = true).
 */
void vm_process_terminate(int pidfd, int grace_ms, bool reap);

/* ---- state directories (vm-state.c) ---- */

/* The vsock transport of a VM (for vm-vsock.c). */
enum husk_vm_vsock vm_vsock_mode(const struct husk_vm *vm);

int vm_state_root(const struct husk_vm_config *cfg, char **root,
		  struct husk_error *err);
/*
 * Create <root>/<name> (0700) holding our lock; returns the locked lock fd
 * and the directory path.  Reaps stale VMs first.
 */
int vm_state_create(const char *root, const char *name, bool keep_logs,
		    char **dir_out,
		    int *lock_fd_out, struct husk_error *err);
/* Remove the VM directory; with keep_logs only the logs stay. */
void vm_state_remove(const char *dir, bool keep_logs);

#endif

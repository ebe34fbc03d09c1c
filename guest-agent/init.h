/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * PID-1 duties that happen once at boot: early filesystems, cgroup2 with
 * controllers delegated, /dev links, loopback, kernel modules.  Each step
 * logs its own failure and the boot goes on: a guest that cannot mount
 * /dev/shm can still serve the host and say so.
 */
#ifndef HUSK_AGENT_INIT_H
#define HUSK_AGENT_INIT_H

#include <sys/types.h>

#define AGENT_MODULE_LIST "/lib/modules/husk.list"
#define AGENT_EXTRA_MODULE_DIR "/lib/modules/extra/"

/* Mount the early filesystems and populate /dev (returns the number of failed steps). */
int agent_init_mounts(void);

/* Write "+ctrl" for each available controller into cgroup.subtree_control. */
int agent_init_cgroup_controllers(const char *cgroup_dir);

/* Set IFF_UP on "lo". */
int agent_init_loopback(void);

/*
 * Load module paths listed in list_path with finit_module(2), in order:
 * AGENT_MODULES_BOOT every module but the out-of-tree ones (in
 * /lib/modules/extra/, husk-mkinitramfs --module-file), which nothing the
 * boot needs depends on; AGENT_MODULES_EXTRA only those.  Returns the
 * number of failures.
 */
enum agent_modules { AGENT_MODULES_BOOT, AGENT_MODULES_EXTRA };
int agent_init_modules(const char *list_path, enum agent_modules which);

/*
 * AGENT_MODULES_EXTRA in a child process, so that PID 1 serves the host
 * meanwhile (under TCG vsockfwd.ko took 50 ms to load).  Returns its pid, 0
 * when there is nothing to load, or -errno.
 */
pid_t agent_init_modules_async(const char *list_path);

/* Stop everything and power off (PID 1) or exit(status) otherwise; never returns. */
void agent_shutdown(int pid1, int status) __attribute__((noreturn));

#endif

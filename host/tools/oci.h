/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * husk's runc-compatible command line (docs/oci-runtime.md): global flags,
 * the error log containerd reads, the monitor's control protocol and the
 * pieces the verbs share.
 */
#ifndef HUSK_TOOL_OCI_H
#define HUSK_TOOL_OCI_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <poll.h>
#include <sys/types.h>

#include "husk-common/error.h"
#include "husk/husk.h"
#include "oci-state.h"

#define OCI_DEFAULT_ROOT "/run/husk"

struct oci_globals {
	const char *root;
	const char *log_path;
	bool log_json;
	bool debug;
	bool no_stderr;		/* a monitor: stderr is the container's */
};

extern struct oci_globals oci_globals;

/*
 * Strip runc's global flags from the front of argv (--root, --log,
 * --log-format, --debug, --systemd-cgroup, --rootless, --criu).  Returns how
 * many arguments were consumed, or -EINVAL after printing why.
 */
int oci_parse_globals(int argc, char **argv);

/* An error as runc reports it: stderr and, with --log, a log line. */
void oci_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void oci_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void oci_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The verbs (one file each). */
int cmd_oci_create(int argc, char **argv);
int cmd_oci_start(int argc, char **argv);
int cmd_oci_state(int argc, char **argv);
int cmd_oci_kill(int argc, char **argv);
int cmd_oci_delete(int argc, char **argv);
int cmd_oci_exec(int argc, char **argv);
int cmd_oci_run(int argc, char **argv);
int cmd_oci_list(int argc, char **argv);
int cmd_oci_ps(int argc, char **argv);
int cmd_oci_spec(int argc, char **argv);
int cmd_oci_features(int argc, char **argv);
int cmd_oci_pause(int argc, char **argv);
int cmd_oci_resume(int argc, char **argv);
int cmd_oci_update(int argc, char **argv);
int cmd_oci_events(int argc, char **argv);

/* ---- shared by create and run ------------------------------------------ */

struct oci_create_opts {
	const char *id;
	const char *bundle;
	const char *pid_file;
	const char *console_socket;
	bool detach;
};

/* Parse create's (and run's) flags; the bundle is made absolute. */
int oci_parse_create(int argc, char **argv, struct oci_create_opts *o, const char *usage);

/*
 * Create the container: state dir, monitor, sandbox, hooks.  *monitor is
 * the init monitor's pid (our child).  0 or -errno after oci_error().
 */
int oci_create(const struct oci_create_opts *o, pid_t *monitor);

/* Start a created container (start and run); runs the poststart hooks. */
int oci_start(const char *id);

/* Remove a container (delete and run): monitor, VM, poststop hooks, state. */
int oci_delete(const char *id, bool force);

/* ---- update and events (oci-cgroup.c: no VM needed) --------------------- */

struct oci_update {
	const char *id;
	const char *resources_file;	/* -r FILE: linux.resources JSON, "-" stdin */
	bool flags_ignored;		/* flags given besides -r (runc ignores them) */
	char *json;			/* otherwise: the flags as linux.resources */
};

/* runc update's flags; an unsupported flag or a bad value names the flag. */
int oci_update_parse(int argc, char **argv, struct oci_update *u, struct husk_error *err);
void oci_update_release(struct oci_update *u);

/* "512m", "1.5GiB", "64kb", "1024" (binary units, as runc); "-1" is -1. */
int oci_parse_size(const char *s, int64_t *bytes);

/* Go's durations, as runc's --interval takes them: "5s", "100ms", "1m30s". */
int oci_parse_duration(const char *s, int64_t *ns);

/* The "data" object of runc's {"type":"stats"} event. */
void oci_stats_json(FILE *out, const struct husk_container_stats *st);

/* ---- the monitor's control socket --------------------------------------- */

#define OCI_CTL_SOCKET "ctl"
#define OCI_CTL_MSG_MAX 65536

/*
 * Requests are one SOCK_SEQPACKET message each: "start", "kill SIG ALL",
 * "delete", "ps", "pause", "resume", "stats", "update\0JSON" or
 * "exec\0KEY=VALUE\0..." (see oci-exec.c).  Replies:
 * "ok [TEXT]" or "err ERRNO MESSAGE"; an exec reply carries the process's
 * stdio fds, and its connection later gets "exit STATUS".  An exec
 * connection sends "signal N" and "resize ROWS COLS".  Pods: a member's
 * monitor sends "join\0id=..\0bundle=..\0tty=0|1[\0size=R C]" to its
 * sandbox's monitor (the reply carries the member's stdio fds) and keeps
 * that connection for "start", "kill SIG ALL", "ps", "pause", "resume",
 * "update\0JSON", "stats", "signal N", "resize R C" and, last, "remove";
 * it gets "exit STATUS" there.  An exec in a member goes to the sandbox's
 * monitor with a "container=ID" item.
 */
/* The monitor listens on <dir>/ctl; commands connect to <root>/<id>/ctl. */
int oci_ctl_listen(int dir_fd);
int oci_ctl_connect(const char *root, const char *id);
int oci_ctl_send(int fd, const void *msg, size_t len, const int *fds, size_t n_fds);
/* Answer "ok N" with a process's N stdio fds (stdin, stdout[, stderr]), then
 * close them: they are the receiver's now. */
void oci_ctl_send_stdio(int fd, const struct husk_stdio *stdio);
/* Receive one message (NUL-terminated in buf) and up to max_fds fds. */
ssize_t oci_ctl_recv(int fd, char *buf, size_t size, int *fds, size_t max_fds,
		     size_t *n_fds);
/* Send a request, wait for its reply; returns 0 or -errno after oci_error(). */
int oci_ctl_call(const char *id, const char *request, char *reply, size_t size);
/* The same for a request of len bytes (it may hold NULs). */
int oci_ctl_call_msg(const char *id, const void *request, size_t len, char *reply,
		     size_t size);
/* A monitor's answer: "err ERRNO MESSAGE" from err (or strerror(-r)). */
void oci_ctl_reply_error(int conn, const struct husk_error *err, int r);

/* What the init monitor's cgroup requests keep between calls. */
struct oci_cgroup_state {
	bool paused;			/* husk pause froze the guest cgroup */
	bool oom_watch;			/* husk_sandbox_watch_oom() runs */
	uint64_t ooms;			/* this container's OOM kills seen since */
};

struct monitor;

/*
 * The init monitor's requests on a container's cgroup in its VM, its own
 * or a pod member's (oci-monitor-cgroup.c): "pause", "resume",
 * "update\0JSON", "stats" (answered "ok OOMS DATA").  Returns false when
 * msg is none of them.  running: started, not exited.
 */
bool oci_monitor_cgroup_request(struct monitor *m, struct husk_container *ctr,
				bool running, struct oci_cgroup_state *cg, int conn,
				const char *msg, size_t len);
/* As runc: a frozen container is thawed once sent SIGKILL, so that it can die. */
void oci_monitor_cgroup_killed(struct husk_container *ctr, struct oci_cgroup_state *cg,
			       int sig);

/* ---- monitors ------------------------------------------------------------ */

/*
 * The stdio a monitor holds: the fds husk was started with, or the slave
 * of a pty whose master went to --console-socket.
 */
struct oci_stdio {
	int in, out, err;
	bool tty;
};

/*
 * Make a pty, send its master to the unix socket at path (as runc does,
 * SCM_RIGHTS with the pty's name), make the slave raw and return it.
 */
int oci_console_setup(const char *socket_path, int *slave_fd);

/*
 * The init monitor: forked by create, owns the sandbox and the container.
 * Reports readiness (or the error) on ready_fd, then serves.  Never returns.
 */
void __attribute__((noreturn)) oci_monitor_main(const char *id, const char *bundle,
						int dir_fd, struct oci_stdio *io,
						int ready_fd);

/* Relays between a monitor's stdio and a process's stdio fds. */
struct oci_relay {
	int from[3];		/* our stdin, process stdout, process stderr */
	int to[3];		/* process stdin, our stdout, our stderr */
	bool broken[3];
};

void oci_relay_init(struct oci_relay *r, const struct oci_stdio *io,
		    const struct husk_stdio *proc);
/* Fill pfd[0..2] for poll. */
void oci_relay_pollfds(const struct oci_relay *r, struct pollfd *pfd);
/* Move what pfd[0..2] says is ready; closes streams at EOF. */
void oci_relay_handle(struct oci_relay *r, const struct pollfd *pfd);
/* True while the process's stdout/stderr still have data to carry. */
bool oci_relay_output_open(const struct oci_relay *r);
void oci_relay_close(struct oci_relay *r);

/*
 * What both monitors do first: our own description of the state directory
 * (the inherited one carries create's flock; returned, dir_fd closed), no
 * pinned cwd, our own session, a console as controlling terminal and stdio.
 */
int oci_monitor_enter(int dir_fd, const struct oci_stdio *io);

/* Signals a monitor forwards (everything catchable but SIGCHLD/SIGPIPE). */
int oci_monitor_signalfd(void);

/* ---- pods (oci-pod.c, oci-member.c) -------------------------------------- */

/*
 * A pod sandbox's VM (or one whose container has host bind mounts) shares
 * one more host directory, ROOT/SBID/shared: libhusk's shared directory
 * (tag husk-shared).  A member's rootfs is bound to shared/<id>/rootfs by
 * the sandbox's init monitor, host bind mounts to shared/<id>/mounts/<i>
 * by libhusk, and they reach the guest through that share.
 */
#define OCI_POD_SHARE_DIR "shared"
#define OCI_POD_MAX_MEMBERS 16

/*
 * The sandbox st's annotations ask to join (never st itself); NULL: none.
 * husk.sandbox, when present, wins over CRI's annotations.
 */
const char *oci_pod_sandbox_of(const struct oci_state *st);
/* Whether st is a pod sandbox: CRI's container-type=sandbox, or husk.sandbox=<own id>. */
bool oci_pod_is_sandbox(const struct oci_state *st);

/* A container that joined the sandbox, served by the sandbox's init monitor. */
struct oci_pod_member {
	int conn;			/* its monitor's connection; -1: free slot */
	pid_t peer;			/* its monitor's pid */
	char *id, *bundle;
	char *mount;			/* host bind mount of its rootfs */
	struct husk_container *ctr;
	struct husk_process *init;
	bool started, exited;
	struct oci_cgroup_state cgroup;	/* pause, OOM count, as the sandbox's own */
};

struct oci_pod {
	char *share;			/* host path of the shared directory; NULL: none */
	bool sandbox;			/* a pod sandbox: others may join */
	struct oci_pod_member members[OCI_POD_MAX_MEMBERS];
};

struct monitor;

/* Make ROOT/ID/shared (pod->share), for a pod sandbox or host bind mounts. */
int oci_pod_init(struct oci_pod *pod, int dir_fd, bool sandbox, struct husk_error *err);
/* "join\0id=..\0bundle=..\0tty=..": true when conn became a member's. */
bool oci_pod_join(struct oci_pod *pod, struct husk_sandbox *sb, int conn, const char *msg,
		  size_t len);
/* The member id, started or not; NULL: none. */
struct oci_pod_member *oci_pod_find(struct oci_pod *pod, const char *id);
/* The started member id (exec's target); NULL with a reason in err. */
struct oci_pod_member *oci_pod_find_running(struct oci_pod *pod, const char *id,
					    struct husk_error *err);
/* Two pollfds per member (connection, init exit) at pfd; returns how many. */
size_t oci_pod_pollfds(const struct oci_pod *pod, struct pollfd *pfd);
void oci_pod_handle(struct oci_pod *pod, struct monitor *m, const struct pollfd *pfd);
/* The sandbox is gone: members hear EOF, bind mounts and the share go. */
void oci_pod_teardown(struct oci_pod *pod);
/* Unmount whatever is left below ROOT/ID/shared (a crashed monitor), remove it. */
void oci_pod_share_cleanup(const char *root, const char *id);

/* The init monitor's exec processes of one container (oci-monitor.c). */
void oci_monitor_execs_signal(struct monitor *m, const struct husk_container *ctr, int sig);
void oci_monitor_execs_list(struct monitor *m, const struct husk_container *ctr, char *buf,
			    size_t size);
void oci_monitor_execs_drop(struct monitor *m, const struct husk_container *ctr);
/* The init monitor's sandbox, and the cgroup state of id (its own or a member's; NULL: none). */
struct husk_sandbox *oci_monitor_sandbox(const struct monitor *m);
struct oci_cgroup_state *oci_monitor_cgroup_of(struct monitor *m, const char *id);

/*
 * A member's monitor: forked by create like the init monitor, but it asks
 * the sandbox's init monitor to create the container in its VM, then
 * relays, forwards signals and verbs, and exits with the member's status.
 */
void __attribute__((noreturn)) oci_member_main(const char *id, const char *bundle,
					       const char *sandbox, int dir_fd,
					       struct oci_stdio *io, int ready_fd);

/* --pid-file: pid written atomically (temporary file, rename). */
int oci_write_pid_file(const char *path, pid_t pid);

/* Signal names (KILL, SIGKILL) and numbers. */
int oci_parse_signal(const char *s);

/* The guest image: $HUSK_KERNEL/$HUSK_INITRD, the build tree's, the installed. */
int oci_guest_files(char *kernel, size_t ksize, char *initrd, size_t isize);

#endif

/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * The OCI runtime's container state store: one directory per container
 * under a root (runc's --root), holding state.json (written atomically:
 * temporary file, fsync, rename) and the monitor's control socket.
 *
 * Concurrency: every command that reads-then-writes a container holds an
 * flock on the container's directory fd.  delete removes the directory
 * while holding it, so a waiter that gets the lock afterwards sees an
 * unlinked directory and answers "does not exist".
 */
#ifndef HUSK_LIB_OCI_STATE_H
#define HUSK_LIB_OCI_STATE_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include "husk-common/error.h"

#define OCI_VERSION "1.0.2"
#define OCI_ID_MAX 128
#define OCI_MAX_ANNOTATIONS 128

enum oci_status {
	OCI_CREATING,
	OCI_CREATED,
	OCI_RUNNING,
	OCI_STOPPED,
	OCI_PAUSED,			/* husk pause: the guest froze its cgroup */
};

struct oci_state {
	char id[OCI_ID_MAX + 1];
	enum oci_status status;		/* as recorded; see oci_state_status() */
	int pid;			/* the init monitor's pid, 0 before it runs */
	unsigned long long pid_start;	/* its start time, guards against pid reuse */
	char *bundle;			/* absolute */
	char *rootfs;			/* absolute */
	char *created;			/* RFC 3339, UTC */
	uid_t owner;
	size_t n_annotations;
	char *annotations[OCI_MAX_ANNOTATIONS][2];	/* key, value */
};

/* The status names of the runtime spec. */
const char *oci_status_name(enum oci_status st);

/* ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$ and at most OCI_ID_MAX bytes. */
bool oci_id_valid(const char *id);

/*
 * Create <root>/<id> and lock it (root is created 0711 when missing).
 * -EEXIST when the id is taken.  *dir_fd is the locked directory.
 */
int oci_state_create(const char *root, const char *id, int *dir_fd,
		     struct husk_error *err);

/* Open and lock an existing container directory; -ENOENT when none. */
int oci_state_open(const char *root, const char *id, int *dir_fd,
		   struct husk_error *err);

/*
 * Open without locking, for readers (state, list, ps): state.json is only
 * ever replaced by rename, so it reads whole, "creating" while a create
 * boots the VM.
 */
int oci_state_peek(const char *root, const char *id, int *dir_fd,
		   struct husk_error *err);

int oci_state_write(int dir_fd, const struct oci_state *st, struct husk_error *err);
int oci_state_read(int dir_fd, struct oci_state *st, struct husk_error *err);
void oci_state_release(struct oci_state *st);

/*
 * The status as seen now: a recorded creating/created/running container
 * whose monitor is gone (crash, exit, pid reused) is stopped.
 */
enum oci_status oci_state_status(const struct oci_state *st);

/* The start time of pid (field 22 of /proc/PID/stat); 0 when unknown. */
unsigned long long oci_pid_start_time(pid_t pid);

/* Remove the container directory (its files, then itself); dir_fd stays open. */
int oci_state_remove(const char *root, const char *id, int dir_fd,
		     struct husk_error *err);

/* The ids under root, sorted; *ids is a NULL-terminated array to free. */
int oci_state_list(const char *root, char ***ids, struct husk_error *err);

/* The runtime-spec state document of st, with its current status. */
void oci_state_print(FILE *out, const struct oci_state *st);

/* The same document with a given status, as hooks read it; free() it. */
char *oci_state_format(const struct oci_state *st, enum oci_status status);

/*
 * What the host takes from BUNDLE/config.json besides the spec libhusk
 * converts: annotations (into st) and the document for the hooks.
 */
struct json_doc;
int oci_config_load(const char *bundle, struct json_doc **doc, struct oci_state *st,
		    struct husk_error *err);
void oci_config_free(struct json_doc *doc);

/* s as a JSON string literal, quotes included. */
void oci_json_put_string(FILE *out, const char *s);

/* The current time as runc writes it: 2006-01-02T15:04:05.000000000Z. */
void oci_time_now(char *buf, size_t size);

#endif

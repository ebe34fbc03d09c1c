// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Containers in a sandbox.  The rootfs reaches the guest as a virtio-9p
 * share that the agent mounts from CreateContainerRequest.storages (Kata's
 * way), at SANDBOX_GUEST_CONTAINERS/<id>/rootfs, which becomes the spec's
 * root.path in the guest.  A rootfs lying inside a shared directory (a
 * container joining a running VM) mounts that share at <id>/share instead,
 * root.path pointing below it.  Host bind mounts travel in the sandbox's
 * shared directory (sandbox-mounts.c), one more storage at <id>/binds.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "sandbox-internal.h"
#include "util.h"

#define REMOVE_TIMEOUT_S 10
/* Large 9p messages: fewer round trips through the virtqueue per read. */
#define NINEP_MSIZE "msize=262144"

void container_free(struct husk_container *ctr)
{
	while (ctr->procs) {
		struct husk_process *p = ctr->procs;

		ctr->procs = p->next;
		process_free(p);
	}
	host_binds_teardown(&ctr->binds);
	free(ctr->id);
	free(ctr);
}

static void container_unlink(struct husk_container *ctr)
{
	struct husk_container **pp = &ctr->sb->containers;

	while (*pp && *pp != ctr)
		pp = &(*pp)->next;
	if (*pp)
		*pp = ctr->next;
}

/* The spec's process with the caller's initial terminal size. */
static void process_for_guest(const Grpc__Process *in, const struct husk_process_options *opts,
			      Grpc__Process *out, Grpc__Box *box)
{
	*out = *in;
	if (in->terminal && opts && opts->rows && opts->cols) {
		grpc__box__init(box);
		box->height = opts->rows;
		box->width = opts->cols;
		out->consolesize = box;
	}
}

static int check_process(const Grpc__Process *p, const char *what, struct husk_error *err)
{
	if (!p || !p->n_args || !p->args[0][0])
		return husk_error_set(err, EINVAL, "%s: process.args: empty (no command to run)",
				      what);
	return 0;
}

/* A storage mounting share at mount_point (the agent binds it from its one 9p mount). */
static void storage_for_share(Grpc__Storage *storage, char **options,
			      const struct husk_vm_share *share, char *mount_point)
{
	static const char *const ninep[] = {
		"trans=virtio", "version=9p2000.L", NINEP_MSIZE, "cache=mmap",
	};

	grpc__storage__init(storage);
	for (size_t i = 0; i < 4; i++)
		options[i] = (char *)ninep[i];
	storage->driver = "9p";
	storage->source = (char *)share->tag;
	storage->fstype = "9p";
	storage->options = options;
	storage->n_options = 4;
	if (share->readonly)
		options[storage->n_options++] = "ro";
	storage->mount_point = mount_point;
}

/*
 * Where the guest sees SHARED/<id>/mounts: through the rootfs storage
 * when the rootfs lies in the shared directory (a pod member), else
 * through a storage of its own at <id>/binds.
 */
static int binds_storage(struct husk_sandbox *sb, const char *id,
			 const struct husk_vm_share *rootfs_share, const char *rootfs_mount,
			 Grpc__Storage *storage, char **options, char **mount_point,
			 char **guest_dir, struct husk_error *err)
{
	const char *mp = rootfs_mount;

	if (rootfs_share != sb->shared) {
		if (asprintf(mount_point, SANDBOX_GUEST_CONTAINERS "/%s/binds", id) < 0) {
			*mount_point = NULL;
			return husk_error_set(err, ENOMEM, "out of memory");
		}
		storage_for_share(storage, options, sb->shared, *mount_point);
		mp = *mount_point;
	}
	if (asprintf(guest_dir, "%s/%s/mounts", mp, id) < 0) {
		*guest_dir = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	return 0;
}

static int container_create_in_guest(struct husk_sandbox *sb, const char *id,
				     const struct husk_spec *spec,
				     const struct husk_process_options *opts,
				     struct husk_error *err)
{
	Grpc__CreateContainerRequest req = GRPC__CREATE_CONTAINER_REQUEST__INIT;
	Grpc__Storage storage[2], *storages[2] = { &storage[0], &storage[1] };
	const char *subdir = "";
	const struct husk_vm_share *share = sandbox_share_for(sb, spec, &subdir);
	char *options[2][5];
	_cleanup_free_ char *mount_point = NULL, *root_path = NULL, *binds_mount = NULL;
	_cleanup_free_ char *guest_dir = NULL;
	struct guest_mounts gm = { 0 };
	Grpc__Spec oci = *spec->pb;
	Grpc__Root root = *spec->pb->root;
	Grpc__Process process;
	Grpc__Box box;
	int r;

	if (!share)
		return husk_error_set(err, EINVAL,
				      "container %s: rootfs %s is not shared with the sandbox",
				      id, spec->rootfs);
	/* A rootfs inside a shared directory: the whole share, root.path below it. */
	if (asprintf(&mount_point, SANDBOX_GUEST_CONTAINERS "/%s/%s", id,
		     subdir[0] ? "share" : "rootfs") < 0)
		mount_point = NULL;
	if (mount_point && asprintf(&root_path, "%s%s%s", mount_point, subdir[0] ? "/" : "",
				    subdir) < 0)
		root_path = NULL;
	if (!mount_point || !root_path)
		return husk_error_set(err, ENOMEM, "out of memory");
	storage_for_share(&storage[0], options[0], share, mount_point);
	req.n_storages = 1;
	if (spec_host_binds(spec->pb)) {
		r = binds_storage(sb, id, share, mount_point, &storage[1], options[1],
				  &binds_mount, &guest_dir, err);
		if (r < 0)
			return r;
		req.n_storages += binds_mount != NULL;
	}
	r = guest_mounts_build(spec->pb, guest_dir, &gm, err);
	if (r < 0)
		return r;
	oci.mounts = gm.ptrs;

	root.path = root_path;
	oci.root = &root;
	process_for_guest(spec->pb->process, opts, &process, &box);
	oci.process = &process;

	req.container_id = (char *)id;
	req.exec_id = (char *)id;
	req.storages = storages;
	req.oci = &oci;
	r = agent_create_container(&sb->agent, &req, err);
	guest_mounts_release(&gm);
	return r;
}

HUSK_EXPORT int husk_container_create(struct husk_sandbox *sb, const char *id,
				      const struct husk_spec *spec,
				      const struct husk_process_options *opts,
				      struct husk_stdio *stdio, struct husk_container **ctr_out,
				      struct husk_error *err)
{
	struct husk_container *ctr;
	struct husk_process *init = NULL;
	struct husk_stdio mine;
	int r;

	r = check_process(spec->pb->process, "spec", err);
	if (r < 0)
		return r;
	ctr = calloc(1, sizeof(*ctr));
	if (!ctr)
		return husk_error_set(err, ENOMEM, "out of memory");
	ctr->sb = sb;
	ctr->id = strdup(id);
	if (!ctr->id) {
		free(ctr);
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	r = process_new(ctr, id, spec->pb->process->terminal, opts, &mine, &init, err);
	if (r < 0) {
		container_free(ctr);
		return r;
	}
	ctr->procs = init;
	r = host_binds_setup(&ctr->binds, sb->shared ? sb->shared->path : NULL, id, spec->pb,
			     err);
	if (r == 0)
		r = container_create_in_guest(sb, id, spec, opts, err);
	if (r == 0)
		r = process_start_relays(init, err);
	if (r < 0) {
		close(mine.stdout_fd);
		if (mine.stdin_fd >= 0)
			close(mine.stdin_fd);
		if (mine.stderr_fd >= 0)
			close(mine.stderr_fd);
		/* Relays that did start end when the container goes. */
		(void)agent_remove_container(&sb->agent, id, REMOVE_TIMEOUT_S, NULL);
		container_free(ctr);
		return r;
	}
	ctr->next = sb->containers;
	sb->containers = ctr;
	*stdio = mine;
	*ctr_out = ctr;
	return 0;
}

HUSK_EXPORT int husk_container_start(struct husk_container *ctr, struct husk_error *err)
{
	int r = agent_start_container(&ctr->sb->agent, ctr->id, err);

	if (r < 0)
		return r;
	return process_start_waiter(ctr->procs, err);
}

HUSK_EXPORT struct husk_process *husk_container_process(struct husk_container *ctr)
{
	return ctr->procs;
}

HUSK_EXPORT const char *husk_container_id(const struct husk_container *ctr)
{
	return ctr->id;
}

HUSK_EXPORT int husk_container_exec(struct husk_container *ctr, const char *exec_id,
				    const struct husk_spec *spec,
				    const struct husk_process_options *opts,
				    struct husk_stdio *stdio, struct husk_process **proc_out,
				    struct husk_error *err)
{
	struct husk_process *p;
	struct husk_stdio mine;
	Grpc__Process process;
	Grpc__Box box;
	int r;

	r = check_process(spec->pb->process, "exec", err);
	if (r < 0)
		return r;
	r = process_new(ctr, exec_id, spec->pb->process->terminal, opts, &mine, &p, err);
	if (r < 0)
		return r;
	process_for_guest(spec->pb->process, opts, &process, &box);
	r = agent_exec_process(&ctr->sb->agent, ctr->id, exec_id, &process, err);
	if (r == 0)
		r = process_start_relays(p, err);
	if (r == 0)
		r = process_start_waiter(p, err);
	if (r < 0) {
		close(mine.stdout_fd);
		if (mine.stdin_fd >= 0)
			close(mine.stdin_fd);
		if (mine.stderr_fd >= 0)
			close(mine.stderr_fd);
		(void)agent_signal_process(&ctr->sb->agent, ctr->id, exec_id, 9, NULL);
		process_free(p);
		return r;
	}
	/* After init, which stays first. */
	p->next = ctr->procs->next;
	ctr->procs->next = p;
	*stdio = mine;
	*proc_out = p;
	return 0;
}

HUSK_EXPORT int husk_container_delete(struct husk_container *ctr, struct husk_error *err)
{
	int r = agent_remove_container(&ctr->sb->agent, ctr->id, REMOVE_TIMEOUT_S, err);

	/*
	 * Its relays may still wait on a process the agent failed to kill:
	 * the sandbox frees it once the VM is gone.
	 */
	if (r < 0)
		return r;
	container_unlink(ctr);
	container_free(ctr);
	return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/* husk_spec: a bundle's config.json or a default spec, plus run-time overrides. */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "json.h"
#include "oci-spec.h"
#include "sandbox-internal.h"
#include "util.h"

/*
 * What `husk run --rootfs DIR` runs: docker's defaults (capabilities,
 * mounts, namespaces without network), /bin/sh as root in /.
 */
#define DEFAULT_SPEC_JSON \
	"{\"ociVersion\":\"1.0.2\"," \
	"\"process\":{\"terminal\":false,\"user\":{\"uid\":0,\"gid\":0}," \
	"\"args\":[\"/bin/sh\"]," \
	"\"env\":[\"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\"," \
	"\"HOME=/root\"]," \
	"\"cwd\":\"/\"," \
	"\"capabilities\":{" \
	"\"bounding\":" "%1$s," "\"effective\":" "%1$s," "\"permitted\":" "%1$s}," \
	"\"rlimits\":[{\"type\":\"RLIMIT_NOFILE\",\"hard\":1048576,\"soft\":1048576}]," \
	"\"noNewPrivileges\":false}," \
	"\"root\":{\"path\":\".\",\"readonly\":false}," \
	"\"mounts\":[" \
	"{\"destination\":\"/proc\",\"type\":\"proc\",\"source\":\"proc\"," \
	"\"options\":[\"nosuid\",\"noexec\",\"nodev\"]}," \
	"{\"destination\":\"/dev\",\"type\":\"tmpfs\",\"source\":\"tmpfs\"," \
	"\"options\":[\"nosuid\",\"strictatime\",\"mode=755\",\"size=65536k\"]}," \
	"{\"destination\":\"/dev/pts\",\"type\":\"devpts\",\"source\":\"devpts\"," \
	"\"options\":[\"nosuid\",\"noexec\",\"newinstance\",\"ptmxmode=0666\",\"mode=0620\"]}," \
	"{\"destination\":\"/dev/shm\",\"type\":\"tmpfs\",\"source\":\"shm\"," \
	"\"options\":[\"nosuid\",\"noexec\",\"nodev\",\"mode=1777\",\"size=65536k\"]}]," \
	"\"linux\":{\"namespaces\":[{\"type\":\"pid\"},{\"type\":\"mount\"}," \
	"{\"type\":\"ipc\"},{\"type\":\"uts\"}]}}"

static const char default_caps_json[] =
	"[\"CAP_CHOWN\",\"CAP_DAC_OVERRIDE\",\"CAP_FSETID\",\"CAP_FOWNER\",\"CAP_MKNOD\","
	"\"CAP_NET_RAW\",\"CAP_SETGID\",\"CAP_SETUID\",\"CAP_SETFCAP\",\"CAP_SETPCAP\","
	"\"CAP_NET_BIND_SERVICE\",\"CAP_SYS_CHROOT\",\"CAP_KILL\",\"CAP_AUDIT_WRITE\"]";

#define CONFIG_JSON_MAX JSON_MAX_INPUT

/* path, canonical and checked to be a directory, as the spec's rootfs. */
static int spec_take_rootfs(struct husk_spec *spec, const char *path, const char *what,
			    struct husk_error *err)
{
	char *real = realpath(path, NULL);
	struct stat st;

	if (!real)
		return husk_error_seterrno(err, errno, "%s: root.path: %s", what, path);
	if (stat(real, &st) < 0 || !S_ISDIR(st.st_mode)) {
		free(real);
		return husk_error_set(err, ENOTDIR, "%s: root.path: %s is not a directory",
				      what, path);
	}
	free(spec->rootfs);
	spec->rootfs = real;
	return 0;
}

static int resolve_rootfs(struct husk_spec *spec, const char *base_dir, const char *what,
			  struct husk_error *err)
{
	_cleanup_free_ char *joined = NULL;
	const char *rel;

	if (!spec->pb->root || !spec->pb->root->path[0])
		return husk_error_set(err, EINVAL, "%s: root.path: missing", what);
	rel = spec->pb->root->path;
	if (rel[0] == '/')
		joined = strdup(rel);
	else if (asprintf(&joined, "%s/%s", base_dir, rel) < 0)
		joined = NULL;
	if (!joined)
		return husk_error_set(err, ENOMEM, "out of memory");
	return spec_take_rootfs(spec, joined, what, err);
}

static int spec_check_minimum(const struct husk_spec *spec, const char *what,
			      struct husk_error *err)
{
	if (!spec->pb->process)
		return husk_error_set(err, EINVAL, "%s: process: missing", what);
	if (!spec->pb->linux)
		return husk_error_set(err, EINVAL, "%s: linux: missing", what);
	return 0;
}

static int spec_from_text(const char *text, size_t len, const char *base_dir,
			  const char *what, struct husk_spec **spec_out,
			  struct husk_error *err)
{
	struct husk_spec *spec = calloc(1, sizeof(*spec));
	ProtobufCMessage *m;
	int r;

	if (!spec)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = oci_json_to_message(text, len, &grpc__spec__descriptor, what, &m, err);
	if (r < 0) {
		free(spec);
		return r;
	}
	spec->pb = (Grpc__Spec *)m;
	r = spec_check_minimum(spec, what, err);
	if (r == 0)
		r = resolve_rootfs(spec, base_dir, what, err);
	if (r == 0)
		r = spec_check_host_binds(spec->pb, what, err);
	if (r < 0) {
		husk_spec_free(spec);
		return r;
	}
	*spec_out = spec;
	return 0;
}

HUSK_EXPORT int husk_spec_from_json(const char *text, size_t len, const char *base_dir,
				    struct husk_spec **spec_out, struct husk_error *err)
{
	return spec_from_text(text, len, base_dir, "config.json", spec_out, err);
}

HUSK_EXPORT int husk_spec_from_bundle(const char *bundle_dir, struct husk_spec **spec_out,
				      struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_free_ char *text = NULL, *path = NULL;
	struct stat st;
	ssize_t n;

	if (asprintf(&path, "%s/config.json", bundle_dir) < 0) {
		path = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "bundle %s: %s", bundle_dir, path);
	if (fstat(fd, &st) < 0)
		return husk_error_seterrno(err, errno, "%s", path);
	if (!S_ISREG(st.st_mode) || st.st_size > CONFIG_JSON_MAX)
		return husk_error_set(err, EFBIG, "%s: not a regular file of at most %d bytes",
				      path, CONFIG_JSON_MAX);
	text = malloc(st.st_size + 1);
	if (!text)
		return husk_error_set(err, ENOMEM, "out of memory");
	n = read(fd, text, st.st_size + 1);
	if (n < 0)
		return husk_error_seterrno(err, errno, "read %s", path);
	if (n > st.st_size)
		return husk_error_set(err, EFBIG, "%s: grew while being read", path);
	return spec_from_text(text, n, bundle_dir, path, spec_out, err);
}

HUSK_EXPORT int husk_spec_from_rootfs(const char *rootfs_dir, struct husk_spec **spec_out,
				      struct husk_error *err)
{
	_cleanup_free_ char *text = NULL;
	int len = asprintf(&text, DEFAULT_SPEC_JSON, default_caps_json);

	if (len < 0) {
		text = NULL;
		return husk_error_set(err, ENOMEM, "out of memory");
	}
	return spec_from_text(text, len, rootfs_dir, "rootfs", spec_out, err);
}

HUSK_EXPORT void husk_spec_free(struct husk_spec *spec)
{
	if (!spec)
		return;
	if (spec->pb)
		protobuf_c_message_free_unpacked(&spec->pb->base, NULL);
	free(spec->rootfs);
	free(spec);
}

HUSK_EXPORT const char *husk_spec_rootfs(const struct husk_spec *spec)
{
	return spec->rootfs;
}

HUSK_EXPORT int husk_spec_set_rootfs(struct husk_spec *spec, const char *dir,
				    struct husk_error *err)
{
	return spec_take_rootfs(spec, dir, "rootfs", err);
}

HUSK_EXPORT bool husk_spec_rootfs_readonly(const struct husk_spec *spec)
{
	return spec->pb->root && spec->pb->root->readonly;
}

HUSK_EXPORT size_t husk_spec_host_binds(const struct husk_spec *spec)
{
	return spec_host_binds(spec->pb);
}

HUSK_EXPORT bool husk_spec_terminal(const struct husk_spec *spec)
{
	return spec->pb->process->terminal;
}

/* Make sure *slot holds a message of type desc (sub-sections of the spec). */
static void *ensure_message(void *slot, const ProtobufCMessageDescriptor *desc,
			    struct husk_error *err)
{
	ProtobufCMessage **m = slot;

	if (*m)
		return *m;
	*m = malloc(desc->sizeof_message);
	if (!*m) {
		husk_error_set(err, ENOMEM, "out of memory");
		return NULL;
	}
	desc->message_init(*m);
	return *m;
}

static int replace_string(char **slot, const char *value, struct husk_error *err)
{
	char *s = strdup(value);

	if (!s)
		return husk_error_set(err, ENOMEM, "out of memory");
	if (*slot != protobuf_c_empty_string)
		free(*slot);
	*slot = s;
	return 0;
}

static int strv_append(char ***v, size_t *n, const char *value, struct husk_error *err)
{
	char **nv = realloc(*v, (*n + 1) * sizeof(**v));
	char *s;

	if (!nv)
		return husk_error_set(err, ENOMEM, "out of memory");
	*v = nv;
	s = strdup(value);
	if (!s)
		return husk_error_set(err, ENOMEM, "out of memory");
	nv[(*n)++] = s;
	return 0;
}

HUSK_EXPORT int husk_spec_set_args(struct husk_spec *spec, const char *const *argv,
				   struct husk_error *err)
{
	Grpc__Process *p = spec->pb->process;

	for (size_t i = 0; i < p->n_args; i++)
		free(p->args[i]);
	free(p->args);
	p->args = NULL;
	p->n_args = 0;
	for (; argv && *argv; argv++) {
		int r = strv_append(&p->args, &p->n_args, *argv, err);

		if (r < 0)
			return r;
	}
	return 0;
}

HUSK_EXPORT int husk_spec_set_env(struct husk_spec *spec, const char *kv,
				  struct husk_error *err)
{
	Grpc__Process *p = spec->pb->process;
	const char *eq = strchr(kv, '=');
	size_t klen;

	if (!eq || eq == kv)
		return husk_error_set(err, EINVAL, "environment entry '%s': expected KEY=VALUE", kv);
	klen = eq - kv + 1;
	for (size_t i = 0; i < p->n_env; i++)
		if (!strncmp(p->env[i], kv, klen))
			return replace_string(&p->env[i], kv, err);
	return strv_append(&p->env, &p->n_env, kv, err);
}

HUSK_EXPORT int husk_spec_set_cwd(struct husk_spec *spec, const char *cwd,
				  struct husk_error *err)
{
	if (cwd[0] != '/')
		return husk_error_set(err, EINVAL, "working directory '%s': must be absolute", cwd);
	return replace_string(&spec->pb->process->cwd, cwd, err);
}

HUSK_EXPORT void husk_spec_set_user(struct husk_spec *spec, uint32_t uid, uint32_t gid)
{
	Grpc__User *u = ensure_message(&spec->pb->process->user, &grpc__user__descriptor, NULL);

	if (u) {
		u->uid = uid;
		u->gid = gid;
	}
}

HUSK_EXPORT void husk_spec_set_terminal(struct husk_spec *spec, bool terminal)
{
	spec->pb->process->terminal = terminal;
}

static bool has_namespace(const Grpc__Linux *l, const char *type)
{
	for (size_t i = 0; i < l->n_namespaces; i++)
		if (!strcmp(l->namespaces[i]->type, type))
			return true;
	return false;
}

HUSK_EXPORT int husk_spec_set_hostname(struct husk_spec *spec, const char *hostname,
				       struct husk_error *err)
{
	Grpc__Linux *l = spec->pb->linux;
	Grpc__LinuxNamespace **nv, *ns = NULL;
	int r;

	r = replace_string(&spec->pb->hostname, hostname, err);
	if (r < 0 || has_namespace(l, "uts"))
		return r;
	nv = realloc(l->namespaces, (l->n_namespaces + 1) * sizeof(*nv));
	if (!nv)
		return husk_error_set(err, ENOMEM, "out of memory");
	l->namespaces = nv;
	if (!ensure_message(&ns, &grpc__linux_namespace__descriptor, err))
		return -ENOMEM;
	nv[l->n_namespaces++] = ns;
	return replace_string(&ns->type, "uts", err);
}

static Grpc__LinuxResources *spec_resources(struct husk_spec *spec, struct husk_error *err)
{
	return ensure_message(&spec->pb->linux->resources, &grpc__linux_resources__descriptor,
			      err);
}

HUSK_EXPORT int husk_spec_set_memory_limit(struct husk_spec *spec, int64_t bytes,
					   struct husk_error *err)
{
	Grpc__LinuxResources *res = spec_resources(spec, err);
	Grpc__LinuxMemory *mem;

	if (!res)
		return -ENOMEM;
	mem = ensure_message(&res->memory, &grpc__linux_memory__descriptor, err);
	if (!mem)
		return -ENOMEM;
	/* The guest has no swap device, so memory.max alone bounds the container. */
	mem->limit = bytes;
	return 0;
}

HUSK_EXPORT int husk_spec_set_pids_limit(struct husk_spec *spec, int64_t limit,
					 struct husk_error *err)
{
	Grpc__LinuxResources *res = spec_resources(spec, err);
	Grpc__LinuxPids *pids;

	if (!res)
		return -ENOMEM;
	pids = ensure_message(&res->pids, &grpc__linux_pids__descriptor, err);
	if (!pids)
		return -ENOMEM;
	pids->limit = limit;
	return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The edge: an oci.Spec from the host becomes a struct container_config or
 * an error naming the offending field.  Nothing past this file looks at
 * the protobuf again.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "husk-common/cleanup.h"
#include "spec.h"

#define FIELD_MAX 160

/* Build a field name ("spec.mounts[3].type"); a long one is cut short. */
__attribute__((format(printf, 2, 3)))
static void fieldf(char f[FIELD_MAX], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(f, FIELD_MAX, fmt, ap);
	va_end(ap);
}

static const char *const ns_names[NS_COUNT] = {
	[NS_PID] = "pid",
	[NS_NET] = "network",
	[NS_MNT] = "mount",
	[NS_IPC] = "ipc",
	[NS_UTS] = "uts",
	[NS_USER] = "user",
	[NS_CGROUP] = "cgroup",
};

const char *ns_kind_name(enum ns_kind k)
{
	return k < NS_COUNT ? ns_names[k] : "?";
}

static const char *const cap_names[] = {
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_DAC_READ_SEARCH", "CAP_FOWNER",
	"CAP_FSETID", "CAP_KILL", "CAP_SETGID", "CAP_SETUID", "CAP_SETPCAP",
	"CAP_LINUX_IMMUTABLE", "CAP_NET_BIND_SERVICE", "CAP_NET_BROADCAST",
	"CAP_NET_ADMIN", "CAP_NET_RAW", "CAP_IPC_LOCK", "CAP_IPC_OWNER",
	"CAP_SYS_MODULE", "CAP_SYS_RAWIO", "CAP_SYS_CHROOT", "CAP_SYS_PTRACE",
	"CAP_SYS_PACCT", "CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_NICE",
	"CAP_SYS_RESOURCE", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_MKNOD",
	"CAP_LEASE", "CAP_AUDIT_WRITE", "CAP_AUDIT_CONTROL", "CAP_SETFCAP",
	"CAP_MAC_OVERRIDE", "CAP_MAC_ADMIN", "CAP_SYSLOG", "CAP_WAKE_ALARM",
	"CAP_BLOCK_SUSPEND", "CAP_AUDIT_READ", "CAP_PERFMON", "CAP_BPF",
	"CAP_CHECKPOINT_RESTORE",
};

int spec_cap_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(cap_names); i++)
		if (strcmp(cap_names[i], name) == 0)
			return (int)i;
	return -1;
}

static const struct {
	const char *name;
	int resource;
} rlimit_names[] = {
	{ "RLIMIT_AS", RLIMIT_AS }, { "RLIMIT_CORE", RLIMIT_CORE },
	{ "RLIMIT_CPU", RLIMIT_CPU }, { "RLIMIT_DATA", RLIMIT_DATA },
	{ "RLIMIT_FSIZE", RLIMIT_FSIZE }, { "RLIMIT_LOCKS", RLIMIT_LOCKS },
	{ "RLIMIT_MEMLOCK", RLIMIT_MEMLOCK },
	{ "RLIMIT_MSGQUEUE", RLIMIT_MSGQUEUE }, { "RLIMIT_NICE", RLIMIT_NICE },
	{ "RLIMIT_NOFILE", RLIMIT_NOFILE }, { "RLIMIT_NPROC", RLIMIT_NPROC },
	{ "RLIMIT_RSS", RLIMIT_RSS }, { "RLIMIT_RTPRIO", RLIMIT_RTPRIO },
	{ "RLIMIT_RTTIME", RLIMIT_RTTIME },
	{ "RLIMIT_SIGPENDING", RLIMIT_SIGPENDING },
	{ "RLIMIT_STACK", RLIMIT_STACK },
};

int spec_rlimit_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(rlimit_names); i++)
		if (strcmp(rlimit_names[i].name, name) == 0)
			return rlimit_names[i].resource;
	return -1;
}

/* ------------------------------------------------------------------------ */
/* Small checks                                                              */

int runtime_id_validate(const char *id, const char *what, struct husk_error *err)
{
	size_t len = id ? strlen(id) : 0;

	if (len < 2)
		return husk_error_set(err, EINVAL, "%s: id '%s' is too short",
				      what, id ? id : "");
	if (len > RUNTIME_ID_MAX)
		return husk_error_set(err, EINVAL, "%s: id longer than %d bytes",
				      what, RUNTIME_ID_MAX);
	for (size_t i = 0; i < len; i++) {
		char c = id[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (alnum || (i > 0 && (c == '_' || c == '.' || c == '-')))
			continue;
		return husk_error_set(err, EINVAL,
				      "%s: id '%s' must match ^[a-zA-Z0-9][a-zA-Z0-9_.-]+$",
				      what, id);
	}
	/* The charset already excludes '/', so ".." is the only way out of a
	 * directory this id names. */
	if (strcmp(id, "..") == 0)
		return husk_error_set(err, EINVAL, "%s: id '..' is not allowed", what);
	return 0;
}

/* A string from the wire: present, bounded, optionally non-empty. */
static int check_string(const char *s, size_t max, bool nonempty,
			const char *field, struct husk_error *err)
{
	size_t len = s ? strnlen(s, max + 1) : 0;

	if (nonempty && len == 0)
		return husk_error_set(err, EINVAL, "%s: must not be empty", field);
	if (len > max)
		return husk_error_set(err, EINVAL, "%s: longer than %zu bytes",
				      field, max);
	return 0;
}

/* An absolute path with no "." or ".." components and no empty ones
 * beyond doubled slashes (normalised away by the kernel). */
static int check_abs_path(const char *p, const char *field, struct husk_error *err)
{
	int r = check_string(p, SPEC_PATH_MAX - 1, true, field, err);

	if (r < 0)
		return r;
	if (p[0] != '/')
		return husk_error_set(err, EINVAL, "%s: '%s' is not an absolute path",
				      field, p);
	for (const char *c = p; *c; ) {
		while (*c == '/')
			c++;
		size_t n = strcspn(c, "/");

		if ((n == 1 && c[0] == '.') || (n == 2 && c[0] == '.' && c[1] == '.'))
			return husk_error_set(err, EINVAL,
					      "%s: '%s' has a '.' or '..' component",
					      field, p);
		c += n;
	}
	return 0;
}

static int dup_string(const char *s, char **out, const char *field,
		      struct husk_error *err)
{
	*out = strdup(s ? s : "");
	if (!*out)
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);
	return 0;
}

static void free_strv(char **v, size_t n)
{
	if (!v)
		return;
	for (size_t i = 0; i < n; i++)
		free(v[i]);
	free(v);
}

/* Copy a bounded string list into a NULL-terminated vector. */
static int copy_strv(char **src, size_t n, size_t max_n, size_t max_len,
		     bool absolute, const char *field, char ***out,
		     struct husk_error *err)
{
	char f[FIELD_MAX];
	char **v;
	int r;

	if (n > max_n)
		return husk_error_set(err, EINVAL, "%s: more than %zu entries",
				      field, max_n);
	v = calloc(n + 1, sizeof(*v));
	if (!v)
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);
	for (size_t i = 0; i < n; i++) {
		fieldf(f, "%s[%zu]", field, i);
		r = absolute ? check_abs_path(src[i], f, err)
			     : check_string(src[i], max_len, false, f, err);
		if (r == 0)
			r = dup_string(src[i], &v[i], f, err);
		if (r < 0) {
			free_strv(v, n);
			return r;
		}
	}
	*out = v;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Process                                                                   */

static int parse_caps_set(char **names, size_t n, const char *field,
			  uint64_t *mask, struct husk_error *err)
{
	char f[FIELD_MAX];

	if (n > 64)
		return husk_error_set(err, EINVAL, "%s: more than 64 entries", field);
	*mask = 0;
	for (size_t i = 0; i < n; i++) {
		int cap;

		fieldf(f, "%s[%zu]", field, i);
		if (check_string(names[i], 64, true, f, err) < 0)
			return -EINVAL;
		cap = spec_cap_from_name(names[i]);
		if (cap < 0)
			return husk_error_set(err, EINVAL, "%s: unknown capability '%s'",
					      f, names[i]);
		*mask |= UINT64_C(1) << cap;
	}
	return 0;
}

static int parse_caps(const Grpc__LinuxCapabilities *c, const char *field,
		      struct caps_config *caps, struct husk_error *err)
{
	char f[FIELD_MAX];
	int r;

#define CAPS_SET(member, name)						\
	do {								\
		fieldf(f, "%s.%s", field, name);		\
		r = parse_caps_set(c->member, c->n_##member, f,		\
				   &caps->member, err);			\
		if (r < 0)						\
			return r;					\
	} while (0)
	CAPS_SET(bounding, "bounding");
	CAPS_SET(effective, "effective");
	CAPS_SET(inheritable, "inheritable");
	CAPS_SET(permitted, "permitted");
	CAPS_SET(ambient, "ambient");
#undef CAPS_SET
	/* The kernel refuses ambient caps outside permitted & inheritable. */
	if (caps->ambient & ~(caps->permitted & caps->inheritable))
		return husk_error_set(err, EINVAL,
				      "%s.ambient: every ambient capability must also be permitted and inheritable",
				      field);
	return 0;
}

static int parse_rlimits(Grpc__POSIXRlimit **rl, size_t n, const char *field,
			 struct process_config *pc, struct husk_error *err)
{
	char f[FIELD_MAX];

	if (n > ARRAY_SIZE(rlimit_names))
		return husk_error_set(err, EINVAL, "%s: more than %zu entries",
				      field, ARRAY_SIZE(rlimit_names));
	pc->rlimits = calloc(n ? n : 1, sizeof(*pc->rlimits));
	if (!pc->rlimits)
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);
	for (size_t i = 0; i < n; i++) {
		int res;

		fieldf(f, "%s[%zu].type", field, i);
		if (check_string(rl[i]->type, 32, true, f, err) < 0)
			return -EINVAL;
		res = spec_rlimit_from_name(rl[i]->type);
		if (res < 0)
			return husk_error_set(err, EINVAL, "%s: unknown rlimit '%s'",
					      f, rl[i]->type);
		for (size_t j = 0; j < i; j++)
			if (pc->rlimits[j].resource == res)
				return husk_error_set(err, EINVAL,
						      "%s: '%s' given twice", f,
						      rl[i]->type);
		if (rl[i]->soft > rl[i]->hard)
			return husk_error_set(err, EINVAL,
					      "%s[%zu]: soft limit %" PRIu64 " exceeds hard limit %" PRIu64,
					      field, i, rl[i]->soft, rl[i]->hard);
		pc->rlimits[i] = (struct rlimit_config){
			.resource = res, .soft = rl[i]->soft, .hard = rl[i]->hard,
		};
		pc->n_rlimits++;
	}
	return 0;
}

static int parse_env(const Grpc__Process *p, const char *field,
		     struct process_config *pc, struct husk_error *err)
{
	char f[FIELD_MAX];
	int r;

	r = copy_strv(p->env, p->n_env, SPEC_ARGS_MAX, SPEC_ARG_LEN_MAX, false,
		      field, &pc->env, err);
	if (r < 0)
		return r;
	pc->n_env = p->n_env;
	for (size_t i = 0; i < pc->n_env; i++) {
		const char *eq = strchr(pc->env[i], '=');

		if (!eq || eq == pc->env[i]) {
			fieldf(f, "%s[%zu]", field, i);
			return husk_error_set(err, EINVAL,
					      "%s: '%.64s' is not KEY=value", f,
					      pc->env[i]);
		}
	}
	return 0;
}

static int parse_user(const Grpc__User *u, const char *field,
		      struct process_config *pc, struct husk_error *err)
{
	if (!u)
		return 0;
	if (u->username && u->username[0])
		return husk_error_set(err, EINVAL,
				      "%s.username: user names are not resolved; give numeric uid/gid",
				      field);
	if (u->n_additionalgids > SPEC_GIDS_MAX)
		return husk_error_set(err, EINVAL,
				      "%s.additionalGids: more than %d entries",
				      field, SPEC_GIDS_MAX);
	pc->uid = u->uid;
	pc->gid = u->gid;
	if (u->n_additionalgids) {
		pc->gids = calloc(u->n_additionalgids, sizeof(*pc->gids));
		if (!pc->gids)
			return husk_error_set(err, ENOMEM, "%s: out of memory", field);
		for (size_t i = 0; i < u->n_additionalgids; i++)
			pc->gids[i] = u->additionalgids[i];
		pc->n_gids = u->n_additionalgids;
	}
	return 0;
}

static int process_parse_at(const Grpc__Process *p, const char *field,
			    struct process_config **out, struct husk_error *err)
{
	struct process_config *pc;
	char f[FIELD_MAX];
	int r;

	if (!p)
		return husk_error_set(err, EINVAL, "%s: missing", field);
	pc = calloc(1, sizeof(*pc));
	if (!pc)
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);

	fieldf(f, "%s.args", field);
	if (p->n_args == 0) {
		r = husk_error_set(err, EINVAL, "%s: must not be empty", f);
		goto fail;
	}
	r = copy_strv(p->args, p->n_args, SPEC_ARGS_MAX, SPEC_ARG_LEN_MAX, false,
		      f, &pc->args, err);
	if (r < 0)
		goto fail;
	pc->n_args = p->n_args;
	fieldf(f, "%s.args[0]", field);
	r = check_string(pc->args[0], SPEC_PATH_MAX - 1, true, f, err);
	if (r < 0)
		goto fail;

	fieldf(f, "%s.env", field);
	r = parse_env(p, f, pc, err);
	if (r < 0)
		goto fail;

	fieldf(f, "%s.cwd", field);
	if (!p->cwd || !p->cwd[0]) {
		r = dup_string("/", &pc->cwd, f, err);
	} else {
		r = check_abs_path(p->cwd, f, err);
		if (r == 0)
			r = dup_string(p->cwd, &pc->cwd, f, err);
	}
	if (r < 0)
		goto fail;

	pc->terminal = p->terminal;
	if (p->consolesize) {
		pc->rows = p->consolesize->height > UINT16_MAX ? UINT16_MAX
							       : p->consolesize->height;
		pc->cols = p->consolesize->width > UINT16_MAX ? UINT16_MAX
							      : p->consolesize->width;
	}

	fieldf(f, "%s.user", field);
	r = parse_user(p->user, f, pc, err);
	if (r < 0)
		goto fail;

	if (p->capabilities) {
		fieldf(f, "%s.capabilities", field);
		r = parse_caps(p->capabilities, f, &pc->caps, err);
		if (r < 0)
			goto fail;
		pc->has_caps = true;
	}

	fieldf(f, "%s.rlimits", field);
	r = parse_rlimits(p->rlimits, p->n_rlimits, f, pc, err);
	if (r < 0)
		goto fail;

	pc->no_new_privs = p->nonewprivileges;
	if (p->oomscoreadj != 0) {
		if (p->oomscoreadj < -1000 || p->oomscoreadj > 1000) {
			r = husk_error_set(err, EINVAL,
					   "%s.oomScoreAdj: %" PRId64 " is outside -1000..1000",
					   field, p->oomscoreadj);
			goto fail;
		}
		pc->has_oom_score_adj = true;
		pc->oom_score_adj = (int)p->oomscoreadj;
	}
	*out = pc;
	return 0;
fail:
	process_config_free(pc);
	return r;
}

int runtime_process_parse(const Grpc__Process *proc,
			  struct process_config **out, struct husk_error *err)
{
	return process_parse_at(proc, "process", out, err);
}

void process_config_free(struct process_config *pc)
{
	if (!pc)
		return;
	free_strv(pc->args, pc->n_args);
	free_strv(pc->env, pc->n_env);
	free(pc->cwd);
	free(pc->gids);
	free(pc->rlimits);
	free(pc);
}

/* ------------------------------------------------------------------------ */
/* Resources                                                                 */

/* A cpuset list: digits, ',' and '-' only ("0-3,5"). */
static int check_cpu_list(const char *s, const char *field, struct husk_error *err)
{
	if (check_string(s, 256, false, field, err) < 0)
		return -EINVAL;
	if (s[strspn(s, "0123456789,-")] != '\0')
		return husk_error_set(err, EINVAL, "%s: '%s' is not a cpu/node list",
				      field, s);
	return 0;
}

static int parse_memory(const Grpc__LinuxMemory *m, const char *field,
			struct resources_config *rc, struct husk_error *err)
{
	/* proto3 has no presence: 0 means "not set", -1 means "no limit". */
	if (m->limit < -1 || m->swap < -1 || m->reservation < -1)
		return husk_error_set(err, EINVAL,
				      "%s: limits must be positive, 0 (unset) or -1 (unlimited)",
				      field);
	if (m->limit) {
		rc->has_memory_max = true;
		rc->memory_max = m->limit;
	}
	if (m->reservation) {
		rc->has_memory_low = true;
		rc->memory_low = m->reservation;
	}
	if (m->swap) {
		/* OCI's Swap is memory+swap; cgroup v2 limits swap alone. */
		if (m->swap == -1 || m->limit == -1) {
			rc->swap_max = -1;
		} else {
			if (m->limit <= 0)
				return husk_error_set(err, EINVAL,
						      "%s.swap: needs memory.limit to be set",
						      field);
			if (m->swap < m->limit)
				return husk_error_set(err, EINVAL,
						      "%s.swap: %" PRId64 " is below memory.limit %" PRId64 " (swap counts memory+swap)",
						      field, m->swap, m->limit);
			rc->swap_max = m->swap - m->limit;
		}
		rc->has_swap_max = true;
	}
	return 0;
}

static int parse_cpu(const Grpc__LinuxCPU *c, const char *field,
		     struct resources_config *rc, struct husk_error *err)
{
	char f[FIELD_MAX];

	if (c->shares) {
		if (c->shares < 2 || c->shares > 262144)
			return husk_error_set(err, EINVAL,
					      "%s.shares: %" PRIu64 " is outside 2..262144",
					      field, c->shares);
		/* The conversion runc and crun use for cgroup v2. */
		rc->has_cpu_weight = true;
		rc->cpu_weight = 1 + ((c->shares - 2) * 9999) / 262142;
	}
	if (c->quota || c->period) {
		if (c->quota < -1)
			return husk_error_set(err, EINVAL,
					      "%s.quota: %" PRId64 " is negative",
					      field, c->quota);
		if (c->period && (c->period < 1000 || c->period > 1000000))
			return husk_error_set(err, EINVAL,
					      "%s.period: %" PRIu64 " is outside 1000..1000000",
					      field, c->period);
		if (c->quota > 0 && c->quota < 1000)
			return husk_error_set(err, EINVAL,
					      "%s.quota: %" PRId64 " is below 1000",
					      field, c->quota);
		rc->has_cpu_max = true;
		rc->cpu_quota = c->quota ? c->quota : -1;
		rc->cpu_period = c->period ? c->period : 100000;
	}
	if (c->realtimeruntime || c->realtimeperiod)
		return husk_error_set(err, EOPNOTSUPP,
				      "%s: realtime cpu limits do not exist in cgroup v2",
				      field);
	if (c->cpus && c->cpus[0]) {
		fieldf(f, "%s.cpus", field);
		if (check_cpu_list(c->cpus, f, err) < 0 ||
		    dup_string(c->cpus, &rc->cpuset_cpus, f, err) < 0)
			return -EINVAL;
	}
	if (c->mems && c->mems[0]) {
		fieldf(f, "%s.mems", field);
		if (check_cpu_list(c->mems, f, err) < 0 ||
		    dup_string(c->mems, &rc->cpuset_mems, f, err) < 0)
			return -EINVAL;
	}
	return 0;
}

/* "2MB", "1GB", "64KB": the page size names of hugetlb.<size>.max. */
static int parse_hugetlb(const Grpc__LinuxResources *res, const char *field,
			 struct resources_config *rc, struct husk_error *err)
{
	char f[FIELD_MAX];

	if (res->n_hugepagelimits > SPEC_HUGETLB_MAX)
		return husk_error_set(err, EINVAL, "%s.hugepageLimits: more than %d entries",
				      field, SPEC_HUGETLB_MAX);
	for (size_t i = 0; i < res->n_hugepagelimits; i++) {
		const Grpc__LinuxHugepageLimit *h = res->hugepagelimits[i];
		const char *ps = h->pagesize ? h->pagesize : "";
		size_t digits = strspn(ps, "0123456789");

		fieldf(f, "%s.hugepageLimits[%zu].pageSize", field, i);
		if (digits == 0 || digits > 8 || !ps[digits] ||
		    !strchr("KMG", ps[digits]) || strcmp(ps + digits + 1, "B") != 0)
			return husk_error_set(err, EINVAL,
					      "%s: '%.32s' is not a page size like 2MB", f, ps);
		snprintf(rc->hugetlb[i].pagesize, sizeof(rc->hugetlb[i].pagesize), "%s", ps);
		rc->hugetlb[i].limit = h->limit;
		rc->n_hugetlb++;
	}
	return 0;
}

int spec_resources_parse(const Grpc__LinuxResources *res, const char *field,
			 struct resources_config *rc, struct husk_error *err)
{
	char f[FIELD_MAX];
	int r = 0;

	memset(rc, 0, sizeof(*rc));
	if (!res)
		return 0;
	if (res->memory) {
		fieldf(f, "%s.memory", field);
		r = parse_memory(res->memory, f, rc, err);
	}
	if (r == 0 && res->cpu) {
		fieldf(f, "%s.cpu", field);
		r = parse_cpu(res->cpu, f, rc, err);
	}
	if (r == 0 && res->pids && res->pids->limit) {
		rc->has_pids_max = true;
		rc->pids_max = res->pids->limit > 0 ? res->pids->limit : -1;
	}
	if (r == 0 && res->blockio && res->blockio->weight) {
		uint32_t w = res->blockio->weight;

		if (w < 10 || w > 1000) {
			r = husk_error_set(err, EINVAL,
					   "%s.blockIO.weight: %u is outside 10..1000",
					   field, w);
		} else {
			/* blkio 10..1000 onto io.weight 1..10000, as crun maps it. */
			rc->has_io_weight = true;
			rc->io_weight = 1 + ((uint64_t)w - 10) * 9999 / 990;
		}
	}
	if (r == 0)
		r = parse_hugetlb(res, field, rc, err);
	/* Device rules need an eBPF program in cgroup v2; the guest's device
	 * nodes are what the spec creates, so the rules are accepted unused. */
	if (r < 0)
		resources_config_clear(rc);
	return r;
}

void resources_config_clear(struct resources_config *rc)
{
	free(rc->cpuset_cpus);
	free(rc->cpuset_mems);
	memset(rc, 0, sizeof(*rc));
}

/* ------------------------------------------------------------------------ */
/* Mounts                                                                    */

static const struct mount_opt {
	const char *name;
	bool clear;		/* this option removes the flag */
	unsigned long flag;
} mount_opts[] = {
	{ "defaults", false, 0 },
	{ "ro", false, MS_RDONLY }, { "rw", true, MS_RDONLY },
	{ "nosuid", false, MS_NOSUID }, { "suid", true, MS_NOSUID },
	{ "nodev", false, MS_NODEV }, { "dev", true, MS_NODEV },
	{ "noexec", false, MS_NOEXEC }, { "exec", true, MS_NOEXEC },
	{ "sync", false, MS_SYNCHRONOUS }, { "async", true, MS_SYNCHRONOUS },
	{ "dirsync", false, MS_DIRSYNC },
	{ "remount", false, MS_REMOUNT },
	{ "mand", false, MS_MANDLOCK }, { "nomand", true, MS_MANDLOCK },
	{ "atime", true, MS_NOATIME }, { "noatime", false, MS_NOATIME },
	{ "diratime", true, MS_NODIRATIME }, { "nodiratime", false, MS_NODIRATIME },
	{ "relatime", false, MS_RELATIME }, { "norelatime", true, MS_RELATIME },
	{ "strictatime", false, MS_STRICTATIME },
	{ "nostrictatime", true, MS_STRICTATIME },
	{ "bind", false, MS_BIND }, { "rbind", false, MS_BIND | MS_REC },
};

static const struct {
	const char *name;
	unsigned long flags;
} propagation_opts[] = {
	{ "private", MS_PRIVATE }, { "rprivate", MS_PRIVATE | MS_REC },
	{ "shared", MS_SHARED }, { "rshared", MS_SHARED | MS_REC },
	{ "slave", MS_SLAVE }, { "rslave", MS_SLAVE | MS_REC },
	{ "unbindable", MS_UNBINDABLE }, { "runbindable", MS_UNBINDABLE | MS_REC },
};

static unsigned long propagation_from_name(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(propagation_opts); i++)
		if (strcmp(propagation_opts[i].name, name) == 0)
			return propagation_opts[i].flags;
	return 0;
}

/* Append opt to the comma-separated data string. */
static int data_append(char *data, size_t *len, const char *opt,
		       const char *field, struct husk_error *err)
{
	size_t n = strlen(opt);

	if (*len + n + 2 > SPEC_MOUNT_DATA_MAX)
		return husk_error_set(err, EINVAL, "%s: options longer than %d bytes",
				      field, SPEC_MOUNT_DATA_MAX);
	if (*len)
		data[(*len)++] = ',';
	memcpy(data + *len, opt, n + 1);
	*len += n;
	return 0;
}

static int parse_mount_options(const Grpc__Mount *m, const char *field,
			       struct mount_config *mc, struct husk_error *err)
{
	char f[FIELD_MAX];
	char data[SPEC_MOUNT_DATA_MAX];
	size_t len = 0;

	if (m->n_options > 64)
		return husk_error_set(err, EINVAL, "%s.options: more than 64 entries",
				      field);
	for (size_t i = 0; i < m->n_options; i++) {
		const char *o = m->options[i];
		unsigned long prop;
		bool known = false;

		fieldf(f, "%s.options[%zu]", field, i);
		if (check_string(o, 256, true, f, err) < 0)
			return -EINVAL;
		if (strchr(o, ','))
			return husk_error_set(err, EINVAL, "%s: '%s' contains ','", f, o);
		prop = propagation_from_name(o);
		if (prop) {
			mc->propagation = prop;
			continue;
		}
		for (size_t j = 0; j < ARRAY_SIZE(mount_opts); j++) {
			if (strcmp(mount_opts[j].name, o) != 0)
				continue;
			if (mount_opts[j].clear)
				mc->flags &= ~mount_opts[j].flag;
			else
				mc->flags |= mount_opts[j].flag;
			known = true;
			break;
		}
		if (!known && data_append(data, &len, o, f, err) < 0)
			return -EINVAL;
	}
	if (mc->flags & MS_REMOUNT)
		return husk_error_set(err, EINVAL, "%s.options: 'remount' is not allowed",
				      field);
	if (len && !(mc->data = strdup(data)))
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);
	return 0;
}

static int parse_mount(const Grpc__Mount *m, const char *field,
		       struct mount_config *mc, struct husk_error *err)
{
	char f[FIELD_MAX];
	int r;

	fieldf(f, "%s.destination", field);
	r = check_abs_path(m->destination, f, err);
	if (r == 0)
		r = dup_string(m->destination, &mc->destination, f, err);
	if (r < 0)
		return r;

	r = parse_mount_options(m, field, mc, err);
	if (r < 0)
		return r;

	fieldf(f, "%s.type", field);
	if (check_string(m->type, 64, false, f, err) < 0)
		return -EINVAL;
	mc->bind = (mc->flags & MS_BIND) || (m->type && strcmp(m->type, "bind") == 0);
	if (mc->bind) {
		mc->flags |= MS_BIND;
	} else {
		if (!m->type || !m->type[0])
			return husk_error_set(err, EINVAL,
					      "%s: needed unless the mount is a bind mount",
					      f);
		if (strchr(m->type, '/'))
			return husk_error_set(err, EINVAL, "%s: '%s' contains '/'",
					      f, m->type);
		r = dup_string(m->type, &mc->type, f, err);
		if (r < 0)
			return r;
	}

	fieldf(f, "%s.source", field);
	if (mc->bind) {
		r = check_abs_path(m->source, f, err);
	} else {
		/* "proc", "tmpfs", "shm": a label, not a path */
		r = check_string(m->source, SPEC_PATH_MAX - 1, false, f, err);
	}
	if (r == 0 && m->source && m->source[0])
		r = dup_string(m->source, &mc->source, f, err);
	return r;
}

static void mount_config_clear(struct mount_config *mc)
{
	free(mc->source);
	free(mc->destination);
	free(mc->type);
	free(mc->data);
}

/* ------------------------------------------------------------------------ */
/* Linux                                                                     */

static int ns_kind_from_name(const char *name)
{
	for (int k = 0; k < NS_COUNT; k++)
		if (strcmp(ns_names[k], name) == 0)
			return k;
	return -1;
}

static int parse_namespaces(const Grpc__Linux *l, struct container_config *cfg,
			    struct husk_error *err)
{
	char f[FIELD_MAX];
	bool seen[NS_COUNT] = { false };

	if (l->n_namespaces > NS_COUNT)
		return husk_error_set(err, EINVAL,
				      "spec.linux.namespaces: more than %d entries",
				      NS_COUNT);
	for (size_t i = 0; i < l->n_namespaces; i++) {
		const Grpc__LinuxNamespace *ns = l->namespaces[i];
		int k;

		fieldf(f, "spec.linux.namespaces[%zu]", i);
		if (check_string(ns->type, 16, true, f, err) < 0)
			return -EINVAL;
		k = ns_kind_from_name(ns->type);
		if (k < 0)
			return husk_error_set(err, EINVAL,
					      "%s.type: unknown namespace '%s'", f,
					      ns->type);
		if (seen[k])
			return husk_error_set(err, EINVAL,
					      "%s.type: namespace '%s' given twice",
					      f, ns->type);
		seen[k] = true;
		cfg->ns[k].enabled = true;
		if (ns->path && ns->path[0]) {
			char pf[FIELD_MAX];

			/* pid and mount are always the container's own; a user
			 * namespace is only made here, with its maps. */
			if (k == NS_PID || k == NS_MNT || k == NS_USER)
				return husk_error_set(err, EOPNOTSUPP,
						      "%s.path: joining an existing %s namespace is not supported",
						      f, ns->type);
			fieldf(pf, "%s.path", f);
			if (check_abs_path(ns->path, pf, err) < 0 ||
			    dup_string(ns->path, &cfg->ns[k].path, pf, err) < 0)
				return -EINVAL;
		}
	}
	/* Kata's runtime strips the pid namespace; the agent adds its own, and
	 * the rootfs needs a private mount namespace. */
	cfg->ns[NS_PID].enabled = true;
	cfg->ns[NS_MNT].enabled = true;
	return 0;
}

static int parse_idmaps(Grpc__LinuxIDMapping **maps, size_t n, const char *field,
			struct idmap_config **out, size_t *n_out,
			struct husk_error *err)
{
	if (n > SPEC_IDMAPS_MAX)
		return husk_error_set(err, EINVAL, "%s: more than %d entries",
				      field, SPEC_IDMAPS_MAX);
	if (!n)
		return 0;
	*out = calloc(n, sizeof(**out));
	if (!*out)
		return husk_error_set(err, ENOMEM, "%s: out of memory", field);
	for (size_t i = 0; i < n; i++) {
		if (maps[i]->size == 0 ||
		    (uint64_t)maps[i]->containerid + maps[i]->size > UINT32_MAX ||
		    (uint64_t)maps[i]->hostid + maps[i]->size > UINT32_MAX)
			return husk_error_set(err, EINVAL,
					      "%s[%zu]: empty or overflowing range",
					      field, i);
		(*out)[i] = (struct idmap_config){
			.container_id = maps[i]->containerid,
			.host_id = maps[i]->hostid,
			.size = maps[i]->size,
		};
		(*n_out)++;
	}
	return 0;
}

/* Which namespace makes a sysctl safe to set for one container only. */
static int sysctl_namespace(const char *key)
{
	static const char *const ipc_keys[] = {
		"kernel.msgmax", "kernel.msgmnb", "kernel.msgmni", "kernel.sem",
		"kernel.shmall", "kernel.shmmax", "kernel.shmmni",
		"kernel.shm_rmid_forced",
	};

	for (size_t i = 0; i < ARRAY_SIZE(ipc_keys); i++)
		if (strcmp(key, ipc_keys[i]) == 0)
			return NS_IPC;
	if (strncmp(key, "fs.mqueue.", 10) == 0)
		return NS_IPC;
	if (strncmp(key, "net.", 4) == 0)
		return NS_NET;
	if (strcmp(key, "kernel.hostname") == 0 || strcmp(key, "kernel.domainname") == 0)
		return NS_UTS;
	return -1;
}

static int parse_sysctls(const Grpc__Linux *l, struct container_config *cfg,
			 struct husk_error *err)
{
	char f[FIELD_MAX];

	if (l->n_sysctl > SPEC_SYSCTL_MAX)
		return husk_error_set(err, EINVAL, "spec.linux.sysctl: more than %d entries",
				      SPEC_SYSCTL_MAX);
	if (!l->n_sysctl)
		return 0;
	cfg->sysctls = calloc(l->n_sysctl, sizeof(*cfg->sysctls));
	if (!cfg->sysctls)
		return husk_error_set(err, ENOMEM, "spec.linux.sysctl: out of memory");
	for (size_t i = 0; i < l->n_sysctl; i++) {
		const char *key = l->sysctl[i]->key;
		const char *value = l->sysctl[i]->value;
		struct sysctl_config *sc = &cfg->sysctls[cfg->n_sysctls];
		int ns;

		fieldf(f, "spec.linux.sysctl[%.64s]", key ? key : "");
		if (check_string(key, 128, true, f, err) < 0 ||
		    check_string(value, 1024, false, f, err) < 0)
			return -EINVAL;
		if (key[strspn(key, "abcdefghijklmnopqrstuvwxyz0123456789_.-")] ||
		    strstr(key, "..") || key[0] == '.')
			return husk_error_set(err, EINVAL, "%s: not a sysctl name", f);
		ns = sysctl_namespace(key);
		if (ns < 0)
			return husk_error_set(err, EPERM,
					      "%s: not a namespaced sysctl; it would change the whole guest",
					      f);
		if (!cfg->ns[ns].enabled || cfg->ns[ns].path)
			return husk_error_set(err, EPERM,
					      "%s: needs the container's own %s namespace",
					      f, ns_names[ns]);
		if (dup_string(key, &sc->key, f, err) < 0 ||
		    dup_string(value ? value : "", &sc->value, f, err) < 0) {
			free(sc->key);
			return -ENOMEM;
		}
		cfg->n_sysctls++;
	}
	return 0;
}

static int parse_devices(const Grpc__Linux *l, struct container_config *cfg,
			 struct husk_error *err)
{
	char f[FIELD_MAX];

	if (l->n_devices > SPEC_PATHLIST_MAX)
		return husk_error_set(err, EINVAL, "spec.linux.devices: more than %d entries",
				      SPEC_PATHLIST_MAX);
	if (!l->n_devices)
		return 0;
	cfg->devices = calloc(l->n_devices, sizeof(*cfg->devices));
	if (!cfg->devices)
		return husk_error_set(err, ENOMEM, "spec.linux.devices: out of memory");
	for (size_t i = 0; i < l->n_devices; i++) {
		const Grpc__LinuxDevice *d = l->devices[i];
		struct device_config *dc = &cfg->devices[cfg->n_devices];

		fieldf(f, "spec.linux.devices[%zu]", i);
		if (check_abs_path(d->path, f, err) < 0)
			return -EINVAL;
		if (strncmp(d->path, "/dev/", 5) != 0)
			return husk_error_set(err, EINVAL, "%s.path: '%s' is not under /dev",
					      f, d->path);
		if (!d->type || strlen(d->type) != 1 || !strchr("cubp", d->type[0]))
			return husk_error_set(err, EINVAL,
					      "%s.type: must be one of c, u, b, p", f);
		dc->type = d->type[0] == 'b' ? S_IFBLK :
			   d->type[0] == 'p' ? S_IFIFO : S_IFCHR;
		if (d->major < 0 || d->major > 0xfff || d->minor < 0 || d->minor > 0xfffff)
			return husk_error_set(err, EINVAL,
					      "%s: major/minor out of range", f);
		dc->major = (uint32_t)d->major;
		dc->minor = (uint32_t)d->minor;
		dc->mode = d->filemode ? (d->filemode & 07777) : 0666;
		dc->uid = d->uid;
		dc->gid = d->gid;
		if (dup_string(d->path, &dc->path, f, err) < 0)
			return -ENOMEM;
		cfg->n_devices++;
	}
	return 0;
}

static int parse_linux(const Grpc__Linux *l, struct container_config *cfg,
		       struct husk_error *err)
{
	int r;

	r = parse_namespaces(l, cfg, err);
	if (r < 0)
		return r;
	if (cfg->ns[NS_USER].enabled) {
		r = parse_idmaps(l->uidmappings, l->n_uidmappings,
				 "spec.linux.uidMappings", &cfg->uid_maps,
				 &cfg->n_uid_maps, err);
		if (r == 0)
			r = parse_idmaps(l->gidmappings, l->n_gidmappings,
					 "spec.linux.gidMappings", &cfg->gid_maps,
					 &cfg->n_gid_maps, err);
		if (r < 0)
			return r;
		if (!cfg->n_uid_maps || !cfg->n_gid_maps)
			return husk_error_set(err, EINVAL,
					      "spec.linux: a user namespace needs uidMappings and gidMappings");
	} else if (l->n_uidmappings || l->n_gidmappings) {
		return husk_error_set(err, EINVAL,
				      "spec.linux.uidMappings: given without a user namespace");
	}

	r = parse_sysctls(l, cfg, err);
	if (r < 0)
		return r;
	r = parse_devices(l, cfg, err);
	if (r < 0)
		return r;
	r = spec_resources_parse(l->resources, "spec.linux.resources",
				 &cfg->resources, err);
	if (r < 0)
		return r;

	if (l->rootfspropagation && l->rootfspropagation[0]) {
		cfg->rootfs_propagation = propagation_from_name(l->rootfspropagation);
		if (!cfg->rootfs_propagation)
			return husk_error_set(err, EINVAL,
					      "spec.linux.rootfsPropagation: unknown '%.64s'",
					      l->rootfspropagation);
	}

	r = copy_strv(l->maskedpaths, l->n_maskedpaths, SPEC_PATHLIST_MAX, 0, true,
		      "spec.linux.maskedPaths", &cfg->masked_paths, err);
	if (r < 0)
		return r;
	cfg->n_masked_paths = l->n_maskedpaths;
	r = copy_strv(l->readonlypaths, l->n_readonlypaths, SPEC_PATHLIST_MAX, 0,
		      true, "spec.linux.readonlyPaths", &cfg->readonly_paths, err);
	if (r < 0)
		return r;
	cfg->n_readonly_paths = l->n_readonlypaths;
	return 0;
}

/* ------------------------------------------------------------------------ */
/* Spec                                                                      */

static int parse_root(const Grpc__Root *root, struct container_config *cfg,
		      struct husk_error *err)
{
	struct stat st;

	if (!root)
		return husk_error_set(err, EINVAL, "spec.root: missing");
	if (check_abs_path(root->path, "spec.root.path", err) < 0)
		return -EINVAL;
	if (stat(root->path, &st) < 0)
		return husk_error_seterrno(err, errno, "spec.root.path: %s", root->path);
	if (!S_ISDIR(st.st_mode))
		return husk_error_set(err, ENOTDIR, "spec.root.path: %s is not a directory",
				      root->path);
	cfg->root_readonly = root->readonly;
	return dup_string(root->path, &cfg->root_path, "spec.root.path", err);
}

static int parse_mounts(const Grpc__Spec *spec, struct container_config *cfg,
			struct husk_error *err)
{
	char f[FIELD_MAX];

	if (spec->n_mounts > SPEC_MOUNTS_MAX)
		return husk_error_set(err, EINVAL, "spec.mounts: more than %d entries",
				      SPEC_MOUNTS_MAX);
	if (!spec->n_mounts)
		return 0;
	cfg->mounts = calloc(spec->n_mounts, sizeof(*cfg->mounts));
	if (!cfg->mounts)
		return husk_error_set(err, ENOMEM, "spec.mounts: out of memory");
	for (size_t i = 0; i < spec->n_mounts; i++) {
		int r;

		fieldf(f, "spec.mounts[%zu]", i);
		/* counted first so a half-parsed entry is freed too */
		cfg->n_mounts++;
		r = parse_mount(spec->mounts[i], f, &cfg->mounts[i], err);
		if (r < 0)
			return r;
	}
	return 0;
}

static int parse_hostname(const Grpc__Spec *spec, struct container_config *cfg,
			  struct husk_error *err)
{
	const char *h = spec->hostname;

	if (!h || !h[0])
		return 0;
	if (check_string(h, SPEC_HOSTNAME_MAX, true, "spec.hostname", err) < 0)
		return -EINVAL;
	if (!cfg->ns[NS_UTS].enabled || cfg->ns[NS_UTS].path)
		return husk_error_set(err, EINVAL,
				      "spec.hostname: setting a hostname needs a new uts namespace");
	return dup_string(h, &cfg->hostname, "spec.hostname", err);
}

int runtime_spec_parse(const Grpc__Spec *spec, const char *container_id,
		       struct container_config **out, struct husk_error *err)
{
	struct container_config *cfg;
	int r;

	r = runtime_id_validate(container_id, "container_id", err);
	if (r < 0)
		return r;
	if (!spec)
		return husk_error_set(err, EINVAL, "spec: missing");
	if (!spec->process)
		return husk_error_set(err, EINVAL, "spec.process: missing");
	if (!spec->linux)
		return husk_error_set(err, EINVAL, "spec.linux: missing");

	cfg = calloc(1, sizeof(*cfg));
	if (!cfg)
		return husk_error_set(err, ENOMEM, "spec: out of memory");
	r = parse_root(spec->root, cfg, err);
	if (r == 0)
		r = process_parse_at(spec->process, "spec.process", &cfg->process, err);
	if (r == 0)
		r = parse_linux(spec->linux, cfg, err);
	if (r == 0)
		r = parse_hostname(spec, cfg, err);
	if (r == 0)
		r = parse_mounts(spec, cfg, err);
	if (r < 0) {
		container_config_free(cfg);
		return r;
	}
	*out = cfg;
	return 0;
}

void container_config_free(struct container_config *cfg)
{
	if (!cfg)
		return;
	process_config_free(cfg->process);
	free(cfg->root_path);
	free(cfg->hostname);
	for (int k = 0; k < NS_COUNT; k++)
		free(cfg->ns[k].path);
	free(cfg->uid_maps);
	free(cfg->gid_maps);
	for (size_t i = 0; i < cfg->n_mounts; i++)
		mount_config_clear(&cfg->mounts[i]);
	free(cfg->mounts);
	free_strv(cfg->masked_paths, cfg->n_masked_paths);
	free_strv(cfg->readonly_paths, cfg->n_readonly_paths);
	for (size_t i = 0; i < cfg->n_sysctls; i++) {
		free(cfg->sysctls[i].key);
		free(cfg->sysctls[i].value);
	}
	free(cfg->sysctls);
	for (size_t i = 0; i < cfg->n_devices; i++)
		free(cfg->devices[i].path);
	free(cfg->devices);
	resources_config_clear(&cfg->resources);
	free(cfg);
}

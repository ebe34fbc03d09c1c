// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * What the cgroup verbs share, with no VM involved: update's runc flags ->
 * an OCI linux.resources object (the document libhusk's update takes), and
 * a container's stats -> the "data" of runc's events JSON.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "oci.h"

enum res_field {
	MEM_LIMIT, MEM_RESERVATION, MEM_SWAP,
	CPU_SHARES, CPU_QUOTA, CPU_PERIOD, CPU_CPUS, CPU_MEMS,
	PIDS_LIMIT, BLKIO_WEIGHT,
	N_FIELDS
};

enum flag_kind { F_SIZE, F_INT, F_UINT, F_LIST, F_UNSUPPORTED };

static const struct update_flag {
	const char *name;
	enum flag_kind kind;
	enum res_field field;
	const char *why;		/* F_UNSUPPORTED: the reason given */
} update_flags[] = {
	{ "memory", F_SIZE, MEM_LIMIT, NULL },
	{ "memory-reservation", F_SIZE, MEM_RESERVATION, NULL },
	{ "memory-swap", F_SIZE, MEM_SWAP, NULL },
	/* runc spells it --cpu-share; --cpu-shares is what people type. */
	{ "cpu-share", F_UINT, CPU_SHARES, NULL },
	{ "cpu-shares", F_UINT, CPU_SHARES, NULL },
	{ "cpu-quota", F_INT, CPU_QUOTA, NULL },
	{ "cpu-period", F_UINT, CPU_PERIOD, NULL },
	{ "pids-limit", F_INT, PIDS_LIMIT, NULL },
	{ "blkio-weight", F_UINT, BLKIO_WEIGHT, NULL },
	{ "cpuset-cpus", F_LIST, CPU_CPUS, NULL },
	{ "cpuset-mems", F_LIST, CPU_MEMS, NULL },
	{ "kernel-memory", F_UNSUPPORTED, 0, "cgroup v2 has no kernel memory limit" },
	{ "kernel-memory-tcp", F_UNSUPPORTED, 0, "cgroup v2 has no kernel memory limit" },
	{ "cpu-rt-period", F_UNSUPPORTED, 0, "realtime cpu limits do not exist in cgroup v2" },
	{ "cpu-rt-runtime", F_UNSUPPORTED, 0, "realtime cpu limits do not exist in cgroup v2" },
	{ "cpu-burst", F_UNSUPPORTED, 0, "the guest agent has no cpu burst" },
	{ "cpu-idle", F_UNSUPPORTED, 0, "the guest agent has no SCHED_IDLE cgroups" },
	{ "l3-cache-schema", F_UNSUPPORTED, 0, "Intel RDT does not reach the VM" },
	{ "mem-bw-schema", F_UNSUPPORTED, 0, "Intel RDT does not reach the VM" },
};

#define N_FLAGS (sizeof(update_flags) / sizeof(update_flags[0]))
#define OPT_RESOURCES 'r'
#define OPT_FLAG_BASE 256

struct res_values {
	bool set[N_FIELDS];
	int64_t num[N_FIELDS];
	const char *list[N_FIELDS];
};

int oci_parse_size(const char *s, int64_t *bytes)
{
	static const char units[] = "kmgtp";
	unsigned long long whole = 0, shift = 0;
	double frac = 0, scale = 0.1;
	const char *p = s, *u;

	if (!strcmp(s, "-1")) {
		*bytes = -1;
		return 0;
	}
	if (*p < '0' || *p > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (whole > (unsigned long long)INT64_MAX / 10)
			return -ERANGE;
		whole = whole * 10 + (unsigned long long)(*p - '0');
	}
	if (*p == '.') {
		if (p[1] < '0' || p[1] > '9')
			return -EINVAL;
		for (p++; *p >= '0' && *p <= '9'; p++, scale /= 10)
			frac += (*p - '0') * scale;
	}
	/* As docker's RAMInBytes: "512m", "1.5 GiB", "64kb", binary units. */
	if (*p == ' ')
		p++;
	if (*p && (u = strchr(units, (char)(*p | 0x20)))) {
		shift = 10 * (unsigned long long)(u - units + 1);
		p++;
		if ((*p | 0x20) == 'i')
			p++;
	}
	if ((*p | 0x20) == 'b')
		p++;
	if (*p)
		return -EINVAL;
	if (whole > (unsigned long long)INT64_MAX >> shift ||
	    (frac > 0 && whole << shift > (unsigned long long)INT64_MAX - (1ULL << shift)))
		return -ERANGE;
	*bytes = (int64_t)(whole << shift) + (int64_t)(frac * (double)(1ULL << shift));
	return 0;
}

static int parse_int(const char *s, bool is_unsigned, int64_t *v)
{
	char *end;
	long long n;

	errno = 0;
	n = strtoll(s, &end, 10);
	if (!*s || *end || errno || (is_unsigned && n < 0))
		return errno == ERANGE ? -ERANGE : -EINVAL;
	*v = n;
	return 0;
}

static int take_value(const struct update_flag *f, const char *arg, struct res_values *rv,
		      struct husk_error *err)
{
	int r = 0;

	switch (f->kind) {
	case F_UNSUPPORTED:
		return husk_error_set(err, EOPNOTSUPP, "--%s is not supported: %s", f->name,
				      f->why);
	case F_LIST:
		if (!*arg)
			r = -EINVAL;
		rv->list[f->field] = arg;
		break;
	case F_SIZE:
		r = oci_parse_size(arg, &rv->num[f->field]);
		break;
	case F_INT:
	case F_UINT:
		r = parse_int(arg, f->kind == F_UINT, &rv->num[f->field]);
		break;
	}
	if (r < 0)
		return husk_error_set(err, -r, "invalid value for --%s: '%s'", f->name, arg);
	rv->set[f->field] = true;
	return 0;
}

static void put_member(FILE *out, bool *first, const char *key)
{
	fprintf(out, "%s\"%s\":", *first ? "" : ",", key);
	*first = false;
}

/* One object of fields [from, to) named by keys; nothing when none is set. */
static void put_section(FILE *out, bool *outer_first, const char *name,
			const struct res_values *rv, enum res_field from, enum res_field to,
			const char *const *keys)
{
	bool first = true, any = false;

	for (enum res_field i = from; i < to; i++)
		any |= rv->set[i];
	if (!any)
		return;
	put_member(out, outer_first, name);
	fputc('{', out);
	for (enum res_field i = from; i < to; i++) {
		if (!rv->set[i])
			continue;
		put_member(out, &first, keys[i - from]);
		if (rv->list[i])
			oci_json_put_string(out, rv->list[i]);
		else
			fprintf(out, "%" PRId64, rv->num[i]);
	}
	fputc('}', out);
}

static int resources_json(const struct res_values *in, char **json)
{
	static const char *const memory_keys[] = { "limit", "reservation", "swap" };
	static const char *const cpu_keys[] = { "shares", "quota", "period", "cpus", "mems" };
	static const char *const pids_keys[] = { "limit" };
	static const char *const blkio_keys[] = { "weight" };
	struct res_values rv = *in;
	size_t size;
	bool first = true;
	FILE *out = open_memstream(json, &size);

	if (!out)
		return -ENOMEM;
	/* runc: an unlimited memory without a swap value means unlimited swap too. */
	if (rv.set[MEM_LIMIT] && rv.num[MEM_LIMIT] == -1 && !rv.set[MEM_SWAP]) {
		rv.set[MEM_SWAP] = true;
		rv.num[MEM_SWAP] = -1;
	}
	fputc('{', out);
	put_section(out, &first, "memory", &rv, MEM_LIMIT, CPU_SHARES, memory_keys);
	put_section(out, &first, "cpu", &rv, CPU_SHARES, PIDS_LIMIT, cpu_keys);
	put_section(out, &first, "pids", &rv, PIDS_LIMIT, BLKIO_WEIGHT, pids_keys);
	put_section(out, &first, "blockIO", &rv, BLKIO_WEIGHT, N_FIELDS, blkio_keys);
	fputc('}', out);
	if (fclose(out) != 0) {
		free(*json);
		*json = NULL;
		return -ENOMEM;
	}
	return 0;
}

int oci_update_parse(int argc, char **argv, struct oci_update *u, struct husk_error *err)
{
	struct option longopts[N_FLAGS + 2];
	struct res_values rv = { 0 };
	bool any_flag = false;
	int c, r;

	memset(u, 0, sizeof(*u));
	for (size_t i = 0; i < N_FLAGS; i++)
		longopts[i] = (struct option){ update_flags[i].name, required_argument, NULL,
					       OPT_FLAG_BASE + (int)i };
	longopts[N_FLAGS] = (struct option){ "resources", required_argument, NULL,
					     OPT_RESOURCES };
	longopts[N_FLAGS + 1] = (struct option){ 0 };
	optind = 1;
	opterr = 0;
	while ((c = getopt_long_only(argc, argv, "+r:", longopts, NULL)) != -1) {
		if (c == OPT_RESOURCES) {
			u->resources_file = optarg;
			continue;
		}
		if (c < OPT_FLAG_BASE)
			return husk_error_set(err, EINVAL,
					      "update: unknown flag or missing value: '%s'",
					      argv[optind - 1]);
		r = take_value(&update_flags[c - OPT_FLAG_BASE], optarg, &rv, err);
		if (r < 0)
			return r;
		any_flag = true;
	}
	if (optind != argc - 1)
		return husk_error_set(err, EINVAL, "usage: husk update [--memory SIZE] "
				      "[--memory-swap SIZE] [--memory-reservation SIZE] "
				      "[--cpu-share N] [--cpu-quota N] [--cpu-period N] "
				      "[--cpuset-cpus LIST] [--cpuset-mems LIST] [--pids-limit N] "
				      "[--blkio-weight N] [-r FILE|-] ID");
	u->id = argv[optind];
	/* runc: with --resources every other flag is ignored. */
	u->flags_ignored = u->resources_file && any_flag;
	if (u->resources_file)
		return 0;
	if (!any_flag)
		return husk_error_set(err, EINVAL, "update: nothing to change (give a flag or -r FILE)");
	r = resources_json(&rv, &u->json);
	return r < 0 ? husk_error_set(err, -r, "out of memory") : 0;
}

void oci_update_release(struct oci_update *u)
{
	free(u->json);
	u->json = NULL;
}

void oci_stats_json(FILE *out, const struct husk_container_stats *st)
{
	fprintf(out, "{\"cpu\":{\"usage\":{\"total\":%" PRIu64 ",\"kernel\":%" PRIu64
		",\"user\":%" PRIu64 "}},", st->cpu_usage_ns, st->cpu_kernel_ns, st->cpu_user_ns);
	fprintf(out, "\"memory\":{\"cache\":%" PRIu64 ",\"usage\":{\"limit\":%" PRIu64
		",\"usage\":%" PRIu64 ",\"max\":%" PRIu64 ",\"failcnt\":%" PRIu64 "}},",
		st->memory_cache, st->memory_limit, st->memory_usage, st->memory_max_usage,
		st->memory_failcnt);
	fprintf(out, "\"pids\":{\"current\":%" PRIu64 ",\"limit\":%" PRIu64 "}}",
		st->pids_current, st->pids_limit);
}

int oci_parse_duration(const char *s, int64_t *ns)
{
	static const struct {
		const char *name;
		int64_t ns;
	} units[] = {
		/* Longest first: "ms" before "m", "ns" before "s". */
		{ "ns", 1 }, { "us", 1000 }, { "\u00b5s", 1000 }, { "ms", 1000000 },
		{ "s", 1000000000LL }, { "m", 60 * 1000000000LL }, { "h", 3600 * 1000000000LL },
	};
	double total = 0;

	/* Go's time.ParseDuration without a sign: "5s", "1m30s", "1.5h", "0". */
	if (!strcmp(s, "0")) {
		*ns = 0;
		return 0;
	}
	if (!*s)
		return -EINVAL;
	while (*s) {
		char *end;
		double v;
		size_t i;

		if ((*s < '0' || *s > '9') && *s != '.')
			return -EINVAL;
		v = strtod(s, &end);
		if (end == s)
			return -EINVAL;
		for (i = 0; i < sizeof(units) / sizeof(units[0]); i++)
			if (!strncmp(end, units[i].name, strlen(units[i].name)))
				break;
		if (i == sizeof(units) / sizeof(units[0]))
			return -EINVAL;
		total += v * (double)units[i].ns;
		s = end + strlen(units[i].name);
	}
	if (total >= 9.2e18)
		return -ERANGE;
	*ns = (int64_t)total;
	return 0;
}

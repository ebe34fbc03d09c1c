// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "husk-common/cleanup.h"
#include "list.h"

struct list_type_info {
	const char *keyword;
	enum list_type type;
	mode_t ifmt;
	size_t min_fields;	/* keyword included */
	size_t max_fields;	/* SIZE_MAX: hard links may follow */
	const char *usage;
};

static const struct list_type_info list_types[] = {
	{ "file", LIST_FILE, S_IFREG, 6, SIZE_MAX,
	  "file <name> <location> <mode> <uid> <gid> [<hard links>]" },
	{ "dir", LIST_DIR, S_IFDIR, 5, 5, "dir <name> <mode> <uid> <gid>" },
	{ "nod", LIST_NOD, 0, 8, 8,
	  "nod <name> <mode> <uid> <gid> <dev_type> <maj> <min>" },
	{ "slink", LIST_SLINK, S_IFLNK, 6, 6,
	  "slink <name> <target> <mode> <uid> <gid>" },
	{ "pipe", LIST_PIPE, S_IFIFO, 5, 5, "pipe <name> <mode> <uid> <gid>" },
	{ "sock", LIST_SOCK, S_IFSOCK, 5, 5, "sock <name> <mode> <uid> <gid>" },
};

void list_entry_done(struct list_entry *e)
{
	free(e->name);
	free(e->location);
	for (size_t i = 0; i < e->n_links; i++)
		free(e->links[i]);
	free(e->links);
	memset(e, 0, sizeof(*e));
}

int list_normalise_name(const char *path, char **out)
{
	_cleanup_free_ char *buf = NULL;
	size_t len = 0;
	const char *p = path;

	if (!*path || strlen(path) >= PATH_MAX)
		return -EINVAL;
	buf = malloc(strlen(path) + 2);
	if (!buf)
		return -ENOMEM;
	while (*p) {
		size_t n;

		while (*p == '/')
			p++;
		n = strcspn(p, "/");
		if (n == 0)
			break;
		if ((n == 1 && p[0] == '.') || (n == 2 && p[0] == '.' && p[1] == '.'))
			return -EINVAL;
		if (len)
			buf[len++] = '/';
		memcpy(buf + len, p, n);
		len += n;
		p += n;
	}
	if (len == 0)
		buf[len++] = '.';
	buf[len] = '\0';
	*out = TAKE_PTR(buf);
	return 0;
}

/* Split on blanks in place; *fields points into line. */
static int split_fields(char *line, char ***fields, size_t *n_fields)
{
	_cleanup_free_ char **v = NULL;
	size_t n = 0, cap = 0;
	char *save = NULL;

	for (char *tok = strtok_r(line, " \t", &save); tok;
	     tok = strtok_r(NULL, " \t", &save)) {
		if (n == cap) {
			char **nv;

			cap = cap ? cap * 2 : 8;
			nv = reallocarray(v, cap, sizeof(*v));
			if (!nv)
				return -ENOMEM;
			v = nv;
		}
		v[n++] = tok;
	}
	*fields = TAKE_PTR(v);
	*n_fields = n;
	return 0;
}

static int parse_octal_mode(const char *s, mode_t *mode)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 7)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '7')
			return -EINVAL;
		v = v * 8 + (unsigned long)(*s - '0');
	}
	if (v > 07777)
		return -ERANGE;
	*mode = (mode_t)v;
	return 0;
}

/* Decimal id or device number: digits only, fits in 32 bits. */
static int parse_u32(const char *s, uint32_t *out)
{
	unsigned long long v = 0;

	if (!*s || strlen(s) > 10)
		return -EINVAL;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long long)(*s - '0');
	}
	if (v > UINT32_MAX)
		return -ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* ${VAR} from the environment; an unset VAR is an error naming it. */
static int expand_env(const char *in, char **out, unsigned int lineno,
		      struct husk_error *err)
{
	_cleanup_free_ char *res = NULL;
	size_t len = 0;

	res = strdup("");
	if (!res)
		return -ENOMEM;
	while (*in) {
		const char *start = strstr(in, "${");
		const char *end = start ? strchr(start + 2, '}') : NULL;
		size_t lit = end ? (size_t)(start - in) : strlen(in);
		const char *val = "";
		size_t vlen;
		char *nres;

		if (end) {
			_cleanup_free_ char *var = strndup(start + 2, (size_t)(end - start - 2));

			if (!var)
				return -ENOMEM;
			val = getenv(var);
			if (!val)
				return husk_error_set(err, ENOENT,
						      "line %u: environment variable %s is not set",
						      lineno, var);
		}
		vlen = strlen(val);
		if (len + lit + vlen >= PATH_MAX)
			return husk_error_set(err, ENAMETOOLONG,
					      "line %u: location is too long", lineno);
		nres = realloc(res, len + lit + vlen + 1);
		if (!nres)
			return -ENOMEM;
		res = nres;
		memcpy(res + len, in, lit);
		memcpy(res + len + lit, val, vlen);
		len += lit + vlen;
		res[len] = '\0';
		in = end ? end + 1 : in + lit;
	}
	if (!len)
		return husk_error_set(err, EINVAL, "line %u: empty location", lineno);
	*out = TAKE_PTR(res);
	return 0;
}

static int parse_name(const char *field, const char *what, char **out,
		      unsigned int lineno, struct husk_error *err)
{
	int r = list_normalise_name(field, out);

	if (r == -ENOMEM)
		return r;
	if (r < 0)
		return husk_error_set(err, EINVAL,
				      "line %u: invalid %s '%s' (empty, too long, or with . or .. components)",
				      lineno, what, field);
	return 0;
}

/* <mode> <uid> <gid> starting at fields[i]. */
static int parse_mode_owner(char **fields, size_t i, struct list_entry *e,
			    struct husk_error *err)
{
	mode_t perm;

	if (parse_octal_mode(fields[i], &perm) < 0)
		return husk_error_set(err, EINVAL,
				      "line %u: invalid mode '%s' (octal, at most 07777)",
				      e->line, fields[i]);
	if (parse_u32(fields[i + 1], &e->uid) < 0)
		return husk_error_set(err, EINVAL, "line %u: invalid uid '%s'",
				      e->line, fields[i + 1]);
	if (parse_u32(fields[i + 2], &e->gid) < 0)
		return husk_error_set(err, EINVAL, "line %u: invalid gid '%s'",
				      e->line, fields[i + 2]);
	e->mode |= perm;
	return 0;
}

static int parse_nod_device(char **fields, struct list_entry *e,
			    struct husk_error *err)
{
	const char *type = fields[5];

	if (strcmp(type, "c") == 0)
		e->mode |= S_IFCHR;
	else if (strcmp(type, "b") == 0)
		e->mode |= S_IFBLK;
	else
		return husk_error_set(err, EINVAL,
				      "line %u: invalid dev_type '%s' (want b or c)",
				      e->line, type);
	if (parse_u32(fields[6], &e->rdev_major) < 0)
		return husk_error_set(err, EINVAL, "line %u: invalid major '%s'",
				      e->line, fields[6]);
	if (parse_u32(fields[7], &e->rdev_minor) < 0)
		return husk_error_set(err, EINVAL, "line %u: invalid minor '%s'",
				      e->line, fields[7]);
	return 0;
}

static int parse_hard_links(char **fields, size_t n, struct list_entry *e,
			    struct husk_error *err)
{
	if (n == 0)
		return 0;
	e->links = calloc(n, sizeof(*e->links));
	if (!e->links)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		int r = parse_name(fields[i], "hard link name", &e->links[i],
				   e->line, err);

		if (r < 0)
			return r;
		e->n_links++;
	}
	return 0;
}

static int parse_fields(const struct list_type_info *t, char **f, size_t n,
			struct list_entry *e, struct husk_error *err)
{
	int r;

	e->type = t->type;
	e->mode = t->ifmt;
	r = parse_name(f[1], "name", &e->name, e->line, err);
	if (r < 0)
		return r;
	if (strcmp(e->name, ".") == 0 && t->type != LIST_DIR)
		return husk_error_set(err, EINVAL,
				      "line %u: only a dir may be the root '/'", e->line);

	switch (t->type) {
	case LIST_FILE:
		r = expand_env(f[2], &e->location, e->line, err);
		if (r >= 0)
			r = parse_mode_owner(f, 3, e, err);
		if (r >= 0)
			r = parse_hard_links(f + 6, n - 6, e, err);
		return r;
	case LIST_SLINK:
		if (strlen(f[2]) >= PATH_MAX)
			return husk_error_set(err, ENAMETOOLONG,
					      "line %u: symlink target is too long", e->line);
		e->location = strdup(f[2]);
		if (!e->location)
			return -ENOMEM;
		return parse_mode_owner(f, 3, e, err);
	case LIST_NOD:
		r = parse_mode_owner(f, 2, e, err);
		return r < 0 ? r : parse_nod_device(f, e, err);
	case LIST_DIR:
	case LIST_PIPE:
	case LIST_SOCK:
		return parse_mode_owner(f, 2, e, err);
	}
	return -EINVAL;
}

static const struct list_type_info *find_type(const char *keyword)
{
	for (size_t i = 0; i < ARRAY_SIZE(list_types); i++)
		if (strcmp(list_types[i].keyword, keyword) == 0)
			return &list_types[i];
	return NULL;
}

int list_parse_line(const char *line, unsigned int lineno,
		    struct list_entry *out, struct husk_error *err)
{
	_cleanup_free_ char *copy = NULL;
	_cleanup_free_ char **f = NULL;
	const struct list_type_info *t;
	struct list_entry e = { .line = lineno };
	size_t n;
	int r;

	copy = strdup(line);
	if (!copy)
		return -ENOMEM;
	copy[strcspn(copy, "\r\n")] = '\0';
	r = split_fields(copy, &f, &n);
	if (r < 0)
		return r;
	if (n == 0 || f[0][0] == '#')
		return 0;

	t = find_type(f[0]);
	if (!t)
		return husk_error_set(err, EINVAL,
				      "line %u: unknown type '%s' (want file, dir, nod, slink, pipe or sock)",
				      lineno, f[0]);
	if (n < t->min_fields || n > t->max_fields)
		return husk_error_set(err, EINVAL,
				      "line %u: %s takes %zu fields, got %zu: %s",
				      lineno, t->keyword, t->min_fields - 1, n - 1, t->usage);

	r = parse_fields(t, f, n, &e, err);
	if (r < 0) {
		list_entry_done(&e);
		return r;
	}
	*out = e;
	return 1;
}

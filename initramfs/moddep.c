// SPDX-License-Identifier: LGPL-2.1-or-later
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "moddep.h"

enum { MOD_UNVISITED, MOD_VISITING, MOD_DONE };

static void module_done(struct moddep_module *m)
{
	free(m->path);
	free(m->name);
	for (size_t i = 0; i < m->n_deps; i++)
		free(m->dep_paths[i]);
	free(m->dep_paths);
	free(m->deps);
}

void moddep_done(struct moddep *md)
{
	for (size_t i = 0; i < md->n; i++)
		module_done(&md->mods[i]);
	free(md->mods);
	free(md->order);
	memset(md, 0, sizeof(*md));
}

int moddep_module_name(const char *path_or_name, char **out)
{
	const char *base = strrchr(path_or_name, '/');
	const char *ko;
	char *name;

	base = base ? base + 1 : path_or_name;
	ko = strstr(base, ".ko");
	name = strndup(base, ko ? (size_t)(ko - base) : strlen(base));
	if (!name)
		return -ENOMEM;
	for (char *p = name; *p; p++)
		if (*p == '-')
			*p = '_';
	*out = name;
	return 0;
}

/* A module path must stay inside the modules directory and name a .ko. */
static int check_module_path(const char *path)
{
	static const char *const suffixes[] = { ".ko", ".ko.xz", ".ko.zst", ".ko.gz" };
	size_t len = strlen(path);
	bool ok = false;

	if (len == 0 || path[0] == '/' || strstr(path, "..") || strstr(path, "//"))
		return -EINVAL;
	for (size_t i = 0; i < ARRAY_SIZE(suffixes); i++) {
		size_t sl = strlen(suffixes[i]);

		if (len > sl && strcmp(path + len - sl, suffixes[i]) == 0 &&
		    path[len - sl - 1] != '/')
			ok = true;
	}
	return ok ? 0 : -EINVAL;
}

static int add_dep_path(struct moddep_module *m, const char *tok, size_t n)
{
	char **nv = reallocarray(m->dep_paths, m->n_deps + 1, sizeof(*nv));

	if (!nv)
		return -ENOMEM;
	m->dep_paths = nv;
	nv[m->n_deps] = strndup(tok, n);
	if (!nv[m->n_deps])
		return -ENOMEM;
	m->n_deps++;
	return 0;
}

static int parse_line(struct moddep_module *m, const char *line, size_t len,
		      unsigned int lineno, struct husk_error *err)
{
	const char *colon = memchr(line, ':', len);
	const char *p, *end = line + len;
	int r;

	if (!colon)
		return husk_error_set(err, EINVAL, "modules.dep line %u: no ':'", lineno);
	m->line = lineno;
	m->path = strndup(line, (size_t)(colon - line));
	if (!m->path)
		return -ENOMEM;
	if (strlen(m->path) != (size_t)(colon - line) ||
	    check_module_path(m->path) < 0 || strpbrk(m->path, " \t"))
		return husk_error_set(err, EINVAL,
				      "modules.dep line %u: invalid module path", lineno);
	r = moddep_module_name(m->path, &m->name);
	if (r < 0)
		return r;

	for (p = colon + 1; p < end;) {
		size_t n;

		while (p < end && (*p == ' ' || *p == '\t'))
			p++;
		n = 0;
		while (p + n < end && p[n] != ' ' && p[n] != '\t')
			n++;
		if (n == 0)
			break;
		r = add_dep_path(m, p, n);
		if (r < 0)
			return r;
		if (strlen(m->dep_paths[m->n_deps - 1]) != n ||
		    check_module_path(m->dep_paths[m->n_deps - 1]) < 0)
			return husk_error_set(err, EINVAL,
					      "modules.dep line %u: invalid dependency path",
					      lineno);
		p += n;
	}
	return 0;
}

static int cmp_module_path(const void *a, const void *b)
{
	return strcmp(((const struct moddep_module *)a)->path,
		      ((const struct moddep_module *)b)->path);
}

static struct moddep_module *find_by_path(struct moddep *md, const char *path)
{
	struct moddep_module key = { .path = (char *)path };

	if (!md->n)
		return NULL;
	return bsearch(&key, md->mods, md->n, sizeof(key), cmp_module_path);
}

/* Sort by path, refuse duplicates, turn dependency paths into indices. */
static int link_modules(struct moddep *md, struct husk_error *err)
{
	if (!md->n)
		return 0;
	qsort(md->mods, md->n, sizeof(*md->mods), cmp_module_path);
	for (size_t i = 1; i < md->n; i++)
		if (strcmp(md->mods[i - 1].path, md->mods[i].path) == 0)
			return husk_error_set(err, EINVAL,
					      "modules.dep lines %u and %u: %s listed twice",
					      md->mods[i - 1].line, md->mods[i].line,
					      md->mods[i].path);
	for (size_t i = 0; i < md->n; i++) {
		struct moddep_module *m = &md->mods[i];

		m->deps = calloc(m->n_deps ? m->n_deps : 1, sizeof(*m->deps));
		if (!m->deps)
			return -ENOMEM;
		for (size_t j = 0; j < m->n_deps; j++) {
			struct moddep_module *d = find_by_path(md, m->dep_paths[j]);

			if (!d)
				return husk_error_set(err, EINVAL,
						      "modules.dep line %u: dependency %s of %s has no line of its own",
						      m->line, m->dep_paths[j], m->path);
			m->deps[j] = (size_t)(d - md->mods);
		}
	}
	return 0;
}

int moddep_parse(struct moddep *md, const char *buf, size_t len,
		 struct husk_error *err)
{
	const char *p = buf, *end = buf + len;
	unsigned int lineno = 0;
	size_t cap = 0;
	int r;

	memset(md, 0, sizeof(*md));
	while (p < end) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);

		lineno++;
		if (n > 0 && memchr(p, '\0', n)) {
			r = husk_error_set(err, EINVAL, "modules.dep line %u: NUL byte", lineno);
			goto fail;
		}
		if (n > 0 && p[0] != '#') {
			if (md->n == cap) {
				struct moddep_module *nv;

				cap = cap ? cap * 2 : 256;
				nv = reallocarray(md->mods, cap, sizeof(*nv));
				if (!nv) {
					r = -ENOMEM;
					goto fail;
				}
				md->mods = nv;
			}
			memset(&md->mods[md->n], 0, sizeof(md->mods[md->n]));
			md->n++;
			r = parse_line(&md->mods[md->n - 1], p, n, lineno, err);
			if (r < 0)
				goto fail;
		}
		p += n + 1;
	}
	r = link_modules(md, err);
	if (r < 0)
		goto fail;
	return 0;
fail:
	moddep_done(md);
	return r;
}

static int find_module(struct moddep *md, const char *name, size_t *idx)
{
	_cleanup_free_ char *want = NULL;
	struct moddep_module *m = find_by_path(md, name);
	int r;

	if (m) {
		*idx = (size_t)(m - md->mods);
		return 0;
	}
	r = moddep_module_name(name, &want);
	if (r < 0)
		return r;
	for (size_t i = 0; i < md->n; i++)
		if (strcmp(md->mods[i].name, want) == 0) {
			*idx = i;
			return 0;
		}
	return -ENOENT;
}

/*
 * Depth-first, dependencies first.  depmod lists a module's dependencies so
 * that the last one is loaded first (modprobe walks the line backwards); we
 * do the same so the order matches what modprobe would do.
 */
static int visit(struct moddep *md, size_t i, struct husk_error *err)
{
	struct moddep_module *m = &md->mods[i];

	if (m->state == MOD_DONE)
		return 0;
	if (m->state == MOD_VISITING)
		return husk_error_set(err, ELOOP,
				      "modules.dep: dependency cycle through %s", m->path);
	m->state = MOD_VISITING;
	for (size_t j = m->n_deps; j-- > 0;) {
		int r = visit(md, m->deps[j], err);

		if (r < 0)
			return r;
	}
	m->state = MOD_DONE;
	md->order[md->n_order++] = i;
	return 0;
}

int moddep_resolve(struct moddep *md, const char *name, struct husk_error *err)
{
	size_t idx;
	int r;

	if (!md->order) {
		md->order = calloc(md->n ? md->n : 1, sizeof(*md->order));
		if (!md->order)
			return -ENOMEM;
	}
	r = find_module(md, name, &idx);
	if (r == -ENOENT)
		return husk_error_set(err, ENOENT, "module %s: not found in modules.dep", name);
	if (r < 0)
		return r;
	r = visit(md, idx, err);
	if (r < 0) {
		/* leave no module half-visited for a later call */
		for (size_t i = 0; i < md->n; i++)
			if (md->mods[i].state == MOD_VISITING)
				md->mods[i].state = MOD_UNVISITED;
	}
	return r;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/* The OCI runtime's per-container state directories (see oci-state.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "json.h"
#include "oci-state.h"

#define STATE_FILE "state.json"
#define STATE_TMP "state.json.tmp"

static const char *const status_names[] = {
	[OCI_CREATING] = "creating",
	[OCI_CREATED] = "created",
	[OCI_RUNNING] = "running",
	[OCI_STOPPED] = "stopped",
	[OCI_PAUSED] = "paused",
};

const char *oci_status_name(enum oci_status st)
{
	return (unsigned int)st < ARRAY_SIZE(status_names) ? status_names[st] : "unknown";
}

bool oci_id_valid(const char *id)
{
	size_t len = strlen(id);

	if (len < 2 || len > OCI_ID_MAX || !strchr(
		"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", id[0]))
		return false;
	return strspn(id, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
			  "0123456789_.-") == len;
}

static void json_doc_releasep(struct json_doc **doc)
{
	if (*doc) {
		json_doc_release(*doc);
		free(*doc);
	}
}

/* Lock dir_fd, then make sure nobody removed the directory meanwhile. */
static int lock_dir(int dir_fd, const char *id, struct husk_error *err)
{
	struct stat st;

	while (flock(dir_fd, LOCK_EX) < 0)
		if (errno != EINTR)
			return husk_error_seterrno(err, errno, "container %s: lock", id);
	if (fstat(dir_fd, &st) < 0)
		return husk_error_seterrno(err, errno, "container %s: stat", id);
	if (st.st_nlink == 0)
		return husk_error_set(err, ENOENT, "container does not exist");
	return 0;
}

/* mkdir -p root, as runc makes its --root. */
static int mkdir_root(const char *root)
{
	char buf[PATH_MAX];
	size_t len = strlen(root);

	if (len >= sizeof(buf))
		return -ENAMETOOLONG;
	memcpy(buf, root, len + 1);
	for (char *p = buf + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = '\0';
		if (mkdir(buf, 0711) < 0 && errno != EEXIST)
			return -errno;
		*p = '/';
	}
	return mkdir(buf, 0711) < 0 && errno != EEXIST ? -errno : 0;
}

int oci_state_create(const char *root, const char *id, int *dir_fd,
		     struct husk_error *err)
{
	_cleanup_close_ int root_fd = -1, fd = -1;
	int r;

	if (!oci_id_valid(id))
		return husk_error_set(err, EINVAL, "invalid container id %s: want "
				      "[a-zA-Z0-9][a-zA-Z0-9_.-]+", id);
	r = mkdir_root(root);
	if (r < 0)
		return husk_error_seterrno(err, -r, "root %s", root);
	root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (root_fd < 0)
		return husk_error_seterrno(err, errno, "root %s", root);
	if (mkdirat(root_fd, id, 0711) < 0) {
		if (errno == EEXIST)
			return husk_error_set(err, EEXIST, "container with given ID already exists");
		return husk_error_seterrno(err, errno, "root %s: mkdir %s", root, id);
	}
	fd = openat(root_fd, id, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "root %s: open %s", root, id);
	r = lock_dir(fd, id, err);
	if (r < 0)
		return r;
	*dir_fd = TAKE_FD(fd);
	return 0;
}

static int state_open(const char *root, const char *id, bool lock, int *dir_fd,
		      struct husk_error *err)
{
	_cleanup_free_ char *path = NULL;
	_cleanup_close_ int fd = -1;
	int r = 0;

	if (!oci_id_valid(id))
		return husk_error_set(err, ENOENT, "container does not exist");
	if (asprintf(&path, "%s/%s", root, id) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (fd < 0) {
		if (errno == ENOENT)
			return husk_error_set(err, ENOENT, "container does not exist");
		return husk_error_seterrno(err, errno, "%s", path);
	}
	if (lock)
		r = lock_dir(fd, id, err);
	if (r < 0)
		return r;
	/* A directory without state.json is one whose create failed half-way. */
	if (faccessat(fd, STATE_FILE, F_OK, 0) < 0)
		return husk_error_set(err, ENOENT, "container does not exist");
	*dir_fd = TAKE_FD(fd);
	return 0;
}

int oci_state_open(const char *root, const char *id, int *dir_fd,
		   struct husk_error *err)
{
	return state_open(root, id, true, dir_fd, err);
}

int oci_state_peek(const char *root, const char *id, int *dir_fd,
		   struct husk_error *err)
{
	return state_open(root, id, false, dir_fd, err);
}

void oci_json_put_string(FILE *out, const char *s)
{
	fputc('"', out);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		switch (*p) {
		case '"': fputs("\\\"", out); break;
		case '\\': fputs("\\\\", out); break;
		case '\n': fputs("\\n", out); break;
		case '\r': fputs("\\r", out); break;
		case '\t': fputs("\\t", out); break;
		default:
			if (*p < 0x20)
				fprintf(out, "\\u%04x", *p);
			else
				fputc(*p, out);
		}
	}
	fputc('"', out);
}

void oci_time_now(char *buf, size_t size)
{
	struct timespec ts;
	struct tm tm;
	char sec[32];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, size, "%s.%09ldZ", sec, ts.tv_nsec);
}

static void put_annotations(FILE *out, const struct oci_state *st)
{
	fputs("\"annotations\":{", out);
	for (size_t i = 0; i < st->n_annotations; i++) {
		if (i)
			fputc(',', out);
		oci_json_put_string(out, st->annotations[i][0]);
		fputc(':', out);
		oci_json_put_string(out, st->annotations[i][1]);
	}
	fputc('}', out);
}

/* The common part of state.json and the printed state. */
static void put_state(FILE *out, const struct oci_state *st, enum oci_status status)
{
	fprintf(out, "{\"ociVersion\":\"%s\",\"id\":", OCI_VERSION);
	oci_json_put_string(out, st->id);
	fprintf(out, ",\"status\":\"%s\",\"pid\":%d,\"bundle\":", oci_status_name(status),
		status == OCI_STOPPED ? 0 : st->pid);
	oci_json_put_string(out, st->bundle ? st->bundle : "");
	fputc(',', out);
	put_annotations(out, st);
}

int oci_state_write(int dir_fd, const struct oci_state *st, struct husk_error *err)
{
	_cleanup_close_ int fd = -1;
	_cleanup_fclose_ FILE *f = NULL;

	fd = openat(dir_fd, STATE_TMP, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	if (fd < 0)
		return husk_error_seterrno(err, errno, "container %s: %s", st->id, STATE_TMP);
	f = fdopen(fd, "w");
	if (!f)
		return husk_error_seterrno(err, errno, "container %s: fdopen", st->id);
	fd = -1;
	/* The raw recorded status: oci_state_status() judges it when read. */
	put_state(f, st, st->status);
	fprintf(f, ",\"pidStart\":%llu,\"rootfs\":", st->pid_start);
	oci_json_put_string(f, st->rootfs ? st->rootfs : "");
	fputs(",\"created\":", f);
	oci_json_put_string(f, st->created ? st->created : "");
	fprintf(f, ",\"owner\":%u}\n", (unsigned int)st->owner);
	if (fflush(f) == EOF || fsync(fileno(f)) < 0)
		return husk_error_seterrno(err, errno, "container %s: write %s", st->id,
					   STATE_TMP);
	if (renameat(dir_fd, STATE_TMP, dir_fd, STATE_FILE) < 0)
		return husk_error_seterrno(err, errno, "container %s: rename %s", st->id,
					   STATE_FILE);
	return 0;
}

static int read_file_at(int dir_fd, const char *name, char **text, size_t *len)
{
	_cleanup_close_ int fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC);
	_cleanup_free_ char *buf = NULL;
	size_t n = 0;

	if (fd < 0)
		return -errno;
	buf = malloc(JSON_MAX_INPUT);
	if (!buf)
		return -ENOMEM;
	for (;;) {
		ssize_t got = read(fd, buf + n, JSON_MAX_INPUT - n);

		if (got < 0 && errno == EINTR)
			continue;
		if (got < 0)
			return -errno;
		if (got == 0)
			break;
		n += got;
		if (n == JSON_MAX_INPUT)
			return -E2BIG;
	}
	*text = TAKE_PTR(buf);
	*len = n;
	return 0;
}

static int dup_member(const struct json_doc *doc, const struct json_node *root,
		      const char *key, char **out)
{
	const char *s = json_string(json_get(doc, root, key));

	if (!s)
		return -EINVAL;
	*out = strdup(s);
	return *out ? 0 : -ENOMEM;
}

static int int_member(const struct json_doc *doc, const struct json_node *root,
		      const char *key, long long min, long long max, long long *out)
{
	const struct json_node *n = json_get(doc, root, key);

	if (!n || n->type != JSON_NUMBER || !n->is_integer ||
	    n->integer < min || n->integer > max)
		return -EINVAL;
	*out = n->integer;
	return 0;
}

static int parse_status(const char *s, enum oci_status *st)
{
	for (size_t i = 0; i < ARRAY_SIZE(status_names); i++)
		if (s && !strcmp(s, status_names[i])) {
			*st = (enum oci_status)i;
			return 0;
		}
	return -EINVAL;
}

static int parse_annotations(const struct json_doc *doc, const struct json_node *obj,
			     struct oci_state *st)
{
	uint32_t v;

	if (!obj || obj->type != JSON_OBJECT || obj->count > OCI_MAX_ANNOTATIONS)
		return -EINVAL;
	/* An object's members: key node, then value node; values link by next. */
	v = (uint32_t)(obj - doc->nodes) + 2;
	for (uint32_t i = 0; i < obj->count; i++, v = doc->nodes[v].next) {
		const struct json_node *key = &doc->nodes[v - 1], *val = &doc->nodes[v];

		if (val->type != JSON_STRING)
			return -EINVAL;
		st->annotations[i][0] = strdup(key->str);
		st->annotations[i][1] = strdup(val->str);
		st->n_annotations = i + 1;
		if (!st->annotations[i][0] || !st->annotations[i][1])
			return -ENOMEM;
	}
	return 0;
}

static int parse_state(const struct json_doc *doc, struct oci_state *st)
{
	const struct json_node *root = json_root(doc);
	const char *id = json_string(json_get(doc, root, "id"));
	long long v;
	int r;

	if (!id || strlen(id) > OCI_ID_MAX)
		return -EINVAL;
	strcpy(st->id, id);
	r = parse_status(json_string(json_get(doc, root, "status")), &st->status);
	if (r == 0)
		r = int_member(doc, root, "pid", 0, INT32_MAX, &v);
	if (r == 0) {
		st->pid = (int)v;
		r = int_member(doc, root, "pidStart", 0, INT64_MAX, &v);
	}
	if (r == 0) {
		st->pid_start = (unsigned long long)v;
		r = int_member(doc, root, "owner", 0, UINT32_MAX, &v);
	}
	if (r == 0) {
		st->owner = (uid_t)v;
		r = dup_member(doc, root, "bundle", &st->bundle);
	}
	if (r == 0)
		r = dup_member(doc, root, "rootfs", &st->rootfs);
	if (r == 0)
		r = dup_member(doc, root, "created", &st->created);
	if (r == 0)
		r = parse_annotations(doc, json_get(doc, root, "annotations"), st);
	return r;
}

int oci_state_read(int dir_fd, struct oci_state *st, struct husk_error *err)
{
	_cleanup_(json_doc_releasep) struct json_doc *doc = NULL;
	_cleanup_free_ char *text = NULL;
	size_t len = 0, errpos = 0;
	int r;

	memset(st, 0, sizeof(*st));
	r = read_file_at(dir_fd, STATE_FILE, &text, &len);
	if (r == -ENOENT)
		return husk_error_set(err, ENOENT, "container does not exist");
	if (r < 0)
		return husk_error_seterrno(err, -r, "read %s", STATE_FILE);
	doc = calloc(1, sizeof(*doc));
	if (!doc)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = json_parse(doc, text, len, &errpos);
	if (r == 0)
		r = parse_state(doc, st);
	if (r < 0) {
		oci_state_release(st);
		return husk_error_set(err, -r == ENOMEM ? ENOMEM : EIO,
				      "%s: corrupt (byte %zu)", STATE_FILE, errpos);
	}
	return 0;
}

void oci_state_release(struct oci_state *st)
{
	free(st->bundle);
	free(st->rootfs);
	free(st->created);
	for (size_t i = 0; i < st->n_annotations; i++) {
		free(st->annotations[i][0]);
		free(st->annotations[i][1]);
	}
	st->bundle = st->rootfs = st->created = NULL;
	st->n_annotations = 0;
}

/* Field 3 (state) and 22 (start time) of /proc/PID/stat; false when gone. */
static bool proc_stat(pid_t pid, char *state, unsigned long long *start)
{
	char path[64], buf[1024], *p;
	_cleanup_close_ int fd = -1;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	/* comm may hold spaces and parentheses: fields restart after the last ')'. */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return false;
	*state = p[2];
	/* p is on the space before field 3: step to the one before field 22. */
	for (int field = 3; p && field <= 22; field++)
		p = strchr(p + 1, ' ');
	*start = p ? strtoull(p + 1, NULL, 10) : 0;
	return true;
}

unsigned long long oci_pid_start_time(pid_t pid)
{
	unsigned long long start = 0;
	char state;

	return proc_stat(pid, &state, &start) ? start : 0;
}

enum oci_status oci_state_status(const struct oci_state *st)
{
	unsigned long long start;
	char state;

	if (st->status == OCI_STOPPED || st->pid <= 0)
		return st->status;
	/* Gone, exited but not yet reaped (the shim reaps it), or a reused pid. */
	if (!proc_stat(st->pid, &state, &start) || state == 'Z' || state == 'X' ||
	    start != st->pid_start)
		return OCI_STOPPED;
	return st->status;
}

int oci_state_remove(const char *root, const char *id, int dir_fd,
		     struct husk_error *err)
{
	_cleanup_free_ char *path = NULL;
	int fd = fcntl(dir_fd, F_DUPFD_CLOEXEC, 0);
	struct dirent *de;
	DIR *d;

	if (fd < 0)
		return husk_error_seterrno(err, errno, "container %s: dup", id);
	d = fdopendir(fd);
	if (!d) {
		close(fd);
		return husk_error_seterrno(err, errno, "container %s: opendir", id);
	}
	rewinddir(d);
	while ((de = readdir(d))) {
		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (unlinkat(dir_fd, de->d_name, 0) < 0 && errno != ENOENT) {
			husk_error_seterrno(err, errno, "container %s: remove %s", id,
					    de->d_name);
			closedir(d);
			return -err->code;
		}
	}
	closedir(d);
	if (asprintf(&path, "%s/%s", root, id) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	if (rmdir(path) < 0 && errno != ENOENT)
		return husk_error_seterrno(err, errno, "container %s: rmdir %s", id, path);
	return 0;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

int oci_state_list(const char *root, char ***ids_out, struct husk_error *err)
{
	char **ids = NULL;
	size_t n = 0;
	struct dirent *de;
	DIR *d = opendir(root);

	if (!d) {
		if (errno != ENOENT)
			return husk_error_seterrno(err, errno, "root %s", root);
	} else {
		while ((de = readdir(d))) {
			char **grown;

			if (!oci_id_valid(de->d_name))
				continue;
			grown = realloc(ids, (n + 2) * sizeof(*ids));
			if (!grown)
				goto oom;
			ids = grown;
			ids[n] = strdup(de->d_name);
			if (!ids[n])
				goto oom;
			ids[++n] = NULL;
		}
		closedir(d);
		d = NULL;
	}
	if (!ids) {
		ids = calloc(1, sizeof(*ids));
		if (!ids)
			goto oom;
	}
	qsort(ids, n, sizeof(*ids), cmp_str);
	*ids_out = ids;
	return 0;
oom:
	if (d)
		closedir(d);
	for (size_t i = 0; ids && ids[i]; i++)
		free(ids[i]);
	free(ids);
	return husk_error_set(err, ENOMEM, "out of memory");
}

void oci_state_print(FILE *out, const struct oci_state *st)
{
	put_state(out, st, oci_state_status(st));
	fputs("}\n", out);
}

char *oci_state_format(const struct oci_state *st, enum oci_status status)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (!f)
		return NULL;
	put_state(f, st, status);
	fputc('}', f);
	if (fclose(f) == EOF) {
		free(text);
		return NULL;
	}
	return text;
}

void oci_config_free(struct json_doc *doc)
{
	json_doc_releasep(&doc);
}

int oci_config_load(const char *bundle, struct json_doc **doc_out, struct oci_state *st,
		    struct husk_error *err)
{
	_cleanup_(json_doc_releasep) struct json_doc *doc = NULL;
	_cleanup_free_ char *text = NULL;
	_cleanup_close_ int dir_fd = -1;
	const struct json_node *ann;
	size_t len = 0, errpos = 0;
	int r;

	dir_fd = open(bundle, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dir_fd < 0)
		return husk_error_seterrno(err, errno, "bundle %s", bundle);
	r = read_file_at(dir_fd, "config.json", &text, &len);
	if (r < 0)
		return husk_error_seterrno(err, -r, "bundle %s: config.json", bundle);
	doc = calloc(1, sizeof(*doc));
	if (!doc)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = json_parse(doc, text, len, &errpos);
	if (r < 0 || json_root(doc)->type != JSON_OBJECT)
		return husk_error_set(err, EINVAL, "config.json: not a JSON object (byte %zu)",
				      errpos);
	ann = json_get(doc, json_root(doc), "annotations");
	if (ann && parse_annotations(doc, ann, st) < 0)
		return husk_error_set(err, EINVAL, "config.json: annotations: expected an "
				      "object of at most %d strings", OCI_MAX_ANNOTATIONS);
	*doc_out = TAKE_PTR(doc);
	return 0;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Drives libhusk's sandbox/container API through one VM for
 * tests/e2e/test_run_api.py: two containers, an exec, stats, signals, an
 * OOM event.  Prints one line per observation; exits non-zero at the first
 * failed call, naming it.
 *	run-api KERNEL INITRD ROOTFS
 */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "husk/husk.h"

static struct husk_error err;

#define CHECK(call)                                                          \
	do {                                                                 \
		int r_ = (call);                                             \
		if (r_ < 0) {                                                \
			fprintf(stderr, "%s: %d: %s\n", #call, r_, err.msg); \
			exit(1);                                             \
		}                                                            \
	} while (0)

/* Everything a stream carries until EOF (small outputs only). */
static void read_all(int fd, char *buf, size_t size)
{
	size_t used = 0;
	ssize_t n;

	while (used < size - 1 && (n = read(fd, buf + used, size - 1 - used)) > 0)
		used += n;
	buf[used] = '\0';
	close(fd);
}

static void read_line(int fd, char *buf, size_t size)
{
	size_t used = 0;

	while (used < size - 1 && read(fd, buf + used, 1) == 1 && buf[used] != '\n')
		used++;
	buf[used] = '\0';
}

static struct husk_spec *spec_for(const char *rootfs, const char *script, int64_t memory)
{
	const char *argv[] = { "sh", "-c", script, NULL };
	struct husk_spec *spec;

	CHECK(husk_spec_from_rootfs(rootfs, &spec, &err));
	CHECK(husk_spec_set_args(spec, argv, &err));
	if (memory)
		CHECK(husk_spec_set_memory_limit(spec, memory, &err));
	return spec;
}

/* HUSK_0.3: new limits, freeze and thaw, and what the API refuses. */
static void cgroup_calls(struct husk_container *c)
{
	static const char limits[] = "{\"pids\":{\"limit\":10},\"memory\":{\"limit\":104857600}}";
	static const char unknown_key[] = "{\"pids\":{\"max\":1}}";
	struct husk_container_stats st;
	struct husk_error e = { 0 };

	CHECK(husk_container_update(c, limits, strlen(limits), &err));
	CHECK(husk_container_stats(c, &st, &err));
	printf("updated pids.max %llu memory.max %llu\n", (unsigned long long)st.pids_limit,
	       (unsigned long long)st.memory_limit);
	printf("update with an unknown key: %d %s\n",
	       husk_container_update(c, unknown_key, strlen(unknown_key), &e), e.msg);
	CHECK(husk_container_pause(c, &err));
	printf("paused; again: %s\n", husk_container_pause(c, NULL) == -EBUSY ? "EBUSY" : "other");
	CHECK(husk_container_resume(c, &err));
	printf("resumed; again: %s\n",
	       husk_container_resume(c, NULL) == -EBUSY ? "EBUSY" : "other");
}

int main(int argc, char **argv)
{
	struct husk_process_options opts = { 0 };
	struct husk_sandbox_config cfg;
	struct husk_container_stats st;
	struct husk_container *c1, *c2;
	struct husk_process *e1;
	struct husk_spec *s1, *s2, *s3;
	struct husk_sandbox *sb;
	struct husk_stdio io1, io2, io3;
	char line[256], out[256], errout[256], oom_id[64];
	int status, r;

	if (argc != 4) {
		fprintf(stderr, "usage: run-api KERNEL INITRD ROOTFS\n");
		return 2;
	}
	s1 = spec_for(argv[3], "echo init-up; while :; do sleep 1; done", 0);
	s2 = spec_for(argv[3], "x=$(head -c 200000000 /dev/zero | tr '\\0' a)", 32 << 20);
	s3 = spec_for(argv[3], "echo exec-out; echo exec-err >&2; cat /etc/hostname 2>/dev/null; "
		      "hostname; exit 9", 0);

	husk_sandbox_config_init(&cfg);
	cfg.vm.kernel = argv[1];
	cfg.vm.initrd = argv[2];
	cfg.vm.accel = HUSK_VM_ACCEL_TCG;
	cfg.vm.cmdline = "quiet";
	cfg.hostname = "api-box";
	CHECK(husk_sandbox_create(&cfg, s1, &sb, &err));
	printf("sandbox ready\n");

	CHECK(husk_container_create(sb, "c1", s1, &opts, &io1, &c1, &err));
	CHECK(husk_container_start(c1, &err));
	read_line(io1.stdout_fd, line, sizeof(line));
	printf("c1 says %s\n", line);

	CHECK(husk_container_stats(c1, &st, &err));
	printf("c1 stats pids>=1 %s memory>0 %s\n", st.pids_current >= 1 ? "yes" : "no",
	       st.memory_usage > 0 ? "yes" : "no");

	CHECK(husk_container_exec(c1, "e1", s3, &opts, &io3, &e1, &err));
	read_all(io3.stdout_fd, out, sizeof(out));
	read_all(io3.stderr_fd, errout, sizeof(errout));
	CHECK(husk_process_wait(e1, 60000, &status, &err));
	for (char *p = out; *p; p++)
		if (*p == '\n')
			*p = '|';
	printf("e1 status %d out %s err %s", status, out, errout);
	printf("resize without a tty: %s\n",
	       husk_process_resize(husk_container_process(c1), 24, 80, NULL) == -ENOTTY ?
	       "ENOTTY" : "other");
	cgroup_calls(c1);

	CHECK(husk_container_create(sb, "c2", s2, &opts, &io2, &c2, &err));
	CHECK(husk_container_start(c2, &err));
	CHECK(husk_process_wait(husk_container_process(c2), 120000, &status, &err));
	printf("c2 status %d\n", status);
	CHECK(husk_sandbox_wait_oom(sb, 10000, oom_id, sizeof(oom_id), &err));
	printf("oom event for %s\n", oom_id);
	/* One event per rise of oom_kill the agent sees: a second kill may come apart. */
	while ((r = husk_sandbox_wait_oom(sb, 500, oom_id, sizeof(oom_id), &err)) == 0 &&
	       !strcmp(oom_id, "c2"))
		;
	if (r == -ETIMEDOUT)
		printf("wait_oom again: ETIMEDOUT\n");
	else
		printf("wait_oom again: %d %s\n", r, r == 0 ? oom_id : err.msg);

	CHECK(husk_process_signal(husk_container_process(c1), SIGKILL, &err));
	CHECK(husk_process_wait(husk_container_process(c1), 60000, &status, &err));
	printf("c1 status %d\n", status);

	close(io1.stdout_fd);
	close(io1.stderr_fd);
	close(io2.stdout_fd);
	close(io2.stderr_fd);
	CHECK(husk_container_delete(c1, &err));
	CHECK(husk_container_delete(c2, &err));
	husk_sandbox_destroy(sb);
	husk_spec_free(s1);
	husk_spec_free(s2);
	husk_spec_free(s3);
	printf("done\n");
	return 0;
}

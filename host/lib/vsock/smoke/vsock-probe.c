// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Guest side of the by-hand smoke test (docs/vsock.md), linked statically
 * into a throwaway initramfs:
 *   vsock-probe send CID PORT BYTES   connect, write BYTES of the pattern,
 *                                     half-close, print what the peer answers
 *   vsock-probe listen PORT           accept one connection, read to EOF,
 *                                     answer "got N bad M\n" (M bytes off
 *                                     the pattern), close
 * The pattern: byte k of a stream is (k % 65536) * 7 + 3, truncated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

static uint8_t pattern[65536];

static void pattern_init(void)
{
	for (size_t i = 0; i < sizeof(pattern); i++)
		pattern[i] = (uint8_t)(i * 7 + 3);
}

static int do_send(unsigned cid, unsigned port, unsigned long long total)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = cid, .svm_port = port };
	unsigned long long sent = 0;
	char reply[256];
	ssize_t n;
	int fd = socket(AF_VSOCK, SOCK_STREAM, 0);

	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		printf("probe: connect %u:%u: %s\n", cid, port, strerror(errno));
		return 1;
	}
	while (sent < total) {
		size_t off = sent % sizeof(pattern), chunk = sizeof(pattern) - off;

		if (chunk > total - sent)
			chunk = total - sent;
		n = write(fd, pattern + off, chunk);
		if (n <= 0) {
			printf("probe: write: %s\n", strerror(errno));
			return 1;
		}
		sent += n;
	}
	shutdown(fd, SHUT_WR);
	n = read(fd, reply, sizeof(reply) - 1);
	reply[n > 0 ? n : 0] = 0;
	printf("probe: sent %llu; peer said: %s\n", sent, reply);
	close(fd);
	return 0;
}

static int do_listen(unsigned port)
{
	struct sockaddr_vm sa = { .svm_family = AF_VSOCK, .svm_cid = VMADDR_CID_ANY,
				  .svm_port = port };
	static uint8_t buf[65536];
	unsigned long long got = 0, bad = 0;
	char reply[64];
	ssize_t n;
	int lfd = socket(AF_VSOCK, SOCK_STREAM, 0), fd;

	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 4) < 0) {
		printf("probe: listen %u: %s\n", port, strerror(errno));
		return 1;
	}
	printf("probe: listening on %u\n", port);
	fflush(stdout);
	fd = accept(lfd, NULL, NULL);
	if (fd < 0)
		return 1;
	while ((n = read(fd, buf, sizeof(buf))) > 0) {
		for (ssize_t i = 0; i < n; i++)
			bad += buf[i] != pattern[(got + i) % sizeof(pattern)];
		got += n;
	}
	n = snprintf(reply, sizeof(reply), "got %llu bad %llu\n", got, bad);
	if (write(fd, reply, n) != n)
		return 1;
	printf("probe: %s", reply);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	pattern_init();
	if (argc == 5 && !strcmp(argv[1], "send"))
		return do_send(atoi(argv[2]), atoi(argv[3]), strtoull(argv[4], NULL, 10));
	if (argc == 3 && !strcmp(argv[1], "listen"))
		return do_listen(atoi(argv[2]));
	fprintf(stderr, "usage: vsock-probe send CID PORT BYTES | listen PORT\n");
	return 2;
}

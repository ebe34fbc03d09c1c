// SPDX-License-Identifier: LGPL-2.1-or-later
/* Host probes: is KVM usable, does QEMU have -sandbox, what is the TSC rate. */
#include <errno.h>
#include <fcntl.h>
#include <linux/kvm.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"

/*
 * KVM's supported CPUID must offer what QEMU's default CPU model asks for.
 * Some nested or emulated /dev/kvm implementations accept KVM_CREATE_VM and
 * even run real-mode code, yet lack SSE3 (QEMU warns "host doesn't support
 * requested feature: CPUID.01H:ECX.pni") and Linux guests hang early in
 * boot.  Every x86-64 CPU with real virtualisation has SSE3 and long mode.
 */
static bool kvm_cpuid_usable(int kvm)
{
	enum { MAX_ENTRIES = 256 };
	_cleanup_free_ struct kvm_cpuid2 *cpuid = NULL;
	bool sse3 = false, long_mode = false;

	cpuid = calloc(1, sizeof(*cpuid) + MAX_ENTRIES * sizeof(cpuid->entries[0]));
	if (!cpuid)
		return false;
	cpuid->nent = MAX_ENTRIES;
	if (ioctl(kvm, KVM_GET_SUPPORTED_CPUID, cpuid) < 0)
		return false;
	for (unsigned int i = 0; i < cpuid->nent && i < MAX_ENTRIES; i++) {
		const struct kvm_cpuid_entry2 *e = &cpuid->entries[i];

		if (e->function == 1)
			sse3 = e->ecx & 1u;
		else if (e->function == 0x80000001)
			long_mode = e->edx & (1u << 29);
	}
	return sse3 && long_mode;
}

bool vm_probe_kvm(void)
{
	_cleanup_close_ int kvm = open("/dev/kvm", O_RDWR | O_CLOEXEC);
	_cleanup_close_ int vm = -1;

	if (kvm < 0)
		return false;
	if (ioctl(kvm, KVM_GET_API_VERSION, 0) != KVM_API_VERSION)
		return false;
	vm = ioctl(kvm, KVM_CREATE_VM, 0);
	return vm >= 0 && kvm_cpuid_usable(kvm);
}

unsigned long vm_tsc_khz_from_cpuinfo(const char *text)
{
	const char *line = text;

	while (line && *line) {
		double mhz;

		if (strncmp(line, "cpu MHz", 7) == 0 &&
		    sscanf(line, "cpu MHz : %lf", &mhz) == 1 && mhz > 0 && mhz < 1e6)
			return (unsigned long)(mhz * 1000.0 + 0.5);
		line = strchr(line, '\n');
		if (line)
			line++;
	}
	return 0;
}

/*
 * Prefer an exact TSC rate where the kernel exposes one (some kernels have
 * tsc_freq_khz in sysfs); else /proc/cpuinfo's "cpu MHz".
 */
unsigned long vm_probe_tsc_khz(void)
{
	char buf[64];
	_cleanup_free_ char *cpuinfo = NULL;
	unsigned long khz;

	if (read_small_file(AT_FDCWD, "/sys/devices/system/cpu/cpu0/tsc_freq_khz",
			    buf, sizeof(buf)) > 0) {
		khz = strtoul(buf, NULL, 10);
		if (khz)
			return khz;
	}
	cpuinfo = malloc(16384);
	if (!cpuinfo || read_small_file(AT_FDCWD, "/proc/cpuinfo", cpuinfo, 16384) <= 0)
		return 0;
	return vm_tsc_khz_from_cpuinfo(cpuinfo);
}

/* -sandbox exists only in QEMU builds with seccomp: ask its -help once. */
static int probe_sandbox(const char *qemu, bool *has, struct husk_error *err)
{
	_cleanup_close_ int devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
	_cleanup_close_ int rd = -1, wr = -1, pidfd = -1;
	char *const argv[] = { (char *)qemu, (char *)"-help", NULL };
	_cleanup_fclose_ FILE *f = NULL;
	char line[512];
	int pipefd[2], status, r;
	pid_t pid;

	if (devnull < 0)
		return husk_error_seterrno(err, errno, "/dev/null");
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return husk_error_seterrno(err, errno, "pipe");
	rd = pipefd[0];
	wr = pipefd[1];
	/* stdout (fd 1) is the pipe: pass it as the log fd. */
	r = vm_spawn(argv, NULL, 0, wr, &pid, &pidfd, err);
	if (r < 0)
		return r;
	wr = safe_close(wr);
	*has = false;
	f = fdopen(TAKE_FD(rd), "r");
	if (f) {
		while (fgets(line, sizeof(line), f))
			if (strncmp(line, "-sandbox ", 9) == 0)
				*has = true;
	}
	if (vm_child_wait(pidfd, 10000, &status) < 0) {
		vm_process_terminate(pidfd, 0, true);
		return husk_error_set(err, ETIMEDOUT, "%s -help did not finish", qemu);
	}
	if (!f)
		return husk_error_set(err, ENOMEM, "reading %s -help", qemu);
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return husk_error_set(err, ENOEXEC, "%s -help failed (status 0x%x)",
				      qemu, status);
	return 0;
}

/* One cached answer per process; QEMU binaries rarely change under us. */
static pthread_mutex_t probe_lock = PTHREAD_MUTEX_INITIALIZER;
static struct {
	char *qemu;
	bool sandbox;
	int kvm;		/* -1 unknown */
	unsigned long tsc_khz;
} probe_cache = { .kvm = -1 };

int vm_host_caps_probe(const char *qemu, enum husk_vm_accel accel,
		       struct vm_host_caps *caps, struct husk_error *err)
{
	int r = 0;

	pthread_mutex_lock(&probe_lock);
	if (!probe_cache.qemu || strcmp(probe_cache.qemu, qemu) != 0) {
		bool sandbox;

		r = probe_sandbox(qemu, &sandbox, err);
		if (r == 0) {
			char *copy = strdup(qemu);

			if (!copy) {
				r = husk_error_set(err, ENOMEM, "out of memory");
			} else {
				free(probe_cache.qemu);
				probe_cache.qemu = copy;
				probe_cache.sandbox = sandbox;
			}
		}
	}
	if (r == 0 && accel != HUSK_VM_ACCEL_TCG && probe_cache.kvm < 0)
		probe_cache.kvm = vm_probe_kvm();
	if (r == 0 && !probe_cache.tsc_khz)
		probe_cache.tsc_khz = vm_probe_tsc_khz();
	if (r == 0) {
		caps->sandbox = probe_cache.sandbox;
		caps->kvm = accel != HUSK_VM_ACCEL_TCG && probe_cache.kvm > 0;
		caps->tsc_khz = probe_cache.tsc_khz;
	}
	pthread_mutex_unlock(&probe_lock);
	return r;
}

// SPDX-License-Identifier: LGPL-2.1-or-later
/* VM configuration: defaults, validation and QEMU's command line. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "husk-common/cleanup.h"
#include "vm-internal.h"


HUSK_EXPORT void husk_vm_config_init(struct husk_vm_config *cfg)
{
	*cfg = (struct husk_vm_config){
		.machine = HUSK_VM_MACHINE_MICROVM,
		.accel = HUSK_VM_ACCEL_AUTO,
		.cpus = 1,
		.memory_mib = 256,
		.guest_cid = 3,
	};
}

static bool name_valid(const char *s, size_t max, bool allow_first_punct)
{
	size_t n = strlen(s);

	if (n == 0 || n > max)
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
			     (c >= '0' && c <= '9');

		if (alnum)
			continue;
		if ((c == '_' || c == '.' || c == '-') && (i > 0 || allow_first_punct))
			continue;
		return false;
	}
	return true;
}

int vm_config_validate(const struct husk_vm_config *cfg, struct husk_error *err)
{
	if (cfg->name && !name_valid(cfg->name, VM_NAME_MAX, false))
		return husk_error_set(err, EINVAL,
				      "VM name '%s': want [A-Za-z0-9][A-Za-z0-9_.-]*, at most %d characters",
				      cfg->name, VM_NAME_MAX);
	if (!cfg->kernel || !*cfg->kernel)
		return husk_error_set(err, EINVAL, "VM config: no kernel given");
	if (cfg->machine != HUSK_VM_MACHINE_MICROVM && cfg->machine != HUSK_VM_MACHINE_Q35)
		return husk_error_set(err, EINVAL, "VM config: unknown machine %d",
				      cfg->machine);
	if (cfg->accel > HUSK_VM_ACCEL_KVM)
		return husk_error_set(err, EINVAL, "VM config: unknown accel %d", cfg->accel);
	if (cfg->cpus < 1 || cfg->cpus > 255)
		return husk_error_set(err, EINVAL, "VM config: cpus %u not in 1..255",
				      cfg->cpus);
	if (cfg->memory_mib < 32 || cfg->memory_mib > 1024 * 1024)
		return husk_error_set(err, EINVAL,
				      "VM config: memory %u MiB not in 32..1048576",
				      cfg->memory_mib);
	/* 2 GiB is QEMU's cap on the translation cache. */
	if (cfg->tcg_tb_mib > 2048)
		return husk_error_set(err, EINVAL,
				      "VM config: TCG translation cache %u MiB is over 2048",
				      cfg->tcg_tb_mib);
	if (cfg->vsock > HUSK_VM_VSOCK_KERNEL)
		return husk_error_set(err, EINVAL, "VM config: unknown vsock mode %d",
				      cfg->vsock);
	if (cfg->vsock != HUSK_VM_VSOCK_NONE &&
	    (cfg->guest_cid < 3 || cfg->guest_cid == UINT32_MAX))
		return husk_error_set(err, EINVAL,
				      "VM config: guest CID %u is reserved (want 3..4294967294)",
				      cfg->guest_cid);
	for (size_t i = 0; i < cfg->n_shares; i++) {
		const struct husk_vm_share *s = &cfg->shares[i];

		if (!s->tag || !name_valid(s->tag, 31, true))
			return husk_error_set(err, EINVAL,
					      "VM config: share %zu: tag '%s' wants [A-Za-z0-9_.-], at most 31",
					      i, s->tag ? s->tag : "");
		if (!s->path || s->path[0] != '/')
			return husk_error_set(err, EINVAL,
					      "VM config: share '%s': path must be absolute",
					      s->tag);
	}
	return 0;
}

/* QEMU's option syntax takes a literal comma as ",,". */
static char *qemu_opt_escape(const char *s)
{
	size_t n = strlen(s), commas = 0;
	char *out, *w;

	for (size_t i = 0; i < n; i++)
		commas += s[i] == ',';
	out = malloc(n + commas + 1);
	if (!out)
		return NULL;
	w = out;
	for (size_t i = 0; i < n; i++) {
		*w++ = s[i];
		if (s[i] == ',')
			*w++ = ',';
	}
	*w = '\0';
	return out;
}

/* Add "<prefix><escaped path><suffix>" as one argument. */
static int add_opt_path(struct strv *argv, const char *prefix, const char *path,
			const char *suffix)
{
	_cleanup_free_ char *esc = qemu_opt_escape(path);

	if (!esc)
		return -ENOMEM;
	return strv_addf(argv, "%s%s%s", prefix, esc, suffix);
}

static int add_machine(struct strv *argv, const struct husk_vm_config *cfg,
		       bool kvm)
{
	int r;

	/* Debian's kernel cannot find virtio-mmio devices without ACPI tables
	 * or a command-line list, so microvm gets PCIe and ACPI. */
	r = strv_add(argv, "-machine");
	if (!r)
		r = strv_add(argv, cfg->machine == HUSK_VM_MACHINE_Q35 ?
			     "q35" : "microvm,pcie=on,acpi=on");
	if (!r)
		r = strv_add(argv, "-accel");
	if (!r && kvm)
		r = strv_add(argv, "kvm");
	if (!r && !kvm)
		r = strv_addf(argv, "tcg,tb-size=%u",
			      cfg->tcg_tb_mib ? cfg->tcg_tb_mib : HUSK_VM_TCG_TB_MIB);
	if (!r && kvm)
		r = strv_add(argv, "-cpu");
	if (!r && kvm)
		r = strv_add(argv, "host");
	if (!r)
		r = strv_add(argv, "-smp");
	if (!r)
		r = strv_addf(argv, "%u", cfg->cpus);
	if (!r)
		r = strv_add(argv, "-m");
	if (!r)
		r = strv_addf(argv, "%uM", cfg->memory_mib);
	/* vhost-user needs guest RAM it can map: a shared memfd. */
	if (!r)
		r = strv_add(argv, "-object");
	if (!r)
		r = strv_addf(argv, "memory-backend-memfd,id=mem,size=%uM,share=on",
			      cfg->memory_mib);
	if (!r)
		r = strv_add(argv, "-numa");
	if (!r)
		r = strv_add(argv, "node,memdev=mem");
	return r;
}

static int add_plumbing(struct strv *argv, const struct vm_paths *paths,
			const struct vm_host_caps *caps)
{
	static const char *const fixed[] = {
		"-nodefaults", "-no-user-config", "-nographic", "-no-reboot",
	};
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(fixed) && !r; i++)
		r = strv_add(argv, fixed[i]);
	if (!r && caps->sandbox)
		r = strv_add(argv, "-sandbox");
	if (!r && caps->sandbox)
		r = strv_add(argv, "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	if (!r)
		r = strv_add(argv, "-chardev");
	if (!r)
		r = strv_addf(argv, "socket,id=qmp,fd=%d,server=on,wait=off",
			      VM_QMP_CHILD_FD);
	if (!r)
		r = strv_add(argv, "-mon");
	if (!r)
		r = strv_add(argv, "chardev=qmp,mode=control");
	if (!r)
		r = strv_add(argv, "-chardev");
	if (!r)
		r = add_opt_path(argv, "file,id=console,path=", paths->console, "");
	if (!r)
		r = strv_add(argv, "-serial");
	if (!r)
		r = strv_add(argv, "chardev:console");
	return r;
}

static int add_boot(struct strv *argv, const struct husk_vm_config *cfg,
		    const struct vm_host_caps *caps, bool kvm,
		    struct husk_error *err)
{
	_cleanup_free_ char *cmdline = NULL;
	char tsc[64] = "";
	int r;

	/* microvm has no PIT/HPET to calibrate against under TCG; the guest
	 * TSC runs at the host's rate there, so tell the guest that rate. */
	if (cfg->machine == HUSK_VM_MACHINE_MICROVM && !kvm) {
		if (!caps->tsc_khz)
			return husk_error_set(err, ENODATA,
					      "microvm under TCG needs the host TSC frequency, which is unknown here; use q35");
		/* Its clocksource watchdog can only compare the TSC against
		 * jiffies, whose ticks a loaded host delays: it then calls the
		 * TSC unstable and falls back to jiffies.  TCG's TSC follows the
		 * host clock, so it is reliable. */
		snprintf(tsc, sizeof(tsc), " tsc_early_khz=%lu tsc=reliable", caps->tsc_khz);
	}
	if (asprintf(&cmdline, "console=ttyS0 panic=-1%s%s%s", tsc,
		     cfg->cmdline && *cfg->cmdline ? " " : "",
		     cfg->cmdline ? cfg->cmdline : "") < 0) {
		cmdline = NULL;
		return -ENOMEM;
	}
	r = strv_add(argv, "-kernel");
	if (!r)
		r = strv_add(argv, cfg->kernel);
	if (!r && cfg->initrd) {
		r = strv_add(argv, "-initrd");
		if (!r)
			r = strv_add(argv, cfg->initrd);
	}
	if (!r)
		r = strv_add(argv, "-append");
	if (!r)
		r = strv_add(argv, cmdline);
	return r;
}

static int add_vsock(struct strv *argv, const struct husk_vm_config *cfg,
		     const struct vm_paths *paths)
{
	int r = 0;

	switch (cfg->vsock) {
	case HUSK_VM_VSOCK_NONE:
		break;
	case HUSK_VM_VSOCK_VHOST_USER:
		r = strv_add(argv, "-chardev");
		if (!r)
			r = add_opt_path(argv, "socket,id=vsock,path=",
					 paths->vhost_user, "");
		if (!r)
			r = strv_add(argv, "-device");
		if (!r)
			r = strv_add(argv, "vhost-user-vsock-pci,chardev=vsock");
		break;
	case HUSK_VM_VSOCK_KERNEL:
		r = strv_add(argv, "-device");
		if (!r)
			r = strv_addf(argv, "vhost-vsock-pci,guest-cid=%u",
				      cfg->guest_cid);
		break;
	}
	return r;
}

static int add_shares(struct strv *argv, const struct husk_vm_config *cfg)
{
	int r = 0;

	for (size_t i = 0; i < cfg->n_shares && !r; i++) {
		const struct husk_vm_share *s = &cfg->shares[i];
		char prefix[64], suffix[64];

		snprintf(prefix, sizeof(prefix), "local,id=fs%zu,path=", i);
		/* A share may hold other file systems (bind mounts): distinct inode numbers. */
		snprintf(suffix, sizeof(suffix), ",security_model=none,multidevs=remap%s",
			 s->readonly ? ",readonly=on" : "");
		r = strv_add(argv, "-fsdev");
		if (!r)
			r = add_opt_path(argv, prefix, s->path, suffix);
		if (!r)
			r = strv_add(argv, "-device");
		if (!r)
			r = strv_addf(argv, "virtio-9p-pci,fsdev=fs%zu,mount_tag=%s",
				      i, s->tag);
	}
	return r;
}

int vm_argv_build(const struct husk_vm_config *cfg, const char *qemu,
		  const struct vm_paths *paths, const struct vm_host_caps *caps,
		  struct strv *argv, struct husk_error *err)
{
	bool kvm;
	int r;

	r = vm_config_validate(cfg, err);
	if (r < 0)
		return r;
	if (cfg->accel == HUSK_VM_ACCEL_KVM && !caps->kvm)
		return husk_error_set(err, ENODEV,
				      "KVM was asked for but /dev/kvm cannot create a VM here");
	kvm = cfg->accel == HUSK_VM_ACCEL_KVM ||
	      (cfg->accel == HUSK_VM_ACCEL_AUTO && caps->kvm);

	r = strv_add(argv, qemu);
	if (!r)
		r = strv_add(argv, "-name");
	if (!r)
		r = strv_add(argv, cfg->name ? cfg->name : "husk");
	if (!r)
		r = add_machine(argv, cfg, kvm);
	if (!r)
		r = add_plumbing(argv, paths, caps);
	if (!r) {
		r = add_boot(argv, cfg, caps, kvm, err);
		if (r < 0 && r != -ENOMEM)
			return r;
	}
	if (!r)
		r = add_vsock(argv, cfg, paths);
	if (!r)
		r = add_shares(argv, cfg);
	for (size_t i = 0; !r && cfg->extra_args && cfg->extra_args[i]; i++)
		r = strv_add(argv, cfg->extra_args[i]);
	if (r < 0)
		return husk_error_set(err, -r, "building the QEMU command line");
	return 0;
}

static char *path_join(const char *dir, const char *name)
{
	char *p;

	return asprintf(&p, "%s/%s", dir, name) < 0 ? NULL : p;
}

int vm_paths_init(struct vm_paths *p, const char *dir)
{
	*p = (struct vm_paths){ 0 };
	p->dir = strdup(dir);
	p->qmp = path_join(dir, "qmp.sock");
	p->console = path_join(dir, "console.log");
	p->qemu_log = path_join(dir, "qemu.log");
	p->vsockd_log = path_join(dir, "vsockd.log");
	p->vhost_user = path_join(dir, "vhost-user.sock");
	p->vsock = path_join(dir, "vsock.sock");
	if (!p->dir || !p->qmp || !p->console || !p->qemu_log ||
	    !p->vsockd_log || !p->vhost_user || !p->vsock) {
		vm_paths_release(p);
		return -ENOMEM;
	}
	return 0;
}

void vm_paths_release(struct vm_paths *p)
{
	free(p->dir);
	free(p->qmp);
	free(p->console);
	free(p->qemu_log);
	free(p->vsockd_log);
	free(p->vhost_user);
	free(p->vsock);
	*p = (struct vm_paths){ 0 };
}

static int find_configured(const char *configured, const char *env,
			   const char *fallback, char **path,
			   struct husk_error *err)
{
	const char *name = configured ? configured : getenv(env);
	int r;

	if (!name || !*name)
		name = fallback;
	r = find_program(name, path);
	if (r < 0)
		return husk_error_seterrno(err, -r, "program '%s'", name);
	return 0;
}

int vm_find_qemu(const struct husk_vm_config *cfg, char **path,
		 struct husk_error *err)
{
	return find_configured(cfg->qemu, "HUSK_QEMU", "qemu-system-x86_64",
			       path, err);
}

int vm_find_vsockd(const struct husk_vm_config *cfg, char **path,
		   struct husk_error *err)
{
	char dir[PATH_MAX];

	/* A build tree keeps husk-vsockd next to husk. */
	if (!cfg->vsockd && !getenv("HUSK_VSOCKD") &&
	    self_exe_dir(dir, sizeof(dir) - 16) == 0) {
		_cleanup_free_ char *cand = path_join(dir, "husk-vsockd");

		if (cand && find_program(cand, path) == 0)
			return 0;
	}
	/* Where `make install` puts it (LIBEXECDIR/husk). */
	if (!cfg->vsockd && !getenv("HUSK_VSOCKD") &&
	    find_program(HUSK_LIBEXECDIR "/husk-vsockd", path) == 0)
		return 0;
	return find_configured(cfg->vsockd, "HUSK_VSOCKD", "husk-vsockd", path, err);
}

HUSK_EXPORT int husk_vm_build_argv(const struct husk_vm_config *cfg,
				   const char *state_dir, char ***argv_out,
				   struct husk_error *err)
{
	_cleanup_free_ char *qemu = NULL;
	struct vm_host_caps caps;
	struct vm_paths paths;
	struct strv argv = { 0 };
	int r;

	r = vm_config_validate(cfg, err);
	if (r < 0)
		return r;
	r = vm_find_qemu(cfg, &qemu, err);
	if (r < 0)
		return r;
	r = vm_host_caps_probe(qemu, cfg->accel, &caps, err);
	if (r < 0)
		return r;
	if (vm_paths_init(&paths, state_dir) < 0)
		return husk_error_set(err, ENOMEM, "out of memory");
	r = vm_argv_build(cfg, qemu, &paths, &caps, &argv, err);
	vm_paths_release(&paths);
	if (r < 0) {
		strv_release(&argv);
		return r;
	}
	*argv_out = strv_take(&argv);
	return 0;
}

HUSK_EXPORT void husk_strv_free(char **strv)
{
	for (size_t i = 0; strv && strv[i]; i++)
		free(strv[i]);
	free(strv);
}

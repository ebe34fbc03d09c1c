// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * QEMU command lines built by libhusk, including the kernel vhost-vsock
 * variant that this build machine cannot run (no /dev/vhost-vsock).
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "husk-common/error.h"
#include "../../host/lib/vm-internal.h"

static const struct vm_host_caps tcg_caps = { .kvm = false, .sandbox = true,
					      .tsc_khz = 2600000 };

struct built {
	struct strv argv;
	struct vm_paths paths;
	struct husk_error err;
	int r;
};

static void build(struct built *b, const struct husk_vm_config *cfg,
		  const struct vm_host_caps *caps)
{
	memset(b, 0, sizeof(*b));
	assert_int_equal(vm_paths_init(&b->paths, "/run/husk/vm1"), 0);
	b->r = vm_argv_build(cfg, "/usr/bin/qemu-system-x86_64", &b->paths, caps,
			     &b->argv, &b->err);
}

static void release(struct built *b)
{
	strv_release(&b->argv);
	vm_paths_release(&b->paths);
}

/* The argument following the first occurrence of opt whose value starts with prefix. */
static const char *value_of(const struct built *b, const char *opt, const char *prefix)
{
	for (size_t i = 0; i + 1 < b->argv.n; i++)
		if (!strcmp(b->argv.v[i], opt) &&
		    !strncmp(b->argv.v[i + 1], prefix, strlen(prefix)))
			return b->argv.v[i + 1];
	return NULL;
}

static bool has(const struct built *b, const char *arg)
{
	for (size_t i = 0; i < b->argv.n; i++)
		if (!strcmp(b->argv.v[i], arg))
			return true;
	return false;
}

static void base_config(struct husk_vm_config *cfg)
{
	husk_vm_config_init(cfg);
	cfg->name = "vm1";
	cfg->kernel = "/boot/vmlinux";
	cfg->initrd = "/boot/initrd.gz";
	cfg->accel = HUSK_VM_ACCEL_AUTO;
}

static void test_microvm_tcg(void **state)
{
	struct husk_vm_config cfg;
	struct built b;

	base_config(&cfg);
	cfg.cmdline = "quiet husk.test=1";
	cfg.memory_mib = 512;
	cfg.cpus = 2;
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, 0);
	assert_string_equal(b.argv.v[0], "/usr/bin/qemu-system-x86_64");
	assert_null(b.argv.v[b.argv.n]);
	assert_string_equal(value_of(&b, "-machine", ""), "microvm,pcie=on,acpi=on");
	/* husk's bounded translation cache, not QEMU's 1 GiB default */
	assert_string_equal(value_of(&b, "-accel", ""), "tcg,tb-size=16");
	assert_false(has(&b, "-cpu"));
	assert_string_equal(value_of(&b, "-smp", ""), "2");
	assert_string_equal(value_of(&b, "-m", ""), "512M");
	assert_string_equal(value_of(&b, "-object", ""),
			    "memory-backend-memfd,id=mem,size=512M,share=on");
	assert_string_equal(value_of(&b, "-numa", ""), "node,memdev=mem");
	assert_true(has(&b, "-nodefaults"));
	assert_true(has(&b, "-no-user-config"));
	assert_true(has(&b, "-nographic"));
	assert_string_equal(value_of(&b, "-sandbox", ""),
			    "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny");
	assert_string_equal(value_of(&b, "-chardev", "socket,id=qmp"),
			    "socket,id=qmp,fd=3,server=on,wait=off");
	assert_string_equal(value_of(&b, "-mon", ""), "chardev=qmp,mode=control");
	assert_string_equal(value_of(&b, "-chardev", "file"),
			    "file,id=console,path=/run/husk/vm1/console.log");
	assert_string_equal(value_of(&b, "-serial", ""), "chardev:console");
	assert_string_equal(value_of(&b, "-kernel", ""), "/boot/vmlinux");
	assert_string_equal(value_of(&b, "-initrd", ""), "/boot/initrd.gz");
	/* The host TSC rate goes to the guest: microvm under TCG cannot calibrate. */
	assert_string_equal(value_of(&b, "-append", ""),
			    "console=ttyS0 panic=-1 tsc_early_khz=2600000 tsc=reliable quiet husk.test=1");
	assert_null(value_of(&b, "-device", ""));
	release(&b);
}

static void test_q35_and_no_sandbox(void **state)
{
	struct vm_host_caps caps = tcg_caps;
	struct husk_vm_config cfg;
	struct built b;

	base_config(&cfg);
	cfg.machine = HUSK_VM_MACHINE_Q35;
	cfg.initrd = NULL;
	caps.sandbox = false;
	caps.tsc_khz = 0;	/* q35 does not need it */
	build(&b, &cfg, &caps);
	assert_int_equal(b.r, 0);
	assert_string_equal(value_of(&b, "-machine", ""), "q35");
	assert_false(has(&b, "-sandbox"));
	assert_false(has(&b, "-initrd"));
	assert_string_equal(value_of(&b, "-append", ""), "console=ttyS0 panic=-1");
	release(&b);
}

static void test_accel_choice(void **state)
{
	struct vm_host_caps kvm_caps = tcg_caps;
	struct husk_vm_config cfg;
	struct built b;

	kvm_caps.kvm = true;
	base_config(&cfg);
	build(&b, &cfg, &kvm_caps);		/* auto picks KVM when usable */
	assert_int_equal(b.r, 0);
	assert_string_equal(value_of(&b, "-accel", ""), "kvm");
	assert_string_equal(value_of(&b, "-cpu", ""), "host");
	assert_null(strstr(value_of(&b, "-append", ""), "tsc_early_khz"));
	assert_null(strstr(value_of(&b, "-append", ""), "tsc=reliable"));
	release(&b);

	cfg.accel = HUSK_VM_ACCEL_TCG;		/* forced TCG despite KVM */
	cfg.tcg_tb_mib = 64;
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, 0);
	assert_string_equal(value_of(&b, "-accel", ""), "tcg,tb-size=64");
	release(&b);

	cfg.tcg_tb_mib = 4096;			/* over QEMU's cap */
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, -EINVAL);
	assert_non_null(strstr(b.err.msg, "translation cache 4096 MiB"));
	release(&b);
	cfg.tcg_tb_mib = 0;

	cfg.accel = HUSK_VM_ACCEL_KVM;		/* forced KVM without KVM */
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, -ENODEV);
	assert_int_equal(b.err.code, ENODEV);
	assert_non_null(strstr(b.err.msg, "/dev/kvm"));
	release(&b);
}

static void test_microvm_tcg_without_tsc(void **state)
{
	struct vm_host_caps caps = tcg_caps;
	struct husk_vm_config cfg;
	struct built b;

	caps.tsc_khz = 0;
	base_config(&cfg);
	build(&b, &cfg, &caps);
	assert_int_equal(b.r, -ENODATA);
	assert_non_null(strstr(b.err.msg, "TSC"));
	release(&b);
}

static void test_vhost_user_vsock(void **state)
{
	struct husk_vm_config cfg;
	struct built b;

	base_config(&cfg);
	cfg.vsock = HUSK_VM_VSOCK_VHOST_USER;
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, 0);
	assert_string_equal(value_of(&b, "-chardev", "socket,id=vsock"),
			    "socket,id=vsock,path=/run/husk/vm1/vhost-user.sock");
	assert_string_equal(value_of(&b, "-device", ""), "vhost-user-vsock-pci,chardev=vsock");
	release(&b);
}

/* This machine has no /dev/vhost-vsock: the kernel path is checked here only. */
static void test_kernel_vsock(void **state)
{
	struct husk_vm_config cfg;
	struct built b;

	base_config(&cfg);
	cfg.vsock = HUSK_VM_VSOCK_KERNEL;
	cfg.guest_cid = 4242;
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, 0);
	assert_string_equal(value_of(&b, "-device", ""), "vhost-vsock-pci,guest-cid=4242");
	assert_null(value_of(&b, "-chardev", "socket,id=vsock"));
	release(&b);

	cfg.guest_cid = 2;			/* the host's CID */
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, -EINVAL);
	assert_non_null(strstr(b.err.msg, "CID 2"));
	release(&b);
}

static void test_shares_and_extra(void **state)
{
	static const struct husk_vm_share shares[] = {
		{ .tag = "rootfs", .path = "/srv/bundle,1/rootfs", .readonly = true },
		{ .tag = "data", .path = "/srv/data" },
	};
	static const char *const extra[] = { "-device", "virtio-rng-pci", NULL };
	struct husk_vm_config cfg;
	struct built b;

	base_config(&cfg);
	cfg.shares = shares;
	cfg.n_shares = 2;
	cfg.extra_args = extra;
	build(&b, &cfg, &tcg_caps);
	assert_int_equal(b.r, 0);
	/* A comma in a path is doubled, as QEMU's option syntax wants. */
	assert_string_equal(value_of(&b, "-fsdev", "local,id=fs0"),
			    "local,id=fs0,path=/srv/bundle,,1/rootfs,security_model=none,multidevs=remap,readonly=on");
	assert_string_equal(value_of(&b, "-fsdev", "local,id=fs1"),
			    "local,id=fs1,path=/srv/data,security_model=none,multidevs=remap");
	assert_string_equal(value_of(&b, "-device", "virtio-9p-pci,fsdev=fs0"),
			    "virtio-9p-pci,fsdev=fs0,mount_tag=rootfs");
	assert_string_equal(value_of(&b, "-device", "virtio-9p-pci,fsdev=fs1"),
			    "virtio-9p-pci,fsdev=fs1,mount_tag=data");
	assert_string_equal(b.argv.v[b.argv.n - 2], "-device");
	assert_string_equal(b.argv.v[b.argv.n - 1], "virtio-rng-pci");
	release(&b);
}

static void test_validation(void **state)
{
	static const struct husk_vm_share bad_tag[] = { { .tag = "a b", .path = "/x" } };
	static const struct husk_vm_share rel_path[] = { { .tag = "t", .path = "x" } };
	struct husk_vm_config cfg;
	struct husk_error err = { 0 };

	base_config(&cfg);
	assert_int_equal(vm_config_validate(&cfg, &err), 0);
	cfg.name = "-leading-dash";
	assert_int_equal(vm_config_validate(&cfg, &err), -EINVAL);
	assert_non_null(strstr(err.msg, "-leading-dash"));

	base_config(&cfg);
	cfg.name = "a/b";
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
	base_config(&cfg);
	cfg.kernel = NULL;
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
	base_config(&cfg);
	cfg.cpus = 0;
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
	base_config(&cfg);
	cfg.memory_mib = 8;
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
	base_config(&cfg);
	cfg.shares = bad_tag;
	cfg.n_shares = 1;
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
	cfg.shares = rel_path;
	assert_int_equal(vm_config_validate(&cfg, NULL), -EINVAL);
}

static void test_tsc_from_cpuinfo(void **state)
{
	assert_int_equal(vm_tsc_khz_from_cpuinfo("processor\t: 0\nmodel name\t: X\n"
						 "cpu MHz\t\t: 2600.000\ncache size\t: 1 KB\n"),
			 2600000);
	assert_int_equal(vm_tsc_khz_from_cpuinfo("cpu MHz\t\t: 2199.9996\n"), 2200000);
	assert_int_equal(vm_tsc_khz_from_cpuinfo("processor\t: 0\n"), 0);
	assert_int_equal(vm_tsc_khz_from_cpuinfo("cpu MHz\t\t: garbage\n"), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_microvm_tcg),
		cmocka_unit_test(test_q35_and_no_sandbox),
		cmocka_unit_test(test_accel_choice),
		cmocka_unit_test(test_microvm_tcg_without_tsc),
		cmocka_unit_test(test_vhost_user_vsock),
		cmocka_unit_test(test_kernel_vsock),
		cmocka_unit_test(test_shares_and_extra),
		cmocka_unit_test(test_validation),
		cmocka_unit_test(test_tsc_from_cpuinfo),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}

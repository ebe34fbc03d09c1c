# initramfs/: husk-mkinitramfs, husk-extract-vmlinux and `make image`.
# See docs/guest-image.md.

INITRAMFS_LIB_SRCS := initramfs/list.c initramfs/moddep.c initramfs/image.c \
	initramfs/spawn.c initramfs/build.c initramfs/elfnote.c initramfs/vmlinux.c
INITRAMFS_LIB_OBJS := $(call objs-of,$(INITRAMFS_LIB_SRCS))
INITRAMFS_LIB      := $(LIBDIR_OUT)/libhusk-initramfs.a
HUSK_MKINITRAMFS   := $(BINDIR_OUT)/husk-mkinitramfs
HUSK_EXTRACT_VMLINUX := $(BINDIR_OUT)/husk-extract-vmlinux

$(INITRAMFS_LIB): $(INITRAMFS_LIB_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(HUSK_MKINITRAMFS): $(OBJ_OUT)/initramfs/mkinitramfs.o $(INITRAMFS_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(PIE_LDFLAGS) -o $@ $^

$(HUSK_EXTRACT_VMLINUX): $(OBJ_OUT)/initramfs/extract-vmlinux.o $(INITRAMFS_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(PIE_LDFLAGS) -o $@ $^

ALL_TARGETS += $(HUSK_MKINITRAMFS) $(HUSK_EXTRACT_VMLINUX)
INSTALL_BINS += $(HUSK_MKINITRAMFS) $(HUSK_EXTRACT_VMLINUX)

# ---- unit tests and fuzz targets -------------------------------------------
UNIT_TESTS += $(UNIT_OUT)/test-mkinitramfs
UNIT_DEPS_test-mkinitramfs := $(INITRAMFS_LIB) $(COMMON_LIB)
$(UNIT_OUT)/test-mkinitramfs: | $(HUSK_MKINITRAMFS)

FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-initramfs-list $(FUZZ_OUT)/fuzz-initramfs-moddep \
	$(FUZZ_OUT)/fuzz-initramfs-elfnote
FUZZ_SRCS_fuzz-initramfs-list := initramfs/list.c common/error.c
FUZZ_SRCS_fuzz-initramfs-moddep := initramfs/moddep.c common/error.c
FUZZ_SRCS_fuzz-initramfs-elfnote := initramfs/elfnote.c common/error.c

# ---- the guest image ---------------------------------------------------------
# KERNEL=minimal (the default): husk's own kernel, build/kernel/vmlinux from
#   `make kernel` (drivers built in, no modules), image in build/guest/.
# KERNEL=debian: Debian's linux-image-amd64 (vmlinux extracted from vmlinuz,
#   virtio/vsock/9p as modules), image in build/guest/debian/, which is what
#   `husk run --kernel debian` boots.
KERNEL ?= minimal
ifeq ($(filter debian minimal,$(KERNEL)),)
$(error KERNEL=$(KERNEL): want minimal or debian)
endif

# Newest installed Debian kernel unless KERNEL_VERSION=... is given.  Lazy,
# so a build without `make image` never runs it.
KERNEL_VERSION ?= $(shell ls /boot/vmlinuz-* 2>/dev/null | sed 's|.*/vmlinuz-||' | sort -V | tail -n 1)
DEBIAN_MODULES_DIR = /lib/modules/$(KERNEL_VERSION)

# Load order matters only between a module and its dependencies, which the
# tool resolves; virtio_pci and virtio_mmio are transports nothing depends on.
IMAGE_DEBIAN_MODULES := virtio_pci virtio_mmio vmw_vsock_virtio_transport \
	9pnet_virtio 9p

# Where this KERNEL's image goes: the default one at the top, others in a
# directory named after the kernel (the name `husk run --kernel` takes).
IMAGE_OUT       := $(GUEST_OUT)$(if $(filter debian,$(KERNEL)),/debian)
MINIMAL_VMLINUX := $(BUILD)/kernel/vmlinux
GUEST_VMLINUX   := $(IMAGE_OUT)/vmlinux
GUEST_INITRAMFS := $(IMAGE_OUT)/initramfs.img
GUEST_KERNEL_ID := $(IMAGE_OUT)/kernel.id
GUEST_MODULES_ID := $(IMAGE_OUT)/modules.id
IMAGE_LIST      := initramfs/husk-guest.list

ifeq ($(KERNEL),debian)
IMAGE_KERNEL_SRC = /boot/vmlinuz-$(KERNEL_VERSION)
IMAGE_KERNEL_DEP = $(wildcard $(IMAGE_KERNEL_SRC))
# what the image's module set is, for test images built with husk-initramfs-rule
IMAGE_MODULE_ARGS = --kernel-modules $(DEBIAN_MODULES_DIR) \
	$(addprefix --module ,$(IMAGE_DEBIAN_MODULES))
IMAGE_KERNEL_DESC = debian $(KERNEL_VERSION)
else
# `make image` builds (or takes from the cache) the minimal kernel first.
IMAGE_KERNEL_SRC = $(MINIMAL_VMLINUX)
IMAGE_KERNEL_DEP = $(MINIMAL_VMLINUX)
IMAGE_MODULE_ARGS =
IMAGE_KERNEL_DESC = minimal
endif

# A choice made on the command line is a prerequisite through a file that
# is rewritten only when the choice changes: the kernel for both pieces,
# vsockfwd.ko for the initramfs.
update-if-changed = @mkdir -p $(@D); echo "$(1)" | cmp -s - $@ || echo "$(1)" > $@

$(GUEST_KERNEL_ID): FORCE
	@if [ "$(KERNEL)" = debian ] && [ -z "$(KERNEL_VERSION)" ]; then \
		echo "make image: no /boot/vmlinuz-* found; install linux-image-amd64 (make deps) or set KERNEL_VERSION" >&2; exit 1; fi
	$(call update-if-changed,$(IMAGE_KERNEL_DESC))

$(GUEST_MODULES_ID): FORCE
	$(call update-if-changed,vsockfwd=$(VSOCKFWD_KO) compress=$(IMAGE_COMPRESS))

$(GUEST_VMLINUX): $(GUEST_KERNEL_ID) $(HUSK_EXTRACT_VMLINUX) $(IMAGE_KERNEL_DEP)
	@if [ ! -e "$(IMAGE_KERNEL_SRC)" ]; then \
		echo "make image: $(IMAGE_KERNEL_SRC) is missing (KERNEL_VERSION=$(KERNEL_VERSION); install linux-image-amd64)" >&2; \
		exit 1; fi
	$(HUSK_EXTRACT_VMLINUX) $(IMAGE_KERNEL_SRC) $@

# husk-initramfs-rule(OUTPUT, LIST, EXTRA_PREREQS[, COMPRESS]): a rule
# building OUTPUT from the gen_init_cpio LIST plus the image's kernel modules
# (the same set and husk.list as build/guest/initramfs.img), compressed with
# COMPRESS (default gzip).  The list may use ${BUILD}.
# Use: $(eval $(call husk-initramfs-rule,$(BUILD)/tests/x.cpio.gz,tests/x.list,$(BUILD)/tests/x-init))
# kmod-vsockfwd/build.mk is read after this file: VSOCKFWD_KO is looked up
# in the second expansion.
define husk-initramfs-rule
$(1): $(2) $(3) $$(HUSK_MKINITRAMFS) $$(GUEST_KERNEL_ID) $$(GUEST_MODULES_ID) $$$$(VSOCKFWD_KO)
	@mkdir -p $$(@D)
	BUILD=$$(BUILD) $$(HUSK_MKINITRAMFS) --output $$@ $$(IMAGE_MODULE_ARGS) \
		--compress $(or $(4),gzip) \
		$$(if $$(VSOCKFWD_KO),--module-file $$(VSOCKFWD_KO)) $(2)
endef

# The minimal image's initramfs is not compressed: under TCG the kernel's
# gunzip of the 1 MB image cost 50 ms of a 0.8 s boot (docs/guest-kernel.md),
# for 1.5 MB more on disk and in the guest while it boots.  Debian's, with
# its modules, would be 4.4 MB uncompressed, over the image's 4 MiB budget.
IMAGE_COMPRESS ?= $(if $(filter debian,$(KERNEL)),gzip,none)

# /init is husk-agent: guest-agent/build.mk defines AGENT_BIN once it exists.
ifdef AGENT_BIN
$(eval $(call husk-initramfs-rule,$(GUEST_INITRAMFS),$(IMAGE_LIST),$(AGENT_BIN),$(IMAGE_COMPRESS)))
$(GUEST_INITRAMFS): export HUSK_AGENT = $(AGENT_BIN)
else
$(GUEST_INITRAMFS):
	@echo "make image: husk-agent is not buildable yet (guest-agent/build.mk defines no AGENT_BIN): no /init for the guest" >&2
	@exit 1
endif

IMAGE_TARGETS += $(GUEST_VMLINUX) $(GUEST_INITRAMFS)

.PHONY: FORCE image-size
FORCE:

image: image-size
image-size: $(GUEST_VMLINUX) $(GUEST_INITRAMFS)
	@echo "image: $(GUEST_INITRAMFS) $$(stat -c %s $(GUEST_INITRAMFS)) bytes, compression $(IMAGE_COMPRESS) (goal <= 4194304), vmlinux $$(stat -c %s $(GUEST_VMLINUX)) bytes, kernel $(IMAGE_KERNEL_DESC)"

# The Debian-kernel image beside the default one: the e2e tier and `make
# bench` boot both kernels.  KERNEL picks other rules, hence a sub-make; it
# starts after this make's own outputs (kmod-vsockfwd/build.mk adds the
# module), so the two never write the same file at once.
ifeq ($(KERNEL),minimal)
.PHONY: image-debian
image-debian: all $(GUEST_VMLINUX) $(GUEST_INITRAMFS)
	@$(MAKE) --no-print-directory KERNEL=debian image kmod
E2E_TEST_PREREQS += image-debian
BENCH_PREREQS += image-debian
endif

# The minimal guest kernel (kernel/build.sh; docs/guest-kernel.md).
#
# Other fragments use:
#   KERNEL_VMLINUX  PVH-bootable vmlinux (QEMU -kernel, no decompression)
#   KERNEL_BZIMAGE  compressed bzImage of the same build
#   KERNEL_KDIR     module build tree: make -C $(KERNEL_KDIR) M=<abs dir>
#   KERNEL_RELEASE  uname -r of the guest (vermagic of modules built for it)
# and list $(KERNEL_VMLINUX) as a prerequisite of anything built from them.
#
# The build is cached in $(HUSK_CACHE)/kernel/; the files under
# $(BUILD)/kernel are copies of the cache entry, and $(KERNEL_KDIR) is a
# symlink into it.  `make kernel` re-verifies the cache entry every time;
# the file rule below only reruns the script when an input changed or an
# output is missing.  The kernel is not part of `make all` (a cold build
# takes 7-11 minutes on two cores).

KERNEL_OUT     := $(BUILD)/kernel
KERNEL_VMLINUX := $(KERNEL_OUT)/vmlinux
KERNEL_BZIMAGE := $(KERNEL_OUT)/bzImage
KERNEL_KDIR    := $(abspath $(KERNEL_OUT)/build)
KERNEL_RELEASE  = $(shell cat $(KERNEL_KDIR)/include/config/kernel.release 2>/dev/null)
KERNEL_INPUTS  := kernel/husk.config kernel/build.sh

KERNEL_TARGETS += kernel-verified

.PHONY: kernel-verified
kernel-verified:
	@kernel/build.sh --out $(KERNEL_OUT)

$(KERNEL_VMLINUX) $(KERNEL_BZIMAGE) &: $(KERNEL_INPUTS)
	@kernel/build.sh --out $(KERNEL_OUT)

# The e2e tier boots this kernel and builds modules against it.
E2E_TEST_PREREQS += $(KERNEL_VMLINUX)

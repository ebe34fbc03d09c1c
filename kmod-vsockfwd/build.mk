# vsockfwd.ko (`make kmod`) and its in-guest test tool.
#
# KDIR is the kernel build tree the module is built against.  It follows
# the image's KERNEL choice (initramfs/build.mk): KERNEL=minimal (the
# default) means the minimal guest kernel's tree, build/kernel/build, built
# first if needed; KERNEL=debian the newest Debian linux-headers tree in
# /lib/modules.  The module goes into that kernel's image directory.  The host may run another
# kernel, so `uname -r` is never consulted.  KDIR=... overrides both.
#
# kbuild writes its products next to the sources, so the sources are copied
# (timestamps kept, so kbuild stays incremental) into a build directory per
# kernel release, $(BUILD)/kmod/<release>/, laid out like the top-level
# Kbuild expects.  The source tree stays clean.

ifeq ($(origin KDIR),undefined)
ifeq ($(KERNEL),minimal)
KDIR := $(KERNEL_KDIR)
KDIR_DEP := $(KERNEL_VMLINUX)
else
KDIR := $(shell ls -1d /lib/modules/*-amd64/build 2>/dev/null | sort -V | tail -n1)
endif
endif
KMOD_RELEASE = $(shell sed -n 's/^\#define UTS_RELEASE "\(.*\)"/\1/p' \
	$(KDIR)/include/generated/utsrelease.h 2>/dev/null)
KMOD_OUT = $(abspath $(BUILD)/kmod/$(KMOD_RELEASE))

VSOCKFWD_KSRCS := $(wildcard kmod-vsockfwd/*.c kmod-vsockfwd/*.h) \
	kmod-vsockfwd/Kbuild kmod-vsockfwd/include/uapi/linux/vsockfwd.h
VSOCKFWD_KO := $(IMAGE_OUT)/vsockfwd.ko
VSOCKFWD_TEST := $(GUEST_OUT)/vsockfwd-test

KMOD_TARGETS += $(VSOCKFWD_KO)
E2E_TEST_PREREQS += $(VSOCKFWD_KO) $(VSOCKFWD_TEST)
BENCH_PREREQS += $(VSOCKFWD_KO) $(VSOCKFWD_TEST)
ALL_TARGETS += $(VSOCKFWD_TEST)

# kbuild decides what is stale; the copy only changes when kbuild relinked.
.PHONY: vsockfwd-kbuild
vsockfwd-kbuild: $(KDIR_DEP)
	@test -f "$(KDIR)/Makefile" || { echo "make kmod: no kernel build tree at KDIR='$(KDIR)' (install linux-headers-amd64 or pass KDIR=)" >&2; exit 1; }
	@mkdir -p $(KMOD_OUT)/kmod-vsockfwd
	@cp -p Kbuild $(KMOD_OUT)/
	@cp -p --parents $(VSOCKFWD_KSRCS) $(KMOD_OUT)/
	$(MAKE) -C $(KDIR) M=$(KMOD_OUT) modules $(KMOD_KBUILD_FLAGS)

$(VSOCKFWD_KO): vsockfwd-kbuild
	@mkdir -p $(@D)
	@cmp -s $(KMOD_OUT)/kmod-vsockfwd/vsockfwd.ko $@ || cp $(KMOD_OUT)/kmod-vsockfwd/vsockfwd.ko $@

# The guest tool runs in a bare initramfs: always static, never sanitized.
VSOCKFWD_TEST_SRCS := kmod-vsockfwd/tests/vsockfwd-test.c
$(VSOCKFWD_TEST): $(VSOCKFWD_TEST_SRCS) kmod-vsockfwd/include/uapi/linux/vsockfwd.h
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Ikmod-vsockfwd/include/uapi \
		$(filter-out $(SAN_FLAGS) -fPIC,$(CFLAGS)) -static \
		-o $@ $(VSOCKFWD_TEST_SRCS)

# Style gates: the kernel's checkpatch.pl --strict (taken from
# linux-source-6.1) and sparse through kbuild's C=2.
CHECKPATCH_DIR := $(BUILD)/checkpatch/scripts
CHECKPATCH_FILES := checkpatch.pl spelling.txt const_structs.checkpatch
LINUX_SOURCE_TAR ?= $(lastword $(sort $(wildcard /usr/src/linux-source-6.*.tar.xz)))

$(CHECKPATCH_DIR)/checkpatch.pl:
	@test -f "$(LINUX_SOURCE_TAR)" || { echo "kmod-checkpatch: needs linux-source-6.1 (/usr/src/linux-source-6.1.tar.xz)" >&2; exit 1; }
	@mkdir -p $(@D)
	tar -xJf $(LINUX_SOURCE_TAR) -C $(@D) --strip-components=2 --wildcards \
		$(addprefix '*/scripts/,$(addsuffix ',$(CHECKPATCH_FILES)))

.PHONY: kmod-checkpatch kmod-sparse kmod-check
kmod-checkpatch: $(CHECKPATCH_DIR)/checkpatch.pl
	perl $< --strict --no-tree --quiet -f \
		$(filter-out %/Kbuild,$(VSOCKFWD_KSRCS))

kmod-sparse:
	@command -v sparse >/dev/null || { echo "kmod-sparse: sparse is not installed (apt-get install sparse)" >&2; exit 1; }
	@rm -f $(KMOD_OUT)/kmod-vsockfwd/*.o
	@$(MAKE) --no-print-directory vsockfwd-kbuild KMOD_KBUILD_FLAGS=C=2 2>&1 | tee $(BUILD)/kmod-sparse.log
	@! grep -E '(warning|error):' $(BUILD)/kmod-sparse.log

kmod-check: kmod-checkpatch kmod-sparse

BENCH_SCRIPTS += bench/vsockfwd.py

ifeq ($(KERNEL),minimal)
image-debian: $(VSOCKFWD_KO)
endif

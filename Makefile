# husk: the only build entry point.
#
# Objects go to $(BUILD)/obj, binaries to $(BUILD)/bin, libraries to
# $(BUILD)/lib, guest image pieces to $(BUILD)/guest.  Each component adds
# its own rules in <component>/build.mk (see mk/README.md for the variables
# a fragment may extend); this file only wires the targets together.

.DEFAULT_GOAL := all
SHELL := /bin/bash

include mk/config.mk
include mk/flags.mk
include mk/proto.mk
include mk/rules.mk

# Order matters where one fragment uses another's variables in a rule:
# libraries before the programs that link them.
FRAGMENTS := $(wildcard tests/unit/build.mk tests/fuzz/build.mk \
	common/build.mk guest-agent/runtime/build.mk guest-agent/build.mk \
	host/lib/vsock/build.mk host/lib/build.mk host/tools/build.mk \
	initramfs/build.mk kernel/build.mk kmod-vsockfwd/build.mk \
	tests/agent/build.mk tests/e2e/build.mk bench/build.mk)
include $(FRAGMENTS)

include mk/tests.mk
include mk/install.mk

# Keep intermediate objects (test .o files made by pattern rules).
.SECONDARY:

.PHONY: all deps check run run-prereqs image kmod kernel bench clean

all: $(ALL_TARGETS)

deps:
	@mk/deps.sh

# `check` installs what the tests need, builds, then runs every tier.  It
# recurses so that pkg-config answers are read after deps are installed.
check: deps
	@$(MAKE) --no-print-directory all
	@$(MAKE) --no-print-directory check-tiers

# `run`, like `check`, installs deps first and then builds in a recursion.
run: deps
	@$(MAKE) --no-print-directory run-prereqs
	@mk/run.sh

run-prereqs: $(RUN_PREREQS)

image: $(IMAGE_TARGETS)
	@$(if $(strip $(IMAGE_TARGETS)),:,echo "make image: no guest image pieces are defined yet" >&2; exit 1)

kmod: $(KMOD_TARGETS)
	@$(if $(strip $(KMOD_TARGETS)),:,echo "make kmod: kmod-vsockfwd has no module source yet" >&2; exit 1)

kernel: $(KERNEL_TARGETS)
	@$(if $(strip $(KERNEL_TARGETS)),:,echo "make kernel: the minimal guest kernel build is not defined yet" >&2; exit 1)

bench: all $(BENCH_PREREQS)
	@mk/bench.sh $(BENCH_SCRIPTS)

clean:
	rm -rf $(BUILD)

-include $(shell find $(BUILD)/obj -name '*.d' 2>/dev/null)

# The husk command line: thin over libhusk, linked against libhusk.so.0.
HUSK_TOOL_SRCS := host/tools/husk.c host/tools/vm-cmd.c
HUSK_TOOL_SRCS += host/tools/run.c host/tools/run-io.c
HUSK_TOOL_OBJS := $(call objs-of,$(HUSK_TOOL_SRCS))
# husk run's default guest image when not run from a build tree.
$(call objs-of,host/tools/run.c): CPPFLAGS += -DHUSK_GUEST_DIR='"$(DATADIR)/husk/guest"'
HUSK_TOOL      := $(BINDIR_OUT)/husk

$(HUSK_TOOL): $(HUSK_TOOL_OBJS) $(LIBHUSK_SO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(PIE_LDFLAGS) -o $@ $(HUSK_TOOL_OBJS) \
		-L$(LIBDIR_OUT) -l:libhusk.so.0 -Wl,-rpath,'$$ORIGIN/../lib'

ALL_TARGETS += $(HUSK_TOOL)
INSTALL_MANS += docs/man/libhusk.3
INSTALL_MANS += docs/man/husk.1
INSTALL_BINS += $(HUSK_TOOL)

# The demo bundle (busybox-static rootfs + config.json): `make run` and the
# husk run e2e tests use it (mk/demo.sh).
DEMO_BUNDLE := $(BUILD)/demo
$(DEMO_BUNDLE)/.stamp: mk/demo.sh
	mk/demo.sh bundle $(DEMO_BUNDLE)
RUN_PREREQS += all $(IMAGE_TARGETS) $(DEMO_BUNDLE)/.stamp
E2E_TEST_PREREQS += $(IMAGE_TARGETS) $(DEMO_BUNDLE)/.stamp
BENCH_SCRIPTS += bench/run.py
BENCH_PREREQS += $(IMAGE_TARGETS) $(DEMO_BUNDLE)/.stamp

# tests/e2e/test_run_api.py drives the sandbox API through this program.
RUN_API_TEST := $(BUILD)/e2e/run-api
$(RUN_API_TEST): tests/e2e/run-api.c $(LIBHUSK_SO)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< -L$(LIBDIR_OUT) -l:libhusk.so.0 \
		-Wl,-rpath,'$$ORIGIN/../lib'
E2E_TEST_PREREQS += $(RUN_API_TEST)

# husk run's default guest image when installed (HUSK_GUEST_DIR above).
.PHONY: install-guest-image
install-guest-image:
	@if [ -f $(GUEST_OUT)/vmlinux ] && [ -f $(GUEST_OUT)/initramfs.cpio.gz ]; then \
		install -D -m 0644 $(GUEST_OUT)/vmlinux $(DESTDIR)$(DATADIR)/husk/guest/vmlinux; \
		install -D -m 0644 $(GUEST_OUT)/initramfs.cpio.gz \
			$(DESTDIR)$(DATADIR)/husk/guest/initramfs.cpio.gz; \
		echo "installed $(DESTDIR)$(DATADIR)/husk/guest/{vmlinux,initramfs.cpio.gz}"; \
	else \
		echo "make install: no guest image in $(GUEST_OUT) ('make image' first);" \
			"husk run will need --kernel and --initrd"; \
	fi
INSTALL_EXTRA += install-guest-image

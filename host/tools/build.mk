# The husk command line: thin over libhusk, linked against libhusk.so.0.
HUSK_TOOL_SRCS := host/tools/husk.c host/tools/vm-cmd.c
HUSK_TOOL_SRCS += host/tools/run.c host/tools/run-io.c host/tools/guest-files.c
HUSK_TOOL_OBJS := $(call objs-of,$(HUSK_TOOL_SRCS))
$(call objs-of,host/tools/husk.c): CPPFLAGS += -Ihost/lib
# The default guest image when husk does not run from a build tree.
$(call objs-of,host/tools/guest-files.c): CPPFLAGS += -DHUSK_GUEST_DIR='"$(DATADIR)/husk/guest"'
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

# husk run's guest images when installed (HUSK_GUEST_DIR above): the default
# one, and Debian's in guest/debian when `make image KERNEL=debian` built it.
.PHONY: install-guest-image
install-guest-image:
	@set -e; \
	for d in "" debian; do \
		src=$(GUEST_OUT)$${d:+/$$d}; dst=$(DESTDIR)$(DATADIR)/husk/guest$${d:+/$$d}; \
		if [ -f $$src/vmlinux ] && [ -f $$src/initramfs.img ]; then \
			install -D -m 0644 $$src/vmlinux $$dst/vmlinux; \
			install -D -m 0644 $$src/initramfs.img $$dst/initramfs.img; \
			echo "installed $$dst/{vmlinux,initramfs.img}"; \
		elif [ -z "$$d" ]; then \
			echo "make install: no guest image in $(GUEST_OUT) ('make image' first);" \
				"husk run will need --kernel and --initrd"; \
		fi; \
	done
INSTALL_EXTRA += install-guest-image

# runc-compatible commands (docs/oci-runtime.md): one file per verb, plus the
# state store and hooks from host/lib, linked statically with the JSON reader.
OCI_TOOL_SRCS := $(addprefix host/tools/,oci-main.c oci-ctl.c oci-relay.c oci-monitor.c \
	oci-pod.c oci-pod-annotations.c oci-member.c \
	oci-create.c oci-start.c oci-run.c oci-state.c oci-kill.c oci-delete.c oci-exec.c \
	oci-list.c oci-ps.c oci-spec.c oci-features.c)
# pause, resume, update, events: the container's cgroup in the guest.
OCI_TOOL_SRCS += $(addprefix host/tools/,oci-pause.c oci-update.c oci-events.c \
	oci-cgroup.c oci-monitor-cgroup.c)
OCI_TOOL_OBJS := $(call objs-of,$(OCI_TOOL_SRCS))
OCI_LIB_OBJS := $(call objs-of,host/lib/oci-state.c host/lib/oci-hooks.c)
$(OCI_TOOL_OBJS): CPPFLAGS += -Ihost/lib
OCI_TOOL_STATIC := $(OCI_LIB_OBJS) $(call objs-of,host/lib/json.c) $(COMMON_LIB)
HUSK_TOOL_OBJS += $(OCI_TOOL_OBJS) $(OCI_TOOL_STATIC)
$(HUSK_TOOL): $(OCI_TOOL_OBJS) $(OCI_TOOL_STATIC)

UNIT_TESTS += $(UNIT_OUT)/test-oci-state
UNIT_DEPS_test-oci-state := $(OCI_LIB_OBJS) $(call objs-of,host/lib/json.c) $(COMMON_LIB)
UNIT_TESTS += $(UNIT_OUT)/test-oci-pod
UNIT_DEPS_test-oci-pod := $(call objs-of,host/tools/oci-pod-annotations.c)
$(OBJ_OUT)/tests/unit/test-oci-pod.o: CPPFLAGS += -Ihost/lib
UNIT_TESTS += $(UNIT_OUT)/test-oci-tool
UNIT_DEPS_test-oci-tool := $(call objs-of,host/tools/oci-main.c host/tools/oci-ctl.c \
	host/tools/guest-files.c) \
	$(UNIT_DEPS_test-oci-state)
$(OBJ_OUT)/tests/unit/test-oci-tool.o: CPPFLAGS += -Ihost/lib

UNIT_TESTS += $(UNIT_OUT)/test-oci-cgroup
# update's JSON is checked by libhusk's own converter: link the archive.
UNIT_DEPS_test-oci-cgroup := $(call objs-of,host/tools/oci-cgroup.c) $(OCI_LIB_OBJS) $(LIBHUSK_A)
UNIT_LIBS_test-oci-cgroup := $(PROTOBUF_C_LIBS) -lpthread -lm
$(OBJ_OUT)/tests/unit/test-oci-cgroup.o: CPPFLAGS += -Ihost/lib

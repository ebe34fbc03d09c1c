# libhusk: build/lib/libhusk.so.0 (SONAME libhusk.so.0, symbols versioned by
# host/lib/libhusk.map, everything else hidden) and build/lib/libhusk.a.
LIBHUSK_SRCS += host/lib/json.c host/lib/qmp.c host/lib/util.c \
	host/lib/vm-argv.c host/lib/vm-probe.c host/lib/vm-spawn.c \
	host/lib/vm-state.c host/lib/vm.c host/lib/vm-vsock.c
# Sandboxes and containers: OCI specs, the agent client, stdio relays.
LIBHUSK_SRCS += host/lib/oci-json.c host/lib/oci-spec.c host/lib/agent-client.c \
	host/lib/sandbox.c host/lib/sandbox-container.c host/lib/sandbox-stdio.c
# Host bind mounts carried into the VM through the shared directory.
LIBHUSK_SRCS += host/lib/sandbox-mounts.c
# The stdio channel: one vsock connection per stream (docs/stdio.md).
LIBHUSK_SRCS += host/lib/stdio-channel.c
# A container's cgroup from the host: stats, pause/resume, update.
LIBHUSK_SRCS += host/lib/sandbox-cgroup.c host/lib/container-stats.c host/lib/sandbox-oom.c
LIBHUSK_OBJS := $(call objs-of,$(LIBHUSK_SRCS))
LIBHUSK_SO   := $(LIBDIR_OUT)/libhusk.so.0
LIBHUSK_A    := $(LIBDIR_OUT)/libhusk.a
LIBHUSK_LIBS := -lpthread
# The agent client speaks protobuf-c: generated messages and the runtime.
LIBHUSK_LIBS += $(PROTO_LIB) $(PROTOBUF_C_LIBS) -lm
$(LIBHUSK_SO): $(PROTO_LIB)
$(LIBHUSK_A): $(PROTO_OBJS)

$(LIBHUSK_OBJS): CFLAGS += -fvisibility=hidden
$(call objs-of,host/lib/vm-argv.c): CPPFLAGS += -DHUSK_LIBEXECDIR='"$(LIBEXECDIR)/husk"'

$(LIBHUSK_SO): $(LIBHUSK_OBJS) $(COMMON_LIB) host/lib/libhusk.map
	@mkdir -p $(@D)
	$(CC) -shared $(LDFLAGS) -Wl,-soname,libhusk.so.0 \
		-Wl,--version-script=host/lib/libhusk.map -Wl,--no-undefined \
		-o $@ $(LIBHUSK_OBJS) $(COMMON_LIB) $(LIBHUSK_LIBS)
	ln -sf libhusk.so.0 $(LIBDIR_OUT)/libhusk.so

# The archive carries the common objects too, so static users need one -l.
$(LIBHUSK_A): $(LIBHUSK_OBJS) $(COMMON_OBJS)
	@mkdir -p $(@D)
	rm -f $@
	$(AR) rcs $@ $^

ALL_TARGETS += $(LIBHUSK_SO) $(LIBHUSK_A)

UNIT_TESTS += $(UNIT_OUT)/test-json $(UNIT_OUT)/test-qmp $(UNIT_OUT)/test-vm-argv \
	$(UNIT_OUT)/test-vm-state
UNIT_DEPS_test-json := $(LIBHUSK_A)
UNIT_DEPS_test-qmp := $(LIBHUSK_A)
UNIT_LIBS_test-qmp := $(LIBHUSK_LIBS)
UNIT_DEPS_test-vm-argv := $(LIBHUSK_A)
UNIT_LIBS_test-json := $(LIBHUSK_LIBS) -lm
UNIT_LIBS_test-vm-argv := $(LIBHUSK_LIBS)
UNIT_DEPS_test-vm-state := $(LIBHUSK_A)
UNIT_LIBS_test-vm-state := $(LIBHUSK_LIBS)

FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-json
FUZZ_SRCS_fuzz-json := host/lib/json.c
FUZZ_LIBS_fuzz-json := -lm

.PHONY: install-libhusk
install-libhusk: $(LIBHUSK_SO) $(LIBHUSK_A)
	install -D -m 0755 $(LIBHUSK_SO) $(DESTDIR)$(LIBDIR)/libhusk.so.0
	ln -sf libhusk.so.0 $(DESTDIR)$(LIBDIR)/libhusk.so
	install -D -m 0644 $(LIBHUSK_A) $(DESTDIR)$(LIBDIR)/libhusk.a
	install -D -m 0644 -t $(DESTDIR)$(INCLUDEDIR)/husk host/include/husk/*.h
	install -d $(DESTDIR)$(LIBDIR)/pkgconfig
	sed -e 's|@PREFIX@|$(PREFIX)|' -e 's|@LIBDIR@|$(LIBDIR)|' \
		-e 's|@INCLUDEDIR@|$(INCLUDEDIR)|' -e 's|@VERSION@|$(HUSK_VERSION)|' \
		packaging/husk.pc.in > $(DESTDIR)$(LIBDIR)/pkgconfig/husk.pc
INSTALL_EXTRA += install-libhusk

# The sandbox side: config.json conversion (host/lib/oci-*.c).
UNIT_TESTS += $(UNIT_OUT)/test-oci-spec
UNIT_DEPS_test-oci-spec := $(LIBHUSK_A)
UNIT_LIBS_test-oci-spec := $(PROTOBUF_C_LIBS) -lpthread -lm
UNIT_TESTS += $(UNIT_OUT)/test-sandbox-mounts
UNIT_DEPS_test-sandbox-mounts := $(LIBHUSK_A)
UNIT_LIBS_test-sandbox-mounts := $(PROTOBUF_C_LIBS) -lpthread -lm
FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-oci-spec
FUZZ_SRCS_fuzz-oci-spec := host/lib/oci-json.c host/lib/json.c common/error.c $(PROTO_SRCS)
FUZZ_LIBS_fuzz-oci-spec := $(PROTOBUF_C_LIBS) -lm
# The guest's StatsContainer reply, decoded and converted.
FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-container-stats
FUZZ_SRCS_fuzz-container-stats := host/lib/container-stats.c $(PROTO_SRCS)
FUZZ_LIBS_fuzz-container-stats := $(PROTOBUF_C_LIBS)

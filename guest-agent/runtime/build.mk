# guest-agent/runtime/: the container runtime linked into husk-agent.
# guest-agent/build.mk links $(RUNTIME_OBJS); the unit tests and the fuzz
# target below use them directly.
RUNTIME_SRCS := $(addprefix guest-agent/runtime/, \
	spec.c cgroup.c process.c child.c runtime.c op.c)
RUNTIME_OBJS := $(call objs-of,$(RUNTIME_SRCS))
RUNTIME_CPPFLAGS := -Iguest-agent/runtime
# no libraries beyond libc: capabilities, clone3 and openat2 are raw syscalls
RUNTIME_LIBS :=

$(RUNTIME_OBJS): CPPFLAGS += $(RUNTIME_CPPFLAGS)
$(RUNTIME_OBJS): CFLAGS += $(PROTOBUF_C_CFLAGS)

ALL_TARGETS += $(RUNTIME_OBJS)

# --- tests -----------------------------------------------------------------

RUNTIME_TEST_DEPS = $(RUNTIME_OBJS) $(COMMON_LIB) $(PROTO_LIB)

$(OBJ_OUT)/tests/unit/test-runtime-%.o: CPPFLAGS += $(RUNTIME_CPPFLAGS)
$(OBJ_OUT)/tests/unit/test-runtime-%.o: CFLAGS += $(PROTOBUF_C_CFLAGS)

# spec validation: no root, no I/O beyond stat() of the rootfs
UNIT_TESTS += $(UNIT_OUT)/test-runtime-spec
UNIT_DEPS_test-runtime-spec = $(RUNTIME_TEST_DEPS)
UNIT_LIBS_test-runtime-spec = $(PROTOBUF_C_LIBS)

# real containers from a busybox-static rootfs; skips without root
UNIT_TESTS += $(UNIT_OUT)/test-runtime-container
UNIT_DEPS_test-runtime-container = $(RUNTIME_TEST_DEPS)
UNIT_LIBS_test-runtime-container = $(PROTOBUF_C_LIBS)
$(UNIT_OUT)/test-runtime-container: | $(BUILD)/runtime-rootfs/.stamp

# The test rootfs: busybox-static and one symlink per applet.
$(BUILD)/runtime-rootfs/.stamp: /bin/busybox
	rm -rf $(@D)
	mkdir -p $(@D)/bin $(@D)/sbin $(@D)/proc $(@D)/sys $(@D)/dev $(@D)/tmp $(@D)/etc
	cp /bin/busybox $(@D)/bin/busybox
	for a in $$(/bin/busybox --list); do \
		[ -e $(@D)/bin/$$a ] || ln -s busybox $(@D)/bin/$$a; done
	touch $@

# CreateContainer's edge: decode oci.Spec bytes, validate, free.
FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-create-container
FUZZ_SRCS_fuzz-create-container = guest-agent/runtime/spec.c common/error.c \
	$(PROTO_GEN)/oci.pb-c.c
FUZZ_LIBS_fuzz-create-container = $(PROTOBUF_C_LIBS)
$(FUZZ_OUT)/fuzz-create-container: FUZZ_CFLAGS += $(RUNTIME_CPPFLAGS) -Icommon/include

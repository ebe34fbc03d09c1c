# husk-vsockd: husk's vhost-user-vsock backend (a helper process; see docs/vsock.md).
# The core objects have no main() so the unit tests and fuzzers link them directly.
VSOCKD_CORE_SRCS := host/lib/vsock/vu-mem.c host/lib/vsock/virtq.c \
	host/lib/vsock/vu-msg.c host/lib/vsock/vu-dev.c host/lib/vsock/hybrid.c \
	host/lib/vsock/vsock-conn.c host/lib/vsock/vsockd.c
VSOCKD_CORE_OBJS := $(call objs-of,$(VSOCKD_CORE_SRCS))
VSOCKD_CORE_LIB  := $(LIBDIR_OUT)/libhusk-vsockd.a
VSOCKD_BIN       := $(BINDIR_OUT)/husk-vsockd
# The fake guest (plays QEMU and the guest driver) is test-only.
VSOCKD_FAKE_SRCS := host/lib/vsock/fake-guest.c

$(VSOCKD_CORE_LIB): $(VSOCKD_CORE_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

$(VSOCKD_BIN): $(OBJ_OUT)/host/lib/vsock/main.o $(VSOCKD_CORE_LIB) $(COMMON_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(PIE_LDFLAGS) -o $@ $^

ALL_TARGETS += $(VSOCKD_BIN)


UNIT_TESTS += $(UNIT_OUT)/test-vsockd
UNIT_DEPS_test-vsockd := $(call objs-of,$(VSOCKD_FAKE_SRCS)) $(VSOCKD_CORE_LIB) $(COMMON_LIB)
# The tests include the engine's private headers.
$(OBJ_OUT)/tests/unit/test-vsock%.o $(OBJ_OUT)/tests/unit/test-vhost%.o: CPPFLAGS += -Ihost/lib/vsock
UNIT_TESTS += $(UNIT_OUT)/test-vsock-hybrid $(UNIT_OUT)/test-vhost-user
UNIT_DEPS_test-vsock-hybrid := $(VSOCKD_CORE_LIB) $(COMMON_LIB)
UNIT_DEPS_test-vhost-user := $(VSOCKD_CORE_LIB) $(COMMON_LIB)

FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-vhost-user $(FUZZ_OUT)/fuzz-vsock-tx \
	$(FUZZ_OUT)/fuzz-vsock-flows $(FUZZ_OUT)/fuzz-vsock-hybrid
FUZZ_SRCS_fuzz-vhost-user := $(VSOCKD_CORE_SRCS) common/error.c
FUZZ_SRCS_fuzz-vsock-tx := $(VSOCKD_CORE_SRCS) $(VSOCKD_FAKE_SRCS) common/error.c
FUZZ_SRCS_fuzz-vsock-flows := $(FUZZ_SRCS_fuzz-vsock-tx)
FUZZ_SRCS_fuzz-vsock-hybrid := host/lib/vsock/hybrid.c
$(FUZZ_OUT)/fuzz-vhost-user $(FUZZ_OUT)/fuzz-vsock-tx $(FUZZ_OUT)/fuzz-vsock-flows \
	$(FUZZ_OUT)/fuzz-vsock-hybrid: CPPFLAGS += -Ihost/lib/vsock

# Installed as a private helper of libhusk (vm_find_vsockd looks there).
.PHONY: install-vsockd
install-vsockd: $(VSOCKD_BIN)
	install -D -m 0755 $(VSOCKD_BIN) $(DESTDIR)$(LIBEXECDIR)/husk/husk-vsockd
INSTALL_EXTRA += install-vsockd

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


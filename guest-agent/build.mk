# guest-agent/: husk-agent, a static binary (PID 1 of the guest).
AGENT_SRCS := $(addprefix guest-agent/,main.c config.c log.c init.c loop.c listen.c \
	signals.c server.c logstream.c process.c oom.c rpc.c rpc-container.c rpc-process.c \
	rpc-sandbox.c rpc-network.c netlink.c rpc-copyfile.c pending.c)
AGENT_SRCS += guest-agent/storage.c
AGENT_SRCS += guest-agent/stdio-channel.c guest-agent/stdio-handshake.c guest-agent/relay.c
AGENT_OBJS := $(call objs-of,$(AGENT_SRCS))
AGENT_BIN  := $(BINDIR_OUT)/husk-agent

LIBNL_CFLAGS = $(call pkgcfg,--cflags,libnl-route-3.0)
LIBNL_LIBS   = $(call pkgcfg,--libs --static,libnl-route-3.0)

$(AGENT_OBJS): CPPFLAGS += -Iguest-agent $(PROTOBUF_C_CFLAGS)
$(call objs-of,guest-agent/netlink.c): CPPFLAGS += $(LIBNL_CFLAGS)
# The stdio channel speaks vsockfwd.ko's UAPI.
$(call objs-of,guest-agent/stdio-channel.c): CPPFLAGS += -Ikmod-vsockfwd/include/uapi

$(AGENT_BIN): $(AGENT_OBJS) $(RUNTIME_OBJS) $(COMMON_LIB) $(PROTO_LIB)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(STATIC_LDFLAGS) -o $@ $(AGENT_OBJS) $(RUNTIME_OBJS) \
		$(COMMON_LIB) $(PROTO_LIB) $(PROTOBUF_C_LIBS) $(LIBNL_LIBS) $(RUNTIME_LIBS)

# The binary needs the runtime (guest-agent/runtime/build.mk sets RUNTIME_OBJS);
# until that fragment exists only the agent's own objects are built.
ifneq ($(strip $(RUNTIME_OBJS)),)
ALL_TARGETS += $(AGENT_BIN)
INSTALL_SBINS += $(AGENT_BIN)
AGENT_TEST_PREREQS += $(AGENT_BIN)
else
ALL_TARGETS += $(AGENT_OBJS)
endif
INSTALL_MANS += docs/man/husk-agent.8

# The stdio channel's handshake line, the edge of port 1027.
FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-stdio-handshake
FUZZ_SRCS_fuzz-stdio-handshake = guest-agent/stdio-handshake.c common/error.c
$(FUZZ_OUT)/fuzz-stdio-handshake: FUZZ_CFLAGS += -Iguest-agent -Icommon/include

UNIT_TESTS += $(UNIT_OUT)/test-stdio-handshake
UNIT_DEPS_test-stdio-handshake = $(call objs-of,guest-agent/stdio-handshake.c) $(COMMON_LIB)
$(OBJ_OUT)/tests/unit/test-stdio-handshake.o: CPPFLAGS += -Iguest-agent

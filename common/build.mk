# common/: linked into both the agent and the host library.
COMMON_SRCS := common/error.c common/fileio.c common/fd-util.c common/ttrpc-frame.c common/ttrpc-server.c \
	common/ttrpc-client.c
COMMON_OBJS := $(call objs-of,$(COMMON_SRCS))
COMMON_LIB  := $(LIBDIR_OUT)/libhusk-common.a
# What a program linking $(COMMON_LIB) also needs (after it on the command line).
COMMON_LIBS  = $(PROTO_LIB) $(PROTOBUF_C_LIBS) -lpthread

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

ALL_TARGETS += $(COMMON_LIB)

# Unit tests of the ttRPC library (tests/unit/test-ttrpc-*.c).
TTRPC_UNIT_TESTS := test-ttrpc-frame test-ttrpc-server test-ttrpc-client
UNIT_TESTS += $(TTRPC_UNIT_TESTS:%=$(UNIT_OUT)/%)
$(foreach t,$(TTRPC_UNIT_TESTS),\
	$(eval UNIT_DEPS_$(t) := $$(COMMON_LIB) $$(PROTO_LIB))\
	$(eval UNIT_LIBS_$(t) = $$(PROTOBUF_C_LIBS) -lpthread))

# libFuzzer targets: server request path and client reply path.
TTRPC_FUZZ_SRCS = common/error.c common/ttrpc-frame.c common/ttrpc-server.c \
	common/ttrpc-client.c $(PROTO_GEN)/ttrpc.pb-c.c $(PROTO_GEN)/health.pb-c.c
FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-ttrpc $(FUZZ_OUT)/fuzz-ttrpc-client \
	$(FUZZ_OUT)/fuzz-ttrpc-client-replies
FUZZ_SRCS_fuzz-ttrpc = $(TTRPC_FUZZ_SRCS)
FUZZ_SRCS_fuzz-ttrpc-client = $(TTRPC_FUZZ_SRCS)
FUZZ_SRCS_fuzz-ttrpc-client-replies = $(TTRPC_FUZZ_SRCS)
FUZZ_LIBS_fuzz-ttrpc = $(PROTOBUF_C_LIBS) -lpthread
FUZZ_LIBS_fuzz-ttrpc-client = $(PROTOBUF_C_LIBS) -lpthread
FUZZ_LIBS_fuzz-ttrpc-client-replies = $(PROTOBUF_C_LIBS) -lpthread

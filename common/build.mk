# common/: linked into both the agent and the host library.
COMMON_SRCS := common/error.c common/ttrpc-frame.c common/ttrpc-server.c \
	common/ttrpc-client.c
COMMON_OBJS := $(call objs-of,$(COMMON_SRCS))
COMMON_LIB  := $(LIBDIR_OUT)/libhusk-common.a
# What a program linking $(COMMON_LIB) also needs (after it on the command line).
COMMON_LIBS  = $(PROTO_LIB) $(PROTOBUF_C_LIBS) -lpthread

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

ALL_TARGETS += $(COMMON_LIB)

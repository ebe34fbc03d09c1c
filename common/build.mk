# common/: linked into both the agent and the host library.
COMMON_SRCS := common/error.c
COMMON_OBJS := $(call objs-of,$(COMMON_SRCS))
COMMON_LIB  := $(LIBDIR_OUT)/libhusk-common.a

$(COMMON_LIB): $(COMMON_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

ALL_TARGETS += $(COMMON_LIB)

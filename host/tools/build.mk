# The husk command line: thin over libhusk, linked against libhusk.so.0.
HUSK_TOOL_SRCS := host/tools/husk.c host/tools/vm-cmd.c
HUSK_TOOL_OBJS := $(call objs-of,$(HUSK_TOOL_SRCS))
HUSK_TOOL      := $(BINDIR_OUT)/husk

$(HUSK_TOOL): $(HUSK_TOOL_OBJS) $(LIBHUSK_SO)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) $(PIE_LDFLAGS) -o $@ $(HUSK_TOOL_OBJS) \
		-L$(LIBDIR_OUT) -l:libhusk.so.0 -Wl,-rpath,'$$ORIGIN/../lib'

ALL_TARGETS += $(HUSK_TOOL)
INSTALL_BINS += $(HUSK_TOOL)

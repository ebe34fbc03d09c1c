# protobuf-c code generated from proto/ at build time (never committed).
# Sources include them as "agent.pb-c.h" etc. through -I$(GEN_OUT)/proto.

PROTO_NAMES := ttrpc health types oci agent
PROTO_FILES := $(wildcard $(PROTO_NAMES:%=proto/%.proto))
PROTO_GEN   := $(GEN_OUT)/proto
PROTO_SRCS  := $(patsubst proto/%.proto,$(PROTO_GEN)/%.pb-c.c,$(PROTO_FILES))
PROTO_HDRS  := $(PROTO_SRCS:.c=.h)
PROTO_OBJS  := $(patsubst $(GEN_OUT)/%.c,$(OBJ_OUT)/gen/%.o,$(PROTO_SRCS))
PROTO_LIB   := $(LIBDIR_OUT)/libhusk-proto.a

CPPFLAGS += -I$(PROTO_GEN)

# protoc-c writes every file in one go; a stamp keeps make from racing it.
$(PROTO_GEN)/.stamp: $(PROTO_FILES)
	@mkdir -p $(PROTO_GEN)
	protoc-c --c_out=$(PROTO_GEN) -Iproto $(PROTO_FILES)
	@touch $@

$(PROTO_SRCS) $(PROTO_HDRS): $(PROTO_GEN)/.stamp

# Generated code is not ours to fix: compile without -Werror extras.
$(OBJ_OUT)/gen/%.o: $(GEN_OUT)/%.c $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -Wno-error -Wno-missing-prototypes $(PROTOBUF_C_CFLAGS) -c -o $@ $<

$(PROTO_LIB): $(PROTO_OBJS)
	@mkdir -p $(@D)
	$(AR) rcs $@ $^

ALL_TARGETS += $(if $(PROTO_FILES),$(PROTO_LIB))

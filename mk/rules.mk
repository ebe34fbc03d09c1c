# Generic compile rule: every object lands under $(OBJ_OUT) mirroring the
# source tree.  Objects wait for the generated protobuf headers.

$(OBJ_OUT)/%.o: %.c | $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

# objs-of(sources) -> object paths
objs-of = $(patsubst %.c,$(OBJ_OUT)/%.o,$(1))

# cmocka unit tests.  A component registers a test with
#   UNIT_TESTS += $(UNIT_OUT)/test-foo          (source: tests/unit/test-foo.c)
#   UNIT_DEPS_test-foo := <objects or static libs it links>
#   UNIT_LIBS_test-foo := <extra -l flags>
UNIT_OUT := $(BUILD)/tests

.SECONDEXPANSION:
$(UNIT_OUT)/%: $(OBJ_OUT)/tests/unit/%.o $$(UNIT_DEPS_$$*)
	@mkdir -p $(@D)
	$(CC) $(LDFLAGS) -o $@ $< $(UNIT_DEPS_$*) $(UNIT_LIBS_$*) -lcmocka

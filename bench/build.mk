# bench/: benchmarks that print ratios measured side by side in one run.

# The stdio channel's driver: one sandbox, many stdio scenarios (also used by
# tests/e2e/test_stdio.py).  Links libhusk statically.
STDIO_DRIVER := $(BUILD)/bench/husk-stdio-driver
$(STDIO_DRIVER): bench/stdio-driver.c tests/e2e/guest/sha256.c $(LIBHUSK_A)
	@mkdir -p $(@D)
	$(CC) $(CPPFLAGS) -Itests/e2e/guest $(CFLAGS) $(LDFLAGS) -o $@ bench/stdio-driver.c \
		tests/e2e/guest/sha256.c $(LIBHUSK_A) $(LIBHUSK_LIBS)

BENCH_PREREQS += $(STDIO_DRIVER) $(IMAGE_TARGETS) $(DEMO_BUNDLE)/.stamp
BENCH_SCRIPTS += bench/stdio.py
E2E_TEST_PREREQS += $(STDIO_DRIVER)

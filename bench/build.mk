# make bench: each script prints side-by-side ratios plus absolute numbers.
BENCH_SCRIPTS += bench/vm-boot.py
BENCH_PREREQS += $(BINDIR_OUT)/husk

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

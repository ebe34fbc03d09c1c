# e2e: the tiny static test init booted by tests/e2e and bench/.  Always a
# plain static build (no sanitizers): it runs as PID 1 inside the guest.
E2E_OUT := $(BUILD)/e2e
HUSK_TEST_INIT := $(E2E_OUT)/husk-test-init
HUSK_TEST_INIT_SRCS := tests/e2e/guest/husk-test-init.c tests/e2e/guest/sha256.c

$(HUSK_TEST_INIT): $(HUSK_TEST_INIT_SRCS) tests/e2e/guest/sha256.h
	@mkdir -p $(@D)
	$(CC) -std=gnu11 -O2 -Wall -Wextra -Werror -static -o $@ $(HUSK_TEST_INIT_SRCS)

E2E_TEST_PREREQS += $(HUSK_TEST_INIT)
BENCH_PREREQS += $(HUSK_TEST_INIT)

# Test tiers.  Fragments append to:
#   UNIT_TESTS    cmocka test binaries (each prints cmocka's summary)
#   FUZZ_TARGETS  libFuzzer binaries; corpus in tests/fuzz/corpus/<name>/
# The pytest tiers are the test_*.py files under tests/agent and tests/e2e.
#
# A tier with nothing in it says so and succeeds; a tier that has tests but
# collects none fails (pytest exit 5), see tests/run-pytest.

FUZZ_SECONDS ?= 60

.PHONY: check-tiers check-unit check-agent check-e2e check-fuzz

check-tiers: check-unit check-agent check-e2e check-fuzz

check-unit: $(UNIT_TESTS)
	@if [ -z "$(strip $(UNIT_TESTS))" ]; then \
		echo "check-unit: no unit tests yet, nothing to run"; \
	else \
		tests/run-unit $(UNIT_TESTS); \
	fi

check-agent: all $(AGENT_TEST_PREREQS)
	@tests/run-pytest tests/agent

# What the e2e tier needs built, also on its own (e.g. before running one
# test file by hand).
.PHONY: e2e-prereqs
e2e-prereqs: all $(E2E_TEST_PREREQS)

check-e2e: e2e-prereqs
	@tests/run-pytest tests/e2e

check-fuzz: $(FUZZ_TARGETS)
	@if [ -z "$(strip $(FUZZ_TARGETS))" ]; then \
		echo "check-fuzz: no fuzz targets yet, nothing to run"; \
	else \
		tests/run-fuzz $(FUZZ_SECONDS) $(FUZZ_TARGETS); \
	fi

# libFuzzer targets, built with clang + ASan/UBSan straight from sources.
# A component registers a target with
#   FUZZ_TARGETS += $(FUZZ_OUT)/fuzz-foo         (source: tests/fuzz/fuzz-foo.c)
#   FUZZ_SRCS_fuzz-foo := <the C sources under test>
#   FUZZ_LIBS_fuzz-foo := <extra -l flags>
# and keeps a seed corpus in tests/fuzz/corpus/fuzz-foo/.
FUZZ_OUT := $(BUILD)/fuzz
FUZZ_CC  ?= clang
FUZZ_CFLAGS = -std=gnu11 -g -O1 -fsanitize=fuzzer,address,undefined \
	-fno-sanitize-recover=undefined -fno-omit-frame-pointer \
	$(filter-out -D_FORTIFY_SOURCE=2,$(CPPFLAGS)) $(PROTOBUF_C_CFLAGS)

.SECONDEXPANSION:
$(FUZZ_OUT)/%: tests/fuzz/%.c $$(FUZZ_SRCS_$$*) | $(PROTO_HDRS)
	@mkdir -p $(@D)
	$(FUZZ_CC) $(FUZZ_CFLAGS) -o $@ $< $(FUZZ_SRCS_$*) $(FUZZ_LIBS_$*)

# make bench: each script prints side-by-side ratios plus absolute numbers.
BENCH_SCRIPTS += bench/vm-boot.py
BENCH_PREREQS += $(BINDIR_OUT)/husk

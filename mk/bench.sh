#!/bin/bash
# `make bench`: run every benchmark script given; each prints ratios
# measured side by side in one run plus the absolute numbers.
set -u
if (($# == 0)); then
	echo "make bench: no benchmarks defined yet, nothing to run"
	exit 0
fi
rc=0
for b in "$@"; do
	echo "== $b"
	"$b" || rc=1
done
exit $rc

#!/bin/bash
# `make run`: boot a micro-VM and run the demo container in it.  The
# Makefile's run target has built $(RUN_PREREQS) (the tools, the guest image,
# the demo bundle) before this runs.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
missing=()
[[ -x $build/bin/husk ]] || missing+=("the husk tool ($build/bin/husk)")
[[ -f $build/guest/vmlinux ]] || missing+=("a guest kernel ($build/guest/vmlinux, 'make image')")
[[ -f $build/guest/initramfs.img ]] || missing+=("a guest initramfs ($build/guest/initramfs.img, 'make image')")
[[ -f $build/demo/config.json ]] || missing+=("the demo bundle ($build/demo, 'mk/demo.sh bundle $build/demo')")
command -v qemu-system-x86_64 >/dev/null || missing+=("QEMU (qemu-system-x86_64, 'make deps')")
if ((${#missing[@]})); then
	echo "make run: husk cannot boot a VM yet; missing:" >&2
	printf '  - %s\n' "${missing[@]}" >&2
	exit 1
fi
exec "$top/mk/demo.sh" run

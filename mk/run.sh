#!/bin/bash
# `make run`: boot a micro-VM and run the demo container in it.
set -u
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}
missing=()
[[ -x $build/bin/husk ]] || missing+=("the husk tool ($build/bin/husk)")
[[ -f $build/guest/vmlinux ]] || missing+=("a guest kernel ($build/guest/vmlinux, 'make image')")
[[ -f $build/guest/initramfs.cpio.gz ]] || missing+=("a guest initramfs ($build/guest/initramfs.cpio.gz, 'make image')")
if ((${#missing[@]})); then
	echo "make run: husk cannot boot a VM yet; missing:" >&2
	printf '  - %s\n' "${missing[@]}" >&2
	exit 1
fi
exec "$top/mk/demo.sh"

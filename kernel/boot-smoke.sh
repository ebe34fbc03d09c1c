#!/bin/bash
# Boot a guest kernel under QEMU (TCG) with a one-binary busybox initramfs
# whose /init prints a marker and powers off, and time it.
#
#   kernel/boot-smoke.sh [--kernel FILE] [--machine microvm|q35] [--runs N]
#
# Success is the marker on the serial console, never QEMU's exit status
# (QEMU exits 0 after a guest panic with panic=-1 -no-reboot).  Prints one
# line per boot (QEMU start -> exit, guest uptime when /init ran, QEMU's CPU
# time) and the min / median over the runs; exits 1 if any boot lacked the
# marker.  Wall and guest times under TCG stretch with host load; QEMU's CPU
# time (user + sys) mostly does not, so it is the fairer figure for comparing
# two kernels on a busy machine.
set -euo pipefail

top=$(cd "$(dirname "$0")/.." && pwd)
kernel=$top/build/kernel/vmlinux
machine=microvm
runs=1
while (($#)); do
	case $1 in
	--kernel) kernel=$2; shift 2 ;;
	--machine) machine=$2; shift 2 ;;
	--runs) runs=$2; shift 2 ;;
	*) echo "usage: $0 [--kernel FILE] [--machine microvm|q35] [--runs N]" >&2; exit 2 ;;
	esac
done
[[ -r $kernel ]] || { echo "boot-smoke: $kernel is missing (make kernel)" >&2; exit 1; }
busybox=$(command -v busybox) || { echo "boot-smoke: busybox-static is missing" >&2; exit 1; }
# The initramfs holds nothing else: busybox must not need a loader.
if readelf -l "$busybox" | grep -q INTERP; then
	echo "boot-smoke: $busybox is dynamically linked (install busybox-static)" >&2
	exit 1
fi

readonly MARKER=HUSK-BOOT-SMOKE-OK

tmp=$(mktemp -d /tmp/husk-boot-smoke.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

# Under TCG the guest TSC ticks at the host's rate; telling the kernel
# skips a calibration that hangs microvm about half the time.
tsc_khz() {
	awk -F: '/^cpu MHz/ { printf "%d\n", $2 * 1000; exit }' /proc/cpuinfo
}

make_initramfs() {
	local root=$tmp/root
	mkdir -p "$root/bin" "$root/proc"
	cp "$busybox" "$root/bin/busybox"
	cat >"$root/init" <<-EOF
		#!/bin/busybox sh
		/bin/busybox mount -t proc proc /proc
		read up idle </proc/uptime
		echo "$MARKER uptime=\$up"
		/bin/busybox poweroff -f
	EOF
	chmod 755 "$root/init"
	(cd "$root" && find . | cpio -o -H newc --quiet) >"$tmp/initramfs.cpio"
}

boot_once() {
	local console=$tmp/console.log times wall user sys TIMEFORMAT='%R %U %S'
	local -a machine_args
	case $machine in
	microvm) machine_args=(-M microvm) ;;
	q35) machine_args=(-M q35) ;;
	*) echo "boot-smoke: unknown machine $machine" >&2; exit 2 ;;
	esac
	times=$( { time timeout 60 qemu-system-x86_64 "${machine_args[@]}" -accel tcg -m 128 -smp 1 \
		-nodefaults -no-user-config -display none -serial "file:$console" \
		-no-reboot -kernel "$kernel" -initrd "$tmp/initramfs.cpio" \
		-append "console=ttyS0 quiet panic=-1 tsc_early_khz=$(tsc_khz)" \
		</dev/null >/dev/null 2>&1 || true; } 2>&1)
	read -r wall user sys <<<"$times"
	if ! grep -q "^$MARKER" "$console"; then
		echo "boot-smoke: no marker from the guest; console:" >&2
		tail -n 20 "$console" >&2
		return 1
	fi
	printf '%s %s %.3f\n' "$wall" \
		"$(sed -n "s/^$MARKER uptime=\([0-9.]*\).*/\1/p" "$console")" \
		"$(echo "$user + $sys" | bc)"
}

# "min X median Y" of column $1 of the times file.
stats() {
	cut -d' ' -f"$1" "$tmp/times" | sort -n |
		awk '{ v[NR] = $1 } END {
			m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
			printf "min %.3f median %.3f", v[1], m }'
}

make_initramfs
failed=0
: >"$tmp/times"
for ((i = 1; i <= runs; i++)); do
	if line=$(boot_once); then
		read -r wall up cpu <<<"$line"
		echo "boot $i: start->exit $wall s, uptime at /init $up s, QEMU CPU $cpu s"
		echo "$line" >>"$tmp/times"
	else
		failed=$((failed + 1))
	fi
done
if [[ -s $tmp/times ]]; then
	echo "$kernel on $machine ($(wc -l <"$tmp/times") of $runs booted):" \
		"start->exit $(stats 1) s; uptime at /init $(stats 2) s; QEMU CPU $(stats 3) s"
fi
((failed == 0)) || { echo "boot-smoke: $failed of $runs boots failed" >&2; exit 1; }
echo "$MARKER: $runs of $runs boots reached /init"

#!/bin/bash
# By-hand smoke test of husk-vsockd against real QEMU (TCG) and Debian's
# kernel: see docs/vsock.md.  Usage: run.sh [BYTES]  (from the repo root,
# after `make`).  Boots once, moves BYTES each way, cleans up after itself.
# ROUNDS=2 reloads the guest's vsock driver between rounds (a device stop
# and start on the same vhost-user connection); PAR=n runs n guest->host
# connections at once.  PAUSE=1 pauses the VM (QMP stop/cont) in the middle
# of the first guest->host transfer.
set -euo pipefail
BYTES=${1:-16777216}
ROUNDS=${ROUNDS:-1}
PAR=${PAR:-1}
KVER=${KVER:-$(ls /lib/modules | sort -V | tail -1)}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../../../.." && pwd)
tmp=$(mktemp -d /tmp/vsockd-smoke.XXXXXX)
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	wait 2>/dev/null || true
	rm -rf "$tmp"
}
trap cleanup EXIT

# Guest: busybox + the probe + the 8 vsock modules, /init runs the tests.
mkdir -p "$tmp"/initrd/{bin,proc,sys,dev,lib/modules}
cp /bin/busybox "$tmp/initrd/bin/busybox"
gcc -static -O2 -o "$tmp/initrd/bin/vsock-probe" "$here/vsock-probe.c"
mods="virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci vsock vmw_vsock_virtio_transport_common vmw_vsock_virtio_transport"
for m in $mods; do
	f=$(find "/lib/modules/$KVER/kernel" -name "$m.ko*" | head -1)
	case $f in
	*.xz) xz -dc "$f" >"$tmp/initrd/lib/modules/$m.ko" ;;
	*.zst) zstd -qdc "$f" >"$tmp/initrd/lib/modules/$m.ko" ;;
	*) cp "$f" "$tmp/initrd/lib/modules/$m.ko" ;;
	esac
done
cat >"$tmp/initrd/init" <<INIT
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
for m in $mods; do insmod /lib/modules/\$m.ko; done
round() {
	vsock-probe listen 5000 &
	for i in \$(seq $PAR); do vsock-probe send 2 1234 $BYTES & done
	wait
}
round
for r in \$(seq 2 $ROUNDS); do
	rmmod vmw_vsock_virtio_transport
	insmod /lib/modules/vmw_vsock_virtio_transport.ko
	round
done
poweroff -f
INIT
chmod +x "$tmp/initrd/init"
(cd "$tmp/initrd" && find . | cpio -o -H newc 2>/dev/null | gzip -1 >"$tmp/initrd.cpio.gz")

"$root/build/bin/husk-vsockd" --vhost-user "$tmp/vu.sock" --uds "$tmp/vsock" \
	--guest-cid 3 --ready-fd 3 3>"$tmp/ready" ${VSOCKD_DEBUG:+--debug} &
pids+=($!)
for _ in $(seq 50); do [[ -s $tmp/ready ]] && break; sleep 0.1; done
/usr/bin/python3 "$here/host.py" "$tmp/vsock" "$BYTES" "$ROUNDS" "$PAR" \
	${PAUSE:+"$tmp/qmp.sock"} &
pids+=($!)
hostpid=$!
timeout 120 qemu-system-x86_64 -accel tcg -m 256M -smp 1 \
	-object memory-backend-memfd,id=mem,size=256M,share=on -numa node,memdev=mem \
	-chardev socket,id=vsock,path="$tmp/vu.sock" \
	-device vhost-user-vsock-pci,chardev=vsock \
	-qmp unix:"$tmp/qmp.sock",server=on,wait=off \
	-nographic -no-reboot -kernel "/boot/vmlinuz-$KVER" -initrd "$tmp/initrd.cpio.gz" \
	-append "console=ttyS0 panic=-1 quiet" </dev/null | grep -a -E "probe:|vsock|Kernel panic" || true
wait "$hostpid" || true

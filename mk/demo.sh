#!/bin/bash
# The `make run` demo.
#   mk/demo.sh rootfs DIR   build a busybox-static root filesystem in DIR
#   mk/demo.sh bundle DIR   DIR/rootfs plus DIR/config.json (an OCI bundle)
#   mk/demo.sh              run the demo bundle (build/demo) with husk run
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
build=${BUILD:-$top/build}

make_rootfs() {
	local dir=$1 busybox=""
	# busybox-static's binary: a dynamic one would not run inside the rootfs.
	for candidate in /bin/busybox /usr/bin/busybox; do
		if [[ -x $candidate ]] && ! readelf -l "$candidate" 2>/dev/null | grep -q INTERP; then
			busybox=$candidate
			break
		fi
	done
	if [[ -z $busybox ]]; then
		echo "mk/demo.sh: no static busybox (apt-get install busybox-static, see mk/deps.txt)" >&2
		exit 1
	fi
	rm -rf "$dir.tmp"
	mkdir -p "$dir.tmp"/{bin,dev,proc,sys,tmp,etc,root,run,var,usr/bin}
	chmod 1777 "$dir.tmp/tmp"
	cp "$busybox" "$dir.tmp/bin/busybox"
	# One link per applet, relative so the tree works wherever it is.
	for applet in $("$dir.tmp/bin/busybox" --list); do
		[[ -e $dir.tmp/bin/$applet ]] || ln -s busybox "$dir.tmp/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n' \
		>"$dir.tmp/etc/passwd"
	printf 'root:x:0:\nnogroup:x:65534:\n' >"$dir.tmp/etc/group"
	rm -rf "$dir"
	mv "$dir.tmp" "$dir"
}

# The demo's config.json: a default container plus the guest's /proc, read-only
# (a bind of a guest path: husk's "husk.guest" option),
# so the container can name the guest's PID 1.
make_bundle() {
	local dir=$1
	make_rootfs "$dir/rootfs"
	mkdir -p "$dir/rootfs/run/guest-proc"
	cat >"$dir/config.json" <<'JSON'
{
	"ociVersion": "1.0.2",
	"process": {
		"terminal": false,
		"user": { "uid": 0, "gid": 0 },
		"args": [ "/bin/sh", "-c",
			"echo 'Hello from husk: this container runs in its own micro-VM.'; echo \"guest kernel: $(uname -r) (host: $HOST_KERNEL)\"; echo \"guest PID 1: $(cat /run/guest-proc/1/comm) ($(readlink /run/guest-proc/1/exe))\"" ],
		"env": [ "PATH=/bin:/usr/bin" ],
		"cwd": "/"
	},
	"root": { "path": "rootfs", "readonly": true },
	"hostname": "husk-demo",
	"mounts": [
		{ "destination": "/proc", "type": "proc", "source": "proc" },
		{ "destination": "/dev", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "mode=755", "size=65536k" ] },
		{ "destination": "/tmp", "type": "tmpfs", "source": "tmpfs",
		  "options": [ "nosuid", "nodev", "size=16m" ] },
		{ "destination": "/run/guest-proc", "type": "bind", "source": "/proc",
		  "options": [ "rbind", "ro", "husk.guest" ] }
	],
	"linux": {
		"namespaces": [ { "type": "pid" }, { "type": "mount" }, { "type": "ipc" },
				{ "type": "uts" } ]
	}
}
JSON
}

case ${1:-run} in
rootfs)
	make_rootfs "$2"
	touch "$2/.husk-demo"
	;;
bundle)
	make_bundle "$2"
	touch "$2/.stamp"
	;;
run)
	# TCG unless told otherwise: it works everywhere, nested KVM does not.
	accel=${HUSK_ACCEL:-tcg}
	echo "husk run --accel $accel $build/demo  (a busybox container in a fresh micro-VM)"
	exec "$build/bin/husk" run --accel "$accel" -e "HOST_KERNEL=$(uname -r)" "$build/demo"
	;;
*)
	echo "usage: mk/demo.sh [rootfs DIR | bundle DIR | run]" >&2
	exit 2
	;;
esac

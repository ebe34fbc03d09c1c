#!/bin/bash
# Build husk's minimal guest kernel, or reuse a cached build of it.
#
#   kernel/build.sh [--out DIR] [--fragment FILE]... [--check | --print-entry]
#
# Debian's linux-source-6.1 is configured as tinyconfig + kernel/husk.config
# (+ any extra --fragment, later ones win), every fragment line is checked
# against the final .config, and vmlinux, bzImage and a module build tree
# are built out of tree.  The result is a cache entry in
# $HUSK_CACHE/kernel/<key>, key = source version + effective fragment hash +
# compiler version.  An entry is built in a temporary directory, checked
# (an out-of-tree module must build against it with the right vermagic),
# given a sha256 manifest and renamed into place; every use verifies the
# manifest, so a corrupt or half-written entry is rebuilt.  DIR (default
# build/kernel) then gets vmlinux, bzImage, config and the symlink `build`
# (the KDIR for out-of-tree modules).  --check only verifies the entry for
# the current inputs (exit 0 valid, 1 missing or corrupt) and --print-entry
# prints its path; neither builds anything.
#
# Environment: HUSK_CACHE (cache root), KERNEL_SOURCE (source tarball),
# KERNEL_JOBS (make -j, default 2), KERNEL_NICE (default 10).
set -euo pipefail

# Bump when the build steps change in a way that changes the result.
readonly RECIPE=1
readonly SRC_PACKAGE=linux-source-6.1

top=$(cd "$(dirname "$0")/.." && pwd)
out=$top/build/kernel
fragments=()
mode=build
while (($#)); do
	case $1 in
	--out) out=$2; shift 2 ;;
	--fragment) fragments+=("$(realpath "$2")"); shift 2 ;;
	--check) mode=check; shift ;;
	--print-entry) mode=print; shift ;;
	*) echo "usage: $0 [--out DIR] [--fragment FILE]... [--check | --print-entry]" >&2; exit 2 ;;
	esac
done
fragments=("$top/kernel/husk.config" "${fragments[@]}")

if ((EUID == 0)); then
	cache=${HUSK_CACHE:-/var/cache/husk}
else
	cache=${HUSK_CACHE:-$HOME/.cache/husk}
fi
source_tar=${KERNEL_SOURCE:-/usr/src/$SRC_PACKAGE.tar.xz}
jobs=${KERNEL_JOBS:-2}
niceness=${KERNEL_NICE:-10}
start=$SECONDS

# The kernel's make must not inherit husk's make state (jobserver, V=, M=).
unset MAKEFLAGS MFLAGS MAKELEVEL MAKEOVERRIDES

say() {
	local t=$((SECONDS - start))
	printf '[kernel %02d:%02d] %s\n' $((t / 60)) $((t % 60)) "$*"
}

die() {
	say "error: $*" >&2
	exit 1
}

# --- the cache key ---------------------------------------------------------

source_version() {
	local v
	[[ -r $source_tar ]] || die "$source_tar is missing (install $SRC_PACKAGE: make deps)"
	if [[ $source_tar == /usr/src/$SRC_PACKAGE.tar.xz ]] &&
		v=$(dpkg-query -W -f='${Version}' "$SRC_PACKAGE" 2>/dev/null) && [[ -n $v ]]; then
		echo "$v"
	else
		# Not the packaged tarball: identify it by content.
		sha256sum "$source_tar" | cut -c1-16
	fi
}

# The settings that matter, one per symbol, last fragment winning: prose
# comments and ordering do not change the key.
effective_fragment() {
	cat "${fragments[@]}" |
		sed -n -E -e 's/[[:space:]]+$//' \
			-e 's/^(CONFIG_[A-Za-z0-9_]+)=(.*)$/\1 =\2/p' \
			-e 's/^# (CONFIG_[A-Za-z0-9_]+) is not set$/\1 unset/p' |
		awk '{ v[$1] = substr($0, length($1) + 2) } END { for (s in v) print s, v[s] }' |
		sort
}

compiler_id() {
	{ gcc --version | head -n1; ld --version | head -n1; } 2>/dev/null
}

# --- manifest --------------------------------------------------------------

# Files whose loss or damage makes an entry useless: the boot images and
# what `make -C build M=...` reads.
readonly MANIFEST_FILES=(
	build/vmlinux
	build/arch/x86/boot/bzImage
	build/.config
	build/Module.symvers
	build/Makefile
	build/include/config/auto.conf
	build/include/generated/autoconf.h
	build/include/generated/utsrelease.h
	build/scripts/basic/fixdep
	build/scripts/mod/modpost
)

write_manifest() {
	(cd "$1" && sha256sum "${MANIFEST_FILES[@]}") >"$1/manifest.sha256.tmp"
	mv "$1/manifest.sha256.tmp" "$1/manifest.sha256"
}

entry_valid() {
	local entry=$1
	[[ -f $entry/manifest.sha256 && -f $entry/info ]] || return 1
	[[ -f $srcdir/.husk-extracted ]] || return 1
	[[ $(realpath -q "$entry/build/source") == "$(realpath -q "$srcdir")" ]] || return 1
	(cd "$entry" && sha256sum --check --quiet --strict manifest.sha256) >/dev/null 2>&1
}

# --- source ----------------------------------------------------------------

# Extract once per source version into the cache, atomically: a killed
# extraction leaves only a temporary directory, which the next run removes.
ensure_source() {
	local lock tmp
	if [[ -f $srcdir/.husk-extracted ]]; then
		return
	fi
	exec {lock}>"$srcdir.lock"
	flock "$lock"
	if [[ ! -f $srcdir/.husk-extracted ]]; then
		rm -rf "$srcdir" "$srcdir".tmp.*
		tmp=$(mktemp -d "$srcdir.tmp.XXXXXX")
		say "extracting $source_tar"
		tar -xf "$source_tar" -C "$tmp" --strip-components=1
		[[ -f $tmp/Makefile && -x $tmp/scripts/kconfig/merge_config.sh ]] ||
			die "$source_tar does not look like a kernel source tree"
		touch "$tmp/.husk-extracted"
		mv -T "$tmp" "$srcdir"
	fi
	exec {lock}>&-
}

# --- configure and check ---------------------------------------------------

kmake() {
	nice -n "$niceness" make -C "$srcdir" O="$obj" "$@"
}

configure() {
	say "configuring: tinyconfig + ${fragments[*]#"$top"/}"
	kmake tinyconfig >"$log" 2>&1 || fail_with_log "make tinyconfig"
	(cd "$obj" && "$srcdir/scripts/kconfig/merge_config.sh" -m -O "$obj" .config "${fragments[@]}") \
		>>"$log" 2>&1 || fail_with_log "merge_config.sh"
	kmake olddefconfig >>"$log" 2>&1 || fail_with_log "make olddefconfig"
	verify_config "$obj/.config"
}

# merge_config.sh drops a symbol whose dependencies are off without a word;
# name every setting of the fragments that did not survive.
verify_config() {
	local config=$1 sym want have dropped=()
	while read -r sym want; do
		have=$(grep -E "^$sym=" "$config" | cut -d= -f2- || true)
		if [[ $want == unset ]]; then
			[[ -z $have ]] || dropped+=("# $sym is not set (final: $sym=$have)")
		elif [[ "=$have" != "$want" ]]; then
			dropped+=("$sym$want (final: ${have:+$sym=$have}${have:-not set})")
		fi
	done < <(effective_fragment)
	if ((${#dropped[@]})); then
		say "error: ${#dropped[@]} fragment settings did not hold in the final .config:" >&2
		printf '  %s\n' "${dropped[@]}" >&2
		say "a guard symbol they depend on is probably off; add it to the fragment" >&2
		exit 1
	fi
	say "config verified: all $(effective_fragment | wc -l) fragment settings hold"
}

# --- compile ---------------------------------------------------------------

fail_with_log() {
	say "error: $1 failed; last lines of $log:" >&2
	tail -n 30 "$log" >&2
	exit 1
}

# make runs in its own process group so an interrupt stops all of it, and
# without the cache lock, which must die with this script.
lock_fd=
make_pid=
stop_make() {
	if [[ -n $make_pid ]]; then
		kill -TERM -- "-$make_pid" 2>/dev/null
		wait "$make_pid" 2>/dev/null || true
		make_pid=
	fi
}

compile() {
	local rc objs
	say "compiling vmlinux, bzImage, modules (make -j$jobs, nice $niceness; log: $log)"
	setsid nice -n "$niceness" make -C "$srcdir" O="$obj" -j"$jobs" all >>"$log" 2>&1 {lock_fd}>&- &
	make_pid=$!
	while kill -0 "$make_pid" 2>/dev/null; do
		sleep 20 &
		wait $! || true
		objs=$(grep -c -E '^  (CC|AS) ' "$log" || true)
		kill -0 "$make_pid" 2>/dev/null && say "compiling: $objs objects so far"
	done
	rc=0
	wait "$make_pid" || rc=$?
	make_pid=
	((rc == 0)) || fail_with_log "kernel make"
	say "compiled $(grep -c -E '^  (CC|AS) ' "$log" || true) objects"
}

# Prove the tree works as a KDIR: an out-of-tree module builds against it
# and carries the tree's vermagic.
check_module_build() {
	local dir=$tmp/modcheck release magic
	mkdir "$dir"
	cat >"$dir/huskcheck.c" <<-'EOF'
		#include <linux/module.h>
		static int __init huskcheck_init(void) { return 0; }
		static void __exit huskcheck_exit(void) { }
		module_init(huskcheck_init);
		module_exit(huskcheck_exit);
		MODULE_LICENSE("GPL");
	EOF
	echo 'obj-m := huskcheck.o' >"$dir/Kbuild"
	make -C "$obj" M="$dir" modules >>"$log" 2>&1 || fail_with_log "out-of-tree module build"
	release=$(cat "$obj/include/config/kernel.release")
	magic=$(modinfo -F vermagic "$dir/huskcheck.ko")
	[[ $magic == "$release "* ]] || die "module vermagic '$magic' does not match release $release"
	rm -rf "$dir"
	say "out-of-tree module check passed (vermagic $magic)"
}

# --- outputs ---------------------------------------------------------------

# Copy a file only when it changed, so that make does not rebuild what
# depends on it; a fresh mtime is still needed when an input got newer.
install_file() {
	if cmp -s "$1" "$2"; then
		touch "$2"
	else
		cp "$1" "$2.tmp"
		mv "$2.tmp" "$2"
	fi
}

publish() {
	mkdir -p "$out"
	install_file "$entry/build/vmlinux" "$out/vmlinux"
	install_file "$entry/build/arch/x86/boot/bzImage" "$out/bzImage"
	install_file "$entry/build/.config" "$out/config"
	ln -sfn "$entry/build" "$out/build"
}

# --- main ------------------------------------------------------------------

main() {
	local version fraghash ccid key
	command -v flock >/dev/null || die "flock (util-linux) is missing"
	version=$(source_version)
	fraghash=$( { echo "recipe $RECIPE"; effective_fragment; } | sha256sum | cut -c1-16)
	ccid=$(compiler_id)
	[[ -n $ccid ]] || die "gcc/ld not found (make deps)"
	key="linux-$version-$fraghash-gcc$(gcc -dumpfullversion)-$(echo "$ccid" | sha256sum | cut -c1-8)"

	mkdir -p "$cache/kernel"
	srcdir=$cache/kernel/src-$version
	entry=$cache/kernel/$key

	case $mode in
	print) echo "$entry"; return ;;
	check)
		entry_valid "$entry" || { echo "$entry: missing or corrupt" >&2; exit 1; }
		echo "$entry: valid"
		return
		;;
	esac

	# One builder per key; others wait and then find the entry ready.
	exec {lock_fd}>"$entry.lock"
	if ! flock -n "$lock_fd"; then
		say "another build of $key is running; waiting for it"
		flock "$lock_fd"
	fi

	if entry_valid "$entry"; then
		publish
		say "cached: $entry"
		return
	fi
	if [[ -e $entry ]]; then
		say "cache entry $entry is incomplete or corrupt; rebuilding it"
	fi
	rm -rf "$entry" "$entry".tmp.*

	ensure_source
	tmp=$(mktemp -d "$entry.tmp.XXXXXX")
	trap 'set +e; stop_make; rm -rf "$tmp"' EXIT
	trap 'exit 130' INT TERM
	obj=$tmp/build
	log=$tmp/build.log
	mkdir "$obj"

	configure
	compile
	[[ -f $obj/Module.symvers ]] || die "Module.symvers was not generated"
	check_module_build

	{
		echo "key=$key"
		echo "source=$SRC_PACKAGE $version"
		echo "compiler=$(echo "$ccid" | tr '\n' ';')"
		echo "release=$(cat "$obj/include/config/kernel.release")"
		echo "fragments=${fragments[*]#"$top"/}"
		echo "built=$(date -u +%Y-%m-%dT%H:%M:%SZ) in $((SECONDS - start)) s"
	} >"$tmp/info"
	write_manifest "$tmp"
	mv -T "$tmp" "$entry"
	trap - EXIT
	publish
	say "built and cached: $entry"
}

# One line, so that editing this file during a build cannot change what
# bash reads after main returns.
main; exit

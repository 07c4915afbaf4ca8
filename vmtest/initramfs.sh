#!/usr/bin/env bash
# Packs the guest's initramfs: busybox (every applet linked), init.sh as /init,
# fsprobe as /bin/fsprobe, the test executables in /tests, and the run's
# settings in /vmtest.conf and /vmtest.filter.
# Usage: initramfs.sh BIN_DIR OUT.gz BACKENDS FILTER EXPECT_AUTO TEST_TIMEOUT
#   BACKENDS is space-separated; FILTER may be empty.
set -euo pipefail
bin=$1 out=$2 backends=$3 filter=$4 expect_auto=$5 test_timeout=$6
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
chmod 755 "$root" # the image's /: non-root tests must be able to traverse it
mkdir -p "$root"/{bin,proc,sys,dev,tmp,tests}
busybox=$(command -v busybox)
# busybox-static's binary, not a dynamically linked busybox from elsewhere.
[ -x /bin/busybox ] && busybox=/bin/busybox
cp "$busybox" "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
done
# DWARF is most of the binaries' size; panic messages do not need it.
strip --strip-debug -o "$root/bin/fsprobe" "$bin/fsprobe"
for t in "$bin"/tests/*; do
	strip --strip-debug -o "$root/tests/${t##*/}" "$t"
done
cp "$here/init.sh" "$root/init"
chmod 755 "$root/init" "$root/bin/fsprobe" "$root"/tests/*
chmod 1777 "$root/tmp"
cat >"$root/vmtest.conf" <<CONF
BACKENDS="$backends"
EXPECT_AUTO="$expect_auto"
TEST_TIMEOUT="$test_timeout"
CONF
printf '%s' "$filter" >"$root/vmtest.filter"
(cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet | gzip -1) >"$out.new"
mv "$out.new" "$out"

#!/usr/bin/env bash
# Packs the guest's initramfs: busybox, /init, fsprobe and the tests.
# Usage: initramfs.sh BIN_DIR OUT.gz "BACKENDS" FILTER
set -euo pipefail
bin=$1
out=$2
backends=$3
filter=$4
here=$(cd "$(dirname "$0")" && pwd)
root=$(mktemp -d)
chmod 755 "$root"
trap 'rm -rf "$root"' EXIT
mkdir -p "$root"/{bin,proc,sys,dev,tmp,tests}
cp /bin/busybox "$root/bin/busybox"
for applet in $("$root/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -sf busybox "$root/bin/$applet"
done
cp "$bin/fsprobe" "$root/bin/fsprobe"
cp "$bin"/tests/* "$root/tests/"
cp "$here/init.sh" "$root/init"
chmod +x "$root/init"
cat >"$root/vmtest.conf" <<CONF
BACKENDS="$backends"
FILTER="$filter"
EXPECT_AUTO=fentry
CONF
(cd "$root" && find . | cpio -o -H newc --quiet | gzip -1) >"$out"

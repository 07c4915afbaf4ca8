#!/bin/sh
# /init of the test guest: mount what the tests need, run every test
# binary once per backend listed in /vmtest.conf, print markers that
# run.sh parses from the serial console, then power off.
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs nodev /sys/kernel/tracing
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
. /vmtest.conf
btf=no
[ -e /sys/kernel/btf/vmlinux ] && btf=yes
echo "=== VMTEST KERNEL $(uname -r) btf=$btf"
for backend in $BACKENDS; do
	for t in /tests/*; do
		name=$(basename "$t")
		echo "=== VMTEST BEGIN $backend $name"
		FSPROBE_BIN=/bin/fsprobe FSPROBE_BACKEND=$backend FSPROBE_EXPECT_AUTO=$EXPECT_AUTO \
			RUST_BACKTRACE=0 "$t" --test-threads=2 $FILTER 2>&1
		echo "=== VMTEST END $backend $name rc=$?"
	done
done
echo "=== VMTEST DONE"
sync
echo o >/proc/sysrq-trigger
sleep 10

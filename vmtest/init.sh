#!/bin/sh
# /init of the test guest (busybox sh). Mounts what the tests need, runs every
# test binary in /tests named by vmtest.tests= (all without it) once per
# backend in /vmtest.conf, then powers off.
#
# Kernel messages go to the first serial port (the console); the tests' output
# goes to the second one, so the two never interleave. Both get the markers:
#   === VMTEST KERNEL <uname -r>
#   === VMTEST INFO <key=value...>
#   === VMTEST BEGIN <backend> <binary>
#   === VMTEST END <backend> <binary> rc=<n> secs=<s>
#   === VMTEST DONE
export PATH=/bin
export HOME=/tmp
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
mount -t tmpfs tmpfs /tmp
mount -t tracefs nodev /sys/kernel/tracing
mount -t debugfs nodev /sys/kernel/debug 2>/dev/null
mount -t securityfs nodev /sys/kernel/security 2>/dev/null
mount -t cgroup2 none /sys/fs/cgroup 2>/dev/null

. /vmtest.conf
filter=$(cat /vmtest.filter)
# run.sh boots one guest per kernel and backend: vmtest.backends=<list>
# on the kernel command line picks this guest's backends.
for arg in $(cat /proc/cmdline); do
	case $arg in
	vmtest.backends=*) BACKENDS=$(echo "${arg#*=}" | tr , ' ') ;;
	vmtest.tests=*) TESTS=",${arg#*=}," ;;
	esac
done

out=/dev/ttyS1
[ -c "$out" ] && : 2>/dev/null >"$out" || out=/dev/console
mark() {
	echo "=== VMTEST $*" >/dev/console
	[ "$out" = /dev/console ] || echo "=== VMTEST $*" >"$out"
}

yesno() { if [ -e "$1" ]; then echo yes; else echo no; fi; }
mark "KERNEL $(uname -r)"
mark "INFO btf=$(yesno /sys/kernel/btf/vmlinux) kprobes=$(yesno /sys/kernel/tracing/kprobe_events)" \
	"syscall_tracepoints=$(yesno /sys/kernel/tracing/events/syscalls)" \
	"lsm=$(cat /sys/kernel/security/lsm 2>/dev/null || echo ?)" \
	"lockdown=$(sed 's/.*\[\(.*\)\].*/\1/' /sys/kernel/security/lockdown 2>/dev/null || echo ?)" \
	"cpus=$(grep -c ^processor /proc/cpuinfo) mem_kb=$(awk '/MemTotal/{print $2}' /proc/meminfo)"

# How long fsprobe takes to be ready here, and what the verifier spent on
# each program (FSPROBE_VERIFIER_STATS): the guests' cost is mostly this.
startup() {
	mkdir -p /tmp/startup
	start=$(date +%s)
	FSPROBE_VERIFIER_STATS=1 /bin/fsprobe --backend "$1" -f none /tmp/startup 2>/tmp/startup.err &
	pid=$!
	n=0
	while [ $n -lt 600 ] && ! grep -q 'fsprobe: ready' /tmp/startup.err && kill -0 $pid 2>/dev/null; do
		sleep 1
		n=$((n + 1))
	done
	secs=$(($(date +%s) - start))
	kill -INT $pid 2>/dev/null
	wait $pid
	sed 's/^/    /' /tmp/startup.err >"$out"
	mark "STARTUP $1 secs=$secs"
}

for backend in $BACKENDS; do
	startup "$backend"
	for t in /tests/*; do
		name=${t##*/}
		# vmtest.tests=<list> (vmtest/plan): this guest's targets.
		case ${TESTS:-,$name,} in *",$name,"*) ;; *) continue ;; esac
		mark "BEGIN $backend $name"
		start=$(date +%s)
		if [ -n "$filter" ]; then
			set -- "$filter"
		else
			set --
		fi
		FSPROBE_BIN=/bin/fsprobe FSPROBE_BACKEND=$backend FSPROBE_EXPECT_AUTO=$EXPECT_AUTO FSPROBE_DIFF_OPS=10000 FSPROBE_STOP_ITERATIONS=10 \
			RUST_BACKTRACE=0 timeout -s KILL "$TEST_TIMEOUT" "$t" --test-threads=2 "$@" >"$out" 2>&1
		rc=$?
		secs=$(($(date +%s) - start))
		# A test killed mid-way can leave fsprobe running (and attached).
		for p in /proc/[0-9]*; do
			if [ "$(cat "$p/comm" 2>/dev/null)" = fsprobe ]; then
				mark "LEFTOVER $backend $name fsprobe pid ${p#/proc/}"
				kill -9 "${p#/proc/}" 2>/dev/null
			fi
		done
		mark "END $backend $name rc=$rc secs=$secs"
	done
done
mark "DONE"
sync
echo o >/proc/sysrq-trigger
sleep 5
poweroff -f

#!/usr/bin/env bash
# vmtest/run.sh: runs fsprobe's integration tests inside real Debian cloud
# kernels (5.10, 6.1, 6.12) under QEMU (TCG), once per backend, and prints a
# kernel x backend matrix. See vmtest/README.md.
#
# Usage: vmtest/run.sh [OPTIONS]
#   --kernels LIST     kernel series to boot, comma-separated (default 5.10,6.1,6.12)
#   --backends LIST    backends to test, comma-separated, from tracepoint,fentry,kprobe
#                      (or auto; default: all three). Each test binary runs once per backend
#                      with FSPROBE_BACKEND=<backend>.
#   --filter TEXT      run only the tests whose name contains TEXT (libtest filter)
#   --tests LIST       test targets of fsprobe-cli to run in every guest, comma-separated
#                      (default: each guest's line in vmtest/plan)
#   --keep             keep the run directory (serial logs, initramfs, binaries) even
#                      when everything passed; the logs of a failing run are always kept
#   --timeout SECS     stop a guest that has not powered off after SECS (default 2400,
#                      or FSPROBE_VM_TIMEOUT)
#   --test-timeout SECS  kill a test binary in the guest after SECS (default 600)
#   --lockup-kill SECS stop a guest as soon as its kernel's soft lockup reports add
#                      up to SECS or more (default 120; 0 disables)
#   --append ARGS      extra kernel command-line arguments
#   --jobs N           guests (one per kernel and backend) run at the same time
#                      (default: the host's CPUs)
#   --accel ACCEL      QEMU accelerator (default tcg,thread=single; see step 5)
#   --no-build         reuse the binaries of the last build instead of running cargo
#   --update-kernels   look for newer kernel packages even when some are cached
#   -h, --help         print this help
#
# Environment: FSPROBE_VM_CACHE (default <repo>/.vmcache) holds the kernels, the
# private apt state, the last build and the runs (runs/<id>/); FSPROBE_VM_EXPECT_AUTO
# (default fentry) is what tests/backends.rs expects `--backend auto` to pick.
# The last line printed is `vmtest: N passed, M failed`; the exit status is
# non-zero when a test failed or a guest did not finish.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${FSPROBE_VM_CACHE:-$repo/.vmcache}
kernels=5.10,6.1,6.12
backends=tracepoint,fentry,kprobe
filter=
tests=
keep=0
timeout_s=${FSPROBE_VM_TIMEOUT:-2400}
test_timeout=600
lockup_kill=120
append_extra=
jobs=$(nproc)
accel=tcg,thread=single
build=1
update_kernels=

usage() { sed -n '/^# Usage:/,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; }
die() { echo "vmtest: $*" >&2; exit 2; }
while [ $# -gt 0 ]; do
	case $1 in
	--kernels) kernels=${2:?}; shift 2 ;;
	--backends) backends=${2:?}; shift 2 ;;
	--filter) filter=${2?}; shift 2 ;;
	--tests) tests=${2:?}; shift 2 ;;
	--keep) keep=1; shift ;;
	--timeout) timeout_s=${2:?}; shift 2 ;;
	--test-timeout) test_timeout=${2:?}; shift 2 ;;
	--lockup-kill) lockup_kill=${2:?}; shift 2 ;;
	--append) append_extra=${2?}; shift 2 ;;
	--jobs) jobs=${2:?}; shift 2 ;;
	--accel) accel=${2:?}; shift 2 ;;
	--no-build) build=0; shift ;;
	--update-kernels) update_kernels=--update; shift ;;
	-h | --help) usage; exit 0 ;;
	*) usage >&2; die "unknown option '$1'" ;;
	esac
done
IFS=, read -r -a kernel_list <<<"$kernels"
IFS=, read -r -a backend_list <<<"$backends"
# The targets guest UNIT (<kernel>-<backend>) runs, space-separated:
# --tests, else its line in vmtest/plan, else the plan's `*` line.
targets_of() {
	if [ -n "$tests" ]; then
		echo "${tests//,/ }"
		return
	fi
	awk -v unit="$1" '/^[^#]/ && NF > 1 { t = $2; for (i = 3; i <= NF; i++) t = t " " $i; plan[$1] = t }
		END { print (unit in plan) ? plan[unit] : plan["*"] }' "$here/plan"
}
if [ -n "$tests" ]; then
	IFS=, read -r -a test_list <<<"$tests"
else
	read -r -a test_list <<<"$(awk '/^[^#]/ { for (i = 2; i <= NF; i++) print $i }' "$here/plan" | sort -u | tr '\n' ' ')"
fi
for k in "${kernel_list[@]}"; do
	case $k in 5.10 | 6.1 | 6.12) ;; *) die "unknown kernel '$k' (known: 5.10, 6.1, 6.12)" ;; esac
done
for b in "${backend_list[@]}"; do
	case $b in tracepoint | fentry | kprobe | auto) ;; *) die "unknown backend '$b'" ;; esac
done
[ "$jobs" -ge 1 ] 2>/dev/null || die "--jobs: not a positive number: '$jobs'"
for n in "$timeout_s" "$test_timeout" "$lockup_kill"; do
	[[ $n =~ ^[0-9]+$ ]] || die "not a number of seconds: '$n'"
done
[ "$(id -u)" -eq 0 ] || die "run as root (apt-get, and the tests' own checks)"

# 1. Host tools.
packages=(qemu-system-x86 busybox-static cpio libelf-dev zlib1g-dev file binutils python3)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	echo "vmtest: installing ${missing[*]}" >&2
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

# 2. Kernels.
"$here/kernels.sh" $update_kernels "$cache" "${kernel_list[@]}"

# 3. Static binaries. Each run works in its own directory, so that runs sharing
#    the cache do not overwrite each other's binaries, images or logs.
run=$cache/runs/$(date +%Y%m%d-%H%M%S)-$$
mkdir -p "$run"
if [ "$build" = 1 ]; then
	[ -x "$repo/scripts/setup.sh" ] && "$repo/scripts/setup.sh"
	echo "vmtest: building static binaries in target/vm" >&2
	"$here/build.sh" "$repo" "$run/bin" "${test_list[@]}"
	rm -rf "$cache/bin.new"
	cp -a "$run/bin" "$cache/bin.new"
	rm -rf "$cache/bin"
	mv "$cache/bin.new" "$cache/bin"
else
	[ -x "$cache/bin/fsprobe" ] || die "--no-build: no previous build in $cache/bin"
	cp -a "$cache/bin" "$run/bin"
	for t in "$run"/bin/tests/*; do
		[[ " ${test_list[*]} " == *" ${t##*/} "* ]] || rm -f "$t"
	done
	for t in "${test_list[@]}"; do
		[ -x "$run/bin/tests/$t" ] || die "--no-build: the last build has no test target $t"
	done
fi

# The tests each binary should report, for counting what did not run.
for t in "$run"/bin/tests/*; do
	"$t" --list --format terse ${filter:+"$filter"} | sed -n "s/: test\$//p" | sed "s|^|${t##*/} |"
done >"$run/expected"

# 4. Initramfs.
expect_auto=${FSPROBE_VM_EXPECT_AUTO:-fentry}
"$here/initramfs.sh" "$run/bin" "$run/initrd.gz" "${backend_list[*]}" "$filter" "$expect_auto" "$test_timeout"

# 5. Boot one guest per kernel and backend, up to --jobs at a time. Each
#    guest runs single-threaded TCG (its two vCPUs take turns on one host
#    thread), so guests in parallel use the host's CPUs, and nine short
#    guests pack onto them better than three long ones. Multi-threaded TCG
#    is not the default: with it, a vCPU can run a stale translation of
#    kernel text that another vCPU has just patched (text_poke_bp(), when
#    tracepoints or trampolines are attached or detached). We saw an int3
#    Oops at a jump-label site (twice, 6.12) and both vCPUs stuck in soft
#    lockups with fsprobe starting and stopping (5.10 and 6.1) with it,
#    never with one host thread.
#    A watchdog stops a guest that overruns its time or whose kernel keeps
#    reporting soft lockups; a guest that crashed or was stopped for
#    lockups is booted once more (the first attempt's logs are kept as
#    <kernel>-<backend>.attempt1.*).
boot() {
	local unit=$1 k=${1%-*} b=${1##*-} start elapsed stuck reason qpid rc secs
	local console=$run/$unit.console.log targets
	targets=$(targets_of "$unit")
	echo "$targets" >"$run/$unit.targets"
	echo "vmtest: booting $k ($(cat "$cache/kernels/$k/package")) for $b: ${targets}" >&2
	start=$(date +%s)
	qemu-system-x86_64 -accel "$accel" -cpu max -smp 2 -m 2048 -nographic -no-reboot \
		-kernel "$cache/kernels/$k/vmlinuz" -initrd "$run/initrd.gz" \
		-append "console=ttyS0 quiet panic=-1 lsm=lockdown,capability,bpf vmtest.backends=$b vmtest.tests=${targets// /,} $append_extra" \
		-monitor none -serial "file:$console" -serial "file:$run/$unit.tests.log" \
		</dev/null >"$run/$unit.qemu.log" 2>&1 &
	qpid=$!
	trap 'kill "$qpid" 2>/dev/null; exit 130' INT TERM
	reason=
	while kill -0 "$qpid" 2>/dev/null; do
		sleep 2
		elapsed=$(($(date +%s) - start))
		if [ "$elapsed" -ge "$timeout_s" ]; then
			reason="stopped by the ${timeout_s} s --timeout"
		elif [ "$lockup_kill" -gt 0 ]; then
			# Some kernels (5.10) re-arm the watchdog after each report and
			# print "stuck for 22s" again and again: add the reports up.
			stuck=$(grep -aoE 'soft lockup - CPU#[0-9]+ stuck for [0-9]+s' "$console" 2>/dev/null |
				sed 's/.* for \([0-9]*\)s/\1/' | awk '{ t += $1 } END { print t + 0 }' || true)
			if [ "$stuck" -ge "$lockup_kill" ]; then
				reason="stopped: kernel soft lockups (CPUs stuck for ${stuck} s in all; --lockup-kill ${lockup_kill})"
			fi
		fi
		if [ -n "$reason" ]; then
			kill "$qpid" 2>/dev/null || true
			break
		fi
	done
	rc=0
	wait "$qpid" || rc=$?
	secs=$(($(date +%s) - start))
	printf 'secs=%s\nqemu_rc=%s\nreason=%s\n' "$secs" "$rc" "$reason" >"$run/$unit.status"
	echo "vmtest: $k $b: ${secs} s${reason:+, $reason}" >&2
}
guest() {
	local unit=$1 f
	boot "$unit"
	if grep -aqE 'Kernel panic|Oops:' "$run/$unit.console.log" || grep -q '^reason=stopped: kernel soft lockup' "$run/$unit.status"; then
		echo "vmtest: $unit: the guest kernel crashed or locked up (see $unit.attempt1.console.log); booting it once more" >&2
		for f in console.log tests.log qemu.log status; do
			mv "$run/$unit.$f" "$run/$unit.attempt1.$f" 2>/dev/null || true
		done
		boot "$unit"
	fi
}
guests=()
trap 'kill "${guests[@]}" 2>/dev/null; exit 130' INT TERM
trap '[ "${#guests[@]}" -eq 0 ] || kill "${guests[@]}" 2>/dev/null || true' EXIT
running=0
# The longest guests first (most test targets, then the newest kernels): the
# last to start are then the short ones, and the two CPUs finish together.
units=()
for ((i = ${#kernel_list[@]} - 1; i >= 0; i--)); do
	for b in "${backend_list[@]}"; do
		units+=("$(targets_of "${kernel_list[i]}-$b" | wc -w) $((${#units[@]} + 1000)) ${kernel_list[i]}-$b")
	done
done
for unit in $(printf '%s\n' "${units[@]}" | sort -k1,1nr -k2,2n | awk '{ print $3 }'); do
	if [ "$running" -ge "$jobs" ]; then
		wait -n || true
		running=$((running - 1))
	fi
	guest "$unit" &
	guests+=($!)
	running=$((running + 1))
done
wait
guests=()

# 6. The matrix.
if [ "$keep" = 1 ]; then
	echo "vmtest: run directory (kept): $run" >&2
else
	echo "vmtest: logs: $run (kept only if something fails)" >&2
fi
status=0
python3 "$here/report.py" "$run" "$kernels" "$backends" || status=$?
if [ "$keep" = 0 ]; then
	if [ "$status" = 0 ]; then
		rm -rf "$run"
	else
		rm -rf "$run/bin" "$run/initrd.gz"
	fi
fi
# Keep the 10 newest runs.
find "$cache/runs" -mindepth 1 -maxdepth 1 -type d | sort | head -n -10 | xargs -r rm -rf
exit "$status"

#!/usr/bin/env bash
# Runs fsprobe's integration tests inside real Debian kernels (5.10, 6.1,
# 6.12) under QEMU, once per backend, and prints a kernel x backend matrix.
#
#   vmtest/run.sh [--kernels 5.10,6.1,6.12] [--backends fentry,kprobe,tracepoint]
#                 [--filter SUBSTRING] [--timeout SECONDS]
#
# Kernels and build products are cached in $FSPROBE_VM_CACHE (default
# .vmcache/ in the repository). See vmtest/README.md.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/.." && pwd)
cache=${FSPROBE_VM_CACHE:-$repo/.vmcache}
kernels=5.10,6.1,6.12
backends=fentry,kprobe,tracepoint
filter=
timeout_s=1500

while [ $# -gt 0 ]; do
	case $1 in
	--kernels) kernels=$2; shift 2 ;;
	--backends) backends=$2; shift 2 ;;
	--filter) filter=$2; shift 2 ;;
	--timeout) timeout_s=$2; shift 2 ;;
	-h | --help) sed -n '2,10p' "$0"; exit 0 ;;
	*) echo "vmtest: unknown option $1" >&2; exit 2 ;;
	esac
done

missing=()
for p in qemu-system-x86 busybox-static cpio; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

IFS=, read -r -a kernel_list <<<"$kernels"
"$here/kernels.sh" "$cache" "${kernel_list[@]}"

echo "vmtest: building static binaries" >&2
"$here/build.sh" "$repo" "$cache/bin"

initrd=$cache/initrd.gz
"$here/initramfs.sh" "$cache/bin" "$initrd" "${backends//,/ }" "$filter"

mkdir -p "$cache/logs"
for k in "${kernel_list[@]}"; do
	log=$cache/logs/$k.log
	echo "vmtest: booting $k ($(cat "$cache/kernels/$k/package"))" >&2
	start=$(date +%s)
	timeout "$timeout_s" qemu-system-x86_64 -accel tcg -cpu max -smp 2 -m 2048 \
		-nographic -no-reboot -kernel "$cache/kernels/$k/vmlinuz" -initrd "$initrd" \
		-append "console=ttyS0 quiet panic=-1 lsm=lockdown,capability,bpf" \
		</dev/null >"$log" 2>&1 || true
	echo "vmtest: $k took $(($(date +%s) - start)) s" >&2
done

python3 "$here/report.py" "$cache/logs" "${kernel_list[@]}"

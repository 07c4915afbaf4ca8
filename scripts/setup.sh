#!/usr/bin/env bash
# Installs what building and testing fsprobe needs on Debian (12 or newer):
# a clang that targets BPF, libelf and zlib for libbpf, and the tools the
# tests use. Idempotent: apt is only called when something is missing.
set -euo pipefail

need_root() {
	if [ "$(id -u)" -ne 0 ]; then
		echo "fsprobe: $0 must run as root (it installs packages and loads BPF programs)" >&2
		exit 1
	fi
}

# The fleet tests (crates/fsprobe-cli/tests/fleet_*.rs) start their own
# nats-server and rsyslogd on loopback, relay through socat, and check the
# metrics with promtool (package prometheus); iproute2 brings `ip` for the
# network namespaces. tests/docker.rs starts its own dockerd (docker.io) and
# builds its image offline from the static busybox (busybox-static).
packages=(clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config make util-linux
	nats-server rsyslog prometheus socat iproute2 docker.io busybox-static)
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
	need_root
	echo "setup: installing ${missing[*]}" >&2
	# rsyslog, prometheus and docker.io would start system-wide daemons: the
	# tests run their own, so no service is started during the install.
	policy=/usr/sbin/policy-rc.d
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' >"$policy"
		chmod +x "$policy"
		trap 'rm -f "$policy"' EXIT
	fi
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

if ! command -v cargo >/dev/null 2>&1; then
	echo "fsprobe: cargo is missing: install Rust 1.95 or newer (rustup) and run this again" >&2
	exit 1
fi

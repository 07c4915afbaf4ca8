#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the integration tests
# that load the real BPF programs on this host (root required; the fleet
# tests start their own nats-server and rsyslogd), the Debian package, the quick
# benchmark (under 3 minutes, results in target/fsprobe-bench-quick), and the
# kernel-facing integration tests inside real 5.10 / 6.1 / 6.12 kernels under
# QEMU, once per backend (vmtest/run.sh; which tests where: vmtest/plan).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "fsprobe: the tests load BPF programs: run them as root (sudo $0)" >&2
	exit 1
fi
# Each stage's name, and how long the one before took.
began=$(date +%s)
last=$began
stage() {
	local now
	now=$(date +%s)
	[ "$now" = "$began" ] || echo "== ($((now - last)) s)" >&2
	last=$now
	echo "== $*" >&2
}
stage "setup"
scripts/setup.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

stage "cargo fmt --check"
cargo fmt --all -- --check
stage "cargo clippy -D warnings"
cargo clippy --workspace --all-targets --quiet -- -D warnings
stage "cargo test (unit + host integration, tracepoint backend)"
cargo test --workspace --release
stage "Debian package (cargo-deb): build it, check its contents"
scripts/package.sh --check
stage "benchmark, quick mode (keeps it working; fails only if it breaks, never on a timing)"
cargo run --release --quiet -p fsprobe-bench -- --quick --no-install
stage "vmtest: Debian 5.10 / 6.1 / 6.12 x fentry, kprobe, tracepoint (vmtest/plan)"
vmtest/run.sh
stage "all passed in $(($(date +%s) - began)) s"

#!/usr/bin/env bash
# Runs every test: formatting and lints, unit tests, the integration tests
# that load the real BPF programs on this host (root required; the fleet
# tests start their own nats-server and rsyslogd), the Debian package, the quick
# benchmark (under 3 minutes, results in target/fsprobe-bench-quick), and the
# same integration tests inside real 5.10 / 6.1 / 6.12 kernels under QEMU,
# once per backend (vmtest/run.sh).
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "fsprobe: the tests load BPF programs: run them as root (sudo $0)" >&2
	exit 1
fi
scripts/setup.sh
rustup component add rustfmt clippy >/dev/null 2>&1 || true

echo "== cargo fmt --check" >&2
cargo fmt --all -- --check
echo "== cargo clippy -D warnings" >&2
cargo clippy --workspace --all-targets --quiet -- -D warnings
echo "== cargo test (unit + host integration, tracepoint backend)" >&2
cargo test --workspace --release
echo "== Debian package (cargo-deb): build it, check its contents" >&2
scripts/package.sh --check
echo "== benchmark, quick mode (keeps it working; fails only if it breaks, never on a timing)" >&2
cargo run --release --quiet -p fsprobe-bench -- --quick --no-install
echo "== vmtest: the integration suite in Debian 5.10 / 6.1 / 6.12 x fentry, kprobe, tracepoint" >&2
vmtest/run.sh

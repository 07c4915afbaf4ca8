#!/usr/bin/env bash
# Builds static fsprobe and its integration-test executables for the guests,
# in REPO/target/vm so that normal builds in REPO/target are left alone.
# Usage: build.sh REPO OUT_DIR [TEST_TARGET...]
#   OUT_DIR/fsprobe and OUT_DIR/tests/<target> are (re)written.
#   Without TEST_TARGETs, every integration-test target of fsprobe-cli is taken
#   but the fleet_* ones: they start servers (nats-server, rsyslogd, promtool)
#   that the guests do not have, and run on the host only.
set -euo pipefail
repo=$1
out=$2
shift 2
cd "$repo"

export CARGO_TARGET_DIR=$repo/target/vm
export RUSTFLAGS="-C target-feature=+crt-static"
export LIBBPF_SYS_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu
args=(--release --target x86_64-unknown-linux-gnu --features static -p fsprobe-cli
	--message-format=json-render-diagnostics)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
cargo build "${args[@]}" >"$tmp/build.json"
cargo test --no-run "${args[@]}" >"$tmp/test.json"

python3 - "$tmp" "$@" <<'PY'
import json, sys
tmp, wanted = sys.argv[1], sys.argv[2:]
bins, tests = [], {}
for name in ("build.json", "test.json"):
    for line in open(f"{tmp}/{name}"):
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
            continue
        t = msg["target"]
        # `cargo test` also emits the bin's own unit-test harness (profile.test).
        if t["kind"] == ["bin"] and t["name"] == "fsprobe" and not msg["profile"]["test"]:
            bins.append(msg["executable"])
        elif t["kind"] == ["test"]:
            tests[t["name"]] = msg["executable"]
if not bins:
    sys.exit("vmtest: cargo reported no fsprobe binary")
missing = [w for w in wanted if w not in tests]
if missing:
    sys.exit(f"vmtest: no test target {', '.join(missing)} in fsprobe-cli (have: {', '.join(sorted(tests))})")
# The fleet_* tests need real servers, which the guests do not have.
default = sorted(t for t in tests if not t.startswith("fleet_"))
with open(f"{tmp}/list", "w") as f:
    print(f"fsprobe {bins[-1]}", file=f)
    for name in wanted or default:
        print(f"tests/{name} {tests[name]}", file=f)
PY

rm -rf "$out.new"
mkdir -p "$out.new/tests"
while read -r name path; do
	cp "$path" "$out.new/$name"
	if ! file -b "$path" | grep -qE 'statically linked|static-pie linked' ||
		ldd "$path" 2>&1 | grep -q '=>'; then
		echo "vmtest: $path is not static:" >&2
		file -b "$path" >&2
		ldd "$path" >&2 || true
		exit 1
	fi
done <"$tmp/list"
rm -rf "$out"
mv "$out.new" "$out"

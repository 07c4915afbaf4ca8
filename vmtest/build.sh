#!/usr/bin/env bash
# Builds static fsprobe and its integration-test executables for the guests.
# Usage: build.sh REPO OUT_DIR
set -euo pipefail
repo=$1
out=$2
mkdir -p "$out/tests"
cd "$repo"
json=$(mktemp)
RUSTFLAGS="-C target-feature=+crt-static" LIBBPF_SYS_LIBRARY_PATH=/usr/lib/x86_64-linux-gnu \
	CARGO_TARGET_DIR=target/vm cargo test --no-run --release --quiet \
	--target x86_64-unknown-linux-gnu --features static -p fsprobe-cli \
	--message-format=json >"$json"
rm -f "$out"/tests/*
python3 - "$json" "$out" <<'PY'
import json, shutil, sys
out = sys.argv[2]
for line in open(sys.argv[1]):
    msg = json.loads(line)
    if msg.get("reason") != "compiler-artifact" or not msg.get("executable"):
        continue
    kind = msg["target"]["kind"]
    name = msg["target"]["name"]
    if kind == ["bin"] and name == "fsprobe" and not msg["profile"]["test"]:
        shutil.copy(msg["executable"], f"{out}/fsprobe")
    elif kind == ["test"]:
        shutil.copy(msg["executable"], f"{out}/tests/{name}")
PY
rm -f "$json"
for f in "$out/fsprobe" "$out"/tests/*; do
	if ! file "$f" | grep -q "statically linked\|static-pie linked"; then
		echo "vmtest: $f is not static" >&2
		exit 1
	fi
done

#!/usr/bin/env bash
# Builds the Debian package of fsprobe (target/debian/fsprobe_*.deb) with
# cargo-deb: the release binary, the man page and the bash/zsh/fish
# completions (generated from the clap definitions by fsprobe-gen), the
# systemd unit, /etc/default/fsprobe and a logrotate file (packaging/).
#   --check  then lists the package and checks that each of those is in it.
# Installs cargo-deb (cargo install --locked) when it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
check=0
[ "${1:-}" = --check ] && check=1

if ! command -v cargo-deb >/dev/null 2>&1; then
	echo "package: installing cargo-deb" >&2
	cargo install --locked --quiet cargo-deb
fi
cargo build --release --quiet -p fsprobe-cli
gen=target/fsprobe-gen
rm -rf "$gen"
target/release/fsprobe-gen "$gen"
gzip -9n "$gen/fsprobe.1"
deb=$(cargo deb -p fsprobe-cli --no-build --strip --no-dbgsym --quiet | tail -n 1)
echo "package: $deb" >&2
[ "$check" = 1 ] || exit 0

info=$(dpkg-deb --info "$deb")
contents=$(dpkg-deb --contents "$deb" | awk '{print $6}')
fail=0
for field in "Package: fsprobe" "Section: admin" "Depends: .*libelf1"; do
	grep -q "^ $field" <<<"$info" || { echo "package: no '$field' in dpkg-deb --info" >&2; fail=1; }
done
for file in ./usr/bin/fsprobe ./usr/share/man/man1/fsprobe.1.gz \
	./usr/share/bash-completion/completions/fsprobe ./usr/share/zsh/vendor-completions/_fsprobe \
	./usr/share/fish/vendor_completions.d/fsprobe.fish ./usr/lib/systemd/system/fsprobe.service \
	./etc/default/fsprobe ./etc/logrotate.d/fsprobe; do
	grep -qx "$file" <<<"$contents" || { echo "package: $file is missing" >&2; fail=1; }
done
# The packaged man page and completions are those of the packaged binary.
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
dpkg-deb -x "$deb" "$tmp"
"$tmp/usr/bin/fsprobe" --version | grep -q "^fsprobe " || { echo "package: fsprobe --version" >&2; fail=1; }
zcat "$tmp/usr/share/man/man1/fsprobe.1.gz" | grep -q -- 'nats\\-spool' ||
	{ echo "package: the man page does not list --nats-spool" >&2; fail=1; }
grep -q -- '--syslog-tcp' "$tmp/usr/share/bash-completion/completions/fsprobe" ||
	{ echo "package: the bash completion does not know --syslog-tcp" >&2; fail=1; }
grep -q '^ExecReload=/bin/kill -HUP \$MAINPID' "$tmp/usr/lib/systemd/system/fsprobe.service" ||
	{ echo "package: the unit has no ExecReload sending SIGHUP" >&2; fail=1; }
[ "$fail" = 0 ] && echo "package: contents checked" >&2
exit "$fail"

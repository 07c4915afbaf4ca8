#!/usr/bin/env bash
# Fetches Debian cloud kernels through apt into $CACHE/kernels/<series>/vmlinuz.
# Usage: kernels.sh CACHE SERIES...   (series: 5.10 6.1 6.12)
# A private apt configuration adds bullseye/bookworm/trixie without touching
# the system's sources. Kernels already in the cache are not fetched again.
set -euo pipefail
cache=$(mkdir -p "$1" && cd "$1" && pwd)
shift
apt_dir=$cache/apt
need=()
for series in "$@"; do
	[ -s "$cache/kernels/$series/vmlinuz" ] || need+=("$series")
done
[ "${#need[@]}" -eq 0 ] && exit 0

mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs/partial"
mirror=$(awk '/^URIs:/{print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
mirror=${mirror:-http://deb.debian.org/debian}
printf 'deb %s %s main\n' "$mirror" bullseye "$mirror" bookworm "$mirror" trixie >"$apt_dir/sources.list"
A=(-o "Dir::Etc::SourceList=$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache::archives=$apt_dir/debs" -o APT::Sandbox::User=root)
apt-get "${A[@]}" update -qq >/dev/null

for series in "${need[@]}"; do
	re="^linux-image-${series//./\\.}\.[0-9][^ ]*-cloud-amd64$"
	pkg=$(apt-cache "${A[@]}" pkgnames linux-image- | grep -E "$re" | sort -V | tail -n 1)
	if [ -z "$pkg" ]; then
		echo "vmtest: no cloud kernel package for $series" >&2
		exit 1
	fi
	echo "vmtest: fetching $pkg" >&2
	(cd "$apt_dir/debs" && apt-get "${A[@]}" download "$pkg" >/dev/null)
	tmp=$(mktemp -d)
	dpkg-deb -x "$apt_dir/debs/${pkg}"_*.deb "$tmp"
	mkdir -p "$cache/kernels/$series"
	cp "$tmp"/boot/vmlinuz-* "$cache/kernels/$series/vmlinuz"
	basename "$pkg" >"$cache/kernels/$series/package"
	rm -rf "$tmp"
done

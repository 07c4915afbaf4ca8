#!/usr/bin/env bash
# Fetches Debian cloud kernels through apt into CACHE/kernels/<series>/:
#   vmlinuz   the kernel image (from dpkg-deb -x of the package)
#   package   the package name and version it came from
# Usage: kernels.sh [--update] CACHE SERIES...   (series: 5.10 6.1 6.12)
#
# Series map to suites: 5.10 -> bullseye, 6.1 -> bookworm, 6.12 -> trixie.
# A private apt configuration under CACHE/apt lists those suites (and their
# -security suites) from the mirrors the system already uses; the system's
# own sources and lists are left alone. A series already in the cache is not
# fetched again, unless --update finds a newer package for it.
set -euo pipefail
update=0
if [ "${1:-}" = --update ]; then
	update=1
	shift
fi
cache=$(mkdir -p "$1" && cd "$1" && pwd)
shift

suite_of() {
	case $1 in
	5.10) echo bullseye ;;
	6.1) echo bookworm ;;
	6.12) echo trixie ;;
	*) echo "vmtest: unknown kernel series '$1' (known: 5.10 6.1 6.12)" >&2; return 1 ;;
	esac
}

need=()
for series in "$@"; do
	suite_of "$series" >/dev/null
	if [ "$update" = 1 ] || [ ! -s "$cache/kernels/$series/vmlinuz" ]; then
		need+=("$series")
	fi
done
[ "${#need[@]}" -eq 0 ] && exit 0

# The mirrors the system uses (deb822 or one-line format), else Debian's CDN.
uris() {
	{
		cat /etc/apt/sources.list.d/*.sources 2>/dev/null | awk '/^URIs:/{for(i=2;i<=NF;i++)print $i}'
		cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null |
			awk '$1=="deb"{for(i=2;i<=NF;i++)if($i ~ /^[a-z]+:\/\//){print $i;break}}'
	} | sed 's:/*$::'
}
mirror=$(uris | grep -v -- '-security' | head -n 1 || true)
security=$(uris | grep -- '-security' | head -n 1 || true)
mirror=${mirror:-http://deb.debian.org/debian}
security=${security:-http://deb.debian.org/debian-security}

apt_dir=$cache/apt
mkdir -p "$apt_dir/lists/partial" "$apt_dir/debs"
sources=$apt_dir/sources.list
{
	for series in "${need[@]}"; do
		suite=$(suite_of "$series")
		echo "deb $mirror $suite main"
		echo "deb $security $suite-security main"
	done
} | sort -u >"$sources.new"
mv "$sources.new" "$sources"
A=(-o "Dir::Etc::SourceList=$sources" -o Dir::Etc::SourceParts=/dev/null
	-o "Dir::State::Lists=$apt_dir/lists" -o "Dir::Cache=$apt_dir/cache"
	-o APT::Sandbox::User=root)
mkdir -p "$apt_dir/cache"
echo "vmtest: apt update (private lists in $apt_dir)" >&2
apt-get "${A[@]}" update -qq >/dev/null

for series in "${need[@]}"; do
	re="^linux-image-${series//./\\.}\.[0-9][^ ]*-cloud-amd64$"
	pkg=$(apt-cache "${A[@]}" pkgnames linux-image- | grep -E "$re" | sort -V | tail -n 1 || true)
	if [ -z "$pkg" ]; then
		echo "vmtest: no linux-image-$series.*-cloud-amd64 package in $(suite_of "$series")" >&2
		exit 1
	fi
	version=$(apt-cache "${A[@]}" policy "$pkg" | awk '/Candidate:/{print $2}')
	dir=$cache/kernels/$series
	if [ -s "$dir/vmlinuz" ] && [ "$(cat "$dir/package" 2>/dev/null)" = "$pkg $version" ]; then
		continue
	fi
	echo "vmtest: fetching $pkg $version" >&2
	rm -f "$apt_dir/debs"/*.deb
	(cd "$apt_dir/debs" && apt-get "${A[@]}" download -qq "$pkg" >/dev/null)
	tmp=$(mktemp -d "$cache/.extract.XXXXXX")
	dpkg-deb -x "$apt_dir/debs/${pkg}"_*.deb "$tmp"
	mkdir -p "$dir"
	cp "$tmp"/boot/vmlinuz-* "$dir/vmlinuz.new"
	mv "$dir/vmlinuz.new" "$dir/vmlinuz"
	echo "$pkg $version" >"$dir/package"
	rm -rf "$tmp" "$apt_dir/debs"/*.deb
done

#!/usr/bin/env bash
# fsprobe's main job on a demo default: watch a scratch directory while a
# small scripted workload touches files in it, and show the events.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$(id -u)" -ne 0 ]; then
	echo "fsprobe: the demo loads BPF programs: run it as root (sudo $0)" >&2
	exit 1
fi
scripts/setup.sh
cargo build --release --quiet
bin=target/release/fsprobe

demo=$(mktemp -d /tmp/fsprobe-demo.XXXXXX)
log=$(mktemp /tmp/fsprobe-demo-log.XXXXXX)
trap 'rm -rf "$demo" "$log"' EXIT
mkdir -p "$demo/etc"
echo "root:x:0:0" > "$demo/etc/passwd"

echo "== fsprobe watching $demo (all eight events) =="
"$bin" "$demo" -e open -e mkdir -e link -e rename -e setattr -e unlink -e rmdir -e modify \
	--format table 2>"$log" &
probe=$!
until grep -q "fsprobe: ready" "$log"; do
	kill -0 "$probe" 2>/dev/null || { cat "$log" >&2; exit 1; }
	sleep 0.1
done
cat "$log"

# The workload: every kind of event, from a few different processes.
cd "$demo"
mkdir projects                       # mkdir
echo "hello" > projects/notes.txt    # open + modify
cat etc/passwd > /dev/null           # open (read)
mv projects/notes.txt projects/todo.txt   # rename
ln projects/todo.txt backup.txt      # link
chmod 600 backup.txt                 # setattr (mode)
truncate -s 2 projects/todo.txt      # open + setattr (size)
touch etc/passwd                     # open + setattr (times)
rm backup.txt                        # unlink
mv projects/todo.txt /tmp/fsprobe-demo-moved.txt   # moved out: still followed
chmod 644 /tmp/fsprobe-demo-moved.txt
rm /tmp/fsprobe-demo-moved.txt
rmdir projects                       # rmdir
cd - >/dev/null

sleep 0.5
kill -INT "$probe"
wait "$probe"
tail -n 1 "$log"

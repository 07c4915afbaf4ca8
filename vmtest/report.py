#!/usr/bin/env python3
"""Reads one vmtest run's logs and prints the kernel x backend matrix.

Usage: report.py RUN_DIR KERNELS BACKENDS   (comma-separated lists)

RUN_DIR holds, per guest (one per kernel K and backend B): K-B.tests.log (the
tests' serial port), K-B.console.log (the kernel console), K-B.status (written
by run.sh), K-B.targets (the test binaries that guest runs) and `expected`
(the tests each binary lists, one "binary test" per line). Exits 1 when a test failed or a
guest did not finish; the last line is always `vmtest: N passed, M failed`.
"""
import os
import re
import sys
from collections import Counter, defaultdict

MARK = re.compile(r"=== VMTEST (\w+) ?(.*)$")
RESULT = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
SLOW = re.compile(r"^test (\S+) has been running for over")
SECTION = re.compile(r"^---- (\S+) stdout ----")
KERNEL_TROUBLE = re.compile(
    r"BUG:|WARNING:|Oops|Kernel panic|soft lockup|hard LOCKUP|blocked for more than"
    r"|rcu_\w+ detected stalls|segfault|general protection|Out of memory|oom-kill"
)
DETAIL_LINES = 40


def read(path):
    try:
        with open(path, "rb") as f:
            return f.read().decode("utf-8", "replace").replace("\r", "").splitlines()
    except OSError:
        return []


class Binary:
    def __init__(self):
        self.results = {}  # test -> ok | FAILED | ignored
        self.sections = {}  # failed test -> its output
        self.slow = []  # tests libtest said were running for over 60 s
        self.lines = []
        self.rc = None  # None: never ended
        self.secs = 0
        self.summary = False  # libtest printed "test result:"


def parse_tests_log(lines):
    info = {"kernel": "?", "info": "", "done": False, "leftover": []}
    runs = defaultdict(dict)  # backend -> binary -> Binary
    cur = None
    for line in lines:
        m = MARK.search(line)
        if m:
            kind, rest = m.group(1), m.group(2).split()
            if kind == "KERNEL" and rest:
                info["kernel"] = rest[0]
            elif kind == "INFO":
                info["info"] = " ".join(rest)
            elif kind == "BEGIN" and len(rest) >= 2:
                cur = runs[rest[0]].setdefault(rest[1], Binary())
            elif kind == "END" and len(rest) >= 2:
                b = runs[rest[0]].setdefault(rest[1], Binary())
                fields = dict(f.split("=", 1) for f in rest[2:] if "=" in f)
                b.rc = int(fields.get("rc", "-1"))
                b.secs = int(fields.get("secs", "0"))
                split_sections(b)
                cur = None
            elif kind == "LEFTOVER":
                info["leftover"].append(" ".join(rest))
            elif kind == "DONE":
                info["done"] = True
            continue
        if cur is None:
            continue
        cur.lines.append(line)
        if m := RESULT.match(line):
            cur.results[m.group(1)] = m.group(2)
        elif m := SLOW.match(line):
            cur.slow.append(m.group(1))
        elif line.startswith("test result:"):
            cur.summary = True
    if cur is not None:
        split_sections(cur)
    return info, runs


def split_sections(b):
    """libtest's '---- NAME stdout ----' sections, up to the next one or 'failures:'."""
    name = None
    for line in b.lines:
        if m := SECTION.match(line):
            name = m.group(1)
            b.sections[name] = []
        elif line == "failures:" or line.startswith("test result:"):
            name = None
        elif name:
            b.sections[name].append(line)
    for name, text in b.sections.items():
        text = [l for l in text if not l.startswith("note: run with `RUST_BACKTRACE=")]
        while text and not text[0].strip():
            text.pop(0)
        while text and not text[-1].strip():
            text.pop()
        b.sections[name] = text


def kernel_trouble(lines):
    """Distinct kernel warnings on the console, with how often each came."""
    seen = Counter()
    order = []
    for line in lines:
        if not KERNEL_TROUBLE.search(line):
            continue
        text = re.sub(r"^\[\s*\d+\.\d+\]\s*", "", line)
        key = re.sub(r"\d+", "N", text)
        if key not in seen:
            order.append((key, text))
        seen[key] += 1
    return [(text, seen[key]) for key, text in order]


def main():
    run_dir, kernels, backends = sys.argv[1], sys.argv[2].split(","), sys.argv[3].split(",")
    expected = defaultdict(list)
    for line in read(os.path.join(run_dir, "expected")):
        if " " in line:
            binary, test = line.split(" ", 1)
            expected[binary].append(test)
    binaries = sorted(expected) or sorted(
        f for f in os.listdir(os.path.join(run_dir, "bin", "tests"))
    )

    rows, fails, details, guests, troubles = [], [], [], [], []
    total_pass = total_fail = 0
    all_done = True
    for k in kernels:
        for backend in backends:
            unit = f"{k}-{backend}"
            # The targets this guest was given (run.sh: vmtest/plan or --tests).
            targets = read(os.path.join(run_dir, f"{unit}.targets"))
            unit_binaries = targets[0].split() if targets else binaries
            tests_log = read(os.path.join(run_dir, f"{unit}.tests.log"))
            console = read(os.path.join(run_dir, f"{unit}.console.log"))
            if not any("=== VMTEST KERNEL" in l for l in tests_log):
                tests_log = console  # no second serial port: everything is on the console
            info, runs = parse_tests_log(tests_log)
            status = dict(l.partition("=")[::2] for l in read(os.path.join(run_dir, f"{unit}.status")))
            reason = status.get("reason", "")
            secs = status.get("secs", "?")

            running = None
            passed = failed = ignored = notrun = 0
            secs_b = 0
            for binary in unit_binaries:
                b = runs.get(backend, {}).get(binary)
                names = expected.get(binary, [])
                if b is None:
                    notrun += len(names)
                    continue
                secs_b += b.secs
                for test, res in b.results.items():
                    if res == "ok":
                        passed += 1
                    elif res == "ignored":
                        ignored += 1
                    else:
                        failed += 1
                        fails.append(f"FAIL {k} {backend} {binary}::{test}")
                        details.append((fails[-1], b.sections.get(test, ["(no output captured)"])))
                notrun += len([t for t in names if t not in b.results])
                if b.rc is None:
                    running = (backend, binary, b)
                    failed += 1
                    busy = [t for t in dict.fromkeys(b.slow) if t not in b.results]
                    what = f"; running for over 60 s: {', '.join(busy)}" if busy else ""
                    fails.append(f"FAIL {k} {backend} {binary}::<did not finish{what}>")
                    details.append((fails[-1], b.lines[-DETAIL_LINES:] or ["(no output)"]))
                elif b.rc != 0 and not b.summary:
                    failed += 1
                    how = f"killed by the in-guest --test-timeout after {b.secs} s" if b.rc == 137 else f"exit status {b.rc}"
                    fails.append(f"FAIL {k} {backend} {binary}::<{how}, no test summary>")
                    details.append((fails[-1], b.lines[-DETAIL_LINES:] or ["(no output)"]))
            total_pass += passed
            total_fail += failed
            rows.append((k, info["kernel"], backend, passed, failed, ignored, notrun, secs_b))

            if info["done"]:
                state = f"powered off after {secs} s"
            else:
                all_done = False
                why = reason or f"exited without finishing (qemu status {status.get('qemu_rc', '?')})"
                state = f"DID NOT FINISH after {secs} s: {why}"
                if running:
                    state += f"; was running {running[1]}"
            if os.path.exists(os.path.join(run_dir, f"{unit}.attempt1.status")):
                state += " (second boot: the first crashed or locked up)"
            guests.append(f"  {k:<5} {backend:<10} {info['kernel']}: {state}")
            if info["info"] and backend == backends[0]:
                guests.append(f"        {info['info']}")
            for left in info["leftover"]:
                guests.append(f"        leftover process killed after a test binary: {left}")
            for text, n in kernel_trouble(console)[:8]:
                troubles.append(f"  {k:<5} {backend:<10} {text}" + (f"   (x{n})" if n > 1 else ""))

    print(f"{'kernel':<7} {'uname -r':<30} {'backend':<11} {'passed':>6} {'failed':>6} {'ignored':>7} {'notrun':>6} {'time':>7}")
    for k, kernel, backend, p, f, i, n, s in rows:
        print(f"{k:<7} {kernel:<30} {backend:<11} {p:>6} {f:>6} {i:>7} {n:>6} {s:>5} s")
    print("guests:")
    for line in guests:
        print(line)
    if troubles:
        print("kernel warnings on the console:")
        for line in troubles:
            print(line)
    for line in fails:
        print(line)
    shown_before = {}
    for head, text in details:
        # Many tests often fail the same way (e.g. the probe does not load):
        # print each distinct output once.
        key = "\n".join(re.sub(r"thread '[^']*' \(\d+\)", "thread", l) for l in text)
        if key in shown_before:
            print(f"--- {head}: same output as {shown_before[key]}")
            continue
        shown_before[key] = head.split(" ", 1)[1]
        print(f"--- {head}")
        shown = text[:DETAIL_LINES]
        for line in shown:
            print(f"    {line}")
        if len(text) > len(shown):
            print(f"    ... ({len(text) - len(shown)} more lines in the log)")
    print(f"vmtest: {total_pass} passed, {total_fail} failed")
    sys.exit(1 if total_fail or not all_done else 0)


if __name__ == "__main__":
    main()

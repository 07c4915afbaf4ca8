#!/usr/bin/env python3
"""Reads the guests' serial logs and prints the kernel x backend matrix.

Usage: report.py LOG_DIR KERNEL...   (logs are LOG_DIR/<kernel>.log)
Exits 1 when a test failed or a guest did not finish.
"""
import re
import sys
from collections import defaultdict

TEST = re.compile(r"^test (\S+) \.\.\. (ok|FAILED|ignored)")
BEGIN = re.compile(r"^=== VMTEST BEGIN (\S+) (\S+)")
END = re.compile(r"^=== VMTEST END (\S+) (\S+) rc=(\d+)")


def parse(path):
    """Per backend: passed, failed (names), and each failed test's output."""
    results = defaultdict(lambda: {"passed": 0, "failed": [], "rc": []})
    details = {}
    kernel, done = "?", False
    backend = binary = None
    block = []
    try:
        lines = open(path, errors="replace").read().replace("\r", "").splitlines()
    except OSError:
        return kernel, results, details, False
    for line in lines:
        if m := re.search(r"=== VMTEST KERNEL (\S+)", line):
            kernel = m.group(1)
        elif "=== VMTEST DONE" in line:
            done = True
        elif m := BEGIN.match(line):
            backend, binary, block = m.group(1), m.group(2), []
        elif m := END.match(line):
            if int(m.group(3)) != 0 and not results[backend]["failed"]:
                results[backend]["rc"].append(f"{binary} exited {m.group(3)}")
            for name, text in split_failures(block):
                details[(backend, binary, name)] = text
            backend = None
        elif backend:
            block.append(line)
            if m := TEST.match(line):
                if m.group(2) == "ok":
                    results[backend]["passed"] += 1
                elif m.group(2) == "FAILED":
                    results[backend]["failed"].append(f"{binary}::{m.group(1)}")
    return kernel, results, details, done


def split_failures(block):
    """libtest's '---- NAME stdout ----' sections."""
    name, text = None, []
    for line in block:
        if m := re.match(r"^---- (\S+) stdout ----", line):
            if name:
                yield name, text
            name, text = m.group(1), []
        elif line.startswith("failures:") and name:
            yield name, text
            name = None
        elif name:
            text.append(line)
    if name:
        yield name, text


def main():
    log_dir, kernels = sys.argv[1], sys.argv[2:]
    total_pass = total_fail = 0
    bad = False
    rows, failures = [], []
    for k in kernels:
        kernel, results, details, done = parse(f"{log_dir}/{k}.log")
        if not done:
            bad = True
            failures.append(f"GUEST {k}: did not finish (see {log_dir}/{k}.log)")
        for backend, r in sorted(results.items()):
            n_fail = len(r["failed"]) + (1 if r["rc"] and not r["failed"] else 0)
            total_pass += r["passed"]
            total_fail += n_fail
            rows.append((k, kernel, backend, r["passed"], n_fail))
            for f in r["failed"]:
                binary, test = f.split("::", 1)
                failures.append(f"FAIL {k} {backend} {f}")
                text = details.get((backend, binary, test), [])
                failures.extend("    " + t for t in text[:25])
            failures.extend(f"FAIL {k} {backend} {x}" for x in r["rc"])
    print(f"{'kernel':<8} {'uname -r':<28} {'backend':<11} {'passed':>6} {'failed':>6}")
    for k, kernel, backend, p, f in rows:
        print(f"{k:<8} {kernel:<28} {backend:<11} {p:>6} {f:>6}")
    for line in failures:
        print(line)
    print(f"vmtest: {total_pass} passed, {total_fail} failed")
    sys.exit(1 if bad or total_fail else 0)


if __name__ == "__main__":
    main()

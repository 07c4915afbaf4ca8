//! The sections of results.md beyond the overhead and buffer tables: BPF
//! time per program, the rename loop, producers, time to ready and memory,
//! and the CLI's output cost.
use std::fmt::Write;

use super::{listener, max_rate, mib, num, ratios, thousands};
use crate::report::{Results, Row, ScenarioResult};
use crate::scenario::rename_loop_tool;
use crate::stats::Spread;

/// fsprobe's warm passes: the same operations again on the same probe,
/// every directory already taught to the path caches.
pub fn steady_state(s: &ScenarioResult) -> String {
    let warm: Vec<(&Row, Spread)> = (s.rows.iter())
        .filter_map(|r| Some((r, r.warm_ns_per_op?)))
        .collect();
    if warm.is_empty() {
        return String::new();
    }
    let with_stats_pass = warm.iter().any(|(r, _)| r.bpf_in_stats_pass());
    let table = match with_stats_pass {
        true => {
            ". A third pass, with BPF statistics on, gives the in-kernel time; its own ns/op shows what the statistics cost:\n\n| listener | ns/op, warm pass (median) | min–max | × baseline | × per round | BPF ns/op, statistics pass | ns/op, statistics pass | first pass ns/op |\n|---|---|---|---|---|---|---|---|\n"
        }
        false => {
            ":\n\n| listener | ns/op, warm pass (median) | min–max | × baseline | × per round | BPF ns/op, warm pass | first pass: ns/op, BPF ns/op |\n|---|---|---|---|---|---|---|\n"
        }
    };
    let mut out = String::from(
        "\nThe steady state: each fsprobe run above runs the same operations a second time on the same probe (the warm pass), right after the first; every directory is then known to the path caches, which the first pass taught once per directory (a walk to the first known directory and a record that teaches it). Timed the same way, with the same baseline",
    );
    out.push_str(table);
    for (row, ns) in warm {
        let first = row.ns_per_op.map_or("–".into(), |s| thousands(s.median));
        let last = match with_stats_pass {
            true => format!(
                "{} | {} | {first}",
                num(row.bpf_ns_per_op, 0),
                row.stats_ns_per_op
                    .map_or("–".into(), |s| thousands(s.median)),
            ),
            false => format!(
                "{} | {first}, {}",
                num(row.warm_bpf_ns_per_op, 0),
                num(row.bpf_ns_per_op, 0)
            ),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {}–{} | {} | {} | {last} |",
            listener(row),
            thousands(ns.median),
            thousands(ns.min),
            thousands(ns.max),
            num(row.warm_ratio_to_baseline, 2),
            ratios(row.warm_ratio_spread),
        );
    }
    out
}

/// Per listener with BPF statistics, each program's time, runs and time
/// per run, and the total.
pub fn bpf_programs(s: &ScenarioResult) -> String {
    let rows: Vec<&Row> = s
        .rows
        .iter()
        .filter(|r| !r.bpf_programs.is_empty())
        .collect();
    if rows.is_empty() {
        return String::new();
    }
    let over = match rows.iter().any(|r| r.bpf_in_stats_pass()) {
        true => {
            "over a pass of its own after the timed ones, with statistics on only for it (the steady state), divided by the pass's operations"
        }
        false => "over the run, divided by the run's operations",
    };
    let mut out = format!(
        "\nIn-kernel time per BPF program (bpf_stats {over}; the syscall hooks also run for every other task's syscalls meanwhile, which shows in runs/op):\n\n| listener | program | ns/op | runs/op | ns/run |\n|---|---|---|---|---|\n",
    );
    for row in rows {
        let name = listener(row);
        for p in &row.bpf_programs {
            let _ = writeln!(
                out,
                "| {name} | {} | {:.0} | {:.2} | {:.0} |",
                p.name, p.ns_per_op, p.runs_per_op, p.ns_per_run
            );
        }
        let _ = writeln!(
            out,
            "| {name} | **total** | **{}** | | |",
            num(row.bpf_ns_per_op, 0)
        );
    }
    out
}

fn walks(row: &Row) -> (String, String) {
    let n = |x: Option<u64>| x.map_or("–".into(), |v| thousands(v as f64));
    (n(row.walks_full), n(row.walks_cached))
}

/// Each mode quiet and with the unrelated rename loop, side by side.
pub fn rename_loop(s: &ScenarioResult) -> String {
    let tool = rename_loop_tool();
    let looped: Vec<&Row> = s.rows.iter().filter(|r| r.tool == tool).collect();
    if looped.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nThe unrelated rename loop: a helper process on CPU 1 renames one file outside the watched tree back and forth; each mode ran quiet and then with the loop, in every round (goal: within 5 % of quiet). Walks are the probe's in-kernel path walks over the runs (`Summary::walks_full`, `walks_cached`).\n\n| mode | quiet ns/op | with the loop ns/op | loop / quiet | renames/s | walks to the root, quiet | cut short, quiet | to the root, loop | cut short, loop | status |\n|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for l in looped {
        let Some(q) = s
            .rows
            .iter()
            .find(|r| r.tool == "fsprobe" && r.mode == l.mode)
        else {
            continue;
        };
        let median = |r: &Row| r.ns_per_op.map(|x| x.median);
        let ratio = match (median(l), median(q)) {
            (Some(a), Some(b)) if b > 0.0 => format!("{:.3}", a / b),
            _ => "–".into(),
        };
        let rates: Vec<f64> = l.runs.iter().filter_map(|r| r.side_load_rate).collect();
        let rate = crate::stats::Spread::of(&rates).map(|x| x.median);
        let ((qf, qc), (lf, lc)) = (walks(q), walks(l));
        let _ = writeln!(
            out,
            "| {} | {} | {} | {ratio} | {} | {qf} | {qc} | {lf} | {lc} | {} |",
            l.mode,
            median(q).map_or("–".into(), thousands),
            median(l).map_or("–".into(), thousands),
            num(rate, 0),
            l.status
        );
    }
    out
}

/// The highest clean rate with one and with two producers.
pub fn producers(r: &Results) -> String {
    if r.producers.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n## Scale with producers\n\nThe default mode at the default size, the workload split over 1 or 2 processes (on CPU 0, then CPUs 0 and 1; the consumer shares CPU 1 with the second). Each producer runs its share of every millisecond back to back and sleeps until the next (\"ticked\"), so it takes only the CPU its operations need. The drop limit per buffer size is in the buffer table above.\n\n| scenario | producers | mode | buffer pages | step length | max events/s | steps (rate: lost) | status |\n|---|---|---|---|---|---|---|---|\n",
    );
    for m in &r.producers {
        let steps: Vec<String> = m
            .steps
            .iter()
            .map(|s| format!("{}: {}", thousands(s.rate as f64), thousands(s.lost as f64)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {} s | {} | {} | {} |",
            m.scenario,
            m.producers,
            m.mode,
            m.buffer_pages,
            m.step_secs,
            max_rate(m),
            steps.join(", "),
            m.status
        );
    }
    out
}

/// Time to ready and memory, warm and cold.
pub fn startup(r: &Results) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        let Some(st) = &s.startup else { continue };
        let _ = write!(
            out,
            "\n## Time to ready and memory (scenario {}: {} inodes)\n\nFrom starting each listener until it is ready: `Probe::start` returning (the library in this process), the CLI's \"fsprobe: ready\" line, inotifywait's \"Watches established\". Cold: after `sync` and `echo 3 > /proc/sys/vm/drop_caches` (checked: the kernel's dentry count must fall by 90 % of the tree). Memory once ready: `memlock` of the BPF maps, and the process's resident size (the library: this process, before → after the start), of which its mappings of BPF maps (the ring buffer, the watch hints: pages of the maps, in their memlock too). The total counts those pages once: kernel map memory plus resident, less the mapped maps (the library's total is not given: this process holds the benchmark too). Starts run on every CPU.\n\n| listener | caches | ready in (s, median) | min–max | runs | watched inodes | kernel map memory | resident | of it, mapped BPF maps | total | status |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
            st.scenario,
            thousands(st.tree_inodes as f64)
        );
        for row in &st.rows {
            let (median, range) = match row.ready_s {
                Some(x) => (
                    format!("{:.2}", x.median),
                    format!("{:.2}–{:.2}", x.min, x.max),
                ),
                None => ("–".into(), "–".into()),
            };
            let rss = match row.rss_before_bytes {
                Some(b) => format!("{} → {}", mib(Some(b)), mib(row.rss_bytes)),
                None => mib(row.rss_bytes),
            };
            let total = match (row.rss_before_bytes, row.kernel_map_bytes, row.rss_bytes) {
                (None, Some(maps), Some(rss)) => mib(Some(
                    maps + rss - row.rss_bpf_map_bytes.unwrap_or(0).min(rss),
                )),
                _ => "–".into(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {median} | {range} | {} | {} | {} | {rss} | {} | {total} | {} |",
                row.listener,
                row.caches,
                row.runs.len(),
                row.watched.map_or("–".into(), |n| thousands(n as f64)),
                mib(row.kernel_map_bytes),
                mib(row.rss_bpf_map_bytes),
                row.status
            );
        }
        if !st.maps.is_empty() {
            out.push_str("\nThe probe's BPF maps once ready (warm):\n\n| map | type | max entries | entries | memlock |\n|---|---|---|---|---|\n");
            for m in &st.maps {
                let _ = writeln!(
                    out,
                    "| {} | {} | {} | {} | {} |",
                    m.name,
                    m.map_type,
                    thousands(f64::from(m.max_entries)),
                    m.entries.map_or("–".into(), |n| thousands(n as f64)),
                    mib(Some(m.memlock))
                );
            }
        }
    }
    out
}

/// The CLI binary's output cost.
pub fn cli_output(r: &Results) -> String {
    let mut out = String::new();
    for s in &r.scenarios {
        if s.cli_output.is_empty() {
            continue;
        }
        let _ = write!(
            out,
            "\n## The CLI's output cost (scenario {})\n\nThe `fsprobe` binary as a child process watching the tree, on the same workload. CPU is the child's (all threads) from the workload's start until it went idle, per event; the user share is from its /proc/PID/stat ticks; wait4 gives its whole life (start-up, the run, detaching); start-up CPU is what it used before the workload began. Events per CPU-second is what one CPU could sustain at that cost. Its allocations are not measured: the bench's counting allocator sees only its own process (and an LD_PRELOAD counter would not work on a static binary).\n\n| command | events | lost | CPU ns/event | user share | events/s | events per CPU-second | wait4 user / sys (s) | start-up CPU (s) | ready in (s) | resident | kernel map memory | workload ns/op | BPF ns/op | allocations | status |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
            s.scenario.id
        );
        let n = |x: Option<u64>| x.map_or("–".into(), |v| thousands(v as f64));
        let pct = |x: Option<f64>| x.map_or("–".into(), |v| format!("{:.0} %", v * 100.0));
        for c in &s.cli_output {
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} | {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
                c.command,
                n(c.events),
                n(c.lost),
                num(c.cpu_ns_per_event, 0),
                pct(c.user_share),
                c.events_per_s.map_or("–".into(), thousands),
                c.events_per_cpu_s.map_or("–".into(), thousands),
                num(c.rusage_user_s, 2),
                num(c.rusage_sys_s, 2),
                num(c.startup_cpu_s, 2),
                num(c.ready_s, 2),
                mib(c.rss_bytes),
                mib(c.kernel_map_bytes),
                c.ns_per_op.map_or("–".into(), thousands),
                num(c.bpf_ns_per_op, 0),
                c.allocations,
                c.status
            );
        }
        if let Some(c) = s.cli_output.first() {
            let _ = writeln!(out, "\nBinary: {}.", c.binary);
        }
    }
    out
}

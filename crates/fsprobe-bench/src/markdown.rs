//! results.md: the tables a person reads.
mod sections;

use std::fmt::Write;

use crate::report::{Results, Row, ScenarioResult};

pub(crate) fn num(x: Option<f64>, digits: usize) -> String {
    x.map_or("–".into(), |v| format!("{v:.digits$}"))
}

pub(crate) fn thousands(x: f64) -> String {
    let s = format!("{:.0}", x);
    let (sign, digits) = s.split_at(usize::from(s.starts_with('-')));
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    format!("{sign}{out}")
}

fn ns(row: &Row) -> (String, String) {
    match row.ns_per_op {
        Some(s) => (
            thousands(s.median),
            format!("{}–{}", thousands(s.min), thousands(s.max)),
        ),
        None => ("–".into(), "–".into()),
    }
}

fn delivered(row: &Row) -> String {
    if row.runs.is_empty() || (row.expected == 0 && row.lost.is_none()) {
        return "–".into();
    }
    format!(
        "{} / {}",
        thousands(row.delivered as f64),
        thousands(row.expected as f64)
    )
}

fn lost(row: &Row) -> String {
    match row.lost {
        Some(l) => thousands(l as f64),
        None if row.runs.is_empty() || row.expected == 0 => "–".into(),
        None => "?".into(),
    }
}

/// Ratios over several runs (the paired ratios, per round) as min–max,
/// over one as itself.
pub(crate) fn ratios(spread: Option<crate::stats::Spread>) -> String {
    match spread {
        Some(s) if s.n > 1 => format!("{:.2}–{:.2}", s.min, s.max),
        Some(s) => format!("{:.2}", s.median),
        None => "–".into(),
    }
}

/// The header of the tables that `cells` fills, after the first column(s).
const CELLS_HEADER: &str = "ns/op (median) | min–max | × baseline | × per round | delivered / expected | lost | B/event (first / warm pass) | allocs/event (first / warm pass) | consumer CPU ns/event | BPF ns/op | status |";
const CELLS_RULE: &str = "---|---|---|---|---|---|---|---|---|---|---|";

/// The cells after the first column(s), ending the line.
fn cells(row: &Row) -> String {
    let (median, range) = ns(row);
    let status = match (&row.status[..], &row.note) {
        ("ok", None) => String::new(),
        ("ok", Some(n)) => n.clone(),
        (s, _) => s.to_string(),
    };
    format!(
        "| {median} | {range} | {} | {} | {} | {} | {} | {} | {} | {} | {status} |\n",
        num(row.ratio_to_baseline, 2),
        ratios(row.ratio_spread),
        delivered(row),
        lost(row),
        first_and_warm(row.bytes_per_event, row.warm_bytes_per_event, 0),
        first_and_warm(row.allocs_per_event, row.warm_allocs_per_event, 2),
        num(row.consumer_cpu_ns_per_event, 0),
        num(row.bpf_ns_per_op, 0),
    )
}

/// A heap figure of the first pass, and of the warm pass when there was one.
fn first_and_warm(first: Option<f64>, warm: Option<f64>, digits: usize) -> String {
    match warm {
        Some(_) => format!("{} / {}", num(first, digits), num(warm, digits)),
        None => num(first, digits),
    }
}

/// Bytes as MiB, or KiB below one MiB.
pub(crate) fn mib(bytes: Option<u64>) -> String {
    match bytes {
        None => "–".into(),
        Some(b) if b < 1 << 20 => format!("{:.0} KiB", b as f64 / 1024.0),
        Some(b) => format!("{:.1} MiB", b as f64 / 1048576.0),
    }
}

pub(crate) fn listener(row: &Row) -> String {
    if row.mode.is_empty() {
        row.tool.clone()
    } else {
        format!("{} ({})", row.tool, row.mode)
    }
}

/// fsprobe's start and stop times in a scenario (not in the timings).
fn lifecycle(s: &ScenarioResult) -> Option<String> {
    let row = s
        .rows
        .iter()
        .find(|r| r.tool == "fsprobe" && r.mode == "perf_buffer")?;
    let median = |f: &dyn Fn(&crate::run::RunResult) -> Option<f64>| {
        let v: Vec<f64> = row.runs.iter().filter_map(f).collect();
        crate::stats::Spread::of(&v).map(|s| s.median)
    };
    let memory = match (row.kernel_map_bytes, row.rss_bytes) {
        (None, None) => String::new(),
        (maps, rss) => format!(
            "; its BPF maps held {} (memlock) and this process was {} resident at most",
            mib(maps),
            mib(rss)
        ),
    };
    Some(format!(
        "fsprobe watched {} inodes; starting it (load, attach, seed) took {} s and stopping it {} s (medians, not timed){memory}.",
        s.watched_inodes.map_or("?".into(), |n| thousands(n as f64)),
        num(median(&|r| r.setup_s), 2),
        num(median(&|r| r.teardown_s), 2),
    ))
}

/// A drop limit (pages, then `unit`), or why there is none.
fn limit(s: &ScenarioResult, transport: &str, pages: Option<usize>, unit: &str) -> String {
    match pages {
        Some(p) => format!("{p}{unit}"),
        None if s.sweep.iter().any(|r| r.transport == transport) => {
            "none of the sizes tried".into()
        }
        None => "not measured".into(),
    }
}

pub(crate) fn max_rate(m: &crate::rate::RateResult) -> String {
    match (m.max_rate, m.producer_bound) {
        (Some(x), true) => format!("≥ {} (workload-bound)", thousands(x)),
        (Some(x), false) => thousands(x),
        (None, _) => "–".into(),
    }
}

pub fn render(r: &Results) -> String {
    let m = &r.machine;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# fsprobe benchmark results ({})\n",
        if r.quick { "quick" } else { "full" }
    );
    let me = &r.method;
    let stats = match &me.bpf_stats[..] {
        "" => format!("kernel.bpf_stats_enabled={}", u8::from(m.bpf_stats_enabled)),
        how => format!("BPF run-time statistics {how}"),
    };
    let _ = writeln!(
        out,
        "- Machine: {}, {} CPUs, {} GiB RAM; {}; kernel {}; scratch trees on {}; {stats}.",
        m.cpu_model, m.nproc, m.memory_gib, m.os, m.kernel, m.scratch_fs,
    );
    if !me.skipped.is_empty() {
        let _ = writeln!(out, "- Left out: {}.", me.skipped.join(", "));
    }
    let _ = writeln!(
        out,
        "- Run: {} ({:.0} s). fsprobe {} with the {} backend. {} open+close per run, {} repetitions (peers {}), interleaved B P B P …; workload pinned to CPU {}, consumers to CPU {}.",
        r.started,
        r.wall_s,
        r.fsprobe_version,
        me.backend,
        thousands(me.iterations as f64),
        me.repetitions,
        me.peer_repetitions,
        me.cpus.workload,
        me.cpus.consumer
    );
    for n in &r.notes {
        let _ = writeln!(out, "- {n}");
    }
    for (peer, why) in &r.peers_unavailable {
        let _ = writeln!(out, "- Peer not run: {peer}: {why}.");
    }
    for f in &r.failures {
        let _ = writeln!(out, "- **Failure** (the benchmark broke): {f}");
    }
    for p in &r.problems {
        let _ = writeln!(out, "- **Problem** (events unaccounted for): {p}");
    }
    out.push_str("\n## Overhead per scenario\n\nns/op is one open(O_RDONLY)+close; × is the median over the baseline's median, × per round each run over its own round's baseline (min–max); B/event and allocs/event are this process's heap over delivered events: in the first pass, which also fills the path caches (once per directory), and in a warm pass, the same operations again on the same probe (the steady state, whose time is in the table after each scenario's); consumer CPU is per delivered event (fsprobe: this process, i.e. the library's worker and the consuming thread; peers: their own processes, and for auditd also kauditd); BPF ns/op is the in-kernel time of the listener's BPF programs per operation (bpf_stats; every task's syscalls run the syscall hooks, see the table per program). The workload is a separate process.\n");
    if r.scenarios
        .iter()
        .flat_map(|s| &s.rows)
        .any(|row| row.bpf_in_stats_pass())
    {
        out.push_str("\nThe timed passes run without BPF statistics, as a listener runs in production: with them on, every run of a BPF program pays for two clock reads, and the syscall hooks run four times per open+close. BPF ns/op comes from one more pass of the same operations on the same listener, untimed, with statistics on only for it: the steady state, every directory already taught (its ns/op is in the steady-state table).\n");
    }
    for s in &r.scenarios {
        let _ = writeln!(
            out,
            "\n### Scenario {} ({} dirs, longest path {} B, built in {:.1} s)\n",
            s.scenario.label(),
            thousands(s.dirs as f64),
            s.max_path_bytes,
            s.build_s
        );
        if let Some(line) = lifecycle(s) {
            let _ = writeln!(out, "{line}\n");
        }
        let _ = write!(out, "| listener | {CELLS_HEADER}\n|---|{CELLS_RULE}\n");
        for row in &s.rows {
            let _ = write!(out, "| {} {}", listener(row), cells(row));
        }
        out.push_str(&sections::steady_state(s));
        out.push_str(&sections::bpf_programs(s));
        out.push_str(&sections::rename_loop(s));
    }
    out.push_str("\n## Buffer size per transport (fsprobe, perf_buffer resolution mode)\n\nThe ring buffer is one buffer of that many pages; the perf buffer is one buffer of that many pages per CPU. Every open is one event: delivered + lost must equal the operations. The drop limit is the smallest size from which no larger size lost anything.\n\n");
    let _ = write!(
        out,
        "| scenario | transport | pages | {CELLS_HEADER}\n|---|---|---|{CELLS_RULE}\n"
    );
    for s in &r.scenarios {
        for row in &s.sweep {
            let pages = row.buffer_pages.map_or("–".into(), |p| p.to_string());
            let (id, t) = (s.scenario.id, &row.transport);
            let _ = write!(out, "| {id} | {t} | {pages} {}", cells(row));
        }
    }
    out.push_str("\n| scenario | drop limit, ring_buffer (pages) | drop limit, perf_buffer (pages per CPU) |\n|---|---|---|\n");
    for s in &r.scenarios {
        let ring = limit(s, "ring_buffer", s.drop_limit_pages, "");
        let perf = limit(s, "perf_buffer", s.drop_limit_pages_perf, "");
        let _ = writeln!(out, "| {} | {ring} | {perf} |", s.scenario.id);
    }
    out.push_str("\n| transport | status |\n|---|---|\n");
    for (t, status) in &r.transports {
        let _ = writeln!(out, "| {t} | {status} |");
    }
    out.push_str("\n## Highest rate sustained with zero loss\n\n| scenario | mode | buffer pages | step length | max events/s | steps (rate: lost) | status |\n|---|---|---|---|---|---|---|\n");
    for m in &r.max_rate {
        let max = max_rate(m);
        let steps: Vec<String> = m
            .steps
            .iter()
            .map(|s| format!("{}: {}", thousands(s.rate as f64), thousands(s.lost as f64)))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} s | {max} | {} | {} |",
            m.scenario,
            m.mode,
            m.buffer_pages,
            m.step_secs,
            steps.join(", "),
            m.status
        );
    }
    out.push_str(&sections::producers(r));
    out.push_str(&sections::startup(r));
    out.push_str(&sections::cli_output(r));
    out.push_str("\n## The seed's published figures (FSProbe, Go, scenario 6, perf_buffer mode)\n\n| figure | seed | here |\n|---|---|---|\n");
    let s6 = r.scenarios.iter().find(|s| s.scenario.id == 6);
    let fsprobe = s6.and_then(|s| {
        s.rows
            .iter()
            .find(|x| x.tool == "fsprobe" && x.mode == "perf_buffer")
    });
    let here_ns = fsprobe.and_then(|f| f.ns_per_op).map_or("–".into(), |s| {
        format!(
            "{} ns (× {} baseline)",
            thousands(s.median),
            num(fsprobe.and_then(|f| f.ratio_to_baseline), 2)
        )
    });
    let _ = writeln!(out, "| ns/op | 11,500–27,500 | {here_ns} |");
    let _ = writeln!(
        out,
        "| heap per event | ~940 B | {} B, {} allocs (warm caches: {} B, {} allocs) |",
        num(fsprobe.and_then(|f| f.bytes_per_event), 0),
        num(fsprobe.and_then(|f| f.allocs_per_event), 2),
        num(fsprobe.and_then(|f| f.warm_bytes_per_event), 0),
        num(fsprobe.and_then(|f| f.warm_allocs_per_event), 2)
    );
    let limits = s6.map_or("–".into(), |s| {
        format!(
            "perf buffer: {}; ring buffer: {}",
            limit(s, "perf_buffer", s.drop_limit_pages_perf, " pages per CPU"),
            limit(s, "ring_buffer", s.drop_limit_pages, " pages")
        )
    });
    let _ = writeln!(
        out,
        "| drop limit | losses below 64 pages of perf buffer | {limits} |"
    );
    let rate = r.max_rate.iter().find(|m| {
        m.scenario == 6 && m.mode == "perf_buffer" && m.buffer_pages == crate::plan::DEFAULT_PAGES
    });
    let _ = writeln!(
        out,
        "| max events/s, zero loss | ~48,000–62,000 | {} |",
        rate.map_or("–".into(), max_rate)
    );
    out
}

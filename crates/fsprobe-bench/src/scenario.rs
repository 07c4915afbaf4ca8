//! One scenario: build its tree, then interleave the baseline, fsprobe in
//! each resolution mode and the peers (B P X… B P X…), then sweep the
//! buffer size of each transport and, where planned, search the highest
//! clean rate.
use std::path::Path;
use std::time::Instant;

use fsprobe::{ResolutionMode, Transport};

use crate::peers::{PeerKind, Peers};
use crate::plan::{DEFAULT_PAGES, Plan};
use crate::probe_run::{self, Watch};
use crate::rate::{self, RateResult};
use crate::report::{Row, ScenarioResult};
use crate::run::{self, Cpus, RunResult};
use crate::tree::{self, Scenario, Tree};
use crate::workload::{Pace, Workload};

const MODES: [ResolutionMode; 3] = [
    ResolutionMode::PerfBuffer,
    ResolutionMode::Fragments,
    ResolutionMode::SingleFragment,
];

const TRANSPORTS: [Transport; 2] = [Transport::RingBuffer, Transport::PerfBuffer];

pub struct Ctx<'a> {
    pub plan: &'a Plan,
    pub cpus: Cpus,
    pub scratch: &'a Path,
    pub peers: &'a mut Peers,
    /// The benchmark is broken (exit code 1).
    pub failures: &'a mut Vec<String>,
    /// Findings about the library that need a look (reported, exit 0):
    /// accounting that does not add up.
    pub problems: &'a mut Vec<String>,
    pub backend: &'a mut String,
    /// Inodes in the probe's filter, from the first run on the tree.
    pub watched: Option<u64>,
}

/// A fresh workload process for one run.
fn workload(ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8) -> Option<Workload> {
    Workload::spawn(tree, seq, ctx.cpus.workload)
        .map_err(|e| {
            ctx.failures
                .push(format!("scenario {id}: starting the workload: {e}"))
        })
        .ok()
}

fn baseline_run(ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8) -> Option<RunResult> {
    let pace = Pace::FlatOut {
        ops: ctx.plan.iterations,
    };
    let w = workload(ctx, tree, seq, id)?;
    run::baseline(&w, pace)
        .map_err(|e| ctx.failures.push(format!("scenario {id}: baseline: {e}")))
        .ok()
}

/// One fsprobe run into `row`. A probe that cannot start, or a workload
/// whose opens fail, is a failure; `NotImplemented` marks the row, and
/// broken accounting is reported as a problem.
fn probe_into(row: &mut Row, ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8, watch: Watch) {
    let pace = Pace::FlatOut {
        ops: ctx.plan.iterations,
    };
    let pages = row.buffer_pages.unwrap_or(DEFAULT_PAGES);
    let mode: ResolutionMode = row.mode.parse().expect("a mode name");
    let transport: Transport = row.transport.parse().expect("a transport name");
    let Some(w) = workload(ctx, tree, seq, id) else {
        return;
    };
    let what = format!(
        "scenario {id}, {} ({mode}), {} of {pages} pages",
        row.tool,
        transport.name()
    );
    match probe_run::measure(tree, &w, pace, watch, mode, transport, pages) {
        Ok(run) => {
            if run.result.open_errors > 0 {
                ctx.failures
                    .push(format!("{what}: {} opens failed", run.result.open_errors));
            }
            if let Some(e) = run.accounting_error() {
                ctx.problems.push(format!("{what}: {e}"));
                row.status = format!("accounting: {e}");
            }
            if let Some(first) = &run.first_other {
                row.note = Some(format!(
                    "left out {} event(s) of other processes (e.g. {first})",
                    run.other_events
                ));
            }
            *ctx.backend = run.ready.backend.to_string();
            if matches!(watch, Watch::Tree) {
                ctx.watched.get_or_insert(run.ready.watched_inodes);
            }
            row.runs.push(run.result);
        }
        Err(fsprobe::Error::NotImplemented(why)) => {
            row.status = format!("not implemented: {why}");
        }
        Err(e) => {
            ctx.failures.push(format!("{what}: {e}"));
            row.status = format!("failed: {e}");
        }
    }
}

/// Whether a row may still be measured (not unimplemented, not failed).
fn runnable(row: &Row) -> bool {
    !(row.status.starts_with("not implemented") || row.status.starts_with("failed"))
}

/// The smallest size of `transport` in the sweep from which every larger
/// size lost nothing.
fn drop_limit(sweep: &[Row], transport: Transport) -> Option<usize> {
    let rows: Vec<&Row> = sweep
        .iter()
        .filter(|r| r.transport == transport.name())
        .collect();
    let clean = |r: &&Row| r.status == "ok" && r.lost == Some(0) && !r.runs.is_empty();
    (0..rows.len())
        .find(|&i| rows[i..].iter().all(clean))
        .and_then(|i| rows[i].buffer_pages)
}

pub fn run(s: &Scenario, mut ctx: Ctx) -> Option<(ScenarioResult, Vec<RateResult>)> {
    let plan = ctx.plan;
    let root = ctx.scratch.join(format!("s{}", s.id));
    let t0 = Instant::now();
    let tree = match tree::build(s, &root, plan.seed) {
        Ok(t) => t,
        Err(e) => {
            ctx.failures
                .push(format!("scenario {}: building the tree: {e}", s.id));
            let _ = std::fs::remove_dir_all(&root);
            return None;
        }
    };
    let build_s = t0.elapsed().as_secs_f64();
    say!("  tree built in {build_s:.1} s");
    let seq = tree::sequence(
        plan.iterations as usize,
        tree.files.len(),
        plan.seed ^ u64::from(s.id),
    );
    let pace = Pace::FlatOut {
        ops: plan.iterations,
    };
    baseline_run(&mut ctx, &tree, &seq, s.id); // warm-up, discarded

    let mut baseline = Row::status("baseline (no listener)", "", None, String::new());
    // Every mode is tried; what the library answers (numbers, "not
    // implemented", an error) is what the row shows.
    let mut modes: Vec<(ResolutionMode, Row)> = MODES
        .iter()
        .map(|&m| {
            let row = Row::status("fsprobe", m.name(), Some(DEFAULT_PAGES), String::new());
            (m, row)
        })
        .collect();
    // The cost of being attached, with the filter saying no.
    let empty = ctx.scratch.join("empty");
    let tool = "fsprobe, hooks only (an empty dir watched)";
    let mut hook_only = Some(Row::status(
        tool,
        ResolutionMode::default().name(),
        Some(DEFAULT_PAGES),
        String::new(),
    ));
    if let Err(e) = std::fs::create_dir_all(&empty) {
        ctx.failures
            .push(format!("creating {}: {e}", empty.display()));
        hook_only = None;
    }
    let peer_kinds: Vec<PeerKind> = ctx.peers.available.clone();
    let mut peer_rows: Vec<Row> = peer_kinds
        .iter()
        .map(|p| Row::status(p.label(), "", None, String::new()))
        .collect();
    for rep in 0..plan.reps {
        if crate::stop::requested() {
            break;
        }
        say!("  round {}/{}", rep + 1, plan.reps);
        baseline
            .runs
            .extend(baseline_run(&mut ctx, &tree, &seq, s.id));
        for (_, row) in modes.iter_mut().filter(|(_, r)| runnable(r)) {
            probe_into(row, &mut ctx, &tree, &seq, s.id, Watch::Tree);
        }
        // The extras (hooks only, peers) take part in the first rounds.
        if rep >= plan.peer_reps {
            continue;
        }
        if let Some(row) = hook_only.as_mut().filter(|r| runnable(r)) {
            probe_into(row, &mut ctx, &tree, &seq, s.id, Watch::Elsewhere(&empty));
        }
        for (kind, row) in peer_kinds.iter().zip(&mut peer_rows) {
            if row.status.starts_with("failed") {
                continue;
            }
            let fork = || {
                Workload::spawn(&tree, &seq, ctx.cpus.workload)
                    .map_err(|e| eprintln!("fsprobe-bench: starting the workload: {e}"))
                    .ok()
            };
            match ctx.peers.measure(*kind, &tree, fork, pace) {
                Ok((r, note)) => {
                    row.runs.push(r);
                    row.note = note.or(row.note.take());
                }
                Err(e) => row.status = format!("failed: {e}"),
            }
        }
    }
    baseline.finish(None, true);
    baseline.expected = 0;
    let base = baseline.ns_per_op.map(|s| s.median);
    let mut rows = vec![baseline];
    for (_, mut row) in modes.iter().cloned() {
        row.finish(base, true);
        rows.push(row);
    }
    if let Some(mut row) = hook_only {
        row.finish(base, true);
        row.expected = 0;
        rows.push(row);
    }
    for mut row in peer_rows {
        row.finish(base, false);
        rows.push(row);
    }
    for (kind, why) in &ctx.peers.unavailable {
        rows.push(Row::status(
            kind.label(),
            "",
            None,
            format!("unavailable: {why}"),
        ));
    }

    // The default mode's rows (ring buffer) at the default size are
    // reused, not rerun; the perf buffer runs every size.
    let default_row = rows
        .iter()
        .find(|r| r.tool == "fsprobe" && r.mode == ResolutionMode::default().name())
        .cloned();
    let mut sweep = Vec::new();
    if default_row.as_ref().is_some_and(|r| !r.runs.is_empty()) {
        for transport in TRANSPORTS {
            for &pages in plan.sizes(transport) {
                if crate::stop::requested() {
                    break;
                }
                if transport == Transport::RingBuffer && pages == DEFAULT_PAGES {
                    sweep.extend(default_row.clone());
                    continue;
                }
                say!("  {} {pages} pages", transport.name());
                let mode = ResolutionMode::default().name();
                let mut row = Row::status("fsprobe", mode, Some(pages), String::new());
                row.transport = transport.name().into();
                for _ in 0..plan.sweep_reps {
                    probe_into(&mut row, &mut ctx, &tree, &seq, s.id, Watch::Tree);
                }
                row.finish(base, true);
                let unimplemented = row.status.starts_with("not implemented");
                sweep.push(row);
                if unimplemented {
                    break; // the other sizes would answer the same
                }
            }
        }
    }
    let drop_limit_pages = drop_limit(&sweep, Transport::RingBuffer);
    let drop_limit_pages_perf = drop_limit(&sweep, Transport::PerfBuffer);

    let mut rates = Vec::new();
    if plan.rate_scenarios.contains(&s.id) && !crate::stop::requested() {
        for (mode, row) in &modes {
            for &pages in &plan.rate_pages {
                let search = rate::Search { pages, ..plan.rate };
                if row.runs.is_empty() || !runnable(row) {
                    let status = match &row.status[..] {
                        "" => "not run".to_string(),
                        status => status.to_string(),
                    };
                    rates.push(RateResult::not_run(s.id, *mode, &search, status));
                    continue;
                }
                say!("  highest clean rate ({mode}, {pages} pages)");
                match rate::search(&tree, &seq, ctx.cpus, s.id, *mode, &search) {
                    Ok(r) => {
                        if r.status != "ok" {
                            ctx.problems.push(format!(
                                "scenario {}, rate search ({mode}, {pages} pages): {}",
                                s.id, r.status
                            ));
                        }
                        rates.push(r);
                    }
                    Err(e) => {
                        ctx.failures
                            .push(format!("scenario {}, rate search ({mode}): {e}", s.id));
                        let status = format!("failed: {e}");
                        rates.push(RateResult::not_run(s.id, *mode, &search, status));
                    }
                }
            }
        }
    }
    let max_path_bytes = tree.max_path;
    drop(tree);
    if let Err(e) = std::fs::remove_dir_all(&root) {
        eprintln!("fsprobe-bench: removing {}: {e}", root.display());
    }
    Some((
        ScenarioResult {
            scenario: *s,
            dirs: s.dirs(),
            build_s,
            max_path_bytes,
            watched_inodes: ctx.watched.take(),
            rows,
            sweep,
            drop_limit_pages,
            drop_limit_pages_perf,
        },
        rates,
    ))
}

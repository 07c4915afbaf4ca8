//! One scenario: build its tree, then interleave the baseline, fsprobe in
//! each resolution mode (quiet, and with the unrelated rename loop) and the
//! peers (B P X… B P X…), then sweep the buffer size of each transport and,
//! where planned, search the highest clean rate (per mode, and with one and
//! two producers), measure time to ready, and the CLI's output cost.
mod rates;
mod rounds;
mod sweep;

pub use rounds::rename_loop_tool;
use std::path::Path;
use std::time::Instant;

use fsprobe::{ResolutionMode, Transport};

use crate::cli_output;
use crate::peers::Peers;
use crate::plan::{DEFAULT_PAGES, Part, Plan, SIDE_SCENARIO, STARTUP_SCENARIO};
use crate::probe_run::{self, Watch};
use crate::rate::RateResult;
use crate::rename_loop::{self, RenameLoop, Renamed};
use crate::report::{Row, ScenarioResult};
use crate::run::{self, Cpus, RunResult};
use crate::startup;
use crate::tree::{self, Scenario, Tree};
use crate::workload::{Pace, Workload};

pub const MODES: [ResolutionMode; 3] = [
    ResolutionMode::PerfBuffer,
    ResolutionMode::Fragments,
    ResolutionMode::SingleFragment,
];

pub(super) const TRANSPORTS: [Transport; 2] = [Transport::RingBuffer, Transport::PerfBuffer];

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
pub(super) fn workload(ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8) -> Option<Workload> {
    Workload::spawn(tree, seq, ctx.cpus.workload)
        .map_err(|e| {
            ctx.failures
                .push(format!("scenario {id}: starting the workload: {e}"))
        })
        .ok()
}

pub(super) fn baseline_run(ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8) -> Option<RunResult> {
    let pace = Pace::FlatOut {
        ops: ctx.plan.iterations,
    };
    let w = workload(ctx, tree, seq, id)?;
    run::baseline(&w, pace)
        .map_err(|e| ctx.failures.push(format!("scenario {id}: baseline: {e}")))
        .ok()
}

/// What goes with an fsprobe run besides the probe.
#[derive(Clone, Copy, Default)]
pub(super) struct Extras {
    /// The baseline's ns/op in the same round.
    pub round_base: Option<f64>,
    /// The unrelated rename loop runs meanwhile.
    pub rename_loop: bool,
}

/// One fsprobe run into `row`. A probe that cannot start, or a workload
/// whose opens fail, is a failure, and broken accounting is reported as a
/// problem.
pub(super) fn probe_into(
    row: &mut Row,
    ctx: &mut Ctx,
    tree: &Tree,
    seq: &[u32],
    id: u8,
    watch: Watch,
    extras: Extras,
) {
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
    let Ok(side) = start_rename_loop(ctx, &what, extras.rename_loop) else {
        return;
    };
    let measured = probe_run::measure(tree, &w, pace, watch, mode, transport, pages);
    let renamed = side.map(RenameLoop::stop);
    match measured {
        Ok(mut run) => {
            run.result.round_baseline_ns = extras.round_base;
            run.result.side_load_rate = renamed.and_then(|r| rename_rate(ctx, &what, r));
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
        Err(e) => {
            ctx.failures.push(format!("{what}: {e}"));
            row.status = format!("failed: {e}");
        }
    }
}

/// The rename loop, when `on`; Err (a failure recorded) if it did not start.
fn start_rename_loop(ctx: &mut Ctx, what: &str, on: bool) -> Result<Option<RenameLoop>, ()> {
    if !on {
        return Ok(None);
    }
    let dir = ctx.scratch.join("rename-loop");
    match RenameLoop::start(&dir, ctx.cpus.consumer, rename_loop::RATE) {
        Ok(l) => Ok(Some(l)),
        Err(e) => {
            ctx.failures
                .push(format!("{what}: starting the rename loop: {e}"));
            Err(())
        }
    }
}

/// The loop's achieved rate; a loop that died or whose renames failed is
/// a failure.
fn rename_rate(ctx: &mut Ctx, what: &str, r: std::io::Result<Renamed>) -> Option<f64> {
    match r {
        Ok(r) if r.failed == 0 => Some(r.rate),
        Ok(r) => {
            let e = format!("{what}: {} renames of the loop failed", r.failed);
            ctx.failures.push(e);
            None
        }
        Err(e) => {
            ctx.failures.push(format!("{what}: the rename loop: {e}"));
            None
        }
    }
}

/// Whether a row may still be measured (not failed).
pub(super) fn runnable(row: &Row) -> bool {
    !row.status.starts_with("failed")
}

/// What a scenario produced.
pub struct Outcome {
    pub result: ScenarioResult,
    /// The highest clean rate per mode and buffer size.
    pub max_rate: Vec<RateResult>,
    /// The highest clean rate per number of producers.
    pub producers: Vec<RateResult>,
}

pub fn run(s: &Scenario, mut ctx: Ctx) -> Option<Outcome> {
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
    baseline_run(&mut ctx, &tree, &seq, s.id); // warm-up, discarded

    let measured = rounds::run(&mut ctx, &tree, &seq, s.id);
    let base = measured.base;
    let rows = measured.rows;
    let sweep = match plan.runs(Part::Sweep) {
        true => sweep::run(&mut ctx, &tree, &seq, s.id, &rows, base),
        false => Vec::new(),
    };
    let drop_limit_pages = sweep::drop_limit(&sweep, Transport::RingBuffer);
    let drop_limit_pages_perf = sweep::drop_limit(&sweep, Transport::PerfBuffer);
    let mut max_rate = Vec::new();
    let mut producers = Vec::new();
    if plan.rate_scenarios.contains(&s.id) && !crate::stop::requested() {
        if plan.runs(Part::MaxRate) {
            max_rate = rates::per_mode(&mut ctx, &tree, &seq, s.id, &measured.modes);
        }
        if plan.runs(Part::Producers) && s.id == SIDE_SCENARIO {
            producers = rates::per_producers(&mut ctx, &tree, &seq, s.id, &measured.modes);
        }
    }
    let startup =
        (s.id == STARTUP_SCENARIO && plan.runs(Part::Startup) && !crate::stop::requested())
            .then(|| startup::measure(s, &tree, plan.startup, &plan.fsprobe_bin));
    let mut cli_runs = Vec::new();
    if s.id == SIDE_SCENARIO && plan.runs(Part::CliOutput) && !crate::stop::requested() {
        for format in [&["-f", "json", "-o", "/dev/null"][..], &["-f", "none"]] {
            say!("  the CLI: fsprobe {}", format.join(" "));
            let run = cli_output::measure(
                &plan.fsprobe_bin,
                format,
                &tree,
                &seq,
                ctx.cpus.workload,
                plan.iterations,
            );
            if run.status.starts_with("accounting") {
                ctx.problems.push(format!(
                    "scenario {}, {}: {}",
                    s.id, run.command, run.status
                ));
            }
            cli_runs.push(run);
        }
    }
    let max_path_bytes = tree.max_path;
    drop(tree);
    if let Err(e) = std::fs::remove_dir_all(&root) {
        eprintln!("fsprobe-bench: removing {}: {e}", root.display());
    }
    let result = ScenarioResult {
        scenario: *s,
        dirs: s.dirs(),
        build_s,
        max_path_bytes,
        watched_inodes: ctx.watched.take(),
        rows,
        sweep,
        drop_limit_pages,
        drop_limit_pages_perf,
        startup,
        cli_output: cli_runs,
    };
    Some(Outcome {
        result,
        max_rate,
        producers,
    })
}

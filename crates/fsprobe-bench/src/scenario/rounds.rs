//! The interleaved rounds of a scenario: in each, the baseline, then
//! fsprobe in each resolution mode (and, in the rename loop's scenario,
//! each planned mode again with the loop running); the first rounds also
//! run fsprobe hooks-only and the peers.
use fsprobe::ResolutionMode;

use super::{Ctx, Extras, MODES, baseline_run, probe_into, runnable};
use crate::peers::PeerKind;
use crate::plan::{DEFAULT_PAGES, Part, SIDE_SCENARIO};
use crate::probe_run::Watch;
use crate::rename_loop;
use crate::report::Row;
use crate::tree::Tree;
use crate::workload::{Pace, Workload};

/// The tool name of the rename loop's rows.
pub fn rename_loop_tool() -> String {
    format!(
        "fsprobe + unrelated rename loop ({}/s elsewhere, CPU 1)",
        rename_loop::RATE
    )
}

pub struct Measured {
    /// Baseline, each mode, the rename loop's rows, hooks only, peers.
    pub rows: Vec<Row>,
    /// The baseline's median ns/op.
    pub base: Option<f64>,
    /// Each mode's (quiet) row, for the rate searches.
    pub modes: Vec<(ResolutionMode, Row)>,
}

/// A row per mode, named `tool`.
fn mode_rows(tool: &str, modes: &[ResolutionMode]) -> Vec<(ResolutionMode, Row)> {
    modes
        .iter()
        .map(|&m| {
            let row = Row::status(tool, m.name(), Some(DEFAULT_PAGES), String::new());
            (m, row)
        })
        .collect()
}

pub fn run(ctx: &mut Ctx, tree: &Tree, seq: &[u32], id: u8) -> Measured {
    let plan = ctx.plan;
    let pace = Pace::FlatOut {
        ops: plan.iterations,
    };
    let mut baseline = Row::status("baseline (no listener)", "", None, String::new());
    // Every mode is tried; what the library answers (numbers, "not
    // implemented", an error) is what the row shows.
    let mut modes = mode_rows("fsprobe", &MODES);
    let looped = id == SIDE_SCENARIO && plan.runs(Part::RenameLoop);
    let loop_modes = if looped { &plan.rename_modes[..] } else { &[] };
    let mut loop_rows = mode_rows(&rename_loop_tool(), loop_modes);
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
        let round = baseline_run(ctx, tree, seq, id);
        let round_base = round.as_ref().map(|r| r.ns_per_op);
        baseline.runs.extend(round);
        let quiet = Extras {
            round_base,
            rename_loop: false,
        };
        for (mode, row) in modes.iter_mut().filter(|(_, r)| runnable(r)) {
            probe_into(row, ctx, tree, seq, id, Watch::Tree, quiet);
            // The same mode with the loop, right after: the pair shares
            // the machine's state of the moment.
            let Some((_, looped)) = loop_rows.iter_mut().find(|(m, _)| m == mode) else {
                continue;
            };
            if runnable(looped) && runnable(row) {
                let extras = Extras {
                    rename_loop: true,
                    ..quiet
                };
                probe_into(looped, ctx, tree, seq, id, Watch::Tree, extras);
            }
        }
        // The extras (hooks only, peers) take part in the first rounds.
        if rep >= plan.peer_reps {
            continue;
        }
        if let Some(row) = hook_only.as_mut().filter(|r| runnable(r)) {
            probe_into(row, ctx, tree, seq, id, Watch::Elsewhere(&empty), quiet);
        }
        for (kind, row) in peer_kinds.iter().zip(&mut peer_rows) {
            if row.status.starts_with("failed") || row.status.starts_with("not runnable") {
                continue;
            }
            let fork = || {
                Workload::spawn(tree, seq, ctx.cpus.workload)
                    .map_err(|e| eprintln!("fsprobe-bench: starting the workload: {e}"))
                    .ok()
            };
            match ctx.peers.measure(*kind, tree, fork, pace) {
                Ok((mut r, note)) => {
                    r.round_baseline_ns = round_base;
                    row.runs.push(r);
                    row.note = note.or(row.note.take());
                }
                Err(status) => row.status = status,
            }
        }
    }
    baseline.finish(None, true);
    baseline.expected = 0;
    let base = baseline.ns_per_op.map(|s| s.median);
    let mut rows = vec![baseline];
    for (_, row) in modes.iter_mut().chain(loop_rows.iter_mut()) {
        row.finish(base, true);
        rows.push(row.clone());
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
            format!("not runnable: {why}"),
        ));
    }
    Measured { rows, base, modes }
}

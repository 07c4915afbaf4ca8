//! The buffer size sweep: fsprobe in the default mode at each size of each
//! transport, and the drop limit that follows.
use fsprobe::{ResolutionMode, Transport};

use super::{Ctx, Extras, TRANSPORTS, probe_into};
use crate::plan::DEFAULT_PAGES;
use crate::probe_run::Watch;
use crate::report::Row;
use crate::tree::Tree;

/// The smallest size of `transport` in the sweep from which every larger
/// size lost nothing.
pub fn drop_limit(sweep: &[Row], transport: Transport) -> Option<usize> {
    let rows: Vec<&Row> = sweep
        .iter()
        .filter(|r| r.transport == transport.name())
        .collect();
    let clean = |r: &&Row| r.status == "ok" && r.lost == Some(0) && !r.runs.is_empty();
    (0..rows.len())
        .find(|&i| rows[i..].iter().all(clean))
        .and_then(|i| rows[i].buffer_pages)
}

/// Every size of every transport. The default mode's rows (ring buffer) at
/// the default size are reused from the rounds, not rerun; the perf buffer
/// runs every size.
pub fn run(
    ctx: &mut Ctx,
    tree: &Tree,
    seq: &[u32],
    id: u8,
    rows: &[Row],
    base: Option<f64>,
) -> Vec<Row> {
    let plan = ctx.plan;
    let default_row = rows
        .iter()
        .find(|r| r.tool == "fsprobe" && r.mode == ResolutionMode::default().name())
        .cloned();
    let mut sweep = Vec::new();
    if default_row.as_ref().is_none_or(|r| r.runs.is_empty()) {
        return sweep;
    }
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
                probe_into(&mut row, ctx, tree, seq, id, Watch::Tree, Extras::default());
            }
            row.finish(base, true);
            sweep.push(row);
        }
    }
    sweep
}

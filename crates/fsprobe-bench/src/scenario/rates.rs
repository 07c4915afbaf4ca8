//! The rate searches of a scenario: the highest clean rate per resolution
//! mode (one spinning producer, as before), and in the default mode with
//! one and with two producer processes (millisecond batches, so that the
//! producer on the consumer's CPU leaves it the time it does not need).
use fsprobe::ResolutionMode;

use super::{Ctx, runnable};
use crate::rate::{self, RateResult, Search};
use crate::report::Row;
use crate::tree::Tree;

/// One search, or why it did not run; broken ones are failures, lossy
/// accounting a problem.
fn search(
    ctx: &mut Ctx,
    tree: &Tree,
    seq: &[u32],
    id: u8,
    mode: ResolutionMode,
    row: &Row,
    plan: Search,
) -> RateResult {
    if row.runs.is_empty() || !runnable(row) {
        let status = match &row.status[..] {
            "" => "not run".to_string(),
            status => status.to_string(),
        };
        return RateResult::not_run(id, mode, &plan, status);
    }
    let what = format!(
        "scenario {id}, rate search ({mode}, {} pages, {} producer(s), {})",
        plan.pages,
        plan.producers,
        if plan.ticked { "ticked" } else { "spin" }
    );
    say!(
        "  highest clean rate ({mode}, {} pages, {} producer(s))",
        plan.pages,
        plan.producers
    );
    match rate::search(tree, seq, ctx.cpus, id, mode, &plan) {
        Ok(r) => {
            if r.status != "ok" {
                ctx.problems.push(format!("{what}: {}", r.status));
            }
            r
        }
        Err(e) => {
            ctx.failures.push(format!("{what}: {e}"));
            RateResult::not_run(id, mode, &plan, format!("failed: {e}"))
        }
    }
}

/// Each mode at each planned size, one spinning producer.
pub fn per_mode(
    ctx: &mut Ctx,
    tree: &Tree,
    seq: &[u32],
    id: u8,
    modes: &[(ResolutionMode, Row)],
) -> Vec<RateResult> {
    let mut out = Vec::new();
    for (mode, row) in modes {
        for &pages in &ctx.plan.rate_pages {
            let plan = Search {
                pages,
                ..ctx.plan.rate
            };
            out.push(search(ctx, tree, seq, id, *mode, row, plan));
        }
    }
    out
}

/// The default mode with each planned number of producers.
pub fn per_producers(
    ctx: &mut Ctx,
    tree: &Tree,
    seq: &[u32],
    id: u8,
    modes: &[(ResolutionMode, Row)],
) -> Vec<RateResult> {
    let mode = ResolutionMode::default();
    let Some((_, row)) = modes.iter().find(|(m, _)| *m == mode) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for &producers in &ctx.plan.producers.clone() {
        if crate::stop::requested() {
            break;
        }
        let plan = Search {
            producers,
            ..ctx.plan.producer_search
        };
        out.push(search(ctx, tree, seq, id, mode, row, plan));
    }
    out
}

//! The soak test's verdicts, against its goals: flat RSS (±5 % after the
//! warm-up), no loss, bounded maps; and whether the asked rate was held.
//!
//! - Warm-up: the first third of the run, at most 5 minutes. The reference
//!   is the first sample at or after it; every later sample is compared
//!   with it.
//! - Bounded maps: a plain hash map (e.g. the watched inodes) may not grow
//!   by more than 5 % (or 64 entries, whichever is more) from the
//!   reference to the end; an LRU map is bounded by its size by design; the
//!   total `memlock` may not grow by more than 5 %; and the probe must not
//!   have hit its watch limit.
use serde::{Deserialize, Serialize};

use super::{Sample, SoakResults};

const TOLERANCE: f64 = 0.05;
const SLACK_ENTRIES: u64 = 64;
/// Below this share of the asked rate, the rate was not held.
const RATE_SLACK: f64 = 0.97;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Verdict {
    pub name: String,
    pub ok: bool,
    pub detail: String,
}

fn verdict(name: &str, ok: bool, detail: String) -> Verdict {
    Verdict {
        name: name.into(),
        ok,
        detail,
    }
}

/// Seconds of warm-up for a run of `minutes`.
pub fn warm_up_s(minutes: u64) -> f64 {
    (minutes as f64 * 60.0 / 3.0).min(300.0)
}

fn mib(b: f64) -> String {
    format!("{:.1} MiB", b / 1048576.0)
}

fn flat_rss(reference: &Sample, later: &[Sample]) -> Verdict {
    let r = reference.rss.total as f64;
    let worst = later
        .iter()
        .map(|s| (s.rss.total as f64 - r) / r.max(1.0))
        .fold(0.0f64, |a, d| if d.abs() > a.abs() { d } else { a });
    let last = later.last().unwrap_or(reference);
    let heap = last.heap_live_bytes - reference.heap_live_bytes;
    verdict(
        "flat RSS",
        worst.abs() <= TOLERANCE,
        format!(
            "{} after warm-up, {} at the end, largest change {:+.1} %; heap in use {:+.2} MiB over the same time",
            mib(r),
            mib(last.rss.total as f64),
            worst * 100.0,
            heap as f64 / 1048576.0
        ),
    )
}

fn no_loss(res: &SoakResults) -> Verdict {
    let lost = match &res.summary {
        Some(s) => s.lost(),
        None => res.samples.last().map_or(0, |s| s.lost),
    };
    let short = res.expected.saturating_sub(res.delivered + lost);
    let ok = lost == 0 && short == 0 && res.summary.is_some();
    let mut detail = format!(
        "{} events delivered of {} expected, {lost} lost",
        res.delivered, res.expected
    );
    if short > 0 {
        detail.push_str(&format!(", {short} neither delivered nor counted as lost"));
    }
    if res.summary.is_none() {
        detail.push_str(", no summary (the probe did not stop cleanly)");
    }
    verdict("no loss", ok, detail)
}

fn bounded_maps(res: &SoakResults, reference: &Sample, last: &Sample) -> Verdict {
    let mut growing = Vec::new();
    let mut seen = Vec::new();
    for m in &last.maps {
        let (Some(now), Some(r)) = (
            m.entries,
            reference
                .maps
                .iter()
                .find(|x| x.name == m.name)
                .and_then(|x| x.entries),
        ) else {
            continue;
        };
        seen.push(format!("{} {r} → {now}", m.name));
        let lru = m.map_type.starts_with("lru");
        let allowed = ((r as f64 * TOLERANCE) as u64).max(SLACK_ENTRIES);
        if !lru && now > r + allowed {
            growing.push(format!("{} grew from {r} to {now} entries", m.name));
        }
    }
    let (r, l) = (reference.map_bytes as f64, last.map_bytes as f64);
    if l > r * (1.0 + TOLERANCE) {
        growing.push(format!("memlock grew from {} to {}", mib(r), mib(l)));
    }
    let hits = res.summary.as_ref().map_or(0, |s| s.watch_limit_hits);
    if hits > 0 {
        growing.push(format!("the watch limit was hit {hits} times"));
    }
    let detail = match growing.is_empty() {
        true => format!(
            "memlock {} → {}; entries: {}",
            mib(r),
            mib(l),
            seen.join(", ")
        ),
        false => growing.join("; "),
    };
    verdict("bounded maps", growing.is_empty(), detail)
}

fn rate_held(res: &SoakResults) -> Verdict {
    let asked = res.config.rate as f64;
    verdict(
        "rate held",
        res.achieved_rate >= RATE_SLACK * asked,
        format!(
            "{:.0} events/s achieved of {asked:.0} asked",
            res.achieved_rate
        ),
    )
}

pub fn all(res: &SoakResults) -> Vec<Verdict> {
    let warm = warm_up_s(res.config.minutes);
    let after: Vec<&Sample> = res.samples.iter().filter(|s| s.t_s >= warm).collect();
    let mut out = Vec::new();
    match (after.first(), after.last()) {
        (Some(&reference), Some(&last)) if after.len() > 1 => {
            let later: Vec<Sample> = after[1..].iter().map(|&s| s.clone()).collect();
            out.push(flat_rss(reference, &later));
            out.push(no_loss(res));
            out.push(bounded_maps(res, reference, last));
        }
        _ => {
            let why = format!("fewer than 2 samples after the {warm:.0} s warm-up");
            out.push(verdict("flat RSS", false, why.clone()));
            out.push(no_loss(res));
            out.push(verdict("bounded maps", false, why));
        }
    }
    out.push(rate_held(res));
    out
}

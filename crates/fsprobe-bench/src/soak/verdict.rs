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
    if res.unwatched > 0 {
        growing.push(format!(
            "{} entries announced as not watched",
            res.unwatched
        ));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::maps::MapInfo;
    use crate::procfs::Rss;

    fn map(name: &str, map_type: &str, entries: u64) -> MapInfo {
        MapInfo {
            name: name.into(),
            id: 1,
            map_type: map_type.into(),
            max_entries: 1 << 20,
            memlock: 1000,
            entries: Some(entries),
        }
    }

    fn sample(t_s: f64, rss_mib: u64, watched: u64, cache: u64) -> Sample {
        Sample {
            t_s,
            steps: 0,
            failed: 0,
            delivered: 0,
            lost: 0,
            events_per_s: 0.0,
            rss: Rss {
                total: rss_mib << 20,
                ..Rss::default()
            },
            heap_live_bytes: 0,
            map_bytes: 2000,
            maps: vec![
                map("watched", "hash", watched),
                map("dir_cache", "lru_hash", cache),
            ],
            bpf_ns_per_event: None,
            cpu_ns_per_event: None,
        }
    }

    fn results(samples: Vec<Sample>) -> SoakResults {
        SoakResults {
            benchmark: String::new(),
            started: String::new(),
            wall_s: 0.0,
            machine: crate::machine::Machine::probe(std::path::Path::new("/")),
            config: super::super::Config {
                minutes: 30,
                rate: 50_000,
                sample_secs: 60,
                scenario: 6,
                watched_inodes: 0,
                cycle: String::new(),
            },
            achieved_rate: 49_000.0,
            samples,
            expected: 10,
            delivered: 10,
            other_events: 0,
            first_other: None,
            unwatched: 0,
            summary: Some(fsprobe::Summary::default()),
            verdicts: Vec::new(),
            failures: Vec::new(),
            notes: Vec::new(),
        }
    }

    fn find<'a>(v: &'a [Verdict], name: &str) -> &'a Verdict {
        v.iter().find(|v| v.name == name).expect("a verdict")
    }

    #[test]
    fn growth_during_the_warm_up_does_not_count_but_after_it_does() {
        // 30 minutes: a 300 s warm-up. RSS doubles before it, then stays
        // within 5 %; the LRU cache fills up to its size after it.
        let flat = vec![
            sample(0.0, 20, 120_000, 0),
            sample(240.0, 40, 120_000, 10_000),
            sample(300.0, 40, 120_000, 20_000),
            sample(1800.0, 41, 120_010, 40_000),
        ];
        let v = all(&results(flat));
        assert!(find(&v, "flat RSS").ok, "{v:?}");
        assert!(find(&v, "bounded maps").ok, "{v:?}");
        assert!(find(&v, "no loss").ok && find(&v, "rate held").ok, "{v:?}");
        // RSS 10 % up, and the watched map growing by 20,000 entries.
        let growing = vec![
            sample(300.0, 40, 120_000, 0),
            sample(1000.0, 42, 130_000, 0),
            sample(1800.0, 44, 140_000, 0),
        ];
        let v = all(&results(growing));
        assert!(!find(&v, "flat RSS").ok, "{v:?}");
        let maps = find(&v, "bounded maps");
        assert!(!maps.ok && maps.detail.contains("watched grew"), "{v:?}");
    }

    #[test]
    fn a_loss_or_a_missing_event_or_a_slow_churn_fails_its_goal() {
        let two = vec![sample(300.0, 40, 1, 0), sample(600.0, 40, 1, 0)];
        let mut r = results(two);
        r.delivered = 9;
        r.achieved_rate = 40_000.0;
        let v = all(&r);
        let loss = find(&v, "no loss");
        assert!(
            !loss.ok && loss.detail.contains("1 neither delivered"),
            "{v:?}"
        );
        assert!(!find(&v, "rate held").ok, "{v:?}");
        // Too short a run for a verdict on flatness.
        let r = results(vec![sample(0.0, 40, 1, 0)]);
        assert!(!find(&all(&r), "flat RSS").ok);
    }
}

//! The soak test's results: results.json, results.md and soak.svg.
use std::fmt::Write;
use std::path::Path;

use plotters::prelude::*;

use super::SoakResults;
use super::verdict::warm_up_s;
use crate::markdown::{mib, num, thousands};

type Res = Result<(), Box<dyn std::error::Error>>;
/// A named line of (minutes, value) points.
type Line = (String, Vec<(f64, f64)>);

pub fn write(r: &SoakResults, dir: &Path) -> Res {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    std::fs::write(dir.join("results.md"), markdown(r))?;
    chart(r, &dir.join("soak.svg"))
}

/// Hash maps whose entries changed or were ever non-zero: the columns.
fn entry_maps(r: &SoakResults) -> Vec<String> {
    let mut names = Vec::new();
    for s in &r.samples {
        for m in s.maps.iter().filter(|m| m.entries.is_some_and(|n| n > 0)) {
            if !names.contains(&m.name) {
                names.push(m.name.clone());
            }
        }
    }
    names
}

fn markdown(r: &SoakResults) -> String {
    let m = &r.machine;
    let c = &r.config;
    let mut out = String::from("# fsprobe soak test\n\n");
    let _ = writeln!(
        out,
        "- Machine: {}, {} CPUs, {} GiB RAM; {}; kernel {}; scratch on {}.",
        m.cpu_model, m.nproc, m.memory_gib, m.os, m.kernel, m.scratch_fs
    );
    let _ = writeln!(
        out,
        "- Run: {} ({:.0} s). {} min at {} events/s asked ({:.0} achieved), a sample every {} s; scenario {}'s tree watched ({} inodes), the library in this process, all event kinds.",
        r.started,
        r.wall_s,
        c.minutes,
        thousands(c.rate as f64),
        r.achieved_rate,
        c.sample_secs,
        c.scenario,
        thousands(c.watched_inodes as f64)
    );
    let _ = writeln!(out, "- Churn cycle: {}.", c.cycle);
    let _ = writeln!(
        out,
        "- Warm-up: the first {:.0} s (a third of the run, at most 5 minutes).",
        warm_up_s(c.minutes)
    );
    for n in &r.notes {
        let _ = writeln!(out, "- {n}");
    }
    for f in &r.failures {
        let _ = writeln!(out, "- **Failure**: {f}");
    }
    out.push_str("\n| goal | met | detail |\n|---|---|---|\n");
    for v in &r.verdicts {
        let met = if v.ok { "yes" } else { "**no**" };
        let _ = writeln!(out, "| {} | {met} | {} |", v.name, v.detail);
    }
    if let Some(s) = &r.summary {
        let _ = writeln!(
            out,
            "\nSummary: {} events ({} of the churn, {} of other processes), {} lost (buffer full {}, in flight {}, undecodable {}), watch limit hits {}, path walks {} to the root and {} cut short by a cache.",
            thousands(s.events as f64),
            thousands(r.delivered as f64),
            thousands(r.other_events as f64),
            thousands(s.lost() as f64),
            s.lost_buffer_full,
            s.lost_in_flight,
            s.undecodable,
            s.watch_limit_hits,
            thousands(s.walks_full as f64),
            thousands(s.walks_cached as f64)
        );
    }
    if r.unwatched > 0 {
        let _ = writeln!(
            out,
            "\nThe probe announced {} files or directories it could not watch (`Record::Unwatched`).",
            r.unwatched
        );
    }
    if let Some(o) = &r.first_other {
        let _ = writeln!(
            out,
            "\nThe first event of another process in the tree: {o}."
        );
    }
    let names = entry_maps(r);
    out.push_str("\n## Samples\n\nRSS is VmRSS (RssAnon in brackets); heap is the heap in use minus at the probe's start (the counting allocator); maps is the sum of `memlock`; then the entries of the hash maps; BPF and CPU are per delivered event since the previous sample.\n\n| t (min) | events/s | delivered | lost | RSS (anon) | heap | maps |");
    for n in &names {
        let _ = write!(out, " {n} |");
    }
    out.push_str(" BPF ns/event | CPU ns/event |\n|---|---|---|---|---|---|---|");
    out.push_str(&"---|".repeat(names.len() + 2));
    out.push('\n');
    for s in &r.samples {
        let _ = write!(
            out,
            "| {:.1} | {} | {} | {} | {} ({}) | {:+.2} MiB | {} |",
            s.t_s / 60.0,
            thousands(s.events_per_s),
            thousands(s.delivered as f64),
            thousands(s.lost as f64),
            mib(Some(s.rss.total)),
            mib(Some(s.rss.anon)),
            s.heap_live_bytes as f64 / 1048576.0,
            mib(Some(s.map_bytes))
        );
        for n in &names {
            let e = s.maps.iter().find(|m| &m.name == n).and_then(|m| m.entries);
            let _ = write!(out, " {} |", e.map_or("–".into(), |e| thousands(e as f64)));
        }
        let _ = writeln!(
            out,
            " {} | {} |",
            num(s.bpf_ns_per_event, 0),
            num(s.cpu_ns_per_event, 0)
        );
    }
    out
}

/// RSS and heap over time (left), hash map entries over time (right).
fn chart(r: &SoakResults, path: &Path) -> Res {
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let tmax = r.samples.last().map_or(1.0, |s| s.t_s / 60.0).max(0.1);
    let series_mib: Vec<Line> = vec![
        (
            "VmRSS".to_string(),
            r.samples
                .iter()
                .map(|s| (s.t_s / 60.0, s.rss.total as f64 / 1048576.0))
                .collect(),
        ),
        (
            "RssAnon".to_string(),
            r.samples
                .iter()
                .map(|s| (s.t_s / 60.0, s.rss.anon as f64 / 1048576.0))
                .collect(),
        ),
        (
            "BPF maps (memlock)".to_string(),
            r.samples
                .iter()
                .map(|s| (s.t_s / 60.0, s.map_bytes as f64 / 1048576.0))
                .collect(),
        ),
    ];
    let entries: Vec<Line> = entry_maps(r)
        .into_iter()
        .map(|name| {
            let pts = r
                .samples
                .iter()
                .filter_map(|s| {
                    let e = s.maps.iter().find(|m| m.name == name)?.entries?;
                    Some((s.t_s / 60.0, e as f64))
                })
                .collect();
            (name, pts)
        })
        .collect();
    let panels = [
        (&left, "MiB", series_mib),
        (&right, "hash map entries", entries),
    ];
    for (area, what, data) in panels {
        let ymax = data
            .iter()
            .flat_map(|(_, p)| p.iter().map(|x| x.1))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("soak: {what} over time"), ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d(0f64..tmax, 0f64..ymax * 1.15)?;
        chart
            .configure_mesh()
            .x_desc("minutes")
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        for (k, (name, pts)) in data.into_iter().enumerate() {
            let color = Palette99::pick(k).to_rgba();
            chart
                .draw_series(LineSeries::new(pts, color.stroke_width(2)))?
                .label(name)
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 4), (x + 15, y + 4)], color.filled())
                });
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

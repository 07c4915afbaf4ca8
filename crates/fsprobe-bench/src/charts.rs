//! SVG charts, with plotters' SVG backend only (text is laid out without
//! system fonts and rendered by the viewer).
use std::path::Path;

use plotters::element::DashedPathElement;
use plotters::prelude::*;

use crate::report::{Results, Row};

type Res = Result<(), Box<dyn std::error::Error>>;

pub fn write_all(r: &Results, dir: &Path) -> Res {
    overhead(r, &dir.join("overhead.svg"))?;
    buffers(r, &dir.join("buffers.svg"))?;
    rate(r, &dir.join("max-rate.svg"))
}

fn label(row: &Row) -> String {
    if row.mode.is_empty() {
        row.tool.clone()
    } else {
        format!("{} ({})", row.tool, row.mode)
    }
}

/// Median ns/op per scenario: baseline, fsprobe and peers side by side.
fn overhead(r: &Results, path: &Path) -> Res {
    let mut names: Vec<String> = Vec::new();
    for s in &r.scenarios {
        for row in s.rows.iter().filter(|x| x.ns_per_op.is_some()) {
            if !names.contains(&label(row)) {
                names.push(label(row));
            }
        }
    }
    let n = r.scenarios.len().max(1);
    // Log scale: the slowest peer is tens of times the others.
    let medians = || {
        r.scenarios
            .iter()
            .flat_map(|s| s.rows.iter().filter_map(|x| x.ns_per_op.map(|m| m.median)))
    };
    let ymax = medians().fold(1.0, f64::max);
    let floor = 10f64.powf(medians().fold(ymax, f64::min).log10().floor());
    let root = SVGBackend::new(path, (1100, 560)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!("open+close, median ns/op, log scale ({})", r.machine.kernel),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(80)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), (floor..ymax * 30.0).log_scale())?;
    let ids: Vec<u8> = r.scenarios.iter().map(|s| s.scenario.id).collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            match ids.get(i as usize) {
                Some(id) if (x - i).abs() < 0.01 && i >= 0.0 => format!("scenario {id}"),
                _ => String::new(),
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("ns per operation")
        .draw()?;
    let width = 0.8 / names.len().max(1) as f64;
    for (k, name) in names.iter().enumerate() {
        let color = Palette99::pick(k).to_rgba();
        let bars = r.scenarios.iter().enumerate().filter_map(|(i, s)| {
            let row = s.rows.iter().find(|x| &label(x) == name)?;
            let v = row.ns_per_op?.median;
            let x0 = i as f64 - 0.4 + k as f64 * width;
            Some(Rectangle::new(
                [(x0, floor), (x0 + width * 0.9, v)],
                color.filled(),
            ))
        });
        chart
            .draw_series(bars)?
            .label(name.as_str())
            .legend(move |(x, y)| Rectangle::new([(x, y - 5), (x + 10, y + 5)], color.filled()));
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .border_style(BLACK)
        .background_style(WHITE.mix(0.85))
        .draw()?;
    root.present()?;
    Ok(())
}

/// One line: a scenario's (buffer pages, value) points over one transport.
struct Series {
    /// The scenario's place in the results, which picks the color.
    k: usize,
    id: u8,
    transport: String,
    points: Vec<(f64, f64)>,
}

/// The sweep's transports, in the order they ran.
fn transports(r: &Results) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for row in r.scenarios.iter().flat_map(|s| &s.sweep) {
        if !out.contains(&row.transport) {
            out.push(row.transport.clone());
        }
    }
    out
}

/// ns/op and heap bytes per event against the buffer size: a color per
/// scenario, solid for the ring buffer, dashed for the perf buffer (whose
/// size is per CPU).
fn buffers(r: &Results, path: &Path) -> Res {
    let root = SVGBackend::new(path, (1200, 500)).into_drawing_area();
    root.fill(&WHITE)?;
    let (left, right) = root.split_horizontally(600);
    let names = transports(r);
    let series = |f: &dyn Fn(&Row) -> Option<f64>| -> Vec<Series> {
        let mut out = Vec::new();
        for (k, s) in r.scenarios.iter().enumerate() {
            for t in &names {
                let points: Vec<(f64, f64)> = s
                    .sweep
                    .iter()
                    .filter(|row| &row.transport == t)
                    .filter_map(|row| Some((row.buffer_pages? as f64, f(row)?)))
                    .collect();
                if !points.is_empty() {
                    let (id, transport) = (s.scenario.id, t.clone());
                    out.push(Series {
                        k,
                        id,
                        transport,
                        points,
                    });
                }
            }
        }
        out
    };
    // The legends go where the lines seldom are: ns/op falls with the
    // size, heap per event stays far above zero.
    let panels = [
        (
            &left,
            "median ns/op",
            series(&|row| row.ns_per_op.map(|s| s.median)),
            SeriesLabelPosition::UpperRight,
        ),
        (
            &right,
            "heap bytes per event",
            series(&|row| row.bytes_per_event),
            SeriesLabelPosition::LowerRight,
        ),
    ];
    for (area, what, data, legend) in panels {
        let ymax = data
            .iter()
            .flat_map(|x| x.points.iter().map(|p| p.1))
            .fold(1.0, f64::max);
        let mut chart = ChartBuilder::on(area)
            .caption(format!("{what} by buffer size"), ("sans-serif", 18))
            .margin(15)
            .x_label_area_size(40)
            .y_label_area_size(70)
            .build_cartesian_2d((4f64..8192f64).log_scale(), 0f64..ymax * 1.15)?;
        chart
            .configure_mesh()
            .x_desc("buffer pages (4 KiB; perf buffer: per CPU)")
            .x_label_formatter(&|x| format!("{x:.0}"))
            .y_label_formatter(&|y| format!("{y:.0}"))
            .draw()?;
        // The legend: a color per scenario, then a line style per transport.
        let mut seen = Vec::new();
        for line in data {
            let color = Palette99::pick(line.k).to_rgba();
            let style = color.stroke_width(2);
            let pts = line.points;
            if line.transport == "perf_buffer" {
                chart.draw_series(DashedLineSeries::new(pts.clone(), 6, 4, style))?;
                let marks = pts.into_iter().map(|p| TriangleMarker::new(p, 4, style));
                chart.draw_series(marks)?;
            } else {
                chart.draw_series(LineSeries::new(pts.clone(), style))?;
                let marks = pts.into_iter().map(|p| Circle::new(p, 3, color.filled()));
                chart.draw_series(marks)?;
            }
            if !seen.contains(&line.k) {
                seen.push(line.k);
                chart
                    .draw_series(legend_only())?
                    .label(format!("scenario {}", line.id))
                    .legend(move |(x, y)| {
                        Rectangle::new([(x, y - 4), (x + 15, y + 4)], color.filled())
                    });
            }
        }
        let black = BLACK.stroke_width(2);
        for t in &names {
            let entry = chart.draw_series(legend_only())?;
            if t == "perf_buffer" {
                entry.label("perf_buffer (per CPU)").legend(move |(x, y)| {
                    DashedPathElement::new(vec![(x, y), (x + 15, y)], 4, 3, black)
                });
            } else {
                let path = move |(x, y)| PathElement::new(vec![(x, y), (x + 15, y)], black);
                entry.label(t.as_str()).legend(path);
            }
        }
        chart
            .configure_series_labels()
            .position(legend)
            .border_style(BLACK)
            .background_style(WHITE.mix(0.85))
            .draw()?;
    }
    root.present()?;
    Ok(())
}

/// No points: a series that is only a legend entry.
fn legend_only() -> std::iter::Empty<Circle<(f64, f64), i32>> {
    std::iter::empty()
}

fn scenarios(items: &[crate::rate::RateResult]) -> String {
    let mut ids: Vec<String> = items.iter().map(|m| m.scenario.to_string()).collect();
    ids.dedup();
    ids.join(", ")
}

/// The highest clean rate per resolution mode (and per scenario tried),
/// then per number of producers.
fn rate(r: &Results, path: &Path) -> Res {
    let items: Vec<crate::rate::RateResult> =
        r.max_rate.iter().chain(&r.producers).cloned().collect();
    let items = &items[..];
    let n = items.len().max(1);
    let ymax = items.iter().filter_map(|m| m.max_rate).fold(1.0, f64::max);
    let root = SVGBackend::new(path, (1200, 480)).into_drawing_area();
    root.fill(&WHITE)?;
    let mut chart = ChartBuilder::on(&root)
        .caption(
            format!(
                "highest event rate with zero loss (scenario {})",
                scenarios(items)
            ),
            ("sans-serif", 20),
        )
        .margin(15)
        .x_label_area_size(40)
        .y_label_area_size(90)
        .build_cartesian_2d(-0.5f64..(n as f64 - 0.5), 0f64..ymax * 1.2)?;
    let names: Vec<String> = items
        .iter()
        .map(|m| match (m.producers, &m.pacing[..]) {
            (1, "spin") => format!("{}, {} pages", m.mode, m.buffer_pages),
            (n, pacing) => format!("{}, {n} producer(s), {pacing}", m.mode),
        })
        .collect();
    chart
        .configure_mesh()
        .disable_x_mesh()
        .x_labels(n + 1)
        .x_label_formatter(&|x| {
            let i = x.round();
            match names.get(i as usize) {
                Some(name) if (x - i).abs() < 0.01 && i >= 0.0 => name.clone(),
                _ => String::new(),
            }
        })
        .y_label_formatter(&|y| format!("{y:.0}"))
        .y_desc("events per second")
        .draw()?;
    for (i, m) in items.iter().enumerate() {
        let x = i as f64;
        let text = match m.max_rate {
            Some(v) => {
                let color = Palette99::pick(i).to_rgba();
                chart.draw_series([Rectangle::new(
                    [(x - 0.3, 0.0), (x + 0.3, v)],
                    color.filled(),
                )])?;
                format!(
                    "{v:.0}{}",
                    if m.producer_bound {
                        " (workload-bound)"
                    } else {
                        ""
                    }
                )
            }
            None => m.status.split(':').next().unwrap_or("").to_string(),
        };
        let y = m.max_rate.unwrap_or(0.0) + ymax * 0.04;
        chart.draw_series([Text::new(text, (x - 0.3, y), ("sans-serif", 14))])?;
    }
    root.present()?;
    Ok(())
}

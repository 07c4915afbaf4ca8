//! `--metrics ADDR`: the probe's and the outputs' counters in the
//! Prometheus text format (0.0.4), served over plain HTTP at `/metrics`.
//!
//! The exposition is prometheus-client's; the values are read at each
//! scrape (a collector, no copies kept), so once the traffic stops they are
//! the numbers the exit summary prints. The HTTP side is a few lines of std:
//! one connection at a time, GET only.
use std::borrow::Cow;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use crate::output::OutputStats;

/// Binds the address now, so that a bad one fails before the probe starts.
pub fn bind(addr: SocketAddr) -> anyhow::Result<TcpListener> {
    TcpListener::bind(addr).with_context(|| format!("cannot serve metrics on {addr}"))
}

/// What the metrics are read from.
#[derive(Debug)]
pub struct Sources {
    pub probe: fsprobe::StatsReader,
    pub backend: &'static str,
    pub outputs: Vec<(&'static str, Arc<OutputStats>)>,
}

/// Serves the metrics on a thread of its own until the process exits.
pub fn serve(listener: TcpListener, sources: Sources) -> anyhow::Result<()> {
    let addr = listener.local_addr()?;
    let mut registry = Registry::default();
    registry.register_collector(Box::new(sources));
    std::thread::Builder::new()
        .name("fsprobe-metrics".into())
        .spawn(move || {
            for conn in listener.incoming() {
                match conn {
                    Ok(conn) => {
                        if let Err(e) = answer(conn, &registry) {
                            eprintln!("fsprobe: metrics: {e}");
                        }
                    }
                    Err(e) => eprintln!("fsprobe: metrics: accept failed: {e}"),
                }
            }
        })?;
    eprintln!("fsprobe: metrics: serving http://{addr}/metrics");
    Ok(())
}

fn answer(mut conn: TcpStream, registry: &Registry) -> std::io::Result<()> {
    conn.set_read_timeout(Some(Duration::from_secs(5)))?;
    conn.set_write_timeout(Some(Duration::from_secs(5)))?;
    let mut reader = BufReader::new(conn.try_clone()?);
    let mut request = String::new();
    reader.read_line(&mut request)?;
    // The headers are read and ignored.
    let mut header = String::new();
    while reader.read_line(&mut header)? > 2 {
        header.clear();
    }
    let mut parts = request.split_whitespace();
    let (method, path) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let (status, content_type, body) = match (method, path) {
        ("GET", "/metrics") => {
            let mut body = String::new();
            prometheus_client::encoding::prometheus_text::encode(&mut body, registry)
                .map_err(std::io::Error::other)?;
            (
                "200 OK",
                prometheus_client::encoding::prometheus_text::CONTENT_TYPE,
                body,
            )
        }
        ("GET", _) => ("404 Not Found", "text/plain", "see /metrics\n".into()),
        _ => ("405 Method Not Allowed", "text/plain", "GET only\n".into()),
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()
}

type Labels = Vec<(Cow<'static, str>, Cow<'static, str>)>;

fn labels(pairs: &[(&'static str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| (Cow::Borrowed(*k), Cow::Owned(v.to_string())))
        .collect()
}

/// One metric family: a name, its help, its type, and its labelled values.
fn family(
    encoder: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    kind: MetricType,
    values: &[(Labels, u64)],
) -> Result<(), std::fmt::Error> {
    let mut metric = encoder.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in values {
        let encoder = metric.encode_family(labels)?;
        match kind {
            MetricType::Counter => ConstCounter::new(*value).encode(encoder)?,
            _ => ConstGauge::new(*value as i64).encode(encoder)?,
        }
    }
    Ok(())
}

fn one(value: u64) -> Vec<(Labels, u64)> {
    vec![(Labels::new(), value)]
}

impl Collector for Sources {
    fn encode(&self, mut e: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        let s = self.probe.snapshot();
        let info = labels(&[
            ("version", env!("CARGO_PKG_VERSION")),
            ("backend", self.backend),
        ]);
        family(
            &mut e,
            "fsprobe_build_info",
            "fsprobe's version and the backend in use.",
            Gauge,
            &[(info, 1)],
        )?;
        let by_kind: Vec<_> = s
            .events
            .iter()
            .map(|(kind, n)| (labels(&[("kind", kind.name())]), *n))
            .collect();
        family(
            &mut e,
            "fsprobe_events",
            "Events delivered, by kind.",
            Counter,
            &by_kind,
        )?;
        let lost = vec![
            (labels(&[("reason", "buffer_full")]), s.lost_buffer_full),
            (
                labels(&[("reason", "too_many_in_flight")]),
                s.lost_in_flight,
            ),
            (labels(&[("reason", "unread")]), s.lost_unread),
        ];
        family(
            &mut e,
            "fsprobe_lost_events",
            "Events the kernel could not deliver, by reason.",
            Counter,
            &lost,
        )?;
        family(
            &mut e,
            "fsprobe_undecodable_records",
            "Records that could not be decoded.",
            Counter,
            &one(s.undecodable),
        )?;
        family(
            &mut e,
            "fsprobe_unknown_prefixes",
            "Paths reported truncated: their cached prefix was unknown (a bug).",
            Counter,
            &one(s.unknown_prefixes),
        )?;
        let walks = vec![
            (labels(&[("end", "cached")]), s.walks_cached),
            (labels(&[("end", "root")]), s.walks_full),
        ];
        family(
            &mut e,
            "fsprobe_path_walks",
            "In-kernel path walks, by where they ended: a cached directory or the root.",
            Counter,
            &walks,
        )?;
        family(
            &mut e,
            "fsprobe_watch_limit_hits",
            "New files that could not be followed: the watch limit was reached.",
            Counter,
            &one(s.watch_limit_hits),
        )?;
        family(
            &mut e,
            "fsprobe_filtered_syscalls",
            "Syscalls left out in the kernel by the process filters.",
            Counter,
            &one(s.filtered_by_process),
        )?;
        family(
            &mut e,
            "fsprobe_filter_entries",
            "Entries in the in-kernel filter: watched directories, watched files no directory covers, and the directories the watched paths are names in.",
            Gauge,
            &one(s.filter_entries),
        )?;
        if let Some(pending) = s.buffer_pending_bytes {
            family(
                &mut e,
                "fsprobe_ring_buffer_pending_bytes",
                "Bytes waiting in the ring buffer when the reader last looked.",
                Gauge,
                &one(pending),
            )?;
        }
        family(
            &mut e,
            "fsprobe_ring_buffer_size_bytes",
            "Size of the kernel-to-user buffer (each CPU's with perf buffers).",
            Gauge,
            &one(s.buffer_size_bytes),
        )?;
        family(
            &mut e,
            "fsprobe_consumer_lag_records",
            "Records handed to the output loop and not yet taken.",
            Gauge,
            &one(s.consumer_lag),
        )?;
        self.encode_outputs(&mut e)
    }
}

impl Sources {
    fn encode_outputs(&self, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
        use MetricType::{Counter, Gauge};
        if self.outputs.is_empty() {
            return Ok(());
        }
        let get = OutputStats::get;
        let per = |f: &dyn Fn(&OutputStats) -> u64| -> Vec<(Labels, u64)> {
            self.outputs
                .iter()
                .map(|(name, s)| (labels(&[("output", name)]), f(s)))
                .collect()
        };
        family(
            e,
            "fsprobe_output_sent_records",
            "Records delivered by a network output (NATS: acknowledged).",
            Counter,
            &per(&|s| get(&s.sent)),
        )?;
        family(
            e,
            "fsprobe_output_duplicate_records",
            "Retries JetStream recognised as already stored.",
            Counter,
            &per(&|s| get(&s.duplicates)),
        )?;
        let mut lost = Vec::new();
        for (name, s) in &self.outputs {
            for (reason, counter) in [
                ("buffer_full", &s.lost_buffer_full),
                ("too_large", &s.lost_too_large),
                ("send_failed", &s.lost_send_failed),
                ("unsent_at_exit", &s.lost_at_exit),
            ] {
                lost.push((
                    labels(&[("output", name), ("reason", reason)]),
                    get(counter),
                ));
            }
        }
        family(
            e,
            "fsprobe_output_lost_events",
            "Events a network output lost, by reason.",
            Counter,
            &lost,
        )?;
        family(
            e,
            "fsprobe_output_buffered_records",
            "Records waiting in an output's buffer and spool.",
            Gauge,
            &per(&|s| get(&s.buffered)),
        )?;
        family(
            e,
            "fsprobe_output_spool_bytes",
            "Bytes waiting in an output's spool file.",
            Gauge,
            &per(&|s| get(&s.spool_bytes)),
        )?;
        family(
            e,
            "fsprobe_output_connected",
            "1 while a network output is connected.",
            Gauge,
            &per(&|s| u64::from(s.connected.load(std::sync::atomic::Ordering::Relaxed))),
        )
    }
}

//! A run with the fsprobe library watching the scenario's tree, consumed
//! like the CLI's `-f none`: every record is received, counted and dropped.
use std::path::Path;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use fsprobe::{Probe, Ready, Record, RecvError, ResolutionMode, Summary, Transport};

use crate::kernel::{self, progs::Progs};
use crate::procfs;
use crate::run::{self, Consumed, RunResult, WarmPass};
use crate::tree::Tree;
use crate::workload::{Pace, Workload};

/// After the workload, how long the stream may stay silent before the
/// missing events are declared missing (the worker polls every 100 ms).
const DRAIN_IDLE: Duration = Duration::from_millis(1500);

pub struct ProbeRun {
    pub result: RunResult,
    pub summary: Summary,
    pub ready: Ready,
    /// Events the workload should produce (0 when the tree is not watched).
    pub expected: u64,
    /// Lost events announced in the stream by `Record::Lost`.
    pub lost_in_stream: u64,
    /// Events of other processes in the watched tree (none expected).
    pub other_events: u64,
    /// The first such event, for the record.
    pub first_other: Option<String>,
}

impl ProbeRun {
    /// Every operation is one open event: delivered + lost must equal the
    /// operations, the in-stream notices must match the summary, and the
    /// library's count must cover what the consumer received. A mismatch
    /// is a finding about the library, reported, not a broken benchmark.
    pub fn accounting_error(&self) -> Option<String> {
        let (s, ops) = (&self.summary, self.expected);
        // Counted by the consumer, by thread: the workload's events only.
        let later: u64 = self.result.later_passes().map(|p| p.delivered).sum();
        let delivered = self.result.delivered + later;
        if delivered + s.lost() != ops {
            return Some(format!(
                "delivered {delivered} + lost {} != {ops} operations",
                s.lost()
            ));
        }
        if self.lost_in_stream != s.lost_buffer_full + s.lost_in_flight + s.lost_unread {
            return Some(format!(
                "{} lost in the stream but {} in the summary",
                self.lost_in_stream,
                s.lost()
            ));
        }
        let received = delivered + self.other_events;
        (s.events < received).then(|| {
            format!(
                "the summary counts {} events, the consumer received {received}",
                s.events
            )
        })
    }
}

/// What the probe watches.
#[derive(Debug, Clone, Copy)]
pub enum Watch<'a> {
    /// The scenario's tree: every operation is an event.
    Tree,
    /// Another (empty) directory: the hooks run and the filter says no,
    /// which isolates the cost of being attached.
    Elsewhere(&'a Path),
}

pub fn start(
    tree: &Tree,
    watch: Watch,
    mode: ResolutionMode,
    transport: Transport,
    pages: usize,
) -> fsprobe::Result<Probe> {
    let root = match watch {
        Watch::Tree => &tree.root,
        Watch::Elsewhere(dir) => dir,
    };
    Probe::builder()
        .path(root)
        .resolution_mode(mode)
        .transport(transport)
        .buffer_pages(pages)
        .start()
}

/// A started probe that runs one workload after another (the rate search
/// keeps one probe for all its steps: a detach takes seconds).
pub struct Session {
    probe: Probe,
    /// The probe's BPF programs, found in this process's fds after start.
    progs: Progs,
    watch_tree: bool,
    setup_s: f64,
    /// `Record::Lost` counts over every run so far.
    lost_in_stream: u64,
    /// The workloads' events delivered over every run so far.
    delivered: u64,
    other_events: u64,
    first_other: Option<String>,
}

/// One workload under a [`Session`].
pub struct StepRun {
    pub result: RunResult,
    /// Losses announced in the stream during this run.
    pub lost: u64,
}

impl Session {
    pub fn start(
        tree: &Tree,
        watch: Watch,
        mode: ResolutionMode,
        transport: Transport,
        pages: usize,
    ) -> fsprobe::Result<Session> {
        let t0 = Instant::now();
        let probe = start(tree, watch, mode, transport, pages)?;
        Ok(Session {
            probe,
            progs: Progs::of(None),
            watch_tree: matches!(watch, Watch::Tree),
            setup_s: t0.elapsed().as_secs_f64(),
            lost_in_stream: 0,
            delivered: 0,
            other_events: 0,
            first_other: None,
        })
    }

    /// Runs the workloads `ws` once (together) and drains their events.
    pub fn run(&mut self, ws: &[&Workload], pace: Pace) -> fsprobe::Result<StepRun> {
        let pids: Vec<u32> = ws.iter().map(|w| w.pid()).collect();
        let expected = |ops| if self.watch_tree { ops } else { 0 };
        let (mut delivered, mut lost, mut others) = (0u64, 0u64, 0u64);
        let mut first_other = None;
        let run = run::measure(ws, pace, &self.progs, |finished, ops| {
            let records = self.probe.records();
            let mut idle_since: Option<Instant> = None;
            loop {
                match records.recv_timeout(Duration::from_millis(20)) {
                    Ok(record) => {
                        match &record {
                            Record::Event(e) if pids.contains(&e.process.pid) => {
                                (delivered, idle_since) = (delivered + 1, None)
                            }
                            Record::Event(e) => {
                                others += 1;
                                first_other.get_or_insert_with(|| {
                                    let (path, comm) = (e.file.path.display(), &e.process.comm);
                                    format!("{} {path} by {comm}", e.kind)
                                });
                            }
                            Record::Lost { count, .. } => (lost, idle_since) = (lost + count, None),
                            _ => idle_since = None,
                        }
                        // As the CLI does: the probe decodes later events into it.
                        records.recycle(record);
                    }
                    Err(RecvError::Timeout) => {
                        let idle = idle_since.get_or_insert_with(Instant::now).elapsed();
                        if finished.load(Ordering::SeqCst) && idle > DRAIN_IDLE {
                            break;
                        }
                    }
                    Err(_) => break,
                }
                if delivered + lost >= expected(ops) && finished.load(Ordering::SeqCst) {
                    break;
                }
            }
            Consumed {
                delivered,
                lost: Some(lost),
            }
        });
        let mut result = run.map_err(|source| fsprobe::Error::Io {
            what: "running the workload".into(),
            source,
        })?;
        self.lost_in_stream += lost;
        self.delivered += delivered;
        self.other_events += others;
        if self.first_other.is_none() {
            self.first_other = first_other;
        }
        result.setup_s = Some(self.setup_s);
        result.kernel_map_bytes = Some(kernel::maps::memlock_total(None));
        result.rss_bytes = procfs::rss(None).map(|r| r.total);
        Ok(StepRun { result, lost })
    }

    /// Stops the probe (detaching takes seconds) and returns the totals.
    pub fn finish(self) -> fsprobe::Result<Finished> {
        let ready = self.probe.ready().clone();
        let t1 = Instant::now();
        let summary = self.probe.join()?;
        Ok(Finished {
            summary,
            ready,
            teardown_s: t1.elapsed().as_secs_f64(),
            lost_in_stream: self.lost_in_stream,
            delivered: self.delivered,
            other_events: self.other_events,
            first_other: self.first_other,
        })
    }
}

/// A stopped session.
pub struct Finished {
    pub summary: Summary,
    pub ready: Ready,
    pub teardown_s: f64,
    pub lost_in_stream: u64,
    pub delivered: u64,
    pub other_events: u64,
    pub first_other: Option<String>,
}

impl Finished {
    /// Over a whole session: the in-stream notices must match the summary
    /// and the library's count must cover what the consumer received.
    pub fn stream_error(&self) -> Option<String> {
        let s = &self.summary;
        if self.lost_in_stream != s.lost_buffer_full + s.lost_in_flight + s.lost_unread {
            return Some(format!(
                "{} lost in the stream but {} in the summary",
                self.lost_in_stream,
                s.lost()
            ));
        }
        let received = self.delivered + self.other_events;
        (s.events < received).then(|| {
            format!(
                "the summary counts {} events, the consumer received {received}",
                s.events
            )
        })
    }
}

/// What one more pass of the workload gave.
fn pass(step: StepRun) -> WarmPass {
    WarmPass {
        ns_per_op: step.result.ns_per_op,
        ops: step.result.ops,
        bpf: step.result.bpf,
        delivered: step.result.delivered,
        lost: step.lost,
        heap_bytes: step.result.heap_bytes,
        heap_allocs: step.result.heap_allocs,
        consumer_cpu_ns: step.result.consumer_cpu_ns,
    }
}

/// Starts a probe, runs the workload under it, stops it. The timed passes
/// run without BPF statistics (kernel/stats.rs): the first, which also
/// teaches the path caches every directory, and on the tree a second one,
/// the steady state. A last pass, with statistics on, gives the
/// programs' in-kernel time (`bpf`), in the steady state.
pub fn measure(
    tree: &Tree,
    w: &Workload,
    pace: Pace,
    watch: Watch,
    mode: ResolutionMode,
    transport: Transport,
    pages: usize,
) -> fsprobe::Result<ProbeRun> {
    let mut session = Session::start(tree, watch, mode, transport, pages)?;
    let on_tree = matches!(watch, Watch::Tree);
    let step = session.run(&[w], pace);
    // The same operations again, on warm caches: the steady state.
    let warm = match (on_tree, &step) {
        (true, Ok(_)) => Some(session.run(&[w], pace).map(pass)),
        _ => None,
    };
    let stats_pass = match (&step, &warm) {
        (Ok(_), None | Some(Ok(_))) => {
            let _on = kernel::stats::on();
            Some(session.run(&[w], pace).map(pass))
        }
        _ => None,
    };
    let done = session.finish();
    let mut result = step?.result;
    result.warm = warm.transpose()?;
    result.stats_pass = stats_pass.transpose()?;
    if let Some(stats) = &result.stats_pass {
        result.bpf = stats.bpf.clone();
    }
    let passes = 1 + u64::from(result.warm.is_some()) + u64::from(result.stats_pass.is_some());
    let expected = if on_tree { passes * pace.ops() } else { 0 };
    let done = done?;
    result.teardown_s = Some(done.teardown_s);
    // The first pass's: the summary counts every pass.
    let later_lost: u64 = result.later_passes().map(|p| p.lost).sum();
    result.lost = Some(done.summary.lost().saturating_sub(later_lost));
    result.walks_full = Some(done.summary.walks_full);
    result.walks_cached = Some(done.summary.walks_cached);
    Ok(ProbeRun {
        result,
        summary: done.summary,
        ready: done.ready,
        lost_in_stream: done.lost_in_stream,
        expected,
        other_events: done.other_events,
        first_other: done.first_other,
    })
}

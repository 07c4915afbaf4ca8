//! Progress of the initial walk of the watched trees, for a caller that
//! waits on [`ProbeBuilder::start`](crate::ProbeBuilder::start) while a
//! large tree is walked (the CLI prints a line on stderr).
use std::fmt;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How far the initial walk of the watched trees has come.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalkProgress {
    /// Files and directories added to the in-kernel filter so far.
    pub entries: u64,
    /// Since the walk began.
    pub elapsed: Duration,
    /// The walk is over: `entries` is the ready line's `watched_inodes`.
    pub done: bool,
}

/// A callback and how often it is called.
#[derive(Clone)]
pub(crate) struct ProgressReport {
    pub(crate) every: Duration,
    pub(crate) callback: Arc<dyn Fn(&WalkProgress) + Send + Sync>,
}

impl fmt::Debug for ProgressReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ProgressReport")
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

/// Entries between two looks at the clock.
const CHECK_EVERY: u64 = 256;

/// Calls the callback, if any, once per `every` while the walk goes on,
/// and once when it is over.
pub(crate) struct Progress {
    report: Option<ProgressReport>,
    started: Instant,
    next: Instant,
    ticks: u64,
}

impl Progress {
    pub(crate) fn new(report: Option<ProgressReport>) -> Self {
        let started = Instant::now();
        let next = started + report.as_ref().map_or(Duration::ZERO, |r| r.every);
        Progress {
            report,
            started,
            next,
            ticks: 0,
        }
    }

    /// Whether anybody is told.
    pub(crate) fn reports(&self) -> bool {
        self.report.is_some()
    }

    /// One more entry, `entries` so far.
    pub(crate) fn tick(&mut self, entries: u64) {
        let Some(report) = &self.report else {
            return;
        };
        self.ticks += 1;
        if !self.ticks.is_multiple_of(CHECK_EVERY) {
            return;
        }
        let now = Instant::now();
        if now < self.next {
            return;
        }
        self.next = now + report.every;
        (report.callback)(&WalkProgress {
            entries,
            elapsed: now - self.started,
            done: false,
        });
    }

    /// The walk is over, with `entries` in the filter.
    pub(crate) fn done(&self, entries: u64) {
        if let Some(report) = &self.report {
            (report.callback)(&WalkProgress {
                entries,
                elapsed: self.started.elapsed(),
                done: true,
            });
        }
    }
}

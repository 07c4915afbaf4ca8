//! A running probe, as its user holds it: the records' channel, the stop
//! flag, and what it reported at start (Ready) and at stop (Summary). A
//! worker thread (src/worker.rs) owns the BPF objects, reads the
//! transport, decodes records and hands them over the bounded channel.
//! When the channel is full the worker waits, the kernel buffer fills, and
//! the kernel counts what it cannot send: nothing is lost without being
//! counted.
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use serde::Serialize;

use crate::channel;
use crate::config::{BackendKind, KERNEL_BTF, ProbeBuilder};
use crate::error::{Error, Result};
use crate::records::Records;
use crate::recycle::EventPool;
use crate::stats::StatsReader;
use crate::worker;

/// What the probe reports once it is running.
#[derive(Debug, Clone, Serialize)]
#[non_exhaustive]
pub struct Ready {
    /// The backend in use.
    pub backend: BackendKind,
    /// Files and directories the initial walk found in the watched trees.
    pub watched_inodes: u64,
    /// Entries it put in the in-kernel filter: the directories, and the
    /// files no directory covers (a watched path that is a file, a file
    /// with more than one link). `--max-watches` bounds these.
    pub filter_entries: u64,
    /// Entries of the watched trees that could not be read, so are not
    /// watched, and the first such error.
    pub unreadable_entries: u64,
    /// The first error met while walking the trees.
    pub first_unreadable: Option<String>,
    /// Syscalls hooked.
    pub syscalls: Vec<&'static str>,
    /// Syscalls of the selected events that this kernel does not have.
    pub missing_syscalls: Vec<&'static str>,
    /// The io_uring opcodes reported at completion (on the VFS backends
    /// the namespace operations come from the VFS hooks instead).
    pub io_uring_ops: Vec<&'static str>,
    /// What this backend could not have on this kernel, each with why
    /// ("hook: reason"): what fsprobe does not see here.
    pub left_out: Vec<String>,
    /// The running kernel's release.
    pub kernel: String,
}

/// Totals when the probe stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Summary {
    /// Events handed to the consumer.
    pub events: u64,
    /// Events dropped because the ring buffer was full (gaps in the
    /// per-CPU sequence numbers).
    pub lost_buffer_full: u64,
    /// The same, as counted by the kernel; equal to `lost_buffer_full`.
    pub lost_buffer_full_counted: u64,
    /// Syscalls left out in the kernel by the process filters.
    pub filtered_by_process: u64,
    /// Events dropped because too many syscalls were in flight.
    pub lost_in_flight: u64,
    /// Events produced before the stop but still unread when the reads
    /// after it ran out of time.
    pub lost_unread: u64,
    /// New files that could not be followed: the watch limit was reached
    /// (the sum of the stream's `Unwatched` records).
    pub watch_limit_hits: u64,
    /// Records that could not be decoded (a version mismatch; a bug).
    pub undecodable: u64,
    /// Paths whose cached prefix user space did not know, so reported
    /// truncated (a bug if ever non-zero).
    pub unknown_prefixes: u64,
    /// Records that named a process whose context user space did not
    /// know, so reported without it (a bug if ever non-zero).
    pub unknown_processes: u64,
    /// In-kernel path walks cut short by the resolution mode's cache.
    pub walks_cached: u64,
    /// In-kernel path walks that went up to the root.
    pub walks_full: u64,
}

impl Summary {
    /// All events lost, whatever the reason.
    pub fn lost(&self) -> u64 {
        self.lost_buffer_full + self.lost_in_flight + self.lost_unread + self.undecodable
    }
}

/// A running probe. Dropping it stops the probe and detaches everything.
///
/// ```no_run
/// let probe = fsprobe::Probe::builder().path("/etc").start()?;
/// for record in probe.records() {
///     if let fsprobe::Record::Event(e) = record {
///         println!("{} {}", e.kind, e.file.path.display());
///     }
/// }
/// # Ok::<(), fsprobe::Error>(())
/// ```
pub struct Probe {
    records: Option<Records>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<Summary>>,
    ready: Ready,
    stats: StatsReader,
}

impl Probe {
    /// A builder with the seed's defaults.
    pub fn builder() -> ProbeBuilder {
        ProbeBuilder::default()
    }

    /// What is running: backend, watched inodes, hooked syscalls.
    pub fn ready(&self) -> &Ready {
        &self.ready
    }

    /// The records, in order. Iteration ends after [`Probe::stop`], once
    /// what the kernel had produced by then has been delivered, or, when
    /// it could not all be read within 200 ms, reported lost (`Unread`).
    pub fn records(&self) -> &Records {
        self.records.as_ref().expect("present until drop")
    }

    /// The counters now (see [`Stats`](crate::Stats)).
    pub fn stats(&self) -> crate::Stats {
        self.stats.snapshot()
    }

    /// A reader of the counters for another thread, e.g. a metrics endpoint.
    pub fn stats_reader(&self) -> StatsReader {
        self.stats.clone()
    }

    /// Moves the records out (for the stream); `records()` must not be
    /// called afterwards.
    #[cfg(feature = "tokio")]
    pub(crate) fn take_records(&mut self) -> Records {
        self.records.take().expect("present until drop")
    }

    /// Asks the probe to stop; records produced so far are still delivered
    /// (keep receiving them, or call [`Probe::join`]: the worker waits
    /// while the channel is full).
    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    /// A flag that stops the probe when set, e.g. from a signal handler.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.stop)
    }

    /// Stops the probe, discards undelivered records and returns the totals.
    pub fn join(mut self) -> Result<Summary> {
        self.shutdown()
    }

    fn shutdown(&mut self) -> Result<Summary> {
        self.stop();
        self.records.take();
        match self.worker.take() {
            Some(w) => w.join().map_err(|_| Error::WorkerGone),
            None => Ok(Summary::default()),
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.shutdown();
    }
}

impl ProbeBuilder {
    /// Loads and attaches the probes, seeds the filter, and returns once
    /// events are flowing.
    pub fn start(self) -> Result<Probe> {
        let config = self.validate()?;
        // SAFETY: geteuid has no preconditions.
        let euid = unsafe { libc::geteuid() };
        if euid != 0 {
            return Err(Error::NotRoot(euid));
        }
        // A BTF file given instead was checked with the options.
        if config.btf.is_none() && !Path::new(KERNEL_BTF).is_file() {
            return Err(Error::NoBtf(KERNEL_BTF.into()));
        }
        let (ready_tx, ready_rx) = mpsc::channel();
        let (tx, rx) = channel::bounded(config.channel_size);
        let pool = Arc::new(EventPool::new(config.channel_size));
        let worker_pool = Arc::clone(&pool);
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = Arc::clone(&stop);
        let worker = std::thread::Builder::new()
            .name("fsprobe".into())
            .spawn(move || worker::run(config, tx, worker_pool, ready_tx, worker_stop))
            .map_err(|source| Error::Io {
                what: "starting the probe thread".into(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok((ready, stats))) => Ok(Probe {
                records: Some(Records::new(rx, stats.live(), pool)),
                stop,
                worker: Some(worker),
                ready,
                stats,
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => Err(Error::WorkerGone),
        }
    }
}

//! Where records go: the main sink (`-f` to stdout or `-o FILE`) and the
//! network outputs (NATS JetStream, syslog), each fed the record's NDJSON
//! object. The consumer loop never waits on the network: each network
//! output has a bounded queue and a sender thread of its own.
pub mod file;
pub mod nats;
pub mod queue;
pub mod spool;
pub mod syslog;

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use fsprobe::Record;

use crate::sink::Sink;

/// Counters of one network output, shared with its sender and the metrics.
#[derive(Debug, Default)]
pub struct OutputStats {
    /// Records delivered (NATS: acknowledged by JetStream; syslog: written
    /// to the socket).
    pub sent: AtomicU64,
    /// JetStream acknowledgements that said "duplicate" (a retry of a
    /// record already stored).
    pub duplicates: AtomicU64,
    /// Events dropped because the buffer (and spool) was full.
    pub lost_buffer_full: AtomicU64,
    /// Events too large for a datagram (syslog over UDP).
    pub lost_too_large: AtomicU64,
    /// Events the socket refused (syslog over UDP), or a spool that could
    /// not be read back.
    pub lost_send_failed: AtomicU64,
    /// Events still queued when the drain timeout ran out at exit.
    pub lost_at_exit: AtomicU64,
    /// Records waiting now, in memory and spool.
    pub buffered: AtomicU64,
    /// Bytes waiting in the spool file now.
    pub spool_bytes: AtomicU64,
    /// Whether the output is connected now.
    pub connected: AtomicBool,
}

impl OutputStats {
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Events this output lost, whatever the reason.
    pub fn lost(&self) -> u64 {
        Self::get(&self.lost_buffer_full)
            + Self::get(&self.lost_too_large)
            + Self::get(&self.lost_send_failed)
            + Self::get(&self.lost_at_exit)
    }
}

/// A network output: takes records without blocking, sends them on its own thread.
pub trait Forwarder {
    /// The output's name in logs and metrics: `nats`, `syslog_tcp`, `syslog_udp`.
    fn name(&self) -> &'static str;
    /// Queues one record; `json` is its NDJSON object (no newline).
    fn send(&mut self, record: &Record, json: &[u8]);
    /// Its counters.
    fn stats(&self) -> Arc<OutputStats>;
    /// Sends what is queued until `deadline`, then stops the sender.
    fn finish(self: Box<Self>, deadline: Instant) -> FinishReport;
}

/// How long past the drain deadline a sender thread may take to notice it.
const STOP_GRACE: Duration = Duration::from_secs(2);

/// A network output's sender thread. At exit it is waited for only until
/// the drain deadline (and a grace): a client library stuck in a call must
/// not hold fsprobe's exit; what the queue still holds is then counted.
pub struct SenderThread {
    name: &'static str,
    handle: JoinHandle<()>,
    done: mpsc::Receiver<()>,
}

impl SenderThread {
    pub fn spawn(name: &'static str, run: impl FnOnce() + Send + 'static) -> io::Result<Self> {
        let (tx, done) = mpsc::channel();
        let handle = std::thread::Builder::new()
            .name(format!("fsprobe-{name}"))
            .spawn(move || {
                run();
                let _ = tx.send(());
            })?;
        Ok(SenderThread { name, handle, done })
    }

    /// Waits for the thread to end, until `deadline` and the grace.
    pub fn join_by(self, deadline: Instant) {
        let wait = deadline.saturating_duration_since(Instant::now()) + STOP_GRACE;
        match self.done.recv_timeout(wait) {
            Err(mpsc::RecvTimeoutError::Timeout) => eprintln!(
                "fsprobe: {}: the sender did not stop in time; what it holds is counted unsent",
                self.name
            ),
            // Done, or it panicked (the panic was printed).
            _ => {
                let _ = self.handle.join();
            }
        }
    }
}

/// What a network output did, for the exit summary.
pub struct FinishReport {
    pub name: &'static str,
    pub stats: Arc<OutputStats>,
    /// Records left in the spool for the next run.
    pub spooled: u64,
}

impl FinishReport {
    pub fn summary_line(&self) -> String {
        let s = &self.stats;
        let get = OutputStats::get;
        let mut line = format!(
            "fsprobe: {}: {} records sent, {} events lost (buffer full: {}, too large: {}, send failed: {}, unsent at exit: {})",
            self.name,
            get(&s.sent),
            s.lost(),
            get(&s.lost_buffer_full),
            get(&s.lost_too_large),
            get(&s.lost_send_failed),
            get(&s.lost_at_exit),
        );
        if get(&s.duplicates) > 0 {
            line.push_str(&format!(
                ", {} duplicates dropped by the server",
                get(&s.duplicates)
            ));
        }
        if self.spooled > 0 {
            line.push_str(&format!(", {} records kept in the spool", self.spooled));
        }
        line
    }
}

/// Every output of a run.
pub struct Outputs {
    pub main: Box<dyn Sink>,
    /// True when the main sink writes NDJSON (so the object is needed anyway).
    main_json: bool,
    pub forwarders: Vec<Box<dyn Forwarder>>,
    json: Vec<u8>,
}

impl Outputs {
    pub fn new(main: Box<dyn Sink>, main_json: bool, forwarders: Vec<Box<dyn Forwarder>>) -> Self {
        Outputs {
            main,
            main_json,
            forwarders,
            json: Vec::with_capacity(4096),
        }
    }

    /// Writes one record everywhere; only the main sink's errors stop the run.
    pub fn write(&mut self, record: &Record) -> io::Result<()> {
        self.json.clear();
        if self.main_json || !self.forwarders.is_empty() {
            // The same bytes as serde_json::to_writer, in a third of the time.
            record.write_json(&mut self.json);
        }
        for f in &mut self.forwarders {
            f.send(record, &self.json);
        }
        self.main.write(record, &self.json)
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.main.flush()
    }

    /// The network outputs' counters, for the metrics endpoint.
    pub fn forwarder_stats(&self) -> Vec<(&'static str, Arc<OutputStats>)> {
        self.forwarders
            .iter()
            .map(|f| (f.name(), f.stats()))
            .collect()
    }

    /// Lets each network output send what it holds, all within `deadline`.
    pub fn finish(self, deadline: Instant) -> Vec<FinishReport> {
        self.forwarders
            .into_iter()
            .map(|f| f.finish(deadline))
            .collect()
    }
}

//! A running probe: a worker thread owns the BPF objects, polls the ring
//! buffer, decodes records and hands them to the consumer over a bounded
//! channel. When the channel is full the worker waits, the ring buffer
//! fills, and the kernel counts what it cannot send: nothing is lost
//! without being counted.
use std::cell::{Cell, RefCell};
use std::mem::MaybeUninit;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, SyncSender};
use std::thread::JoinHandle;
use std::time::Duration;

use libbpf_rs::{
    MapCore, MapFlags, MapHandle, OpenObject, PerfBuffer, PerfBufferBuilder, RingBuffer,
    RingBufferBuilder,
};
use serde::Serialize;

use crate::backend::{self, Backend};
use crate::clock::BootClock;
use crate::config::{Config, KERNEL_BTF, ProbeBuilder, Transport};
use crate::decode::{Decoder, record_cpu};
use crate::error::{BpfContext, Error, Result};
use crate::event::{LossReason, Record};
use crate::loss::{LossTracker, SeqTracker, counter, read_counter, read_percpu};
use crate::pacing::{DRAIN_BUDGET, Pacing};
use crate::reorder::Waiting;
use crate::watch::Seeder;

/// How long the worker sleeps in the ring buffer when nothing wakes it.
const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What the probe reports once it is running.
#[derive(Debug, Clone, Serialize)]
pub struct Ready {
    /// The backend in use.
    pub backend: &'static str,
    /// Files and directories in the in-kernel filter after the initial walk.
    pub watched_inodes: u64,
    /// Entries of the watched trees that could not be read, so are not
    /// watched, and the first such error.
    pub unreadable_entries: u64,
    /// The first error met while walking the trees.
    pub first_unreadable: Option<String>,
    /// Syscalls hooked.
    pub syscalls: Vec<&'static str>,
    /// Syscalls of the selected events that this kernel does not have.
    pub missing_syscalls: Vec<&'static str>,
}

/// Totals when the probe stops.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
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
    records: Option<Receiver<Record>>,
    stop: Arc<AtomicBool>,
    worker: Option<JoinHandle<Summary>>,
    ready: Ready,
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
    pub fn records(&self) -> &Receiver<Record> {
        self.records.as_ref().expect("present until drop")
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
        let (tx, rx) = mpsc::sync_channel(config.channel_size);
        let stop = Arc::new(AtomicBool::new(false));
        let worker_stop = Arc::clone(&stop);
        let worker = std::thread::Builder::new()
            .name("fsprobe".into())
            .spawn(move || run(config, tx, ready_tx, worker_stop))
            .map_err(|source| Error::Io {
                what: "starting the probe thread".into(),
                source,
            })?;
        match ready_rx.recv() {
            Ok(Ok(ready)) => Ok(Probe {
                records: Some(rx),
                stop,
                worker: Some(worker),
                ready,
            }),
            Ok(Err(e)) => {
                let _ = worker.join();
                Err(e)
            }
            Err(_) => Err(Error::WorkerGone),
        }
    }
}

fn setup<'obj>(
    config: &Config,
    storages: &'obj mut [MaybeUninit<OpenObject>; 3],
) -> Result<(Backend<'obj>, Ready)> {
    let backend = backend::start(config, storages)?;
    let mut seeder = Seeder::new(backend.watched_map(), config.max_watches, config.recursive);
    if config.paths_filtering {
        for path in &config.paths {
            seeder.seed(path)?;
        }
    }
    let ready = Ready {
        backend: backend.kind.name(),
        watched_inodes: seeder.inserted,
        unreadable_entries: seeder.skipped,
        first_unreadable: seeder.first_skip.take(),
        syscalls: backend.attached.clone(),
        missing_syscalls: backend.missing.clone(),
    };
    Ok((backend, ready))
}

fn run(
    config: Config,
    tx: SyncSender<Record>,
    ready_tx: mpsc::Sender<Result<Ready>>,
    stop: Arc<AtomicBool>,
) -> Summary {
    let mut storages = [const { MaybeUninit::uninit() }; 3];
    let (backend, ready) = match setup(&config, &mut storages) {
        Ok(started) => started,
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return Summary::default();
        }
    };
    let clock = BootClock::now();
    let next_seqs = match MapHandle::try_from(&backend.skel.maps.seq_next) {
        Ok(map) => map,
        Err(source) => {
            let _ = ready_tx.send(Err(Error::Bpf {
                what: "opening the sequence numbers".into(),
                source,
            }));
            return Summary::default();
        }
    };
    // User space keeps twice the kernel's entries before an epoch flush:
    // the kernel's LRU evicts, user space cannot tell which.
    let handler = Handler {
        decoder: RefCell::new(Decoder::new(
            clock,
            config.resolution_mode,
            2 * config.cache_size as usize,
        )),
        tx: tx.clone(),
        delivered: Cell::new(0),
        undecodable: Cell::new(0),
        seqs: RefCell::new(SeqTracker::default()),
        waiting: RefCell::new(Waiting::default()),
        may_defer: config.transport == Transport::PerfBuffer,
        pacing: Pacing::new(Arc::clone(&stop), DRAIN_BUDGET, move || {
            read_percpu(&next_seqs, 0)
        }),
    };
    let reader = match Reader::new(&backend, &config, &handler) {
        Ok(reader) => {
            let _ = ready_tx.send(Ok(ready));
            reader
        }
        Err(e) => {
            let _ = ready_tx.send(Err(e));
            return Summary::default();
        }
    };
    let counters = &backend.skel.maps.counters;
    let seq_next = &backend.skel.maps.seq_next;
    let mut losses = LossTracker::default();
    while !stop.load(Ordering::SeqCst) {
        let caught_up = reader.poll(&handler);
        losses.report(counters, &tx);
        // A record still waiting (perf buffer) or unread (a read that
        // yielded) is not lost: judge the trailing gaps only when the
        // reader caught up and none waits.
        if caught_up && handler.waiting.borrow().is_empty() {
            let stalled = handler.seqs.borrow_mut().stalled(&read_percpu(seq_next, 0));
            send_trailing_losses(stalled, LossReason::BufferFull, &tx);
        }
        publish_epoch(&backend, &mut handler.decoder.borrow_mut());
    }
    let unread = drain_after_stop(&reader, &handler, &mut losses, counters);
    drop(reader);
    let Handler {
        decoder,
        delivered,
        undecodable,
        seqs,
        ..
    } = handler;
    Summary {
        events: delivered.get(),
        lost_buffer_full: seqs.borrow().lost() - unread,
        lost_in_flight: losses.in_flight,
        lost_unread: unread,
        lost_buffer_full_counted: read_counter(counters, counter::LOST_BUFFER),
        filtered_by_process: read_counter(counters, counter::FILTERED_PROC),
        watch_limit_hits: losses.unwatched,
        undecodable: undecodable.get(),
        unknown_prefixes: decoder.borrow().unknown_prefixes,
        walks_cached: read_counter(counters, counter::WALK_CACHED),
        walks_full: read_counter(counters, counter::WALK_FULL),
    }
}

/// After the stop: reads what the kernel had produced by then, for at most
/// DRAIN_BUDGET after the stop was seen (producers keep writing until the
/// programs are detached), and reports what was not read. Returns how
/// many events were left unread.
fn drain_after_stop(
    reader: &Reader,
    handler: &Handler,
    losses: &mut LossTracker,
    counters: &impl MapCore,
) -> u64 {
    let drained = reader.drain(handler);
    losses.report(counters, &handler.tx);
    let trailing = handler.seqs.borrow_mut().finish(&handler.pacing.due());
    if drained {
        send_trailing_losses(trailing, LossReason::BufferFull, &handler.tx);
        return 0;
    }
    let unread = trailing.iter().map(|(_, count)| count).sum();
    send_trailing_losses(trailing, LossReason::Unread, &handler.tx);
    unread
}

/// Decodes records and hands them on; shared by the transport's callbacks.
struct Handler {
    decoder: RefCell<Decoder>,
    tx: SyncSender<Record>,
    delivered: Cell<u64>,
    undecodable: Cell<u64>,
    seqs: RefCell<SeqTracker>,
    /// Perf buffer: records whose cached prefix was taught by a record
    /// still unread in another CPU's buffer (src/reorder.rs).
    waiting: RefCell<Waiting>,
    may_defer: bool,
    /// When reads yield to the loop, and end after the stop.
    pacing: Pacing,
}

impl Handler {
    fn on_record(&self, data: &[u8]) {
        if self.may_defer {
            // Once one record of a CPU waits, the later ones of that CPU
            // wait behind it: each CPU's records stay in order.
            let cpu = record_cpu(data);
            let mut waiting = self.waiting.borrow_mut();
            if waiting.holds(cpu) || !self.decoder.borrow().prefixes_known(data) {
                waiting.push(cpu, data);
                return;
            }
        }
        self.decode(data);
    }

    fn decode(&self, data: &[u8]) {
        if self.pacing.skip() {
            return;
        }
        let decoded = self.decoder.borrow_mut().decode(data);
        match decoded {
            Ok(event) => {
                if let Some(count) = self.seqs.borrow_mut().on_event(event.cpu, event.seq) {
                    let _ = self.tx.send(Record::Lost {
                        count,
                        reason: LossReason::BufferFull,
                        cpu: Some(event.cpu),
                    });
                }
                if self.tx.send(Record::Event(Box::new(event))).is_ok() {
                    self.delivered.set(self.delivered.get() + 1);
                }
            }
            Err(_) => self.undecodable.set(self.undecodable.get() + 1),
        }
    }

    /// Decodes the waiting records that can be (all of them with `give_up`).
    fn decode_waiting(&self, give_up: bool) {
        loop {
            if self.pacing.skip() {
                // Counted lost from the seq gaps, as skipped records are.
                self.waiting.borrow_mut().clear();
                return;
            }
            let next = {
                let decoder = self.decoder.borrow();
                self.waiting
                    .borrow_mut()
                    .take_ready(|d| decoder.prefixes_known(d), give_up)
            };
            match next {
                Some(data) => self.decode(&data),
                None => break,
            }
        }
    }
}

/// The consumer's end of the transport.
enum Reader<'a> {
    Ring(RingBuffer<'a>),
    Perf(PerfBuffer<'a>),
}

impl<'a> Reader<'a> {
    fn new(backend: &'a Backend, config: &Config, handler: &'a Handler) -> Result<Reader<'a>> {
        match config.transport {
            Transport::RingBuffer => {
                let mut builder = RingBufferBuilder::new();
                builder
                    .add(&backend.skel.maps.events, |data: &[u8]| {
                        handler.on_record(data);
                        // A negative return ends libbpf's read (src/pacing.rs).
                        if handler.pacing.over() { -1 } else { 0 }
                    })
                    .context("setting up the ring buffer")?;
                let ring = builder.build().context("setting up the ring buffer")?;
                Ok(Reader::Ring(ring))
            }
            Transport::PerfBuffer => {
                // Losses are found from the gaps in each CPU's seq (the
                // kernel's lost-sample notices would count them twice).
                let perf = PerfBufferBuilder::new(&backend.skel.maps.events_perf)
                    .pages(config.buffer_bytes / 4096)
                    .sample_cb(|_cpu: i32, data: &[u8]| handler.on_record(data))
                    .build()
                    .context("setting up the perf buffers")?;
                Ok(Reader::Perf(perf))
            }
        }
    }

    /// Waits up to POLL_INTERVAL, then reads what is pending, up to one
    /// slice (src/pacing.rs). True when it read everything.
    fn poll(&self, handler: &Handler) -> bool {
        handler.pacing.begin();
        match self {
            // Records are committed without a wakeup until the watermark,
            // and ring_buffer__poll() consumes only rings whose epoll
            // fired: consume explicitly so that a quiet stream is
            // delivered within the interval.
            Reader::Ring(ring) => {
                let _ = ring.poll(POLL_INTERVAL);
                if !handler.pacing.was_cut() {
                    let _ = ring.consume();
                }
                !handler.pacing.was_cut()
            }
            Reader::Perf(perf) => {
                handler.waiting.borrow_mut().next_round();
                let _ = perf.poll(POLL_INTERVAL);
                let _ = perf.consume();
                handler.decode_waiting(false);
                if !handler.waiting.borrow().is_empty() {
                    // Teachers written while the first read was under way.
                    handler.waiting.borrow_mut().next_round();
                    let _ = perf.consume();
                    handler.decode_waiting(false);
                }
                true
            }
        }
    }

    /// After the stop: reads everything pending, without waiting, until
    /// the stop's deadline. False when records were left unread.
    fn drain(&self, handler: &Handler) -> bool {
        handler.pacing.begin_drain();
        match self {
            Reader::Ring(ring) => loop {
                let _ = ring.consume();
                if !handler.pacing.was_cut() {
                    return true;
                }
                if handler.pacing.skip() {
                    return false;
                }
                handler.pacing.begin();
            },
            Reader::Perf(perf) => {
                for _ in 0..2 {
                    handler.waiting.borrow_mut().next_round();
                    let _ = perf.consume();
                    handler.decode_waiting(false);
                }
                handler.decode_waiting(true);
                !handler.pacing.was_cut()
            }
        }
    }
}

/// Events numbered on a CPU but never received: lost after its last record.
fn send_trailing_losses(lost: Vec<(u32, u64)>, reason: LossReason, tx: &SyncSender<Record>) {
    for (cpu, count) in lost {
        let _ = tx.send(Record::Lost {
            count,
            reason,
            cpu: Some(cpu),
        });
    }
}

/// Tells the kernel about a user-space cache flush (bpf/cache.h: cache_gen[1]).
fn publish_epoch(backend: &Backend, decoder: &mut Decoder) {
    if let Some(epoch) = decoder.new_epoch.take() {
        let _ = backend.skel.maps.cache_gen.update(
            &1u32.to_ne_bytes(),
            &epoch.to_ne_bytes(),
            MapFlags::ANY,
        );
    }
}

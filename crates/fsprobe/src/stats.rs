//! Live counters of a running probe, readable from any thread while it
//! runs (a metrics endpoint, a health check).
//!
//! The worker bumps atomics as it delivers records; the kernel's own
//! counters and the watched-inode filter are read on demand through
//! duplicated map file descriptors, so taking a snapshot costs the worker
//! nothing. The totals agree with the exit [`Summary`](crate::Summary):
//! once the traffic stops, a snapshot and the summary hold the same numbers.
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SendError;

use libbpf_rs::{MapHandle, RingBuffer};

use crate::channel::Sender;
use crate::config::Transport;
use crate::event::{EventKind, Record};
use crate::loss::{counter, read_counter};
use crate::watched::Watched;

/// A snapshot of a running probe's counters.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events handed to the consumer, per kind (every kind, zeros included).
    pub events: Vec<(EventKind, u64)>,
    /// Events lost because the kernel-to-user buffer was full.
    pub lost_buffer_full: u64,
    /// Events lost because too many syscalls were in flight.
    pub lost_in_flight: u64,
    /// Events produced before the stop but left unread (set at the end).
    pub lost_unread: u64,
    /// Records that could not be decoded.
    pub undecodable: u64,
    /// Paths reported truncated because their cached prefix was unknown.
    pub unknown_prefixes: u64,
    /// New files that could not be followed: the watch limit was reached.
    pub watch_limit_hits: u64,
    /// Syscalls left out in the kernel by the process filters.
    pub filtered_by_process: u64,
    /// In-kernel path walks cut short by the resolution mode's cache.
    pub walks_cached: u64,
    /// In-kernel path walks that went up to the root.
    pub walks_full: u64,
    /// Entries in the in-kernel filter now: the watched directories, the
    /// watched files no directory covers, and the directories the watched
    /// paths are names in (see [`Ready::filter_entries`](crate::Ready)).
    pub filter_entries: u64,
    /// Bytes waiting in the ring buffer when the worker last looked, just
    /// before reading it; `None` with the perf buffer transport.
    pub buffer_pending_bytes: Option<u64>,
    /// Size of the kernel-to-user buffer (of each CPU's, for perf buffers).
    pub buffer_size_bytes: u64,
    /// Records (events and loss notices) handed to the channel and not yet
    /// taken by the consumer.
    pub consumer_lag: u64,
}

impl Stats {
    /// Events delivered, all kinds together.
    pub fn events_total(&self) -> u64 {
        self.events.iter().map(|(_, n)| n).sum()
    }
}

/// What the worker counts as it goes.
#[derive(Debug, Default)]
pub(crate) struct Live {
    events: [AtomicU64; EventKind::ALL.len()],
    pub(crate) lost_buffer_full: AtomicU64,
    pub(crate) lost_in_flight: AtomicU64,
    pub(crate) lost_unread: AtomicU64,
    pub(crate) undecodable: AtomicU64,
    pub(crate) unknown_prefixes: AtomicU64,
    /// Records sent to the channel.
    pub(crate) sent: AtomicU64,
    /// Records the consumer took from the channel.
    pub(crate) taken: AtomicU64,
    ring_pending: AtomicU64,
}

impl Live {
    pub(crate) fn delivered(&self, kind: EventKind) {
        if let Some(i) = EventKind::ALL.iter().position(|k| *k == kind) {
            self.events[i].fetch_add(1, Ordering::Relaxed);
        }
    }

    /// What the ring holds, sampled before the worker reads it.
    pub(crate) fn ring_pending(&self, bytes: u64) {
        self.ring_pending.store(bytes, Ordering::Relaxed);
    }

    /// Copies one of the worker's own totals.
    pub(crate) fn set(counter: &AtomicU64, value: u64) {
        counter.store(value, Ordering::Relaxed);
    }
}

/// Bytes waiting in the ring buffer now.
pub(crate) fn ring_pending(ring: &RingBuffer) -> u64 {
    use libbpf_rs::AsRawLibbpf;
    let rb = ring.as_libbpf_object().as_ptr();
    // SAFETY: rb is the live ring_buffer that `ring` owns; index 0 is the
    // only ring added to it (transport.rs: Reader::new), and
    // ring__avail_data_size only reads the mmap'ed producer and consumer
    // positions.
    unsafe {
        let r = libbpf_sys::ring_buffer__ring(rb, 0);
        if r.is_null() {
            return 0;
        }
        libbpf_sys::ring__avail_data_size(r) as u64
    }
}

/// The worker's end of the records' channel (the walker's too): counts
/// what it hands over, for the consumer lag.
#[derive(Debug, Clone)]
pub(crate) struct RecordSender {
    tx: Sender<Record>,
    live: Arc<Live>,
}

impl RecordSender {
    pub(crate) fn new(tx: Sender<Record>, live: Arc<Live>) -> RecordSender {
        RecordSender { tx, live }
    }

    /// Blocks while the channel is full; fails once the consumer is gone.
    pub(crate) fn send(&self, record: Record) -> Result<(), SendError<Record>> {
        self.tx.send(record)?;
        self.live.sent.fetch_add(1, Ordering::Relaxed);
        Ok(())
    }

    /// Wakes the consumer if it sleeps while records wait: due before
    /// sleeping or blocking anywhere but in `send` (src/channel.rs).
    pub(crate) fn flush(&self) {
        self.tx.flush();
    }
}

/// The kernel maps a snapshot reads, through fds of their own.
#[derive(Debug)]
pub(crate) struct KernelMaps {
    pub(crate) counters: MapHandle,
    pub(crate) watched: Arc<Watched>,
}

/// Reads a running probe's counters from any thread. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StatsReader {
    pub(crate) live: Arc<Live>,
    pub(crate) maps: Arc<KernelMaps>,
    pub(crate) transport: Transport,
    pub(crate) buffer_bytes: u64,
}

impl StatsReader {
    pub(crate) fn live(&self) -> Arc<Live> {
        Arc::clone(&self.live)
    }

    /// The counters now. Counting the watched inodes walks the filter map
    /// in batches: a few milliseconds per hundred thousand entries.
    pub fn snapshot(&self) -> Stats {
        let live = &self.live;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let counters = &self.maps.counters;
        let sent = get(&live.sent);
        Stats {
            events: EventKind::ALL
                .iter()
                .zip(&live.events)
                .map(|(k, n)| (*k, get(n)))
                .collect(),
            lost_buffer_full: get(&live.lost_buffer_full),
            lost_in_flight: get(&live.lost_in_flight),
            lost_unread: get(&live.lost_unread),
            undecodable: get(&live.undecodable),
            unknown_prefixes: get(&live.unknown_prefixes),
            watch_limit_hits: read_counter(counters, counter::WATCH_FULL),
            filtered_by_process: read_counter(counters, counter::FILTERED_PROC),
            walks_cached: read_counter(counters, counter::WALK_CACHED),
            walks_full: read_counter(counters, counter::WALK_FULL),
            filter_entries: self.maps.watched.count(),
            buffer_pending_bytes: (self.transport == Transport::RingBuffer)
                .then(|| get(&live.ring_pending)),
            buffer_size_bytes: self.buffer_bytes,
            consumer_lag: sent.saturating_sub(get(&live.taken)),
        }
    }
}

/// A snapshot reader and the live counters it shares with the worker.
pub(crate) fn reader(
    maps: KernelMaps,
    transport: Transport,
    buffer_bytes: usize,
) -> (Arc<Live>, StatsReader) {
    let live = Arc::new(Live::default());
    let reader = StatsReader {
        live: Arc::clone(&live),
        maps: Arc::new(maps),
        transport,
        buffer_bytes: buffer_bytes as u64,
    };
    (live, reader)
}

//! The consumer's end of the kernel-to-user transport: one BPF ring
//! buffer, or a perf buffer per CPU (--transport). With perf buffers a
//! record may be read before the record, on another CPU, that taught the
//! directory or the process it refers to; it then waits (src/reorder.rs),
//! with the later records of its CPU, until every buffer was read again.
//! Reads yield to the worker loop, and end after a stop, as src/pacing.rs
//! says.
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use libbpf_rs::{PerfBuffer, PerfBufferBuilder, RingBuffer, RingBufferBuilder};

use crate::backend::Backend;
use crate::config::{Config, Transport};
use crate::error::{BpfContext, Result};
use crate::pacing::Pacing;

/// How long the worker sleeps in the transport when nothing wakes it.
pub(crate) const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// What receives the records as they are read.
pub(crate) trait Sink {
    /// A record from the transport.
    fn on_record(&self, data: &[u8]);
    /// Perf buffer only: a new round of reads starts (src/reorder.rs).
    fn next_round(&self);
    /// Perf buffer only: decode the waiting records that can be (all with give_up).
    fn decode_waiting(&self, give_up: bool);
    /// Perf buffer only: does a record still wait?
    fn waiting(&self) -> bool;
    /// When reads yield to the loop, and end after the stop.
    fn pacing(&self) -> &Pacing;
    /// Ring buffer only: the bytes pending just before a read (src/stats.rs).
    fn ring_pending(&self, bytes: u64);
}

pub(crate) enum Reader<'a> {
    Ring(Ring<'a>),
    Perf(PerfBuffer<'a>),
}

/// The ring buffer and how its consumer sleeps.
pub(crate) struct Ring<'a> {
    ring: RingBuffer<'a>,
    /// Raised while the consumer sleeps (bpf/core/maps.h: consumer_asleep).
    asleep: &'a AtomicU32,
    /// An epoll instance of our own on the ring, edge-triggered: the ring's
    /// fd is readable whenever a byte is pending, so libbpf's
    /// level-triggered epoll returns at once for every record and the
    /// consumer never sleeps while records trickle in (at 200,000 records
    /// a second it read 16 at a time, with a handful of syscalls each).
    /// Edge-triggered, it returns only when a producer wakes the ring.
    epoll: OwnedFd,
    /// Bytes pending before producers wake the consumer.
    watermark: u64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(
        backend: &'a Backend,
        config: &Config,
        sink: &'a impl Sink,
    ) -> Result<Reader<'a>> {
        match config.transport {
            Transport::RingBuffer => {
                let mut builder = RingBufferBuilder::new();
                builder
                    .add(&backend.skel.maps.events, |data: &[u8]| {
                        sink.on_record(data);
                        // A negative return ends libbpf's read (src/pacing.rs).
                        if sink.pacing().over() { -1 } else { 0 }
                    })
                    .context("setting up the ring buffer")?;
                let ring = builder.build().context("setting up the ring buffer")?;
                Ok(Reader::Ring(Ring {
                    ring,
                    asleep: backend.consumer_asleep(),
                    epoll: edge_triggered_epoll(&backend.skel.maps.events).map_err(|source| {
                        crate::error::Error::Io {
                            what: "waiting on the ring buffer".into(),
                            source,
                        }
                    })?,
                    watermark: config.wakeup_watermark(),
                }))
            }
            Transport::PerfBuffer => {
                // Losses are found from the gaps in each CPU's seq (the
                // kernel's lost-sample notices would count them twice).
                let perf = PerfBufferBuilder::new(&backend.skel.maps.events_perf)
                    .pages(config.buffer_bytes / 4096)
                    .sample_cb(|_cpu: i32, data: &[u8]| sink.on_record(data))
                    .build()
                    .context("setting up the perf buffers")?;
                Ok(Reader::Perf(perf))
            }
        }
    }

    /// Waits up to POLL_INTERVAL, then reads what is pending, up to one
    /// slice (src/pacing.rs). True when it read everything.
    pub(crate) fn poll(&self, sink: &impl Sink) -> bool {
        let pacing = sink.pacing();
        pacing.begin();
        match self {
            Reader::Ring(r) => {
                r.wait();
                sink.ring_pending(crate::stats::ring_pending(&r.ring));
                let _ = r.ring.consume();
                !pacing.was_cut()
            }
            Reader::Perf(perf) => {
                sink.next_round();
                let _ = perf.poll(POLL_INTERVAL);
                let _ = perf.consume();
                sink.decode_waiting(false);
                if sink.waiting() {
                    // Teachers written while the first read was under way.
                    sink.next_round();
                    let _ = perf.consume();
                    sink.decode_waiting(false);
                }
                true
            }
        }
    }

    /// After the stop: reads everything pending, without waiting, until
    /// the stop's deadline. False when records were left unread.
    pub(crate) fn drain(&self, sink: &impl Sink) -> bool {
        let pacing = sink.pacing();
        pacing.begin_drain();
        match self {
            Reader::Ring(r) => loop {
                let _ = r.ring.consume();
                if !pacing.was_cut() {
                    return true;
                }
                if pacing.skip() {
                    return false;
                }
                pacing.begin();
            },
            Reader::Perf(perf) => {
                for _ in 0..2 {
                    sink.next_round();
                    let _ = perf.consume();
                    sink.decode_waiting(false);
                }
                sink.decode_waiting(true);
                !pacing.was_cut()
            }
        }
    }
}

impl Ring<'_> {
    /// Sleeps until producers wake the consumer (a watermark's worth is
    /// pending: transport_send() in record/record.h), POLL_INTERVAL passes,
    /// or a signal comes. The flag is raised before the ring is looked at,
    /// and producers test it after they reserved their record: either a
    /// producer sees it raised, or this look sees the producer's record.
    /// Lowered before reading, so that a consumer at work costs the
    /// producers no wakeups.
    fn wait(&self) {
        self.asleep.store(1, Ordering::SeqCst);
        if crate::stats::ring_pending(&self.ring) < self.watermark {
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            // SAFETY: self.epoll is an epoll instance we own; one event
            // fits in `event`.
            unsafe {
                libc::epoll_wait(
                    self.epoll.as_raw_fd(),
                    &mut event,
                    1,
                    POLL_INTERVAL.as_millis() as i32,
                )
            };
        }
        self.asleep.store(0, Ordering::SeqCst);
    }
}

/// An epoll instance watching `map` (the ring buffer) edge-triggered.
fn edge_triggered_epoll(map: &impl AsFd) -> std::io::Result<OwnedFd> {
    // SAFETY: plain syscall; the result is checked.
    let fd = unsafe { libc::epoll_create1(libc::EPOLL_CLOEXEC) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: epoll_create1 returned a new fd that nothing else owns.
    let epoll = unsafe { OwnedFd::from_raw_fd(fd) };
    let mut event = libc::epoll_event {
        events: (libc::EPOLLIN | libc::EPOLLET) as u32,
        u64: 0,
    };
    // SAFETY: both fds are open; event is a valid epoll_event.
    let rc = unsafe {
        libc::epoll_ctl(
            epoll.as_raw_fd(),
            libc::EPOLL_CTL_ADD,
            map.as_fd().as_raw_fd(),
            &mut event,
        )
    };
    if rc != 0 {
        return Err(std::io::Error::last_os_error());
    }
    Ok(epoll)
}

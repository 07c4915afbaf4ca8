//! The consumer's end of the kernel-to-user transport: one BPF ring
//! buffer, or a perf buffer per CPU (--transport). With perf buffers a
//! record may be read before the record, on another CPU, that taught the
//! directory or the process it refers to; it then waits (src/reorder.rs),
//! with the later records of its CPU, until every buffer was read again.
//! Reads yield to the worker loop, and end after a stop, as src/pacing.rs
//! says.
use std::cell::Cell;
use std::os::fd::{AsFd, AsRawFd, FromRawFd, OwnedFd};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

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
    /// Odd while the consumer sleeps (bpf/core/maps.h: consumer_sleep).
    sleep: &'a AtomicU32,
    /// An epoll instance of our own on the ring, edge-triggered: the ring's
    /// fd is readable whenever a byte is pending, so libbpf's
    /// level-triggered epoll returns at once for every record and the
    /// consumer never sleeps while records trickle in (at 200,000 records
    /// a second it read 16 at a time, with a handful of syscalls each).
    /// Edge-triggered, it returns only when a producer wakes the ring.
    epoll: OwnedFd,
    /// Bytes pending before producers wake the consumer.
    watermark: u64,
    /// How long the next wait lasts at most (see `next_pace`).
    pace: Cell<Duration>,
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
                    sleep: backend.consumer_sleep(),
                    epoll: edge_triggered_epoll(&backend.skel.maps.events).map_err(|source| {
                        crate::error::Error::Io {
                            what: "waiting on the ring buffer".into(),
                            source,
                        }
                    })?,
                    watermark: config.wakeup_watermark(),
                    pace: Cell::new(POLL_INTERVAL),
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
    /// pending: transport_send() in record/record.h), the pace's time
    /// passes, or a signal comes. The sleep count turns odd before the ring
    /// is looked at, and producers read it after they reserved their
    /// record: either a producer sees it odd, or this look sees the
    /// producer's record. It turns even again before reading, so that a
    /// consumer at work costs the producers no wakeups.
    fn wait(&self) {
        self.sleep.fetch_add(1, Ordering::SeqCst);
        let before = crate::stats::ring_pending(&self.ring);
        if before < self.watermark {
            let start = Instant::now();
            let mut event = libc::epoll_event { events: 0, u64: 0 };
            let timeout = self.pace.get().as_millis().max(1) as i32;
            // SAFETY: self.epoll is an epoll instance we own; one event
            // fits in `event`.
            unsafe { libc::epoll_wait(self.epoll.as_raw_fd(), &mut event, 1, timeout) };
            let arrived = crate::stats::ring_pending(&self.ring).saturating_sub(before);
            self.pace
                .set(next_pace(arrived, start.elapsed(), self.watermark));
        }
        self.sleep.fetch_add(1, Ordering::SeqCst);
    }
}

/// The shortest and the longest wait.
const MIN_PACE: Duration = Duration::from_millis(1);

/// How long the consumer may sleep next, from what `arrived` while it
/// slept `slept`: the time a quarter of the watermark takes to come at that
/// rate, from 1 ms to POLL_INTERVAL. A producer's wakeup is an irq_work, a
/// self-IPI on its CPU (a VM exit under a hypervisor: tens of microseconds
/// measured here, paid by the process that wrote the file); a consumer that
/// wakes by its own timer before the watermark is reached costs the
/// producers none. The wakeup stays for bursts that outrun the pace.
fn next_pace(arrived: u64, slept: Duration, watermark: u64) -> Duration {
    if arrived == 0 {
        return POLL_INTERVAL;
    }
    let ns = slept.as_nanos() as f64 / arrived as f64 * (watermark / 4) as f64;
    Duration::from_nanos(ns as u64).clamp(MIN_PACE, POLL_INTERVAL)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_pace_follows_the_rate() {
        let wm = 128 * 1024;
        // Quiet: the longest wait.
        assert_eq!(next_pace(0, POLL_INTERVAL, wm), POLL_INTERVAL);
        // 32 KiB (a quarter of the watermark) in 10 ms: wait 10 ms.
        assert_eq!(
            next_pace(32 * 1024, Duration::from_millis(10), wm),
            Duration::from_millis(10)
        );
        // Faster than a quarter of the watermark per millisecond: 1 ms.
        assert_eq!(next_pace(wm, Duration::from_millis(1), wm), MIN_PACE);
        // A trickle: no longer than the poll interval.
        assert_eq!(next_pace(1, Duration::from_millis(50), wm), POLL_INTERVAL);
    }
}

//! The consumer's end of the kernel-to-user transport: one BPF ring
//! buffer, or a perf buffer per CPU (--transport). With perf buffers a
//! record may be read before the record, on another CPU, that taught the
//! directory or the process it refers to; it then waits (src/reorder.rs),
//! with the later records of its CPU, until every buffer was read again.
//! Reads yield to the worker loop, and end after a stop, as src/pacing.rs
//! says.
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
    Ring(RingBuffer<'a>),
    Perf(PerfBuffer<'a>),
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
                Ok(Reader::Ring(ring))
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
            // Records are committed without a wakeup until the watermark,
            // and ring_buffer__poll() consumes only rings whose epoll
            // fired: consume explicitly so that a quiet stream is
            // delivered within the interval.
            Reader::Ring(ring) => {
                sink.ring_pending(crate::stats::ring_pending(ring));
                let _ = ring.poll(POLL_INTERVAL);
                if !pacing.was_cut() {
                    let _ = ring.consume();
                }
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
            Reader::Ring(ring) => loop {
                let _ = ring.consume();
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

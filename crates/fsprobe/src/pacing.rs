//! When the worker stops reading the transport: to run its loop again,
//! and for good once the probe is stopped.
//!
//! libbpf's ring_buffer__poll() and ring_buffer__consume() return only once
//! they find the ring empty (ringbuf_process_ring() re-reads the producer
//! position after each pass), so while producers outrun the consumer they
//! would never return, and the loop would see neither the stop flag nor
//! the kernel's counters. The ring's callback ends a read by returning an
//! error, which libbpf honours after consuming that record. A perf buffer
//! read cannot be ended early, but it ends by itself: perf_buffer__consume()
//! reads each buffer up to the head it saw on entry (perf_event_read_simple()).
//!
//! Once the stop is seen, reading goes on for a bounded time, to deliver
//! what the kernel had produced by then; past that deadline records are
//! skipped, not decoded, and counted lost from the gaps in their numbers.
use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// Most records read before the worker loop runs again (stop flag, loss
/// and watch-limit notices, epoch), however fast they keep coming.
pub(crate) const SLICE_RECORDS: u32 = 4096;

/// How long reading may go on once the stop is seen.
pub(crate) const DRAIN_BUDGET: Duration = Duration::from_millis(200);

pub(crate) struct Pacing {
    stop: Arc<AtomicBool>,
    budget: Duration,
    /// The kernel's next sequence number per CPU: read when the stop is
    /// first seen, it says which events were due.
    next_seqs: Box<dyn Fn() -> Vec<u64>>,
    /// Records read in this slice.
    records: Cell<u32>,
    /// This slice ended before the transport was empty, or skipped records.
    cut: Cell<bool>,
    /// The worker loop is over: reading what is left.
    draining: Cell<bool>,
    /// Once the stop is seen: when reading must end, and what was due.
    stopped: RefCell<Option<(Instant, Vec<u64>)>>,
}

impl Pacing {
    pub(crate) fn new(
        stop: Arc<AtomicBool>,
        budget: Duration,
        next_seqs: impl Fn() -> Vec<u64> + 'static,
    ) -> Pacing {
        Pacing {
            stop,
            budget,
            next_seqs: Box::new(next_seqs),
            records: Cell::new(0),
            cut: Cell::new(false),
            draining: Cell::new(false),
            stopped: RefCell::new(None),
        }
    }

    /// A read starts: a new slice.
    pub(crate) fn begin(&self) {
        self.records.set(0);
        self.cut.set(false);
    }

    /// The worker loop is over; the last reads start.
    pub(crate) fn begin_drain(&self) {
        self.draining.set(true);
        self.stop_seen();
        self.begin();
    }

    /// Did the last read end early, or skip records?
    pub(crate) fn was_cut(&self) -> bool {
        self.cut.get()
    }

    /// The kernel's next sequence numbers when the stop was first seen.
    pub(crate) fn due(&self) -> Vec<u64> {
        self.stop_seen();
        self.stopped
            .borrow()
            .as_ref()
            .map(|(_, due)| due.clone())
            .unwrap_or_default()
    }

    /// Has the probe been stopped? The first time it is seen, the
    /// deadline starts and the due numbers are read.
    fn stop_seen(&self) -> bool {
        if self.stopped.borrow().is_some() {
            return true;
        }
        if !self.stop.load(Ordering::Relaxed) {
            return false;
        }
        let due = (self.next_seqs)();
        *self.stopped.borrow_mut() = Some((Instant::now() + self.budget, due));
        true
    }

    fn past_deadline(&self) -> bool {
        self.stopped
            .borrow()
            .as_ref()
            .is_some_and(|(deadline, _)| Instant::now() >= *deadline)
    }

    /// Ring buffer, after one record: must this read end here? Before the
    /// stop, after SLICE_RECORDS; at the stop, at once (the drain goes on);
    /// while draining, at the deadline.
    pub(crate) fn over(&self) -> bool {
        let records = self.records.get() + 1;
        self.records.set(records);
        let over = records >= SLICE_RECORDS
            || (self.stop_seen() && (!self.draining.get() || self.past_deadline()));
        if over {
            self.cut.set(true);
        }
        over
    }

    /// Before decoding a record: skip it, the stop's deadline passed?
    pub(crate) fn skip(&self) -> bool {
        let skip = self.stop_seen() && self.past_deadline();
        if skip {
            self.cut.set(true);
        }
        skip
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::rc::Rc;

    fn pacing(budget: Duration) -> (Pacing, Arc<AtomicBool>, Rc<Cell<u64>>) {
        let stop = Arc::new(AtomicBool::new(false));
        let reads = Rc::new(Cell::new(0));
        let counted = Rc::clone(&reads);
        let p = Pacing::new(Arc::clone(&stop), budget, move || {
            counted.set(counted.get() + 1);
            vec![7, counted.get()]
        });
        (p, stop, reads)
    }

    #[test]
    fn a_read_yields_after_a_slice_of_records() {
        let (p, _, _) = pacing(DRAIN_BUDGET);
        p.begin();
        assert!((1..SLICE_RECORDS).all(|_| !p.over()));
        assert!(p.over() && p.was_cut());
        p.begin();
        assert!(!p.over() && !p.was_cut());
    }

    #[test]
    fn the_stop_ends_a_read_at_once_and_fixes_what_was_due() {
        let (p, stop, reads) = pacing(Duration::from_secs(3600));
        p.begin();
        assert!(!p.over());
        stop.store(true, Ordering::SeqCst);
        assert!(p.over(), "the loop must see the stop");
        assert!(!p.skip(), "records before the deadline are decoded");
        // Draining: records are read until the ring is empty.
        p.begin_drain();
        assert!(!p.over() && !p.skip());
        assert_eq!(p.due(), vec![7, 1]);
        assert_eq!(reads.get(), 1, "the due numbers are read once, at the stop");
    }

    #[test]
    fn past_the_deadline_records_are_skipped_and_reads_end() {
        let (p, stop, _) = pacing(Duration::ZERO);
        stop.store(true, Ordering::SeqCst);
        p.begin_drain();
        assert!(p.skip() && p.was_cut());
        assert!(p.over());
    }

    #[test]
    fn nothing_is_due_before_the_stop() {
        let (p, _, reads) = pacing(DRAIN_BUDGET);
        assert!(!p.skip());
        assert_eq!(reads.get(), 0);
    }
}

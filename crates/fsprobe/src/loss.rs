//! Loss accounting: nothing is dropped without a record saying so.
//!
//! Events dropped because the ring buffer was full leave a gap in their
//! CPU's sequence numbers (bpf/abi/events.h: struct fsp_event.seq), so they are
//! reported exactly where they happened. Events dropped before they were
//! numbered (too many syscalls in flight) are known only from the kernel's
//! per-CPU counters, read after each read of the ring. So is the count of
//! new files the full in-kernel filter could not take.
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

use libbpf_rs::MapCore;

use crate::event::{LossReason, Record, UnwatchedReason};
use crate::stats::RecordSender;

/// Indices of the per-CPU `counters` map: enum fsp_counter in bpf/abi/events.h.
pub(crate) mod counter {
    use crate::skel::types::fsp_counter;

    pub const LOST_BUFFER: u32 = fsp_counter::FSP_CNT_LOST_RINGBUF.0;
    pub const LOST_PENDING: u32 = fsp_counter::FSP_CNT_LOST_PENDING.0;
    pub const WATCH_FULL: u32 = fsp_counter::FSP_CNT_WATCH_FULL.0;
    pub const WALK_CACHED: u32 = fsp_counter::FSP_CNT_WALK_CACHED.0;
    pub const WALK_FULL: u32 = fsp_counter::FSP_CNT_WALK_FULL.0;
    pub const FILTERED_PROC: u32 = fsp_counter::FSP_CNT_FILTERED_PROC.0;
    pub const WATCH_ADDED: u32 = fsp_counter::FSP_CNT_WATCH_ADDED.0;
    pub const WATCH_REMOVED: u32 = fsp_counter::FSP_CNT_WATCH_REMOVED.0;
}

/// One per-CPU u64 array element, per CPU, into `out` (left empty when
/// it cannot be read). Without allocating once `out` has grown to the
/// number of CPUs: the worker reads counters after every read of the
/// ring, and libbpf-rs' lookup_percpu() makes a vector per CPU and call.
pub(crate) fn read_percpu_into(map: &impl MapCore, index: u32, out: &mut Vec<u64>) {
    out.clear();
    let Ok(cpus) = libbpf_rs::num_possible_cpus() else {
        return;
    };
    if map.value_size() != 8 {
        return;
    }
    // The kernel copies each CPU's value, rounded up to 8 bytes, one after
    // the other (bpf_percpu_array_copy()): for u64 values, a [u64; cpus].
    out.resize(cpus, 0);
    let fd = map.as_fd().as_raw_fd();
    // SAFETY: the key is a u32, as the map's; the value buffer holds
    // `cpus` values of 8 bytes, what the kernel writes for a per-CPU map.
    let rc = unsafe {
        libbpf_sys::bpf_map_lookup_elem(
            fd,
            (&raw const index).cast(),
            out.as_mut_ptr().cast::<std::ffi::c_void>(),
        )
    };
    if rc != 0 {
        out.clear();
    }
}

pub(crate) fn read_percpu(map: &impl MapCore, index: u32) -> Vec<u64> {
    let mut out = Vec::new();
    read_percpu_into(map, index, &mut out);
    out
}

/// Sums one per-CPU counter (into a buffer of this thread's: no allocation).
pub(crate) fn read_counter(map: &impl MapCore, index: u32) -> u64 {
    thread_local! {
        static VALUES: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    VALUES.with_borrow_mut(|values| {
        read_percpu_into(map, index, values);
        values.iter().sum()
    })
}

/// Turns the kernel's counts of what it could not track into records, as
/// they grow: syscalls it could not follow (events lost), and new files
/// the full filter could not take (files unwatched).
#[derive(Debug, Default)]
pub(crate) struct LossTracker {
    pub(crate) in_flight: u64,
    pub(crate) unwatched: u64,
}

impl LossTracker {
    pub(crate) fn report(&mut self, counters: &impl MapCore, tx: &RecordSender) {
        let now = read_counter(counters, counter::LOST_PENDING);
        if now > self.in_flight {
            let _ = tx.send(Record::Lost {
                count: now - self.in_flight,
                reason: LossReason::TooManyInFlight,
                cpu: None,
            });
            self.in_flight = now;
        }
        let now = read_counter(counters, counter::WATCH_FULL);
        if now > self.unwatched {
            let _ = tx.send(Record::Unwatched {
                count: now - self.unwatched,
                reason: UnwatchedReason::WatchLimit,
                path: None,
            });
            self.unwatched = now;
        }
    }
}

/// How long a numbered event may take to reach the ring: far more than the
/// microseconds between numbering and committing it (bpf/record/record.h).
const IN_FLIGHT_GRACE: Duration = Duration::from_millis(100);

/// Follows each CPU's sequence numbers.
#[derive(Debug, Default)]
pub(crate) struct SeqTracker {
    /// The next number expected from each CPU.
    next: Vec<u64>,
    /// The kernel's next number per CPU when user space was first seen
    /// behind it, and when.
    pending: Vec<Option<(u64, Instant)>>,
    lost: u64,
}

impl SeqTracker {
    fn grow(&mut self, cpus: usize) {
        if self.next.len() < cpus {
            self.next.resize(cpus, 0);
            self.pending.resize(cpus, None);
        }
    }

    /// A record numbered `seq` arrived from `cpu`: how many were lost before it.
    pub(crate) fn on_event(&mut self, cpu: u32, seq: u64) -> Option<u64> {
        let c = cpu as usize;
        self.grow(c + 1);
        let gap = seq.saturating_sub(self.next[c]);
        self.next[c] = self.next[c].max(seq + 1);
        self.lost += gap;
        (gap > 0).then_some(gap)
    }

    /// After a drain, with the kernel's next numbers: events numbered but
    /// not received are either still being written or lost. Those still
    /// missing IN_FLIGHT_GRACE later were lost.
    pub(crate) fn stalled(&mut self, kernel_next: &[u64]) -> Vec<(u32, u64)> {
        self.stalled_at(kernel_next, Instant::now())
    }

    fn stalled_at(&mut self, kernel_next: &[u64], now: Instant) -> Vec<(u32, u64)> {
        self.grow(kernel_next.len());
        let mut lost = Vec::new();
        for (c, &k) in kernel_next.iter().enumerate() {
            if k <= self.next[c] {
                self.pending[c] = None;
                continue;
            }
            match self.pending[c] {
                // Caught up with the earlier number: watch the new one.
                Some((earlier, _)) if earlier <= self.next[c] => {
                    self.pending[c] = Some((k, now));
                }
                Some((earlier, since)) if now.duration_since(since) >= IN_FLIGHT_GRACE => {
                    let count = earlier - self.next[c];
                    self.next[c] = earlier;
                    self.lost += count;
                    lost.push((c as u32, count));
                    self.pending[c] = (k > earlier).then_some((k, now));
                }
                Some(_) => {}
                None => self.pending[c] = Some((k, now)),
            }
        }
        lost
    }

    /// At stop, after the last drain: whatever was numbered and not received is lost.
    pub(crate) fn finish(&mut self, kernel_next: &[u64]) -> Vec<(u32, u64)> {
        self.grow(kernel_next.len());
        let mut lost = Vec::new();
        for (c, &k) in kernel_next.iter().enumerate() {
            if k > self.next[c] {
                let count = k - self.next[c];
                self.next[c] = k;
                self.lost += count;
                lost.push((c as u32, count));
            }
        }
        lost
    }

    /// Events lost so far.
    pub(crate) fn lost(&self) -> u64 {
        self.lost
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gaps_are_losses_at_the_point_they_happened() {
        let mut t = SeqTracker::default();
        assert_eq!(t.on_event(1, 0), None);
        assert_eq!(t.on_event(1, 1), None);
        assert_eq!(t.on_event(0, 0), None);
        assert_eq!(t.on_event(1, 5), Some(3));
        assert_eq!(t.on_event(0, 1), None);
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn trailing_losses_count_once_confirmed_or_at_the_end() {
        let mut t = SeqTracker::default();
        let t0 = Instant::now();
        t.on_event(0, 0);
        // The kernel numbered 3 events on CPU 0; only #0 arrived so far.
        assert!(t.stalled_at(&[3], t0).is_empty(), "may still be in flight");
        // A quick second check proves nothing yet.
        assert!(t.stalled_at(&[3], t0 + Duration::from_millis(1)).is_empty());
        // Still missing after the grace period: lost.
        let later = t0 + IN_FLIGHT_GRACE;
        assert_eq!(t.stalled_at(&[3], later), vec![(0, 2)]);
        assert!(t.stalled_at(&[3], later).is_empty());
        // #3 and #4 numbered; #3 arrives, #4 never does.
        t.on_event(0, 3);
        assert_eq!(t.finish(&[5]), vec![(0, 1)]);
        assert_eq!(t.lost(), 3);
    }

    #[test]
    fn records_arriving_within_the_grace_period_are_not_lost() {
        let mut t = SeqTracker::default();
        let t0 = Instant::now();
        assert!(t.stalled_at(&[2], t0).is_empty());
        assert_eq!(t.on_event(0, 0), None);
        assert_eq!(t.on_event(0, 1), None);
        assert!(t.stalled_at(&[2], t0 + IN_FLIGHT_GRACE).is_empty());
        assert_eq!(t.lost(), 0);
    }
}

//! A bounded FIFO between the consumer loop and a network output's sender
//! thread.
//!
//! The consumer never waits on the network: a record that does not fit is
//! counted, and a loss record takes its place in the stream as soon as
//! there is room again, so the receiver sees where records went missing,
//! as it sees the kernel's losses. With a spool file, records that overflow
//! memory go to disk first (src/output/spool.rs).
use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::OutputStats;
use super::spool::Spool;

/// One record, ready to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// A stable id for deduplication (NATS: `Nats-Msg-Id`); may be empty.
    pub id: String,
    /// What goes on the wire.
    pub bytes: Bytes,
    /// True for an event, false for a loss record.
    pub is_event: bool,
}

/// Builds the loss record that stands for `count` records dropped here.
pub type LossRecord = Box<dyn Fn(u64) -> Item + Send + Sync>;

struct State {
    items: VecDeque<Item>,
    /// Records dropped since the last loss record was queued.
    overflowed: u64,
    /// Set once the consumer is done: send what is left until then.
    deadline: Option<Instant>,
    spool: Option<Spool>,
}

/// The queue, shared by the consumer (push) and one sender (front, commit).
pub struct Queue {
    state: Mutex<State>,
    changed: Condvar,
    changed_async: tokio::sync::Notify,
    capacity: usize,
    loss_record: LossRecord,
    stats: Arc<OutputStats>,
    name: &'static str,
}

impl Queue {
    pub fn new(
        name: &'static str,
        capacity: usize,
        spool: Option<Spool>,
        loss_record: LossRecord,
        stats: Arc<OutputStats>,
    ) -> Queue {
        Queue {
            state: Mutex::new(State {
                items: VecDeque::new(),
                overflowed: 0,
                deadline: None,
                spool,
            }),
            changed: Condvar::new(),
            changed_async: tokio::sync::Notify::new(),
            capacity: capacity.max(2),
            loss_record,
            stats,
            name,
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn wake(&self) {
        self.changed.notify_all();
        self.changed_async.notify_one();
    }

    /// Queues a record, or counts it lost when memory and spool are full.
    pub fn push(&self, item: Item) {
        let mut st = self.lock();
        if st.overflowed > 0 {
            let notice = (self.loss_record)(st.overflowed);
            if self.enqueue(&mut st, notice).is_ok() {
                st.overflowed = 0;
            }
        }
        if st.overflowed > 0 || self.enqueue(&mut st, item).is_err() {
            st.overflowed += 1;
            self.stats.lost_buffer_full.fetch_add(1, Ordering::Relaxed);
        }
        self.publish_levels(&st);
        drop(st);
        self.wake();
    }

    /// Memory while the spool is empty (so order is kept), else the spool.
    fn enqueue(&self, st: &mut State, item: Item) -> Result<(), Item> {
        let spooling = st.spool.as_ref().is_some_and(|s| !s.is_empty());
        if !spooling && st.items.len() < self.capacity {
            st.items.push_back(item);
            return Ok(());
        }
        let Some(spool) = st.spool.as_mut() else {
            return Err(item);
        };
        match spool.append(&item) {
            Ok(true) => Ok(()),
            Ok(false) => Err(item),
            Err(e) => {
                eprintln!("fsprobe: {}: cannot write the spool: {e}", self.name);
                Err(item)
            }
        }
    }

    fn publish_levels(&self, st: &State) {
        let spooled = st.spool.as_ref().map_or(0, |s| s.pending_records());
        self.stats
            .buffered
            .store(st.items.len() as u64 + spooled, Ordering::Relaxed);
        let bytes = st.spool.as_ref().map_or(0, |s| s.pending_bytes());
        self.stats.spool_bytes.store(bytes, Ordering::Relaxed);
    }

    /// The consumer is done: queue the last loss record, if any, and let
    /// the sender go on until `deadline`.
    pub fn close(&self, deadline: Instant) {
        let mut st = self.lock();
        if st.overflowed > 0 {
            // Past the capacity if need be: the receiver must learn of it.
            let notice = (self.loss_record)(st.overflowed);
            if let Err(notice) = self.enqueue(&mut st, notice) {
                st.items.push_back(notice);
            }
            st.overflowed = 0;
        }
        st.deadline = Some(deadline);
        self.publish_levels(&st);
        drop(st);
        self.wake();
    }

    /// When the sender must give up, once the consumer is done.
    pub fn deadline(&self) -> Option<Instant> {
        self.lock().deadline
    }

    /// Clones of the oldest `max` records (refilled from the spool when
    /// memory is empty); they stay queued until [`Queue::commit`].
    pub fn front(&self, max: usize) -> Vec<Item> {
        let mut st = self.lock();
        if st.items.is_empty() {
            self.refill(&mut st);
        }
        st.items.iter().take(max).cloned().collect()
    }

    fn refill(&self, st: &mut State) {
        let want = self.capacity.min(4096);
        let Some(spool) = st.spool.as_mut() else {
            return;
        };
        match spool.take(want) {
            Ok(items) => st.items.extend(items),
            Err(e) => {
                let lost = spool.pending_records();
                eprintln!(
                    "fsprobe: {}: cannot read the spool ({e}); {lost} spooled records are lost",
                    self.name
                );
                self.stats
                    .lost_send_failed
                    .fetch_add(lost, Ordering::Relaxed);
                spool.clear();
            }
        }
    }

    /// The first `n` records are done with (the sender counts what it sent).
    pub fn commit(&self, n: usize) {
        let mut st = self.lock();
        let n = n.min(st.items.len());
        st.items.drain(..n);
        self.publish_levels(&st);
    }

    /// True when nothing is queued, in memory or in the spool.
    pub fn is_empty(&self) -> bool {
        let st = self.lock();
        st.items.is_empty() && st.spool.as_ref().is_none_or(|s| s.is_empty())
    }

    /// Blocks until something is pushed or closed, or `timeout` passes.
    pub fn wait(&self, timeout: Duration) {
        let st = self.lock();
        if st.items.is_empty() && st.deadline.is_none() {
            let _ = self.changed.wait_timeout(st, timeout);
        }
    }

    /// The same, for a sender running on tokio.
    pub async fn wait_async(&self, timeout: Duration) {
        let notified = self.changed_async.notified();
        if !self.lock().items.is_empty() {
            return;
        }
        let _ = tokio::time::timeout(timeout, notified).await;
    }

    /// After the sender stopped: keeps what is left in the spool for the
    /// next run, or counts it lost. Returns (kept, lost) events.
    pub fn finish(&self) -> (u64, u64) {
        let mut st = self.lock();
        let left: Vec<Item> = st.items.drain(..).collect();
        let events = left.iter().filter(|i| i.is_event).count() as u64;
        let result = match st.spool.as_mut() {
            Some(spool) => match spool.keep_in_front(&left) {
                Ok(()) => (spool.pending_records(), 0),
                Err(e) => {
                    eprintln!("fsprobe: {}: cannot write the spool: {e}", self.name);
                    (0, events + spool.pending_records())
                }
            },
            None => (0, events),
        };
        self.stats
            .lost_at_exit
            .fetch_add(result.1, Ordering::Relaxed);
        self.publish_levels(&st);
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64) -> Item {
        Item {
            id: n.to_string(),
            bytes: Bytes::from(format!("event {n}")),
            is_event: true,
        }
    }

    fn queue(capacity: usize) -> (Queue, Arc<OutputStats>) {
        let stats = Arc::new(OutputStats::default());
        let loss: LossRecord = Box::new(|n| Item {
            id: format!("lost-{n}"),
            bytes: Bytes::from(format!("lost {n}")),
            is_event: false,
        });
        (
            Queue::new("test", capacity, None, loss, Arc::clone(&stats)),
            stats,
        )
    }

    #[test]
    fn an_overflow_is_counted_and_a_loss_record_takes_its_place() {
        let (q, stats) = queue(3);
        for n in 0..6 {
            q.push(item(n));
        }
        assert_eq!(stats.lost_buffer_full.load(Ordering::Relaxed), 3);
        let ids: Vec<_> = q.front(10).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["0", "1", "2"]);
        q.commit(2);
        // Room for the notice and one record: the notice comes first.
        q.push(item(6));
        let ids: Vec<_> = q.front(10).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["2", "lost-3", "6"]);
    }

    #[test]
    fn closing_queues_the_last_loss_record_even_when_full() {
        let (q, stats) = queue(2);
        for n in 0..4 {
            q.push(item(n));
        }
        q.close(Instant::now());
        let ids: Vec<_> = q.front(10).into_iter().map(|i| i.id).collect();
        assert_eq!(ids, ["0", "1", "lost-2"]);
        // Nothing sent: the two events are lost at exit, the notice is not an event.
        assert_eq!(q.finish(), (0, 2));
        assert_eq!(stats.lost_at_exit.load(Ordering::Relaxed), 2);
    }
}

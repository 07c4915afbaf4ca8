//! Events the consumer has finished with, handed back
//! ([`Records::recycle`](crate::Records::recycle)) so that the worker
//! decodes the next records into them: their box, path buffers and comm
//! are reused, and a consumer that recycles every event costs no heap
//! allocation per event in steady state (src/decode/mod.rs:
//! Decoder::decode_reusing()).
//!
//! A consumer that does not recycle loses nothing: the worker allocates
//! when the pool is empty.
// The pool holds the boxes of Record::Event themselves: unboxing them
// would move each event out of its allocation, which is what it keeps.
#![allow(clippy::vec_box)]
use std::cell::{Cell, RefCell};
use std::sync::{Arc, Mutex, PoisonError};

use crate::event::{Event, Record};

/// Events moved between the pool and either side at once: one lock of
/// the shared pool per batch, so that the consumer and the worker (which
/// may share a CPU) seldom meet on it.
pub(crate) const BATCH: usize = 64;

/// The free events, shared by the consumer (who gives) and the worker
/// (who takes).
#[derive(Debug)]
pub(crate) struct EventPool {
    free: Mutex<Vec<Box<Event>>>,
    /// Most events kept: as many as can be in flight (the channel's
    /// capacity), so that the pool never holds more than the stream did.
    limit: usize,
}

impl EventPool {
    pub(crate) fn new(limit: usize) -> EventPool {
        EventPool {
            free: Mutex::new(Vec::with_capacity(limit.min(4096))),
            limit,
        }
    }

    /// Keeps the events of `batch` (emptied) for later records; those
    /// beyond the limit are dropped.
    pub(crate) fn give_batch(&self, batch: &mut Vec<Box<Event>>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let room = self.limit.saturating_sub(free.len()).min(batch.len());
        free.extend(batch.drain(..room));
        batch.clear();
    }

    /// Moves up to a batch of free events into `into` (the worker's own
    /// stock, which it uses before asking again).
    pub(crate) fn take_batch(&self, into: &mut Vec<Box<Event>>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = free.len().saturating_sub(BATCH);
        into.extend(free.drain(keep..));
    }
}

/// The consumer's side of the pool: what it recycles goes to the pool a
/// batch at a time. Only the consumer locks `batch`: never contended.
#[derive(Debug)]
pub(crate) struct Recycler {
    pool: Arc<EventPool>,
    batch: Mutex<Vec<Box<Event>>>,
}

impl Recycler {
    pub(crate) fn new(pool: Arc<EventPool>) -> Recycler {
        Recycler {
            pool,
            batch: Mutex::new(Vec::with_capacity(BATCH)),
        }
    }

    /// Keeps the record's event for a later record, if it is one.
    pub(crate) fn recycle(&self, record: Record) {
        if let Record::Event(event) = record {
            let mut batch = self.batch.lock().unwrap_or_else(PoisonError::into_inner);
            batch.push(event);
            if batch.len() >= BATCH {
                self.pool.give_batch(&mut batch);
            }
        }
    }
}

/// The worker's side of the pool: the events the consumer handed back,
/// for the decoder to reuse.
pub(crate) struct Stock {
    pool: Arc<EventPool>,
    /// Taken from the pool a batch at a time (the records' own boxes).
    events: RefCell<Vec<Box<Event>>>,
    /// Records to decode before asking an empty pool again: a consumer
    /// that never recycles costs one lock per batch, not per record.
    skip: Cell<u32>,
}

impl Stock {
    /// Records between two looks into a pool found empty.
    const RETRY: u32 = 64;

    pub(crate) fn new(pool: Arc<EventPool>) -> Stock {
        Stock {
            pool,
            events: RefCell::new(Vec::new()),
            skip: Cell::new(0),
        }
    }

    pub(crate) fn take(&self) -> Option<Box<Event>> {
        let mut stock = self.events.borrow_mut();
        if stock.is_empty() {
            if self.skip.get() > 0 {
                self.skip.set(self.skip.get() - 1);
                return None;
            }
            self.pool.take_batch(&mut stock);
            if stock.is_empty() {
                self.skip.set(Self::RETRY);
            }
        }
        stock.pop()
    }

    /// A spare the record did not use (it was not an event).
    pub(crate) fn put_back(&self, spare: Option<Box<Event>>) {
        if let Some(e) = spare {
            self.events.borrow_mut().push(e);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::tests::open_event;

    #[test]
    fn the_pool_keeps_at_most_its_limit_and_gives_a_batch_at_a_time() {
        let pool = EventPool::new(100);
        let mut batch: Vec<Box<Event>> = (0..150).map(|_| Box::new(open_event())).collect();
        pool.give_batch(&mut batch);
        assert!(batch.is_empty(), "what does not fit is dropped");
        let mut stock = Vec::new();
        pool.take_batch(&mut stock);
        assert_eq!(stock.len(), BATCH);
        pool.take_batch(&mut stock);
        assert_eq!(stock.len(), 100, "the pool held its limit, no more");
        pool.take_batch(&mut stock);
        assert_eq!(stock.len(), 100);
    }
}

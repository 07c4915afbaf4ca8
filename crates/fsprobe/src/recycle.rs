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
use std::sync::{Mutex, PoisonError};

use crate::event::Event;

/// Events the worker takes from the pool at once: one lock per batch on
/// its side.
const TAKE_BATCH: usize = 64;

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

    /// Keeps `event` for a later record (dropped when the pool is full).
    pub(crate) fn give(&self, event: Box<Event>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        if free.len() < self.limit {
            free.push(event);
        }
    }

    /// Moves up to a batch of free events into `into` (the worker's own
    /// stock, which it uses before asking again).
    pub(crate) fn take_batch(&self, into: &mut Vec<Box<Event>>) {
        let mut free = self.free.lock().unwrap_or_else(PoisonError::into_inner);
        let keep = free.len().saturating_sub(TAKE_BATCH);
        into.extend(free.drain(keep..));
    }
}

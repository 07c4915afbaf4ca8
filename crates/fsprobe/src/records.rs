//! The consumer's end of a probe: records in the order the probe produced
//! them, until it stops and everything has been delivered.
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::time::Duration;

use crate::channel::Receiver;
use crate::event::Record;
use crate::recycle::{EventPool, Recycler};
use crate::stats::Live;

/// Why no record was returned.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecvError {
    /// None is waiting now ([`Records::try_recv`]).
    #[error("no record is waiting")]
    Empty,
    /// None came in time ([`Records::recv_timeout`]).
    #[error("no record came in time")]
    Timeout,
    /// The probe stopped and every record was delivered.
    #[error("the probe stopped")]
    Stopped,
}

/// The records of a running [`Probe`](crate::Probe). Iterating `&Records`
/// blocks for each record and ends once the probe stopped.
#[derive(Debug)]
pub struct Records {
    rx: Receiver<Record>,
    live: Arc<Live>,
    recycler: Recycler,
}

impl Records {
    pub(crate) fn new(rx: Receiver<Record>, live: Arc<Live>, pool: Arc<EventPool>) -> Records {
        Records {
            rx,
            live,
            recycler: Recycler::new(pool),
        }
    }

    /// Hands back a record the consumer is done with: the probe decodes a
    /// later event into its memory (the event's box, its paths' and comm's
    /// buffers). A consumer that recycles every record makes no heap
    /// allocation per event once the stream is warm; one that does not
    /// loses nothing (the probe allocates instead).
    pub fn recycle(&self, record: Record) {
        self.recycler.recycle(record);
    }

    fn taken(&self, record: Record) -> Record {
        self.live.taken.fetch_add(1, Ordering::Relaxed);
        record
    }

    /// Waits for the next record; `None` once the probe stopped and
    /// everything was delivered.
    pub fn recv(&self) -> Option<Record> {
        self.rx.recv().map(|r| self.taken(r))
    }

    /// The next record if one is waiting.
    pub fn try_recv(&self) -> Result<Record, RecvError> {
        match self.rx.try_recv() {
            Ok(r) => Ok(self.taken(r)),
            Err(mpsc::TryRecvError::Empty) => Err(RecvError::Empty),
            Err(mpsc::TryRecvError::Disconnected) => Err(RecvError::Stopped),
        }
    }

    /// Waits up to `timeout` for the next record.
    pub fn recv_timeout(&self, timeout: Duration) -> Result<Record, RecvError> {
        match self.rx.recv_timeout(timeout) {
            Ok(r) => Ok(self.taken(r)),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(RecvError::Timeout),
            Err(mpsc::RecvTimeoutError::Disconnected) => Err(RecvError::Stopped),
        }
    }

    /// A blocking iterator over the records.
    pub fn iter(&self) -> Iter<'_> {
        Iter { records: self }
    }

    #[cfg(feature = "tokio")]
    pub(crate) fn into_parts(self) -> (Receiver<Record>, Arc<Live>, Recycler) {
        (self.rx, self.live, self.recycler)
    }
}

/// Iterator over [`Records`]; see [`Records::iter`].
#[derive(Debug)]
pub struct Iter<'a> {
    records: &'a Records,
}

impl Iterator for Iter<'_> {
    type Item = Record;

    fn next(&mut self) -> Option<Record> {
        self.records.recv()
    }
}

impl<'a> IntoIterator for &'a Records {
    type Item = Record;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

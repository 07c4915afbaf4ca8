//! The `tokio` feature: start a probe without blocking the runtime, and
//! read its records as a [`Stream`](futures_core::Stream).
//!
//! Loading and attaching the programs takes from tens of milliseconds to
//! seconds, and the worker hands records over a blocking channel, so both
//! run off the runtime: the start on tokio's blocking pool, and a small
//! thread that moves records from the probe's channel into a tokio one.
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use tokio::sync::mpsc;

use crate::config::ProbeBuilder;
use crate::error::{Error, Result};
use crate::event::Record;
use crate::probe::{Probe, Ready, Summary};
use crate::recycle::Recycler;
use crate::stats::{Live, Stats, StatsReader};

/// Records waiting between the bridge thread and the stream.
const BRIDGE_CAPACITY: usize = 256;

impl ProbeBuilder {
    /// [`ProbeBuilder::start`] on tokio's blocking pool: the runtime goes
    /// on while the programs load and the filter is seeded.
    pub async fn start_async(self) -> Result<Probe> {
        tokio::task::spawn_blocking(move || self.start())
            .await
            .map_err(|_| Error::WorkerGone)?
    }
}

impl Probe {
    /// The records as a stream. The stream owns the probe: stop it, read
    /// its stats and join it through the stream.
    pub fn into_stream(mut self) -> RecordStream {
        let (records, live, recycler) = self.take_records().into_parts();
        let (tx, rx) = mpsc::channel(BRIDGE_CAPACITY);
        let bridge = std::thread::Builder::new()
            .name("fsprobe-stream".into())
            .spawn(move || {
                while let Some(record) = records.recv() {
                    if tx.blocking_send(record).is_err() {
                        break;
                    }
                }
            });
        if bridge.is_err() {
            // No thread, no records: end the stream at once rather than hang.
            self.stop();
        }
        RecordStream {
            rx,
            live,
            recycler,
            probe: self,
        }
    }
}

/// A probe's records as a [`Stream`](futures_core::Stream); ends once the
/// probe stopped and everything was delivered. See [`Probe::into_stream`].
pub struct RecordStream {
    rx: mpsc::Receiver<Record>,
    live: Arc<Live>,
    recycler: Recycler,
    probe: Probe,
}

impl RecordStream {
    /// The next record; `None` at the end.
    pub async fn next(&mut self) -> Option<Record> {
        std::future::poll_fn(|cx| self.poll_record(cx)).await
    }

    fn poll_record(&mut self, cx: &mut Context<'_>) -> Poll<Option<Record>> {
        let polled = self.rx.poll_recv(cx);
        if let Poll::Ready(Some(_)) = &polled {
            self.live.taken.fetch_add(1, Ordering::Relaxed);
        }
        polled
    }

    /// Hands back a record the consumer is done with, as
    /// [`Records::recycle`](crate::Records::recycle) does: the probe
    /// decodes a later event into its memory.
    pub fn recycle(&self, record: Record) {
        self.recycler.recycle(record);
    }

    /// What is running: backend, watched inodes, hooked syscalls.
    pub fn ready(&self) -> &Ready {
        self.probe.ready()
    }

    /// The counters now.
    pub fn stats(&self) -> Stats {
        self.probe.stats()
    }

    /// A reader of the counters for another task or thread.
    pub fn stats_reader(&self) -> StatsReader {
        self.probe.stats_reader()
    }

    /// Asks the probe to stop; the stream ends once what was produced is delivered.
    pub fn stop(&self) {
        self.probe.stop();
    }

    /// A flag that stops the probe when set.
    pub fn stop_flag(&self) -> Arc<AtomicBool> {
        self.probe.stop_flag()
    }

    /// Stops the probe, discards undelivered records and returns the totals
    /// (on the blocking pool: the worker may take a moment to detach).
    pub async fn join(self) -> Result<Summary> {
        let RecordStream { rx, probe, .. } = self;
        drop(rx);
        tokio::task::spawn_blocking(move || probe.join())
            .await
            .map_err(|_| Error::WorkerGone)?
    }
}

impl std::fmt::Debug for RecordStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordStream")
            .field("ready", self.ready())
            .finish_non_exhaustive()
    }
}

impl futures_core::Stream for RecordStream {
    type Item = Record;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Record>> {
        self.get_mut().poll_record(cx)
    }
}

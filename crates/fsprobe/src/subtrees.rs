//! Directories that entered a watched tree with their contents (moved in,
//! or a mount attached on a watched directory) are walked here, on a
//! thread of their own so that the worker keeps reading the transport.
//!
//! Until the walk is done, the kernel finds the files below such a
//! directory by their ancestors (FSP_WATCH_SUBTREE, bpf/filter/filter.h),
//! so nothing done in it goes unreported meanwhile; once every entry is in
//! the watched map, the flag is cleared and the walk counted as done
//! (subtrees_pending[1]), which turns the ancestor check off again.
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::decode::Subtree;
use crate::error::{BpfContext, Error, Result};
use crate::event::{Record, UnwatchedReason};
use crate::seed::{Seeder, inode_key, open_subtree};
use crate::skel::types::fsp_watch;

const WATCH_SELF: u32 = fsp_watch::FSP_WATCH_SELF.0;
const WATCH_CHILDREN: u32 = fsp_watch::FSP_WATCH_CHILDREN.0;

/// Subtrees queued before the worker waits for the walker.
const QUEUE: usize = 1024;

pub(crate) struct Walker {
    queue: Option<SyncSender<Subtree>>,
    thread: Option<JoinHandle<()>>,
}

struct Maps {
    watched: MapHandle,
    pending: MapHandle,
    limit: u32,
}

impl Maps {
    /// One more walk done: subtrees_pending[1] is written by user space only.
    fn done(&self, walked: &mut u64) {
        *walked += 1;
        let _ = self
            .pending
            .update(&1u32.to_ne_bytes(), &walked.to_ne_bytes(), MapFlags::ANY);
    }

    fn walk(&self, s: &Subtree) -> std::result::Result<Seeder<'_, MapHandle>, (Error, u64)> {
        let mut seeder = Seeder::new(&self.watched, self.limit, true);
        let (fd, st) = open_subtree(&s.path, s.dev, s.ino).map_err(|e| {
            (
                Error::Io {
                    what: format!("opening {}", s.path.display()),
                    source: e,
                },
                1,
            )
        })?;
        seeder
            .walk(fd, &st, s.path.as_os_str())
            .and_then(|()| seeder.flush())
            .map_err(|e| (e, 1))?;
        Ok(seeder)
    }

    /// Walks one subtree; returns what could not be watched.
    fn handle(&self, s: &Subtree, walked: &mut u64) -> Option<Record> {
        let outcome = self.walk(s);
        // The directory itself stays watched; only the ancestor check ends.
        let flags = WATCH_SELF | WATCH_CHILDREN;
        let _ = self.watched.update(
            &inode_key(s.dev, s.ino),
            &flags.to_ne_bytes(),
            MapFlags::EXIST,
        );
        self.done(walked);
        match outcome {
            Ok(seeder) if seeder.skipped == 0 => None,
            Ok(seeder) => Some(Record::Unwatched {
                count: seeder.skipped,
                reason: UnwatchedReason::Unreadable,
                path: Some(s.path.clone()),
            }),
            Err((Error::TooManyWatches(_), n)) => Some(Record::Unwatched {
                count: n,
                reason: UnwatchedReason::WatchLimit,
                path: Some(s.path.clone()),
            }),
            Err((_, n)) => Some(Record::Unwatched {
                count: n,
                reason: UnwatchedReason::Unreadable,
                path: Some(s.path.clone()),
            }),
        }
    }
}

fn run(maps: Maps, queue: Receiver<Subtree>, records: SyncSender<Record>) {
    let mut walked = 0u64;
    for subtree in queue {
        if let Some(notice) = maps.handle(&subtree, &mut walked) {
            let _ = records.send(notice);
        }
    }
}

impl Walker {
    /// Starts the walker over the probe's `watched` and `subtrees_pending` maps.
    pub(crate) fn start(
        watched: &libbpf_rs::Map,
        pending: &libbpf_rs::Map,
        limit: u32,
        records: SyncSender<Record>,
    ) -> Result<Walker> {
        let maps = Maps {
            watched: MapHandle::try_from(watched).context("sharing the watched map")?,
            pending: MapHandle::try_from(pending).context("sharing the subtree counter")?,
            limit,
        };
        let (tx, rx) = std::sync::mpsc::sync_channel(QUEUE);
        let thread = std::thread::Builder::new()
            .name("fsprobe-walk".into())
            .spawn(move || run(maps, rx, records))
            .map_err(|source| Error::Io {
                what: "starting the subtree walker".into(),
                source,
            })?;
        Ok(Walker {
            queue: Some(tx),
            thread: Some(thread),
        })
    }

    /// Walk `s` (in the background).
    pub(crate) fn walk(&self, s: Subtree) {
        if let Some(q) = &self.queue {
            let _ = q.send(s);
        }
    }
}

impl Drop for Walker {
    fn drop(&mut self) {
        self.queue.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

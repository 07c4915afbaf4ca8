//! Directories that entered a watched tree with their contents (moved in,
//! or a mount attached on a watched directory) are walked here, on a
//! thread of their own so that the worker keeps reading the transport.
//!
//! Until the walk is done, the kernel finds the files below such a
//! directory by their ancestors (FSP_WATCH_SUBTREE, bpf/filter/filter.h),
//! so nothing done in it goes unreported meanwhile; once every entry is in
//! the watched map, the flag is cleared and the walk counted as done
//! (subtrees_pending[1]), which turns the ancestor check off again.
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender};
use std::thread::JoinHandle;

use libbpf_rs::{MapCore, MapFlags, MapHandle};

use crate::decode::Subtree;
use crate::error::{BpfContext, Error, Result};
use crate::event::{Record, UnwatchedReason};
use crate::seed::{Seeder, inode_key, open_subtree};
use crate::skel::FsprobeMaps;
use crate::skel::types::fsp_watch;
use crate::stats::RecordSender;
use crate::watched::Watched;

const WATCH_SELF: u32 = fsp_watch::FSP_WATCH_SELF.0;
const WATCH_CHILDREN: u32 = fsp_watch::FSP_WATCH_CHILDREN.0;

/// Subtrees queued before the worker waits for the walker.
const QUEUE: usize = 1024;

pub(crate) struct Walker {
    queue: Option<SyncSender<Subtree>>,
    thread: Option<JoinHandle<()>>,
}

struct Maps {
    watched: Arc<Watched>,
    pending: MapHandle,
    outside_names: MapHandle,
    limit: u32,
    /// Hard-linked files seen so far (outside_names[1], which user space owns).
    linked: u64,
}

impl Maps {
    /// One more walk done: subtrees_pending[1] is written by user space only.
    fn done(&self, walked: &mut u64) {
        *walked += 1;
        let _ = self
            .pending
            .update(&1u32.to_ne_bytes(), &walked.to_ne_bytes(), MapFlags::ANY);
    }

    /// Walks `s` into the watched map: the entries skipped and the files
    /// with more than one link, or an error and how many entries it cost.
    fn walk(&self, s: &Subtree) -> std::result::Result<(u64, u64), (Error, u64)> {
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
        Ok((seeder.skipped, seeder.linked))
    }

    /// Walks one subtree; returns what could not be watched.
    fn handle(&mut self, s: &Subtree, walked: &mut u64) -> Option<Record> {
        let outcome = self.walk(s);
        if let Ok((_, linked)) = outcome
            && linked > 0
        {
            self.linked += linked;
            let _ = self.outside_names.update(
                &1u32.to_ne_bytes(),
                &self.linked.to_ne_bytes(),
                MapFlags::ANY,
            );
        }
        // The directory itself stays watched; only the ancestor check ends.
        let flags = WATCH_SELF | WATCH_CHILDREN;
        self.watched.set_flags(&inode_key(s.dev, s.ino), flags);
        self.done(walked);
        let unwatched = |count, reason| Record::Unwatched {
            count,
            reason,
            path: Some(s.path.clone()),
        };
        match outcome {
            Ok((0, _)) => None,
            Ok((skipped, _)) => Some(unwatched(skipped, UnwatchedReason::Unreadable)),
            Err((Error::TooManyWatches(_), n)) => Some(unwatched(n, UnwatchedReason::WatchLimit)),
            Err((_, n)) => Some(unwatched(n, UnwatchedReason::Unreadable)),
        }
    }
}

fn run(mut maps: Maps, queue: Receiver<Subtree>, records: RecordSender) {
    let mut walked = 0u64;
    for subtree in queue {
        if let Some(notice) = maps.handle(&subtree, &mut walked) {
            let _ = records.send(notice);
            // Before waiting for the next subtree (src/channel.rs).
            records.flush();
        }
    }
}

impl Walker {
    /// Starts the walker over the probe's watched set, `subtrees_pending`
    /// and `outside_names` maps; `linked`: the hard-linked files the first
    /// seeding found.
    pub(crate) fn start(
        maps: &FsprobeMaps,
        watched: Arc<Watched>,
        limit: u32,
        linked: u64,
        records: RecordSender,
    ) -> Result<Walker> {
        let maps = Maps {
            watched,
            pending: MapHandle::try_from(&maps.subtrees_pending)
                .context("sharing the subtree counter")?,
            outside_names: MapHandle::try_from(&maps.outside_names)
                .context("sharing the outside-names counter")?,
            limit,
            linked,
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

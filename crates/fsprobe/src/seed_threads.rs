//! The initial walk of a watched tree on every CPU (up to MAX_THREADS).
//! Reading a tree is about a syscall per entry (seed.rs), and the kernel's
//! lookups run in parallel, so the walk shares the tree out: the top is
//! read breadth first until it has enough directories for every thread
//! several times over, then each thread takes the next of those from a
//! shared index and walks the whole tree below it, depth first, as one
//! thread did. Every entry is visited once, by one thread, and the order
//! within a directory is kept: a directory's entry is made before its
//! names are read.
use std::ffi::{CString, OsStr};
use std::os::fd::{AsRawFd, OwnedFd};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use crate::error::Result;
use crate::seed::{Id, Seeder, open_dir_at};

/// More threads than this find the kernel's locks rather than more speed.
const MAX_THREADS: usize = 4;

/// Directories per thread before the top stops being read breadth first:
/// enough that one large subtree does not leave the others idle.
const SUBTREES_PER_THREAD: usize = 8;

/// A directory below which one thread walks.
struct Subtree {
    parent: Arc<OwnedFd>,
    name: CString,
    id: Id,
}

fn threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(MAX_THREADS))
}

/// Walks the directory `dir` (stat `st`, named `label` in messages) and
/// its whole tree, on the threads.
pub(crate) fn walk(
    seeder: &mut Seeder<'_>,
    dir: OwnedFd,
    st: &libc::stat,
    label: &OsStr,
) -> Result<()> {
    let threads = threads();
    if threads == 1 {
        return seeder.walk(dir, st, label);
    }
    seeder.enter_top(st)?;
    let subtrees = top(seeder, dir, threads * SUBTREES_PER_THREAD, label)?;
    share_out(seeder, &subtrees, threads, label)
}

/// Reads the tree breadth first from `dir` until a level has `enough`
/// directories (or none): that level's directories, not yet read.
fn top(
    seeder: &mut Seeder<'_>,
    dir: OwnedFd,
    enough: usize,
    label: &OsStr,
) -> Result<Vec<Subtree>> {
    let mut level = vec![Arc::new(dir)];
    loop {
        let mut below = Vec::new();
        for dir in &level {
            for (name, id) in seeder.subdirectories(dir, label)? {
                below.push(Subtree {
                    parent: Arc::clone(dir),
                    name,
                    id,
                });
            }
        }
        if below.len() >= enough || below.is_empty() {
            return Ok(below);
        }
        level = below
            .into_iter()
            .filter_map(|s| match open_dir_at(s.parent.as_raw_fd(), &s.name) {
                Ok(fd) => Some(Arc::new(fd)),
                Err(e) => {
                    seeder.skip(|| format!("{}: {e}", s.name.to_string_lossy()));
                    None
                }
            })
            .collect();
    }
}

/// Walks below each of `subtrees`, on `threads` threads: this one (which
/// reports the progress) and helpers whose counts it then takes.
fn share_out(
    seeder: &mut Seeder<'_>,
    subtrees: &[Subtree],
    threads: usize,
    label: &OsStr,
) -> Result<()> {
    let next = AtomicUsize::new(0);
    let take = |walker: &mut Seeder<'_>| -> Result<()> {
        while let Some(subtree) = subtrees.get(next.fetch_add(1, Ordering::Relaxed)) {
            let walked = match open_dir_at(subtree.parent.as_raw_fd(), &subtree.name) {
                Ok(fd) => walker.walk_below(fd, subtree.id, label),
                Err(e) => {
                    walker.skip(|| format!("{}: {e}", subtree.name.to_string_lossy()));
                    Ok(())
                }
            };
            if walked.is_err() {
                // The others stop at their next subtree.
                next.store(subtrees.len(), Ordering::Relaxed);
                return walked;
            }
        }
        Ok(())
    };
    seeder.shared_walked = Some(Arc::new(AtomicU64::new(0)));
    let helpers: Vec<Seeder<'_>> = (1..threads.min(subtrees.len()))
        .map(|_| seeder.helper())
        .collect();
    let (mine, theirs) = std::thread::scope(|scope| {
        let running: Vec<_> = helpers
            .into_iter()
            .map(|mut helper| {
                scope.spawn(move || {
                    take(&mut helper)?;
                    helper.flush()?;
                    Ok(helper)
                })
            })
            .collect();
        let mine = take(seeder);
        let theirs: Vec<Result<Seeder<'_>>> = running
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
            })
            .collect();
        (mine, theirs)
    });
    seeder.shared_walked = None;
    mine?;
    for helper in theirs {
        seeder.absorb(helper?);
    }
    Ok(())
}

//! Seeds the in-kernel filter (the `watched` map) with the identities of
//! the watched trees: at start, and later for a directory that entered a
//! watched tree with its contents (a move, a mount; bpf/filter/filter.h).
//!
//! The walk goes by directory file descriptors (openat, fstatat), never
//! by path strings, so entries of any depth are reached: a tree deeper
//! than PATH_MAX is watched like any other. It keeps the descriptors of
//! the directories above the one it reads, down to HELD_LEVELS levels;
//! below, it comes back up with "..", and checks on the way up that it is
//! back where it came from (a directory moved during the walk stops the
//! walk of that branch, counted). A directory is in the filter before its
//! entries are read, so an entry created meanwhile is caught either by
//! the walk or by the probes (which add new children of watched
//! directories themselves). Entries are inserted in batches
//! (BPF_MAP_UPDATE_BATCH): a directory's subdirectories and its files
//! with other names in one batch, sent before any of them is read.
//! seed_threads.rs shares the walk out over the CPUs.
//!
//! Only what the filter cannot find through a directory gets an entry:
//! the directories (they watch their children), a watched path that is a
//! file, and files with more than one link (another name may be outside
//! the watched trees). A file with one link is found through its
//! directory, as the files created later are: scenario 6's tree of
//! 40,000 directories and 80,000 files takes 40,001 entries, not 120,001.
use std::ffi::{CStr, CString, OsStr};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::dirents::DirReader;
use crate::error::{Error, Result};
use crate::progress::Progress;
use crate::skel::types::fsp_watch;
use crate::watched::Watched;

const WATCH_SELF: u32 = fsp_watch::FSP_WATCH_SELF.0;
const WATCH_CHILDREN: u32 = fsp_watch::FSP_WATCH_CHILDREN.0;
const WATCH_NAMES: u32 = fsp_watch::FSP_WATCH_NAMES.0;

/// Entries per BPF_MAP_UPDATE_BATCH.
const BATCH: usize = 4096;

/// Directories whose descriptors the walk keeps open while it reads
/// below them, so that coming back up costs a close instead of an open
/// of "..", an fstat and a close (each paying the probe's syscall hooks).
const HELD_LEVELS: usize = 32;

/// glibc's st_dev → the kernel's s_dev encoding (major << 20 | minor).
pub(crate) fn kernel_dev(st_dev: u64) -> u32 {
    (libc::major(st_dev) << 20) | libc::minor(st_dev)
}

/// struct fsp_inode_key as bytes.
pub(crate) fn inode_key(dev: u32, ino: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&dev.to_ne_bytes());
    key[8..].copy_from_slice(&ino.to_ne_bytes());
    key
}

/// An opened directory's identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Id {
    dev: u64,
    ino: u64,
}

impl Id {
    pub(crate) fn of(st: &libc::stat) -> Self {
        Id {
            dev: st.st_dev,
            ino: st.st_ino,
        }
    }
}

fn fstatat(dir: i32, name: &CStr, flags: i32) -> std::io::Result<libc::stat> {
    // SAFETY: stat is plain data, zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: dir is an open fd (or AT_FDCWD), name is NUL-terminated, st is writable.
    let rc = unsafe { libc::fstatat(dir, name.as_ptr(), &mut st, flags) };
    if rc == 0 {
        Ok(st)
    } else {
        Err(std::io::Error::last_os_error())
    }
}

pub(crate) fn open_dir_at(dir: i32, name: &CStr) -> std::io::Result<OwnedFd> {
    let flags = libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC | libc::O_NOFOLLOW;
    // SAFETY: name is NUL-terminated; dir is an open fd or AT_FDCWD.
    let fd = unsafe { libc::openat(dir, name.as_ptr(), flags) };
    if fd < 0 {
        return Err(std::io::Error::last_os_error());
    }
    // SAFETY: openat returned a new fd that nothing else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A directory being walked: its identity, the subdirectories still to
/// walk, and its descriptor while the walk is below it (within
/// HELD_LEVELS).
struct Level {
    id: Id,
    pending: Vec<(CString, Id)>,
    held: Option<OwnedFd>,
}

pub(crate) struct Seeder<'a> {
    watched: &'a Watched,
    limit: u32,
    recursive: bool,
    keys: Vec<u8>,
    values: Vec<u8>,
    /// Entries added to the filter (or already there).
    pub(crate) inserted: u64,
    /// Files and directories walked and watched, with an entry or through
    /// their directory's.
    pub(crate) walked: u64,
    /// Files with more than one link: they may have names outside the
    /// watched trees (bpf/filter/filter.h: outside_names).
    pub(crate) linked: u64,
    /// Entries of the watched trees that could not be read, so are not
    /// watched, and the first such error.
    pub(crate) skipped: u64,
    pub(crate) first_skip: Option<String>,
    /// Reported to the caller as entries are added (the initial walk only).
    pub(crate) progress: Progress,
    /// The directories the watched paths are names in (see `mark_path_dirs`).
    path_dirs: Vec<[u8; 16]>,
    reader: DirReader,
    /// While the walk is shared out over threads (seed_threads.rs): the
    /// entries the other threads walked, for the progress reports.
    pub(crate) shared_walked: Option<Arc<AtomicU64>>,
}

/// Entries a thread walks between two additions to `shared_walked`.
const SHARE_EVERY: u64 = 256;

impl<'a> Seeder<'a> {
    pub(crate) fn new(watched: &'a Watched, limit: u32, recursive: bool) -> Self {
        Seeder {
            watched,
            limit,
            recursive,
            keys: Vec::with_capacity(BATCH * 16),
            values: Vec::with_capacity(BATCH * 4),
            inserted: 0,
            walked: 0,
            linked: 0,
            skipped: 0,
            first_skip: None,
            progress: Progress::new(None),
            path_dirs: Vec::new(),
            reader: DirReader::new(),
            shared_walked: None,
        }
    }

    pub(crate) fn skip(&mut self, what: impl FnOnce() -> String) {
        self.skipped += 1;
        if self.first_skip.is_none() {
            self.first_skip = Some(what());
        }
    }

    /// Adds the entry with stat `st` and watch flags `flags` (batched).
    fn insert(&mut self, st: &libc::stat, flags: u32) -> Result<()> {
        self.keys
            .extend_from_slice(&inode_key(kernel_dev(st.st_dev), st.st_ino));
        self.values.extend_from_slice(&flags.to_ne_bytes());
        if self.keys.len() >= BATCH * 16 {
            self.flush()?;
        }
        Ok(())
    }

    /// Counts one more watched entry, for the progress reports.
    fn count_walked(&mut self) {
        self.walked += 1;
        let others = match &self.shared_walked {
            None => 0,
            Some(shared) if self.progress.reports() => shared.load(Ordering::Relaxed),
            Some(shared) => {
                if self.walked.is_multiple_of(SHARE_EVERY) {
                    shared.fetch_add(SHARE_EVERY, Ordering::Relaxed);
                }
                return;
            }
        };
        self.progress.tick(self.walked + others);
    }

    /// A file (not a directory) met in a watched directory: it needs an
    /// entry of its own only when it has other names.
    fn file_in_tree(&mut self, st: &libc::stat) -> Result<()> {
        self.count_walked();
        if st.st_nlink > 1 {
            self.linked += 1;
            self.insert(st, WATCH_SELF)?;
        }
        Ok(())
    }

    /// Writes the batch to the set.
    pub(crate) fn flush(&mut self) -> Result<()> {
        let count = (self.values.len() / 4) as u32;
        if count == 0 {
            return Ok(());
        }
        let res = self.watched.insert(&self.keys, &self.values);
        self.keys.clear();
        self.values.clear();
        match res? {
            Ok(()) => {
                self.inserted += u64::from(count);
                Ok(())
            }
            Err(crate::watched::Full) => Err(Error::TooManyWatches(self.limit)),
        }
    }

    fn dir_flags(&self, top: bool) -> u32 {
        WATCH_SELF
            | if self.recursive || top {
                WATCH_CHILDREN
            } else {
                0
            }
    }

    /// Watches `root`: a file, or a directory and (recursively) its tree.
    pub(crate) fn seed(&mut self, root: &Path) -> Result<()> {
        let c_root = CString::new(root.as_os_str().as_bytes()).map_err(|_| Error::Watch {
            path: root.to_owned(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        })?;
        let watch_err = |source| Error::Watch {
            path: root.to_owned(),
            source,
        };
        let st = fstatat(libc::AT_FDCWD, &c_root, libc::AT_SYMLINK_NOFOLLOW).map_err(watch_err)?;
        self.note_path_dir(root);
        if st.st_mode & libc::S_IFMT != libc::S_IFDIR {
            // A watched path that is a file: no directory covers it.
            if st.st_nlink > 1 {
                self.linked += 1;
            }
            self.count_walked();
            self.insert(&st, WATCH_SELF)?;
            return self.flush();
        }
        let dir = open_dir_at(libc::AT_FDCWD, &c_root).map_err(watch_err)?;
        if self.recursive {
            crate::seed_threads::walk(self, dir, &st, root.as_os_str())?;
        } else {
            self.walk(dir, &st, root.as_os_str())?;
        }
        self.flush()
    }

    /// Remembers the directory that `path`'s last name is in (none for "/").
    fn note_path_dir(&mut self, path: &Path) {
        if path.file_name().is_none() {
            return;
        }
        let dir = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        let Ok(c_dir) = CString::new(dir.as_os_str().as_bytes()) else {
            return;
        };
        if let Ok(st) = fstatat(libc::AT_FDCWD, &c_dir, 0) {
            self.path_dirs
                .push(inode_key(kernel_dev(st.st_dev), st.st_ino));
        }
    }

    /// Flags the directories the watched paths are names in
    /// (FSP_WATCH_NAMES), after every path is seeded so that no tree's
    /// entry overwrites the flag: the dcache lookup of a name then does
    /// not skip them, though they watch nothing (resolve/lookup.h). Without
    /// it `rm /etc/shadow`, with /etc/shadow watched, was not reported on
    /// the tracepoint backend: /etc was not watched, so the lookup of the
    /// name stopped there.
    pub(crate) fn mark_path_dirs(&mut self) -> Result<()> {
        for key in std::mem::take(&mut self.path_dirs) {
            match self.watched.add_flags(&key, WATCH_NAMES)? {
                Ok(true) => self.inserted += 1,
                Ok(false) => {}
                Err(crate::watched::Full) => return Err(Error::TooManyWatches(self.limit)),
            }
        }
        Ok(())
    }

    /// Walks the directory `dir` (stat `st`, named `label` in messages).
    pub(crate) fn walk(&mut self, dir: OwnedFd, st: &libc::stat, label: &OsStr) -> Result<()> {
        self.enter_top(st)?;
        self.walk_below(dir, Id::of(st), label)
    }

    /// Counts the directory a walk starts from, `st`, and gives it its
    /// entry: it watches its children even when the walk is not recursive.
    pub(crate) fn enter_top(&mut self, st: &libc::stat) -> Result<()> {
        self.count_walked();
        self.insert(st, self.dir_flags(true))
    }

    /// Looks at the entry `name` of `dir`: a file is counted (and given
    /// an entry when it has other names), a directory given its entry. The
    /// directory's stat when the walk goes below it.
    fn visit(
        &mut self,
        dir: BorrowedFd<'_>,
        name: &CStr,
        maybe_dir: bool,
    ) -> Result<Option<libc::stat>> {
        let st = match fstatat(dir.as_raw_fd(), name, libc::AT_SYMLINK_NOFOLLOW) {
            Ok(st) => st,
            Err(e) => {
                self.skip(|| format!("{}: {e}", name.to_string_lossy()));
                return Ok(None);
            }
        };
        if !(maybe_dir && st.st_mode & libc::S_IFMT == libc::S_IFDIR) {
            self.file_in_tree(&st)?;
            return Ok(None);
        }
        self.count_walked();
        self.insert(&st, self.dir_flags(false))?;
        Ok(self.recursive.then_some(st))
    }

    /// Walks the entries of `dir` (identity `id`, in the filter already)
    /// and the trees below them.
    pub(crate) fn walk_below(&mut self, dir: OwnedFd, id: Id, label: &OsStr) -> Result<()> {
        let mut dir = dir;
        let mut stack = vec![Level {
            id,
            pending: self.subdirectories(&dir, label)?,
            held: None,
        }];
        while let Some(level) = stack.last_mut() {
            let Some((name, id)) = level.pending.pop() else {
                stack.pop();
                if let Some(parent) = stack.last_mut() {
                    match parent.held.take().or_else(|| self.up(&dir, parent.id)) {
                        Some(fd) => dir = fd,
                        None => {
                            self.skip(|| format!("{}: moved during the walk", label.display()));
                            return Ok(());
                        }
                    }
                }
                continue;
            };
            match open_dir_at(dir.as_raw_fd(), &name) {
                Ok(child) => {
                    let pending = self.subdirectories(&child, label)?;
                    let parent = std::mem::replace(&mut dir, child);
                    let depth = stack.len();
                    if let Some(level) = stack.last_mut().filter(|_| depth <= HELD_LEVELS) {
                        level.held = Some(parent);
                    }
                    stack.push(Level {
                        id,
                        pending,
                        held: None,
                    });
                }
                Err(e) => self.skip(|| format!("{}: {e}", name.to_string_lossy())),
            }
        }
        Ok(())
    }

    /// Adds the counts of `other`, a walk of another part of the trees
    /// (flushed).
    pub(crate) fn absorb(&mut self, other: Seeder<'_>) {
        self.inserted += other.inserted;
        self.walked += other.walked;
        self.linked += other.linked;
        self.skipped += other.skipped;
        if self.first_skip.is_none() {
            self.first_skip = other.first_skip;
        }
    }

    /// The watched set, its limit and whether the walk recurses: what a
    /// walk of another part of the trees needs.
    pub(crate) fn helper(&self) -> Seeder<'a> {
        let mut helper = Seeder::new(self.watched, self.limit, self.recursive);
        helper.shared_walked = self.shared_walked.clone();
        helper
    }

    /// Reads `dir` once every entry made so far is in the filter (`dir`'s
    /// own above all), visits each of its entries, and sends their batch:
    /// the subdirectories the walk goes on below, each in the filter
    /// before it is read in turn. A directory made in `dir` after the read
    /// is watched by the kernel (bpf/filter/filter.h: watch_new()); one
    /// made before it is read here. Had `dir` still waited in the batch, a
    /// directory made in between would be watched by neither, and nothing
    /// below it reported. One batch per directory that has directories.
    pub(crate) fn subdirectories(
        &mut self,
        dir: &OwnedFd,
        label: &OsStr,
    ) -> Result<Vec<(CString, Id)>> {
        self.flush()?;
        let names = self.reader.read(dir.as_fd()).unwrap_or_else(|e| {
            self.skip(|| format!("{}: {e}", label.display()));
            Vec::new()
        });
        let mut below = Vec::new();
        for (name, maybe_dir) in names {
            if let Some(st) = self.visit(dir.as_fd(), &name, maybe_dir)? {
                below.push((name, Id::of(&st)));
            }
        }
        self.flush()?;
        Ok(below)
    }

    /// Back up from `dir` to its parent, which must be `expected`.
    fn up(&self, dir: &OwnedFd, expected: Id) -> Option<OwnedFd> {
        let parent = open_dir_at(dir.as_raw_fd(), c"..").ok()?;
        let st = fstatat(parent.as_raw_fd(), c"", libc::AT_EMPTY_PATH).ok()?;
        (Id::of(&st) == expected).then_some(parent)
    }
}

/// Opens `path` as a directory and checks it is (dev, ino) in the kernel's
/// encoding: the directory a FSP_SUBTREE notice names.
pub(crate) fn open_subtree(
    path: &Path,
    dev: u32,
    ino: u64,
) -> std::io::Result<(OwnedFd, libc::stat)> {
    let c = CString::new(path.as_os_str().as_bytes())
        .map_err(|_| std::io::Error::from(std::io::ErrorKind::InvalidInput))?;
    let fd = open_dir_at(libc::AT_FDCWD, &c)?;
    let st = fstatat(fd.as_raw_fd(), c"", libc::AT_EMPTY_PATH)?;
    if kernel_dev(st.st_dev) != dev || st.st_ino != ino {
        return Err(std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "no longer at that path",
        ));
    }
    Ok((fd, st))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_user_dev_to_kernel_dev() {
        let st_dev = libc::makedev(259, 3);
        assert_eq!(kernel_dev(st_dev), (259 << 20) | 3);
        let key = inode_key(5, 0x1_0000_0001);
        assert_eq!(&key[..4], &5u32.to_ne_bytes());
        assert_eq!(&key[4..8], &[0; 4]);
        assert_eq!(&key[8..], &0x1_0000_0001u64.to_ne_bytes());
    }
}

//! User-space halves of the path caches (bpf/resolve/cache.h).
//!
//! In the fragments and perf_buffer modes a record may carry only the part
//! of a path below a cached directory (its "prefix"), plus "defs": the
//! directories the kernel walk passed, which user space must remember
//! because later records may stop at them. perf_buffer keeps each
//! directory's whole path; fragments keeps (parent, name) and rebuilds the
//! prefix by following parents. single_fragment needs nothing here: the
//! kernel sends whole paths.
//!
//! Entries are tagged with the cache generation they were learnt in; a
//! record asks for a prefix of its own generation, so an entry made stale
//! by a rename (which bumps the generation in the kernel) is never used.
//! Memory is bounded by an epoch flush: past `limit` entries, user space
//! bumps its epoch in the kernel (so new walks stop only at new entries),
//! and drops the old entries once records from after the flush arrive.
use std::collections::{HashMap, VecDeque};

use crate::config::ResolutionMode;

/// A cached directory: the mount it was reached through, its device and
/// inode, and the inode's generation (struct fsp_dir_key: i_generation, or
/// the kernel's rmdir count where the file system leaves that 0, which
/// `by_removals` says).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct DirKey {
    pub mnt_id: u32,
    pub dev: u32,
    pub ino: u64,
    pub generation: u32,
    pub by_removals: bool,
}

/// A directory a record teaches: its path ends `end` bytes into the
/// slot's kernel part; its own name is the `name_len` bytes before that.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Def {
    pub key: DirKey,
    pub end: usize,
    pub name_len: usize,
}

#[derive(Debug)]
struct Fragment {
    parent: Option<DirKey>,
    name: Box<[u8]>,
}

/// Entries are kept per (directory, generation), not replaced: a record
/// of generation g may be read after one that re-taught the directory in
/// generation g + 1 (another CPU's buffer with perf buffers; or, in the
/// ring, a record reserved after a rename on another CPU). Old
/// generations go with the next epoch flush.
#[derive(Debug)]
enum Mirror {
    /// single_fragment: the kernel sends whole paths.
    None,
    /// perf_buffer: whole prefixes.
    Prefixes(HashMap<(DirKey, u64), Box<[u8]>>),
    /// fragments: (parent, name) per directory.
    Fragments(HashMap<(DirKey, u64), Fragment>),
}

/// Why a prefix could not be rebuilt. Never expected: the kernel only
/// refers to directories it taught in an earlier record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct UnknownPrefix;

/// The generation's user-space epoch (bpf/resolve/cache.h: current_gen()).
const EPOCH_SHIFT: u32 = 40;

/// How long after an epoch flush records may still refer to old entries:
/// a walk reads the generation microseconds before it reserves its record.
const FLUSH_GRACE_NS: u64 = 1_000_000_000;

#[derive(Debug)]
pub(crate) struct PathCache {
    mirror: Mirror,
    limit: usize,
    epoch: u64,
    /// Old entries go when a record stamped after this (boot-time ns) arrives.
    purge_after: Option<u64>,
    /// Removed directories, forgotten once a record stamped after the
    /// first field (boot-time ns) arrives, oldest first; and entries of
    /// directories keyed by the rmdir count that a newer count replaced.
    removed: VecDeque<(u64, DirKey, u64)>,
    /// perf_buffer: the newest rmdir count and generation each directory
    /// keyed by the rmdir count was learnt at (mount, device, inode).
    by_removals: HashMap<(u32, u32, u64), (u32, u64)>,
}

impl PathCache {
    /// `limit`: entries kept before an epoch flush.
    pub(crate) fn new(mode: ResolutionMode, limit: usize) -> Self {
        let mirror = match mode {
            ResolutionMode::SingleFragment => Mirror::None,
            ResolutionMode::PerfBuffer => Mirror::Prefixes(HashMap::new()),
            ResolutionMode::Fragments => Mirror::Fragments(HashMap::new()),
        };
        PathCache {
            mirror,
            limit: limit.max(1),
            epoch: 0,
            purge_after: None,
            removed: VecDeque::new(),
            by_removals: HashMap::new(),
        }
    }

    /// Entries held.
    pub(crate) fn len(&self) -> usize {
        match &self.mirror {
            Mirror::None => 0,
            Mirror::Prefixes(m) => m.len(),
            Mirror::Fragments(m) => m.len(),
        }
    }

    /// Is directory `key` known as of generation `generation`?
    pub(crate) fn knows(&self, key: DirKey, generation: u64) -> bool {
        match &self.mirror {
            Mirror::None => false,
            Mirror::Prefixes(m) => m.contains_key(&(key, generation)),
            Mirror::Fragments(m) => {
                let mut at = Some(key);
                for _ in 0..=4096 {
                    let Some(k) = at else {
                        return true;
                    };
                    match m.get(&(k, generation)) {
                        Some(f) => at = f.parent,
                        None => return false,
                    }
                }
                false // a cycle
            }
        }
    }

    /// Appends the path of cached directory `key` as of generation `generation`.
    pub(crate) fn prefix(
        &self,
        key: DirKey,
        generation: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), UnknownPrefix> {
        match &self.mirror {
            Mirror::None => Err(UnknownPrefix),
            Mirror::Prefixes(m) => match m.get(&(key, generation)) {
                Some(path) => {
                    out.extend_from_slice(path);
                    Ok(())
                }
                None => Err(UnknownPrefix),
            },
            Mirror::Fragments(m) => {
                let mut names: Vec<&[u8]> = Vec::new();
                let mut at = Some(key);
                while let Some(k) = at {
                    let f = m.get(&(k, generation)).ok_or(UnknownPrefix)?;
                    // Each directory is met once on the way up; more is a cycle.
                    if names.len() > 4096 {
                        return Err(UnknownPrefix);
                    }
                    names.push(&f.name);
                    at = f.parent;
                }
                for name in names.iter().rev() {
                    out.push(b'/');
                    out.extend_from_slice(name);
                }
                Ok(())
            }
        }
    }

    /// Learns the directories of one slot of a record stamped `ts_ns`.
    /// `full` is the slot's whole path (prefix included), `prefix_len` the
    /// prefix's length in it, `prefix` the cached directory the walk
    /// stopped at; `defs` come in walk order, deepest first.
    pub(crate) fn learn(
        &mut self,
        generation: u64,
        full: &[u8],
        prefix_len: usize,
        prefix: Option<DirKey>,
        defs: &[Def],
        ts_ns: u64,
    ) {
        let kernel = &full[prefix_len.min(full.len())..];
        match &mut self.mirror {
            Mirror::None => {}
            Mirror::Prefixes(m) => {
                for d in defs.iter().filter(|d| d.end <= kernel.len()) {
                    m.insert((d.key, generation), full[..prefix_len + d.end].into());
                }
                let counted = defs
                    .iter()
                    .filter(|d| d.key.by_removals && d.end <= kernel.len());
                for d in counted {
                    self.retire_older_count(d.key, generation, ts_ns);
                }
            }
            Mirror::Fragments(m) => {
                for (i, d) in defs.iter().enumerate() {
                    if d.end > kernel.len() || d.name_len > d.end {
                        continue;
                    }
                    let parent = defs.get(i + 1).map(|p| p.key).or(prefix);
                    let name = kernel[d.end - d.name_len..d.end].into();
                    m.insert((d.key, generation), Fragment { parent, name });
                }
            }
        }
    }

    /// Directory `key`, keyed by the rmdir count, was learnt at
    /// `generation`: of its entries, only the newest count's can be asked
    /// for once the records walked before that count are read (a walk
    /// reads the count at its start: cache.h), so an older one goes after
    /// the grace period. Without this, each rmdir would leave one more
    /// entry for every such directory a walk then passes (on this host the
    /// root and /tmp, made when the image was built, have no i_generation)
    /// until the next epoch flush. perf_buffer only: a fragment names its
    /// parent by key, so in fragments mode an old count's entry stays
    /// while children cached in the kernel still lead to it.
    fn retire_older_count(&mut self, key: DirKey, generation: u64, ts_ns: u64) {
        let id = (key.mnt_id, key.dev, key.ino);
        let new = (key.generation, generation);
        let retired = match self.by_removals.insert(id, new) {
            None => return,
            Some(old) if old == new => return,
            // A record walked before the newest count: its entry is the old one.
            Some(old) if old > new => {
                self.by_removals.insert(id, old);
                new
            }
            Some(old) => old,
        };
        let old_key = DirKey {
            generation: retired.0,
            ..key
        };
        self.removed
            .push_back((ts_ns + FLUSH_GRACE_NS, old_key, retired.1));
    }

    /// Directory `key`, known as of `generation`, was removed by a record
    /// stamped `ts_ns`: no later walk can pass it (its key, with its
    /// i_generation, will not come back), so its entry goes once the
    /// records reserved before the removal are read. Without this, every
    /// directory made and removed (a build's, a package manager's) would
    /// stay until the next epoch flush, which empties the kernel's caches.
    pub(crate) fn forget_removed(&mut self, key: DirKey, generation: u64, ts_ns: u64) {
        if !matches!(self.mirror, Mirror::None) {
            self.removed
                .push_back((ts_ns + FLUSH_GRACE_NS, key, generation));
        }
    }

    /// Called before each record (stamped `ts_ns`, boot time): drops the
    /// entries of removed directories and of past epochs once no record can
    /// refer to them. Returns the new epoch to publish to the kernel when
    /// the cache is over its limit.
    pub(crate) fn maintain(&mut self, ts_ns: u64, now_ns: impl FnOnce() -> u64) -> Option<u64> {
        while let Some(&(due, key, generation)) = self.removed.front()
            && ts_ns > due
        {
            self.removed.pop_front();
            match &mut self.mirror {
                Mirror::None => {}
                Mirror::Prefixes(m) => drop(m.remove(&(key, generation))),
                Mirror::Fragments(m) => drop(m.remove(&(key, generation))),
            }
        }
        if let Some(after) = self.purge_after
            && ts_ns > after
        {
            let epoch = self.epoch;
            match &mut self.mirror {
                Mirror::None => {}
                Mirror::Prefixes(m) => m.retain(|(_, g), _| *g >> EPOCH_SHIFT == epoch),
                Mirror::Fragments(m) => m.retain(|(_, g), _| *g >> EPOCH_SHIFT == epoch),
            }
            self.by_removals
                .retain(|_, (_, g)| *g >> EPOCH_SHIFT == epoch);
            self.purge_after = None;
        }
        if self.purge_after.is_none() && self.len() > self.limit {
            self.epoch += 1;
            self.purge_after = Some(now_ns() + FLUSH_GRACE_NS);
            return Some(self.epoch);
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ino: u64) -> DirKey {
        DirKey {
            mnt_id: 21,
            dev: 8,
            ino,
            generation: 7,
            by_removals: false,
        }
    }

    fn def(ino: u64, end: usize, name_len: usize) -> Def {
        Def {
            key: key(ino),
            end,
            name_len,
        }
    }

    fn prefix_of(c: &PathCache, ino: u64, generation: u64) -> Result<Vec<u8>, UnknownPrefix> {
        let mut out = Vec::new();
        c.prefix(key(ino), generation, &mut out).map(|()| out)
    }

    /// First record: /etc/ssh/sshd_config, walked to the root; it teaches
    /// ssh (deepest first), then etc.
    fn learn_etc_ssh(c: &mut PathCache, generation: u64) {
        let full = b"/etc/ssh/sshd_config";
        c.learn(
            generation,
            full,
            0,
            None,
            &[def(30, 8, 3), def(20, 4, 3)],
            0,
        );
    }

    #[test]
    fn both_mirrors_rebuild_learnt_prefixes() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut c = PathCache::new(mode, 100);
            learn_etc_ssh(&mut c, 1);
            assert_eq!(prefix_of(&c, 30, 1).unwrap(), b"/etc/ssh", "{mode}");
            assert_eq!(prefix_of(&c, 20, 1).unwrap(), b"/etc", "{mode}");
            // A later record stopped at /etc/ssh and teaches its subdirectory.
            c.learn(
                1,
                b"/etc/ssh/keys.d/a",
                8,
                Some(key(30)),
                &[def(40, 7, 6)],
                0,
            );
            assert_eq!(prefix_of(&c, 40, 1).unwrap(), b"/etc/ssh/keys.d", "{mode}");
        }
    }

    #[test]
    fn a_newer_generation_never_sees_stale_entries() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut c = PathCache::new(mode, 100);
            learn_etc_ssh(&mut c, 1);
            // A rename bumped the generation: generation 2 must re-learn.
            assert_eq!(prefix_of(&c, 30, 2), Err(UnknownPrefix), "{mode}");
            c.learn(
                2,
                b"/etc/ssh2/x",
                0,
                None,
                &[def(30, 9, 4), def(20, 4, 3)],
                0,
            );
            assert_eq!(prefix_of(&c, 30, 2).unwrap(), b"/etc/ssh2", "{mode}");
        }
    }

    #[test]
    fn fragments_refuse_a_chain_with_a_stale_link() {
        let mut c = PathCache::new(ResolutionMode::Fragments, 100);
        learn_etc_ssh(&mut c, 1);
        // ssh re-learnt in generation 2 with a parent only known from generation 1.
        c.learn(2, b"/etc/ssh/x", 4, Some(key(20)), &[def(30, 4, 3)], 0);
        assert_eq!(prefix_of(&c, 30, 2), Err(UnknownPrefix));
    }

    #[test]
    fn epoch_flush_keeps_old_entries_through_the_grace_period() {
        let mut c = PathCache::new(ResolutionMode::PerfBuffer, 1);
        learn_etc_ssh(&mut c, 1);
        assert_eq!(c.maintain(10, || 100), Some(1));
        // Records from before the flush still find their prefixes.
        assert!(prefix_of(&c, 30, 1).is_ok());
        assert_eq!(c.maintain(50, || 200), None);
        assert!(prefix_of(&c, 30, 1).is_ok());
        // A record stamped after the grace period: the old epoch is gone.
        let new_gen = (1 << EPOCH_SHIFT) + 1;
        assert_eq!(c.maintain(100 + FLUSH_GRACE_NS + 1, || 300), None);
        assert_eq!(c.len(), 0);
        c.learn(new_gen, b"/etc/x", 0, None, &[def(20, 4, 3)], 0);
        assert_eq!(prefix_of(&c, 20, new_gen).unwrap(), b"/etc");
    }

    #[test]
    fn a_removed_directory_is_forgotten_after_the_grace_period() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut c = PathCache::new(mode, 100);
            learn_etc_ssh(&mut c, 1);
            c.learn(1, b"/etc/ssh/keys.d", 8, Some(key(30)), &[def(40, 7, 6)], 0);
            assert_eq!(c.len(), 3, "{mode}");
            // rmdir /etc/ssh/keys.d, stamped 1000.
            c.forget_removed(key(40), 1, 1000);
            // A record reserved before the removal may still be read.
            assert_eq!(c.maintain(1000 + FLUSH_GRACE_NS, || 0), None);
            assert!(prefix_of(&c, 40, 1).is_ok(), "{mode}");
            assert_eq!(c.maintain(1001 + FLUSH_GRACE_NS, || 0), None);
            assert_eq!(prefix_of(&c, 40, 1), Err(UnknownPrefix), "{mode}");
            // Only that directory: its parents stay, and no epoch flush came.
            assert_eq!(c.len(), 2, "{mode}");
            assert_eq!(prefix_of(&c, 30, 1).unwrap(), b"/etc/ssh", "{mode}");
        }
    }

    /// /tmp, with no i_generation, keyed by rmdir count `count`.
    fn tmp(count: u32) -> DirKey {
        DirKey {
            generation: count,
            by_removals: true,
            ..key(10)
        }
    }

    #[test]
    fn an_older_rmdir_count_is_forgotten_after_the_grace_period() {
        let mut c = PathCache::new(ResolutionMode::PerfBuffer, 100);
        let learn = |c: &mut PathCache, count, ts| {
            let defs = [
                def(40, 6, 1),
                Def {
                    key: tmp(count),
                    end: 4,
                    name_len: 3,
                },
            ];
            c.learn(1, b"/tmp/a/f", 0, None, &defs, ts);
        };
        learn(&mut c, 5, 1000);
        // An rmdir elsewhere: the next walk passes /tmp under count 6.
        learn(&mut c, 6, 2000);
        // A record walked before that rmdir, read late, teaches count 5 again.
        learn(&mut c, 5, 2500);
        let known = |c: &PathCache, k| c.knows(k, 1);
        assert!(known(&c, tmp(5)) && known(&c, tmp(6)));
        assert_eq!(c.maintain(2000 + FLUSH_GRACE_NS, || 0), None);
        assert!(known(&c, tmp(5)), "within the grace period");
        assert_eq!(c.maintain(2501 + FLUSH_GRACE_NS, || 0), None);
        assert!(!known(&c, tmp(5)), "count 5 outlived its grace period");
        assert!(known(&c, tmp(6)) && known(&c, key(40)));
        assert_eq!(c.len(), 2);
    }

    #[test]
    fn fragments_keep_an_older_count_that_children_lead_to() {
        let mut c = PathCache::new(ResolutionMode::Fragments, 100);
        for (count, ts) in [(5, 1000), (6, 2000)] {
            let defs = [Def {
                key: tmp(count),
                end: 4,
                name_len: 3,
            }];
            c.learn(1, b"/tmp/f", 0, None, &defs, ts);
        }
        // /tmp/a, cached under count 5, still leads through /tmp's count-5 entry.
        c.learn(1, b"/tmp/a/f", 4, Some(tmp(5)), &[def(40, 2, 1)], 1500);
        assert_eq!(c.maintain(3000 + FLUSH_GRACE_NS, || 0), None);
        assert_eq!(prefix_of(&c, 40, 1).unwrap(), b"/tmp/a");
    }

    #[test]
    fn single_fragment_keeps_nothing() {
        let mut c = PathCache::new(ResolutionMode::SingleFragment, 100);
        learn_etc_ssh(&mut c, 1);
        assert_eq!(c.len(), 0);
        assert_eq!(prefix_of(&c, 30, 1), Err(UnknownPrefix));
    }
}

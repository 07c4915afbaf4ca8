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
//! Each directory's values are tagged with the ranges of cache generations
//! they were learnt in; a record asks for a prefix of its own generation,
//! so a value made stale by a rename (which bumps the generation in the
//! kernel) is never used. A directory re-taught after a bump with the same
//! value only widens its range, so the mirror holds about one range per
//! directory, not one entry per directory and generation (see `Ranges`).
//! Memory is bounded by an epoch flush: past `limit` ranges, user space
//! bumps its epoch in the kernel (so new walks stop only at new entries),
//! and drops the old ranges once records from after the flush arrive.
use std::collections::hash_map::Entry;
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

#[derive(Debug, Clone, Default)]
struct Fragment {
    parent: Option<DirKey>,
    name: Box<[u8]>,
}

/// A directory's value for the cache generations `lo` to `hi`.
#[derive(Debug, Clone, Default)]
struct Range<V> {
    lo: u64,
    hi: u64,
    value: V,
}

impl<V> Range<V> {
    fn holds(&self, generation: u64) -> bool {
        self.lo <= generation && generation <= self.hi
    }
}

/// One directory's values (whole prefix, or fragment), each for a range of
/// cache generations; the ranges are sorted and do not overlap.
///
/// A new value does not replace the old one: a record of generation g may
/// be read after one that re-taught the directory in generation g + 1
/// (another CPU's buffer with perf buffers; or, in the ring, a record
/// reserved after a rename on another CPU). But a bump (any directory
/// rename or mount on the host) makes the kernel re-teach every directory
/// it walks under the new generation, and nearly all of them keep their
/// path: a value the same as the one of the range below (or above, for a
/// record read late) widens that range instead of adding one. A range may
/// thus hold generations in which the directory was never taught; they
/// are never asked for, since the kernel refers to a directory only in a
/// generation it taught it in. A value learnt inside a range that holds
/// another (a record read late, or a walk that raced a rename) splits it:
/// that generation gets the new value, the rest keep the old one.
#[derive(Debug)]
struct Ranges<V> {
    /// The lowest range, inline: nearly every directory has only this one.
    first: Range<V>,
    /// The others, lowest first. A Box of a Vec: a thin pointer, 8 bytes
    /// in every directory's entry (a Vec or a boxed slice would take 24 or 16).
    #[allow(clippy::box_collection)]
    more: Option<Box<Vec<Range<V>>>>,
}

impl<V: Clone + Default> Ranges<V> {
    fn new(generation: u64, value: V) -> Self {
        Ranges {
            first: Range {
                lo: generation,
                hi: generation,
                value,
            },
            more: None,
        }
    }

    fn rest(&self) -> &[Range<V>] {
        self.more.as_deref().map_or(&[], Vec::as_slice)
    }

    fn len(&self) -> usize {
        1 + self.rest().len()
    }

    fn iter(&self) -> impl Iterator<Item = &Range<V>> {
        std::iter::once(&self.first).chain(self.rest())
    }

    fn at(&self, i: usize) -> &Range<V> {
        match i.checked_sub(1) {
            None => &self.first,
            Some(j) => &self.rest()[j],
        }
    }

    fn at_mut(&mut self, i: usize) -> &mut Range<V> {
        match i.checked_sub(1) {
            None => &mut self.first,
            Some(j) => &mut self.more.as_deref_mut().expect("a range past the first")[j],
        }
    }

    /// The value of the range that holds `generation`.
    fn get(&self, generation: u64) -> Option<&V> {
        self.iter().find(|r| r.holds(generation)).map(|r| &r.value)
    }

    /// Learns the directory's value in `generation`: `same` says whether a
    /// held value is that value, `make` makes it (only for a new range).
    /// Allocates nothing unless a range is added, split or removed.
    /// With `widen` false, every generation keeps a range of its own.
    fn learn(
        &mut self,
        generation: u64,
        widen: bool,
        same: impl Fn(&V) -> bool,
        make: impl FnOnce() -> V,
    ) {
        let held = self.iter().position(|r| r.holds(generation));
        match held {
            Some(i) if same(&self.at(i).value) => {}
            Some(_) => self.add(generation, widen, same, make),
            None if !widen => self.add(generation, widen, same, make),
            None => {
                // Sorted: the ranges below `generation` come first.
                let i = self.iter().take_while(|r| r.hi < generation).count();
                let below = i.checked_sub(1).filter(|&b| same(&self.at(b).value));
                let above = (i < self.len() && same(&self.at(i).value)).then_some(i);
                match (below, above) {
                    (Some(b), None) => self.at_mut(b).hi = generation,
                    (None, Some(a)) => self.at_mut(a).lo = generation,
                    _ => self.add(generation, widen, same, make),
                }
            }
        }
    }

    /// `learn` when the list of ranges changes (see `place`).
    fn add(
        &mut self,
        generation: u64,
        widen: bool,
        same: impl Fn(&V) -> bool,
        make: impl FnOnce() -> V,
    ) {
        let left = self.edit(|all| place(all, generation, widen, same, make));
        debug_assert!(left, "place() always leaves the learnt range");
    }

    /// Drops the range that holds `generation`. False when none is left.
    fn forget(&mut self, generation: u64) -> bool {
        if !self.iter().any(|r| r.holds(generation)) {
            return true;
        }
        if self.more.is_none() {
            return false;
        }
        self.edit(|all| all.retain(|r| !r.holds(generation)))
    }

    /// Keeps only generations `lo` to `hi`: drops the ranges outside, and
    /// narrows one that reaches past them. False when none is left.
    fn keep(&mut self, lo: u64, hi: u64) -> bool {
        let narrow = |r: &mut Range<V>| {
            r.lo = r.lo.max(lo);
            r.hi = r.hi.min(hi);
            r.lo <= r.hi
        };
        if self.more.is_none() {
            return narrow(&mut self.first);
        }
        if self.iter().all(|r| lo <= r.lo && r.hi <= hi) {
            return true;
        }
        self.edit(|all| all.retain_mut(narrow))
    }

    /// Rewrites the ranges as a Vec (allocates; only for the rare changes
    /// that add or remove a range). False when none is left.
    fn edit(&mut self, f: impl FnOnce(&mut Vec<Range<V>>)) -> bool {
        let mut all = self.more.take().map_or_else(Vec::new, |more| *more);
        all.insert(0, std::mem::take(&mut self.first));
        f(&mut all);
        if all.is_empty() {
            return false;
        }
        self.first = all.remove(0);
        self.more = (!all.is_empty()).then(|| Box::new(all));
        true
    }
}

/// `Ranges::learn` for the cases that change the list of ranges `all`:
/// `generation` is taken out of a range that holds another value (splitting
/// it), then joins the range below or above with the same value (when
/// `widen`), or gets one of its own.
fn place<V: Clone>(
    all: &mut Vec<Range<V>>,
    generation: u64,
    widen: bool,
    same: impl Fn(&V) -> bool,
    make: impl FnOnce() -> V,
) {
    if let Some(i) = all.iter().position(|r| r.holds(generation)) {
        let r = &mut all[i];
        if same(&r.value) {
            return;
        }
        if r.lo == r.hi {
            all.remove(i);
        } else if r.lo == generation {
            r.lo += 1;
        } else if r.hi == generation {
            r.hi -= 1;
        } else {
            let upper = Range {
                lo: generation + 1,
                hi: r.hi,
                value: r.value.clone(),
            };
            r.hi = generation - 1;
            all.insert(i + 1, upper);
        }
    }
    let i = all.partition_point(|r| r.hi < generation);
    let below = i.checked_sub(1).filter(|&b| widen && same(&all[b].value));
    let above = all
        .get(i)
        .is_some_and(|r| widen && same(&r.value))
        .then_some(i);
    match (below, above) {
        (Some(b), Some(a)) => {
            all[b].hi = all[a].hi;
            all.remove(a);
        }
        (Some(b), None) => all[b].hi = generation,
        (None, Some(a)) => all[a].lo = generation,
        (None, None) => all.insert(
            i,
            Range {
                lo: generation,
                hi: generation,
                value: make(),
            },
        ),
    }
}

/// A mirror: each directory's ranges, and how many ranges there are in all.
#[derive(Debug)]
struct Map<V> {
    dirs: HashMap<DirKey, Ranges<V>>,
    ranges: usize,
    /// May a range hold generations no record taught (see `Ranges`)? Only
    /// when records arrive in the order they were sent (the ring buffer):
    /// a record then never names a directory before the record that taught
    /// it, in its generation, is read. With perf buffers a record can be
    /// read first, and `knows()` must then say no until the teacher is
    /// read, so each generation is held exactly (src/reorder.rs).
    widen: bool,
}

impl<V: Clone + Default> Map<V> {
    fn new(widen: bool) -> Self {
        Map {
            dirs: HashMap::new(),
            ranges: 0,
            widen,
        }
    }

    fn get(&self, key: DirKey, generation: u64) -> Option<&V> {
        self.dirs.get(&key)?.get(generation)
    }

    fn learn(
        &mut self,
        key: DirKey,
        generation: u64,
        same: impl Fn(&V) -> bool,
        make: impl FnOnce() -> V,
    ) {
        match self.dirs.entry(key) {
            Entry::Occupied(e) => {
                let r = e.into_mut();
                self.ranges -= r.len();
                r.learn(generation, self.widen, same, make);
                self.ranges += r.len();
            }
            Entry::Vacant(e) => {
                e.insert(Ranges::new(generation, make()));
                self.ranges += 1;
            }
        }
    }

    /// Drops the range of `key` that holds `generation`, and `key` with its last range.
    fn forget(&mut self, key: DirKey, generation: u64) {
        if let Entry::Occupied(mut e) = self.dirs.entry(key) {
            self.ranges -= e.get().len();
            if e.get_mut().forget(generation) {
                self.ranges += e.get().len();
            } else {
                e.remove();
            }
        }
    }

    /// Keeps only generations `lo` to `hi`.
    fn keep(&mut self, lo: u64, hi: u64) {
        self.dirs.retain(|_, r| r.keep(lo, hi));
        self.ranges = self.dirs.values().map(Ranges::len).sum();
    }
}

/// The most fragments followed up from a directory; more is a cycle (never
/// expected: each directory is met once on the way up).
const MAX_DEPTH: usize = 4096;

impl Map<Fragment> {
    /// The length of the path of `key` as of `generation`, rebuilt by
    /// following parents in that generation ('/' and name per directory).
    fn path_len(&self, key: DirKey, generation: u64) -> Result<usize, UnknownPrefix> {
        let mut len = 0;
        let mut at = Some(key);
        for _ in 0..=MAX_DEPTH {
            let Some(k) = at else {
                return Ok(len);
            };
            let f = self.get(k, generation).ok_or(UnknownPrefix)?;
            len += 1 + f.name.len();
            at = f.parent;
        }
        Err(UnknownPrefix) // a cycle
    }
}

#[derive(Debug)]
enum Mirror {
    /// single_fragment: the kernel sends whole paths.
    None,
    /// perf_buffer: whole prefixes.
    Prefixes(Map<Box<[u8]>>),
    /// fragments: (parent, name) per directory.
    Fragments(Map<Fragment>),
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
    /// Old ranges go when a record stamped after this (boot-time ns) arrives.
    purge_after: Option<u64>,
    /// Removed directories, forgotten once a record stamped after the
    /// first field (boot-time ns) arrives, oldest first; and entries of
    /// directories keyed by the rmdir count that a newer count replaced.
    /// Each goes with its range that holds the generation given.
    removed: VecDeque<(u64, DirKey, u64)>,
    /// perf_buffer: the newest rmdir count and generation each directory
    /// keyed by the rmdir count was learnt at (mount, device, inode).
    by_removals: HashMap<(u32, u32, u64), (u32, u64)>,
}

impl PathCache {
    /// `limit`: ranges kept before an epoch flush; `ordered`: records are
    /// read in the order they were sent (the ring buffer, see `Map::widen`).
    pub(crate) fn new(mode: ResolutionMode, limit: usize, ordered: bool) -> Self {
        let mirror = match mode {
            ResolutionMode::SingleFragment => Mirror::None,
            ResolutionMode::PerfBuffer => Mirror::Prefixes(Map::new(ordered)),
            ResolutionMode::Fragments => Mirror::Fragments(Map::new(ordered)),
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

    /// Makes room for `dirs` directories (the watched trees' count, when
    /// the walk is done) at most half a table: directories come and go
    /// (made and removed, 500 a second in the soak), and each removal
    /// leaves a tombstone in the hash table (hashbrown) that only a
    /// rehash clears. A table more than half full of live keys when the
    /// tombstones run it out of room grows to twice its size instead of
    /// rehashing in place: the soak's RSS stepped up 4 MiB once, after 70
    /// million events, with 40,507 live keys in a table for 57,344. Sized
    /// for twice what it will hold, it rehashes in place and never grows.
    /// At most for `limit` (an epoch flush empties it past that).
    pub(crate) fn reserve_for(&mut self, dirs: usize) {
        let room = dirs.saturating_add(1024).saturating_mul(2).min(self.limit);
        match &mut self.mirror {
            Mirror::None => {}
            Mirror::Prefixes(m) => m.dirs.reserve(room),
            Mirror::Fragments(m) => m.dirs.reserve(room),
        }
    }

    /// The mirror's table: how many keys it holds before it must grow or
    /// rehash (live keys plus the room tombstones have not taken).
    #[cfg(test)]
    fn table_room(&self) -> usize {
        match &self.mirror {
            Mirror::None => 0,
            Mirror::Prefixes(m) => m.dirs.capacity(),
            Mirror::Fragments(m) => m.dirs.capacity(),
        }
    }

    /// Ranges held, which the flush limit bounds: one per directory, and
    /// more only for a directory that had several values (paths) in the
    /// generations kept.
    pub(crate) fn len(&self) -> usize {
        match &self.mirror {
            Mirror::None => 0,
            Mirror::Prefixes(m) => m.ranges,
            Mirror::Fragments(m) => m.ranges,
        }
    }

    /// Is directory `key` known as of generation `generation`? With the
    /// ring buffer, also true for a generation inside a range that no
    /// record taught (see `Ranges`): no record asks for one. With perf
    /// buffers, only for a generation a record read so far taught
    /// (`Map::widen`), so that a record whose teacher is still in another
    /// CPU's buffer waits for it (src/reorder.rs).
    pub(crate) fn knows(&self, key: DirKey, generation: u64) -> bool {
        match &self.mirror {
            Mirror::None => false,
            Mirror::Prefixes(m) => m.get(key, generation).is_some(),
            Mirror::Fragments(m) => m.path_len(key, generation).is_ok(),
        }
    }

    /// Appends the path of cached directory `key` as of generation
    /// `generation`; on an error `out` is left as it was. Allocates
    /// nothing but the growth of `out`.
    pub(crate) fn prefix(
        &self,
        key: DirKey,
        generation: u64,
        out: &mut Vec<u8>,
    ) -> Result<(), UnknownPrefix> {
        match &self.mirror {
            Mirror::None => Err(UnknownPrefix),
            Mirror::Prefixes(m) => {
                let path = m.get(key, generation).ok_or(UnknownPrefix)?;
                out.extend_from_slice(path);
                Ok(())
            }
            Mirror::Fragments(m) => {
                // Measure first, then write the names from the deepest
                // back, so no list of names is needed.
                let start = out.len();
                out.resize(start + m.path_len(key, generation)?, 0);
                let mut end = out.len();
                let mut at = Some(key);
                while let Some(k) = at {
                    // path_len() found every link of this very chain.
                    let Some(f) = m.get(k, generation) else {
                        out.truncate(start);
                        return Err(UnknownPrefix);
                    };
                    let name_at = end - f.name.len();
                    out[name_at..end].copy_from_slice(&f.name);
                    end = name_at - 1;
                    out[end] = b'/';
                    at = f.parent;
                }
                Ok(())
            }
        }
    }

    /// Learns the directories of one slot of a record stamped `ts_ns`.
    /// `full` is the slot's whole path (prefix included), `prefix_len` the
    /// prefix's length in it, `prefix` the cached directory the walk
    /// stopped at; `defs` come in walk order, deepest first. A directory
    /// whose value is the one of a neighbouring range widens that range
    /// (allocating nothing); only a new value is copied.
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
                    let path = &full[..prefix_len + d.end];
                    m.learn(d.key, generation, |p| **p == *path, || path.into());
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
                    let name = &kernel[d.end - d.name_len..d.end];
                    m.learn(
                        d.key,
                        generation,
                        |f| f.parent == parent && *f.name == *name,
                        || Fragment {
                            parent,
                            name: name.into(),
                        },
                    );
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
    /// until the next epoch flush. Another generation under the same count
    /// is the same key, whose ranges keep both: nothing goes. perf_buffer
    /// only: a fragment names its parent by key, so in fragments mode an
    /// old count's entry stays while children cached in the kernel still
    /// lead to it.
    fn retire_older_count(&mut self, key: DirKey, generation: u64, ts_ns: u64) {
        let id = (key.mnt_id, key.dev, key.ino);
        let new = (key.generation, generation);
        let (kept, retired) = match self.by_removals.insert(id, new) {
            None => return,
            Some(old) if old == new => return,
            // A record walked before the newest count: its entry is the old one.
            Some(old) if old > new => {
                self.by_removals.insert(id, old);
                (old, new)
            }
            Some(old) => (new, old),
        };
        if kept.0 == retired.0 {
            return;
        }
        let old_key = DirKey {
            generation: retired.0,
            ..key
        };
        self.removed
            .push_back((ts_ns + FLUSH_GRACE_NS, old_key, retired.1));
    }

    /// Directory `key`, known as of `generation`, was removed by a record
    /// stamped `ts_ns`: no later walk can pass it (its key, with its
    /// i_generation, will not come back), so its range that holds
    /// `generation` goes once the records reserved before the removal are
    /// read (and the key, with its last range). Without this, every
    /// directory made and removed (a build's, a package manager's) would
    /// stay until the next epoch flush, which empties the kernel's caches.
    pub(crate) fn forget_removed(&mut self, key: DirKey, generation: u64, ts_ns: u64) {
        if !matches!(self.mirror, Mirror::None) {
            self.removed
                .push_back((ts_ns + FLUSH_GRACE_NS, key, generation));
        }
    }

    /// Called before each record (stamped `ts_ns`, boot time): drops the
    /// ranges of removed directories, and the generations of past epochs,
    /// once no record can refer to them. Returns the new epoch to publish
    /// to the kernel when the cache is over its limit.
    pub(crate) fn maintain(&mut self, ts_ns: u64, now_ns: impl FnOnce() -> u64) -> Option<u64> {
        while let Some(&(due, key, generation)) = self.removed.front()
            && ts_ns > due
        {
            self.removed.pop_front();
            match &mut self.mirror {
                Mirror::None => {}
                Mirror::Prefixes(m) => m.forget(key, generation),
                Mirror::Fragments(m) => m.forget(key, generation),
            }
        }
        if let Some(after) = self.purge_after
            && ts_ns > after
        {
            let epoch = self.epoch;
            // The generations of this epoch; a range that a directory
            // re-taught with the same value stretched across the flush is
            // narrowed to them.
            let lo = epoch << EPOCH_SHIFT;
            let hi = lo + ((1 << EPOCH_SHIFT) - 1);
            match &mut self.mirror {
                Mirror::None => {}
                Mirror::Prefixes(m) => m.keep(lo, hi),
                Mirror::Fragments(m) => m.keep(lo, hi),
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
    use crate::alloc_count::allocations;

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

    /// The soak's pattern: 40,000 directories that stay, and 1,500,000 made
    /// and removed, a few hundred alive at a time. The table must not grow
    /// past what reserve_for() gave it (without it, it doubles).
    #[test]
    fn directories_that_come_and_go_never_grow_the_table() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut c = PathCache::new(mode, 80_000, true);
            c.reserve_for(40_000);
            for ino in 1..=40_000u64 {
                c.learn(1, b"/t/abcdefghij", 0, None, &[def(ino, 13, 10)], 0);
            }
            let room = c.table_room();
            let mut ts = 0;
            for ino in 100_000..1_600_000u64 {
                c.learn(1, b"/t/abcdefghij", 0, None, &[def(ino, 13, 10)], ts);
                c.forget_removed(key(ino), 1, ts);
                ts += 2_000_000; // 500 a second
                assert_eq!(c.maintain(ts, || ts), None, "{mode}: no flush");
            }
            assert!(c.len() < 41_000, "{mode}: {} held", c.len());
            assert!(
                c.table_room() <= room,
                "{mode}: the table grew from {room} to {}",
                c.table_room()
            );
        }
    }

    #[test]
    fn both_mirrors_rebuild_learnt_prefixes() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut c = PathCache::new(mode, 100, true);
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
            let mut c = PathCache::new(mode, 100, true);
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
        let mut c = PathCache::new(ResolutionMode::Fragments, 100, true);
        learn_etc_ssh(&mut c, 1);
        // ssh re-learnt in generation 2 with a parent only known from generation 1.
        c.learn(2, b"/etc/ssh/x", 4, Some(key(20)), &[def(30, 4, 3)], 0);
        assert_eq!(prefix_of(&c, 30, 2), Err(UnknownPrefix));
    }

    #[test]
    fn epoch_flush_keeps_old_entries_through_the_grace_period() {
        let mut c = PathCache::new(ResolutionMode::PerfBuffer, 1, true);
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
            let mut c = PathCache::new(mode, 100, true);
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
        let mut c = PathCache::new(ResolutionMode::PerfBuffer, 100, true);
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
        let mut c = PathCache::new(ResolutionMode::Fragments, 100, true);
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
        let mut c = PathCache::new(ResolutionMode::SingleFragment, 100, true);
        learn_etc_ssh(&mut c, 1);
        assert_eq!(c.len(), 0);
        assert_eq!(prefix_of(&c, 30, 1), Err(UnknownPrefix));
    }

    /// Teaches /etc/<name> (key 30) and /etc (key 20) in `generation`.
    fn learn_ssh_as(c: &mut PathCache, generation: u64, name: &str) {
        let full = format!("/etc/{name}/x");
        let defs = [def(30, 5 + name.len(), name.len()), def(20, 4, 3)];
        c.learn(generation, full.as_bytes(), 0, None, &defs, 0);
    }

    const MODES: [ResolutionMode; 2] = [ResolutionMode::PerfBuffer, ResolutionMode::Fragments];

    #[test]
    fn a_bump_adds_no_entry_for_a_directory_whose_path_did_not_change() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 100_000, true);
            // 1,000 directories /d0 … /d999, re-taught after each bump
            // (generations 1 and 2), and after bumps they missed (5, 9).
            for generation in [1, 2, 5, 9] {
                for i in 0..1000 {
                    let name = format!("d{i}");
                    let full = format!("/{name}/f");
                    let d = def(1000 + i, name.len() + 1, name.len());
                    c.learn(generation, full.as_bytes(), 0, None, &[d], 0);
                }
                assert_eq!(c.len(), 1000, "{mode} generation {generation}");
            }
            for i in 0..1000 {
                for generation in [1, 2, 5, 9] {
                    let path = prefix_of(&c, 1000 + i, generation).unwrap();
                    assert_eq!(path, format!("/d{i}").as_bytes(), "{mode}");
                    assert!(c.knows(key(1000 + i), generation), "{mode}");
                }
                assert_eq!(prefix_of(&c, 1000 + i, 10), Err(UnknownPrefix), "{mode}");
                assert!(!c.knows(key(1000 + i), 0), "{mode}");
            }
        }
    }

    #[test]
    fn a_changed_path_keeps_the_old_generations_path() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 100, true);
            learn_ssh_as(&mut c, 1, "ssh");
            // mv /etc/ssh /etc/ssh2 bumped the generation to 2.
            learn_ssh_as(&mut c, 2, "ssh2");
            // /etc's range grew; /etc/ssh has one range per path.
            assert_eq!(c.len(), 3, "{mode}");
            learn_ssh_as(&mut c, 3, "ssh2");
            assert_eq!(c.len(), 3, "{mode}");
            assert_eq!(prefix_of(&c, 30, 1).unwrap(), b"/etc/ssh", "{mode}");
            for generation in [2, 3] {
                assert_eq!(
                    prefix_of(&c, 30, generation).unwrap(),
                    b"/etc/ssh2",
                    "{mode}"
                );
            }
            for generation in [1, 2, 3] {
                assert_eq!(prefix_of(&c, 20, generation).unwrap(), b"/etc", "{mode}");
            }
        }
    }

    #[test]
    fn records_read_out_of_generation_order_split_a_range() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 100, true);
            // Read late: generation 3 first, then 1; one range each.
            learn_ssh_as(&mut c, 3, "ssh");
            learn_ssh_as(&mut c, 1, "ssh");
            assert_eq!(c.len(), 2, "{mode}");
            // Generation 2, read last, had another path: it splits /etc/ssh's range.
            learn_ssh_as(&mut c, 2, "ssh2");
            assert_eq!(c.len(), 4, "{mode}");
            let at = |c: &PathCache, g| prefix_of(c, 30, g).unwrap();
            assert_eq!(at(&c, 1), b"/etc/ssh", "{mode}");
            assert_eq!(at(&c, 2), b"/etc/ssh2", "{mode}");
            assert_eq!(at(&c, 3), b"/etc/ssh", "{mode}");
            // Generation 4, same path as 3: the third range grows.
            learn_ssh_as(&mut c, 4, "ssh");
            assert_eq!(c.len(), 4, "{mode}");
            assert_eq!(at(&c, 4), b"/etc/ssh", "{mode}");
            assert!(!c.knows(key(30), 5), "{mode}");
            // A range's ends split too: generation 4 re-taught (a walk
            // that raced a rename), then generation 1.
            learn_ssh_as(&mut c, 4, "ssh3");
            learn_ssh_as(&mut c, 1, "ssh3");
            assert_eq!(at(&c, 1), b"/etc/ssh3", "{mode}");
            assert_eq!(at(&c, 2), b"/etc/ssh2", "{mode}");
            assert_eq!(at(&c, 3), b"/etc/ssh", "{mode}");
            assert_eq!(at(&c, 4), b"/etc/ssh3", "{mode}");
            assert_eq!(c.len(), 5, "{mode}");
            // Back to one path: the ranges merge as they are re-taught.
            for g in 1..=4 {
                learn_ssh_as(&mut c, g, "ssh");
            }
            assert_eq!(c.len(), 2, "{mode}");
            for g in 1..=4 {
                assert_eq!(at(&c, g), b"/etc/ssh", "{mode}");
            }
        }
    }

    #[test]
    fn epoch_flush_clamps_a_range_that_straddles_it() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 2, true);
            learn_etc_ssh(&mut c, 1);
            c.learn(1, b"/etc/ssh/keys.d", 8, Some(key(30)), &[def(40, 7, 6)], 0);
            assert_eq!(c.maintain(10, || 100), Some(1), "{mode}");
            // The kernel re-teaches /etc/ssh under the new epoch, same paths.
            let new_gen = (1 << EPOCH_SHIFT) + 1;
            learn_etc_ssh(&mut c, new_gen);
            assert_eq!(c.len(), 3, "{mode}");
            assert_eq!(prefix_of(&c, 40, 1).unwrap(), b"/etc/ssh/keys.d", "{mode}");
            assert_eq!(c.maintain(100 + FLUSH_GRACE_NS + 1, || 300), None, "{mode}");
            // keys.d, only in the old epoch, went; /etc and /etc/ssh stay for the new one.
            assert_eq!(c.len(), 2, "{mode}");
            assert_eq!(prefix_of(&c, 40, 1), Err(UnknownPrefix), "{mode}");
            assert_eq!(prefix_of(&c, 30, 1), Err(UnknownPrefix), "{mode}");
            assert_eq!(prefix_of(&c, 30, new_gen).unwrap(), b"/etc/ssh", "{mode}");
            assert_eq!(prefix_of(&c, 20, new_gen).unwrap(), b"/etc", "{mode}");
        }
    }

    #[test]
    fn a_removed_directory_goes_with_the_range_of_its_generation() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 100, true);
            for g in [1, 2] {
                learn_etc_ssh(&mut c, g);
                c.learn(g, b"/etc/ssh/keys.d", 8, Some(key(30)), &[def(40, 7, 6)], 0);
            }
            // /etc/ssh/keys.e, taught in 1 and 2, renamed from keys.f in 3.
            for (g, name) in [(1, "keys.e"), (2, "keys.e"), (3, "keys.f")] {
                let full = format!("/etc/ssh/{name}");
                c.learn(g, full.as_bytes(), 8, Some(key(30)), &[def(50, 7, 6)], 0);
            }
            assert_eq!(c.len(), 5, "{mode}");
            c.forget_removed(key(40), 2, 1000);
            c.forget_removed(key(50), 3, 1000);
            assert_eq!(c.maintain(1001 + FLUSH_GRACE_NS, || 0), None);
            // keys.d's one range held generations 1 and 2: it is gone.
            assert_eq!(prefix_of(&c, 40, 1), Err(UnknownPrefix), "{mode}");
            assert_eq!(prefix_of(&c, 40, 2), Err(UnknownPrefix), "{mode}");
            // keys.e's range of generation 3 went; the other stays to the flush.
            assert_eq!(prefix_of(&c, 50, 3), Err(UnknownPrefix), "{mode}");
            assert_eq!(prefix_of(&c, 50, 2).unwrap(), b"/etc/ssh/keys.e", "{mode}");
            assert_eq!(c.len(), 3, "{mode}");
        }
    }

    #[test]
    fn a_new_generation_under_the_same_rmdir_count_keeps_its_entry() {
        let mut c = PathCache::new(ResolutionMode::PerfBuffer, 100, true);
        for (generation, ts) in [(1, 1000), (2, 2000)] {
            let defs = [Def {
                key: tmp(5),
                end: 4,
                name_len: 3,
            }];
            c.learn(generation, b"/tmp/f", 0, None, &defs, ts);
        }
        assert_eq!(c.len(), 1);
        assert_eq!(c.maintain(3000 + FLUSH_GRACE_NS, || 0), None);
        // The range holding generation 1 also holds 2, which is still in use.
        assert!(c.knows(tmp(5), 2));
        assert_eq!(c.len(), 1);
    }

    /// A tree of `n` directories below /, each `(parent, name)`; the parent
    /// comes first.
    fn tree(n: u64, seed: u64) -> Vec<(Option<usize>, String)> {
        let mut x = seed;
        let mut next = move || {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            x >> 33
        };
        (0..n as usize)
            .map(|i| {
                let parent = (i > 0 && next() % 4 != 0).then(|| next() as usize % i);
                let len = 1 + next() as usize % 20;
                let name = (0..len).map(|j| (b'a' + ((i + j) % 26) as u8) as char);
                (parent, name.collect())
            })
            .collect()
    }

    fn path_in(t: &[(Option<usize>, String)], i: usize) -> String {
        match t[i].0 {
            Some(p) => format!("{}/{}", path_in(t, p), t[i].1),
            None => format!("/{}", t[i].1),
        }
    }

    /// Teaches directory `i` of `t` in `generation`: walked from the root,
    /// or, with `cached`, stopping at its parent.
    fn learn_in_tree(
        c: &mut PathCache,
        t: &[(Option<usize>, String)],
        i: usize,
        g: u64,
        cached: bool,
    ) {
        let full = format!("{}/file", path_in(t, i));
        let mut defs = Vec::new();
        let mut at = Some(i);
        let mut prefix = None;
        let mut prefix_len = 0;
        while let Some(d) = at {
            if cached && d != i {
                prefix = Some(key(d as u64));
                prefix_len = path_in(t, d).len();
                break;
            }
            defs.push(Def {
                key: key(d as u64),
                end: path_in(t, d).len(),
                name_len: t[d].1.len(),
            });
            at = t[d].0;
        }
        for d in &mut defs {
            d.end -= prefix_len;
        }
        c.learn(g, full.as_bytes(), prefix_len, prefix, &defs, 0);
    }

    #[test]
    fn fragments_rebuild_the_same_prefixes_as_whole_paths() {
        let before = tree(300, 7);
        // Generation 2: directory 0 renamed (and so all below it).
        let mut after = before.clone();
        after[0].1 = "renamed".into();
        let mut perf = PathCache::new(ResolutionMode::PerfBuffer, 100_000, true);
        let mut frag = PathCache::new(ResolutionMode::Fragments, 100_000, true);
        for c in [&mut perf, &mut frag] {
            for (g, t) in [(1, &before), (2, &after)] {
                // Parents first; some walks stop at a parent taught before.
                for i in 0..t.len() {
                    learn_in_tree(c, t, i, g, (i + g as usize).is_multiple_of(3));
                }
            }
        }
        for (g, t) in [(1, &before), (2, &after)] {
            for i in 0..t.len() {
                let k = key(i as u64);
                let mut whole = b"head".to_vec();
                let mut rebuilt = b"head".to_vec();
                perf.prefix(k, g, &mut whole).unwrap();
                frag.prefix(k, g, &mut rebuilt).unwrap();
                assert_eq!(rebuilt, whole, "directory {i}, generation {g}");
                assert_eq!(rebuilt, format!("head{}", path_in(t, i)).as_bytes());
                assert!(frag.knows(k, g));
            }
        }
        // An unknown link leaves `out` as it was.
        let mut out = b"head".to_vec();
        assert_eq!(frag.prefix(key(0), 3, &mut out), Err(UnknownPrefix));
        assert_eq!(out, b"head");
    }

    /// The ranges of every directory are sorted, disjoint and counted.
    fn check_ranges<V: Clone + Default>(m: &Map<V>) {
        let mut n = 0;
        for r in m.dirs.values() {
            let all: Vec<_> = r.iter().collect();
            assert!(all.iter().all(|r| r.lo <= r.hi));
            assert!(all.windows(2).all(|w| w[0].hi < w[1].lo));
            n += all.len();
        }
        assert_eq!(m.ranges, n);
    }

    #[test]
    fn ranges_answer_as_one_entry_per_generation_would() {
        let mut x = 12345_u64;
        let mut next = move |n: u64| {
            x = x
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (x >> 33) % n
        };
        for mode in MODES {
            for _ in 0..200 {
                let mut c = PathCache::new(mode, 100_000, true);
                // The old mirror: the last value learnt for each (directory, generation).
                let mut model = HashMap::new();
                for _ in 0..40 {
                    let (ino, g) = (next(3), 1 + next(12));
                    let name = ["a", "bb", "ccc"][next(3) as usize];
                    let full = format!("/{name}/f");
                    let d = def(ino, 1 + name.len(), name.len());
                    c.learn(g, full.as_bytes(), 0, None, &[d], 0);
                    model.insert((ino, g), format!("/{name}"));
                    for (&(ino, g), path) in &model {
                        assert_eq!(prefix_of(&c, ino, g).unwrap(), path.as_bytes());
                    }
                    match &c.mirror {
                        Mirror::Prefixes(m) => check_ranges(m),
                        Mirror::Fragments(m) => check_ranges(m),
                        Mirror::None => unreachable!(),
                    }
                }
            }
        }
    }

    #[test]
    fn lookups_and_re_learning_an_unchanged_path_do_not_allocate() {
        for mode in MODES {
            let mut c = PathCache::new(mode, 100, true);
            learn_etc_ssh(&mut c, 1);
            let keys_d = [def(40, 7, 6)];
            c.learn(1, b"/etc/ssh/keys.d/a", 8, Some(key(30)), &keys_d, 0);
            let mut out = Vec::with_capacity(64);
            let start = allocations();
            for g in [1, 2, 3] {
                // A bump: the same directories re-taught, then looked up.
                if g > 1 {
                    learn_etc_ssh(&mut c, g);
                    c.learn(g, b"/etc/ssh/keys.d/a", 8, Some(key(30)), &keys_d, 0);
                }
                assert!(c.knows(key(40), g));
                out.clear();
                assert_eq!(c.prefix(key(40), g, &mut out), Ok(()));
                assert_eq!(out, b"/etc/ssh/keys.d");
            }
            assert_eq!(allocations() - start, 0, "{mode}");
            // A new path is a new range: its value is allocated.
            learn_ssh_as(&mut c, 4, "ssh2");
            assert!(allocations() > start, "{mode}");
        }
    }
}

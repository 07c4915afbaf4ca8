//! The watched set: the identities the in-kernel filter reports on
//! (bpf/filter/filter.h), kept in a hash map that grows with what it holds.
//!
//! A BPF hash map allocates its buckets for max_entries when it is created
//! (htab_map_alloc(), kernel/bpf/hashtab.c: 16 bytes per entry rounded up
//! to a power of two), so a map sized for the default `--max-watches`
//! (1,048,576) would cost 16 MiB however little is watched. The set lives
//! instead in an inner map of the `watched` array of maps
//! (bpf/core/maps.h), created here at a fraction of the limit and replaced
//! by one twice as large whenever it is half full, up to the limit:
//!
//! 1. the old set goes to slot BEFORE, the new one to slot NOW: from then
//!    on the kernel inserts into the new set, and looks up and deletes in
//!    both, so nothing is unwatched while the copy runs;
//! 2. after SETTLE, so that a program that read slot NOW before the switch
//!    has finished its insert into the old set, the old set's entries are
//!    copied into the new one, in batches (BPF_MAP_UPDATE_BATCH);
//! 3. slot BEFORE is emptied and the old set closed.
//!
//! Where the kernel wrote a key into the new set that the old one holds
//! too, the copy gives it the old value: the kernel's own inserts of a key
//! already there keep its flags (BPF_NOEXIST, filter.h: watch_new()), and
//! one that sets FSP_WATCH_SUBTREE is for a directory that was not
//! watched, so is in neither set. An entry the kernel deletes from the old
//! set after step 2 has read it is copied all the same: it stays watched
//! (reported, never missed) until its inode is removed again or the probe
//! stops.
//!
//! How full the set is, is estimated between two resizes from the entries
//! copied, those user space added, and the kernel's counts of entries it
//! added and removed (FSP_CNT_WATCH_ADDED, FSP_CNT_WATCH_REMOVED).
//! Replacing an entry counts as adding one, so the estimate errs high,
//! and each resize starts it again from the entries copied.
//!
//! The start-up walk inserts from several threads (seed_threads.rs), a
//! batch per directory. Inserts that fit in the room left below half the
//! capacity share the set (a read lock): the kernel's hash map takes its
//! own bucket locks (htab_map_update_elem(), kernel/bpf/hashtab.c). Only
//! a resize, and an insert that needs the kernel's counts read again,
//! take the set for themselves. With one lock for every insert, the
//! walk's threads waited on each other's BPF_MAP_UPDATE_BATCH: perf saw
//! 614 futex waits in Watched::insert during one start on scenario 4.
use std::os::fd::{AsFd, AsRawFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, RwLock, RwLockReadGuard, RwLockWriteGuard};
use std::time::{Duration, Instant};

use libbpf_rs::{MapCore, MapFlags, MapHandle, MapType};

use crate::error::{BpfContext, Error, Result};
use crate::hints::Hints;
use crate::loss::{counter, read_counter};
use crate::skel::types::fsp_watched_slot;

const NOW: u32 = fsp_watched_slot::FSP_WATCHED_NOW.0;
const BEFORE: u32 = fsp_watched_slot::FSP_WATCHED_BEFORE.0;

/// Capacity of the first set (or the limit, when that is smaller): 1 MiB
/// of buckets.
const FIRST_CAPACITY: u32 = 1 << 16;

/// Key and value sizes: struct fsp_inode_key, enum fsp_watch as __u32.
const KEY_SIZE: u32 = 16;
const VALUE_SIZE: u32 = 4;

/// Entries per batch when a set is copied or counted.
const BATCH: u32 = 4096;

/// Between the switch to a new set and the copy: BPF programs run for
/// microseconds, without sleeping.
const SETTLE: Duration = Duration::from_millis(2);

/// How often the worker's [`Watched::maintain`] looks at the kernel's counts.
const MAINTAIN_EVERY: Duration = Duration::from_millis(50);

/// The set is full: `--max-watches` entries.
#[derive(Debug)]
pub(crate) struct Full;

#[derive(Debug)]
pub(crate) struct Watched {
    outer: MapHandle,
    counters: MapHandle,
    /// Marked before every insert (src/hints.rs).
    hints: Hints,
    limit: u32,
    state: RwLock<State>,
    last_maintained: Mutex<Instant>,
}

#[derive(Debug)]
struct State {
    set: MapHandle,
    capacity: u32,
    /// Entries at the last resize, plus those user space added since.
    base: AtomicU64,
    /// The kernel's counts at the last resize.
    kernel_added: u64,
    kernel_removed: u64,
    /// Entries user space may still add before the kernel's counts are
    /// read again: the room below half the capacity at the last reading.
    room: AtomicU64,
}

impl State {
    /// Takes room for `more` entries, if there is that much left.
    fn take_room(&self, more: u64) -> bool {
        self.room
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |room| {
                room.checked_sub(more)
            })
            .is_ok()
    }
}

fn create_set(capacity: u32) -> Result<MapHandle> {
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_NO_PREALLOC,
        ..Default::default()
    };
    MapHandle::create(
        MapType::Hash,
        Some("fsp_watched"),
        KEY_SIZE,
        VALUE_SIZE,
        capacity,
        &opts,
    )
    .context(format!("creating the watched set ({capacity} entries)"))
}

impl Watched {
    /// Installs the first set in `outer` (the skeleton's `watched`), before
    /// the programs are attached; `counters`: the kernel's counters;
    /// `hints`: the mapped watch hints.
    pub(crate) fn new(
        outer: MapHandle,
        counters: MapHandle,
        hints: Hints,
        limit: u32,
    ) -> Result<Watched> {
        let watched = Watched {
            outer,
            counters,
            hints,
            limit,
            state: RwLock::new(State {
                set: create_set(FIRST_CAPACITY.min(limit))?,
                capacity: FIRST_CAPACITY.min(limit),
                base: AtomicU64::new(0),
                kernel_added: 0,
                kernel_removed: 0,
                room: AtomicU64::new(0),
            }),
            last_maintained: Mutex::new(Instant::now()),
        };
        watched.put(NOW, &watched.shared().set)?;
        Ok(watched)
    }

    // A panic while holding either lock leaves a consistent map behind.

    /// The set, shared with the other inserts.
    fn shared(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().unwrap_or_else(|e| e.into_inner())
    }

    /// The set, for a resize.
    fn exclusive(&self) -> RwLockWriteGuard<'_, State> {
        self.state.write().unwrap_or_else(|e| e.into_inner())
    }

    fn put(&self, slot: u32, set: &MapHandle) -> Result<()> {
        let fd = set.as_fd().as_raw_fd() as u32;
        self.outer
            .update(&slot.to_ne_bytes(), &fd.to_ne_bytes(), MapFlags::ANY)
            .context("installing the watched set")
    }

    fn kernel_counts(&self) -> (u64, u64) {
        (
            read_counter(&self.counters, counter::WATCH_ADDED),
            read_counter(&self.counters, counter::WATCH_REMOVED),
        )
    }

    /// How many entries the set holds (an upper bound, see the module's doc).
    fn estimate(&self, state: &State) -> u64 {
        let (added, removed) = self.kernel_counts();
        (state.base.load(Ordering::Relaxed) + added.saturating_sub(state.kernel_added))
            .saturating_sub(removed.saturating_sub(state.kernel_removed))
    }

    /// `reserve` for user space's own inserts: the kernel's counts are
    /// read (two syscalls) only once the room found at the last reading is
    /// used up, not for each of the walk's small batches. What the kernel
    /// adds meanwhile is left to `maintain`, and to the retry in `insert`.
    fn reserve_room(&self, state: &mut State, more: u64) -> Result<()> {
        if state.take_room(more) {
            return Ok(());
        }
        let estimate = self.reserve(state, more)?;
        let half = u64::from(state.capacity) / 2;
        *state.room.get_mut() = half.saturating_sub(estimate + more);
        Ok(())
    }

    /// Grows the set, if need be, so that `more` entries leave it at most
    /// half full (or as large as the limit allows); the entries it then
    /// holds, estimated.
    fn reserve(&self, state: &mut State, more: u64) -> Result<u64> {
        let estimate = self.estimate(state);
        let wanted = (estimate + more).saturating_mul(2);
        let mut capacity = state.capacity;
        while u64::from(capacity) < wanted && capacity < self.limit {
            capacity = capacity.saturating_mul(2).min(self.limit);
        }
        if capacity == state.capacity {
            return Ok(estimate);
        }
        self.resize(state, capacity)?;
        Ok(self.estimate(state))
    }

    fn resize(&self, state: &mut State, capacity: u32) -> Result<()> {
        let next = create_set(capacity)?;
        self.put(BEFORE, &state.set)?;
        self.put(NOW, &next)?;
        // What the kernel adds from here on goes to `next`, and is counted.
        let (added, removed) = self.kernel_counts();
        std::thread::sleep(SETTLE);
        let copied = match copy(&state.set, &next) {
            Ok(n) => n,
            Err(e) => {
                // `next` lacks entries: the old set takes the inserts again
                // (what the kernel put in `next` meanwhile is lost with it,
                // and was counted added: the estimate errs high).
                let _ = self.put(NOW, &state.set);
                let _ = self.outer.delete(&BEFORE.to_ne_bytes());
                return Err(e);
            }
        };
        self.outer
            .delete(&BEFORE.to_ne_bytes())
            .context("retiring the old watched set")?;
        *state = State {
            set: next,
            capacity,
            base: AtomicU64::new(copied),
            kernel_added: added,
            kernel_removed: removed,
            room: AtomicU64::new(0),
        };
        Ok(())
    }

    /// Adds `keys` (struct fsp_inode_key each) with `values` (their flags).
    pub(crate) fn insert(
        &self,
        keys: &[u8],
        values: &[u8],
    ) -> Result<std::result::Result<(), Full>> {
        let count = values.len() as u32 / VALUE_SIZE;
        if count == 0 {
            return Ok(Ok(()));
        }
        {
            let state = self.shared();
            if state.take_room(u64::from(count)) {
                match self.update(&state, keys, values, count) {
                    // The kernel filled the set since its counts were
                    // read: insert again below, after they are.
                    Err(e) if e.kind() == libbpf_rs::ErrorKind::TooBig => {}
                    done => return done.map(Ok).map_err(adding),
                }
            }
        }
        let mut state = self.exclusive();
        *state.room.get_mut() = 0;
        self.reserve_room(&mut state, u64::from(count))?;
        match self.update(&state, keys, values, count) {
            // Grown as far as the limit allows (the entries that went in
            // are replaced when the batch is inserted again).
            Err(e) if e.kind() == libbpf_rs::ErrorKind::TooBig => Ok(Err(Full)),
            done => done.map(Ok).map_err(adding),
        }
    }

    /// One BPF_MAP_UPDATE_BATCH into the set, counted.
    fn update(
        &self,
        state: &State,
        keys: &[u8],
        values: &[u8],
        count: u32,
    ) -> std::result::Result<(), libbpf_rs::Error> {
        self.hints.mark(keys);
        state
            .set
            .update_batch(keys, values, count, MapFlags::ANY, MapFlags::ANY)?;
        state.base.fetch_add(u64::from(count), Ordering::Relaxed);
        Ok(())
    }

    /// Adds `flags` to those of `key`, inserting it when it is not in the
    /// set; true when it was inserted.
    pub(crate) fn add_flags(
        &self,
        key: &[u8],
        flags: u32,
    ) -> Result<std::result::Result<bool, Full>> {
        let held = self.shared().set.lookup(key, MapFlags::ANY).ok().flatten();
        let Some(held) = held.and_then(|v| <[u8; 4]>::try_from(v).ok()) else {
            return Ok(self.insert(key, &flags.to_ne_bytes())?.map(|()| true));
        };
        let both = u32::from_ne_bytes(held) | flags;
        self.shared()
            .set
            .update(key, &both.to_ne_bytes(), MapFlags::EXIST)
            .context("adding watch flags")?;
        Ok(Ok(false))
    }

    /// Sets the flags of `key`, if it is in the set.
    pub(crate) fn set_flags(&self, key: &[u8], flags: u32) {
        let state = self.shared();
        let _ = state.set.update(key, &flags.to_ne_bytes(), MapFlags::EXIST);
    }

    /// Grows the set ahead of the kernel's own inserts (new files in
    /// watched directories); the worker calls it after each read. An
    /// error leaves the set as it was: what the kernel then cannot add is
    /// counted (FSP_CNT_WATCH_FULL) and reported as unwatched.
    pub(crate) fn maintain(&self) -> Result<()> {
        {
            let mut last = self
                .last_maintained
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if last.elapsed() < MAINTAIN_EVERY {
                return Ok(());
            }
            *last = Instant::now();
        }
        self.reserve(&mut self.exclusive(), 0).map(|_| ())
    }

    /// The entries the set holds, counted.
    pub(crate) fn count(&self) -> u64 {
        let state = self.shared();
        let mut total = 0;
        let _ = for_each_batch(&state.set, |_, _, n| {
            total += u64::from(n);
            Ok(())
        });
        total
    }

    /// The current set's capacity.
    #[cfg(test)]
    fn capacity(&self) -> u32 {
        self.shared().capacity
    }
}

/// An insert's error from the kernel.
fn adding(source: libbpf_rs::Error) -> Error {
    Error::Bpf {
        what: "adding watched inodes".into(),
        source: source.into(),
    }
}

/// Calls `f` with each batch of `map`'s keys and values and their count
/// (BPF_MAP_LOOKUP_BATCH, 5.6+).
fn for_each_batch(
    map: &MapHandle,
    mut f: impl FnMut(&[u8], &[u8], u32) -> Result<()>,
) -> Result<()> {
    let mut keys = vec![0u8; (KEY_SIZE * BATCH) as usize];
    let mut values = vec![0u8; (VALUE_SIZE * BATCH) as usize];
    let mut in_batch = vec![0u8; KEY_SIZE as usize];
    let mut out_batch = vec![0u8; KEY_SIZE as usize];
    let mut first = true;
    loop {
        let mut count = BATCH;
        let opts = libbpf_sys::bpf_map_batch_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
            ..Default::default()
        };
        let in_ptr = if first {
            std::ptr::null_mut()
        } else {
            in_batch.as_mut_ptr().cast()
        };
        // SAFETY: the buffers hold BATCH keys and values of the set's
        // sizes and one batch token of the key's size each (a hash map's
        // token is a bucket index, smaller than a key); count says how
        // many fit; the fd is open for the map's lifetime.
        let ret = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                map.as_fd().as_raw_fd(),
                in_ptr,
                out_batch.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        // libbpf returns -errno; ENOENT ends the walk, with a last batch.
        if ret != 0 && ret != -libc::ENOENT {
            return Err(Error::Io {
                what: "reading the watched set".into(),
                source: std::io::Error::from_raw_os_error(-ret),
            });
        }
        if count > 0 {
            f(
                &keys[..(KEY_SIZE * count) as usize],
                &values[..(VALUE_SIZE * count) as usize],
                count,
            )?;
        }
        if ret != 0 {
            return Ok(());
        }
        std::mem::swap(&mut in_batch, &mut out_batch);
        first = false;
    }
}

/// Copies every entry of `from` into `to`; returns how many there were.
fn copy(from: &MapHandle, to: &MapHandle) -> Result<u64> {
    let mut total = 0;
    for_each_batch(from, |keys, values, count| {
        total += u64::from(count);
        to.update_batch(keys, values, count, MapFlags::ANY, MapFlags::ANY)
            .context("copying the watched set")
    })?;
    Ok(total)
}

#[cfg(test)]
mod tests {
    //! These create BPF maps: they run as root, like the integration tests.
    use super::*;
    use crate::seed::inode_key;

    fn outer() -> MapHandle {
        let inner = create_set(1).unwrap();
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            inner_map_fd: inner.as_fd().as_raw_fd() as u32,
            ..Default::default()
        };
        MapHandle::create(MapType::ArrayOfMaps, Some("t_outer"), 4, 4, 2, &opts).unwrap()
    }

    fn counters() -> MapHandle {
        let opts = libbpf_sys::bpf_map_create_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
            ..Default::default()
        };
        MapHandle::create(MapType::PercpuArray, Some("t_counters"), 4, 8, 16, &opts).unwrap()
    }

    fn batch(range: std::ops::Range<u64>) -> (Vec<u8>, Vec<u8>) {
        let keys = range.clone().flat_map(|i| inode_key(7, i)).collect();
        let values = range.flat_map(|i| (i as u32).to_ne_bytes()).collect();
        (keys, values)
    }

    /// A watched set with the default limit, its outer map, and the maps
    /// it was made with (held for as long as the test runs).
    fn watched_set() -> (Watched, MapHandle, (MapHandle, MapHandle)) {
        let (outer, counters) = (outer(), counters());
        let hints_map = crate::hints::create_map().unwrap();
        let watched = Watched::new(
            MapHandle::try_from(&outer).unwrap(),
            MapHandle::try_from(&counters).unwrap(),
            Hints::map(&hints_map).unwrap(),
            1 << 20,
        )
        .unwrap();
        (watched, outer, (counters, hints_map))
    }

    #[test]
    fn the_set_grows_and_keeps_every_entry() {
        let (watched, outer, _maps) = watched_set();
        assert_eq!(watched.capacity(), FIRST_CAPACITY);
        let total = 3 * u64::from(FIRST_CAPACITY) / 2;
        for start in (0..total).step_by(BATCH as usize) {
            let (keys, values) = batch(start..(start + u64::from(BATCH)).min(total));
            watched.insert(&keys, &values).unwrap().unwrap();
        }
        assert_eq!(watched.count(), total);
        assert_eq!(watched.capacity(), 4 * FIRST_CAPACITY);
        for i in [0, total - 1] {
            assert!(watched.hints.marked(7, i), "entry {i} hinted");
        }
        let state = watched.shared();
        for i in [0, u64::from(FIRST_CAPACITY) - 1, total - 1] {
            let value = state.set.lookup(&inode_key(7, i), MapFlags::ANY).unwrap();
            assert_eq!(value, Some((i as u32).to_ne_bytes().to_vec()), "entry {i}");
        }
        // The slot the kernel reads is the new set, and BEFORE is empty.
        let id = |m: &MapHandle| m.info().unwrap().info.id;
        let now = outer
            .lookup(&NOW.to_ne_bytes(), MapFlags::ANY)
            .unwrap()
            .unwrap();
        assert_eq!(u32::from_ne_bytes(now.try_into().unwrap()), id(&state.set));
        assert_eq!(
            outer.lookup(&BEFORE.to_ne_bytes(), MapFlags::ANY).unwrap(),
            None
        );
    }

    #[test]
    fn threads_inserting_at_once_across_resizes_lose_nothing() {
        let (watched, _outer, _maps) = watched_set();
        // Small batches, as the walk sends (a directory's subdirectories),
        // from two threads, up to three times the first capacity: two
        // resizes while the other thread inserts.
        let per_thread = 3 * u64::from(FIRST_CAPACITY) / 2;
        std::thread::scope(|scope| {
            for thread in 0..2u64 {
                let watched = &watched;
                scope.spawn(move || {
                    let start = thread * per_thread;
                    for from in (start..start + per_thread).step_by(7) {
                        let (keys, values) = batch(from..(from + 7).min(start + per_thread));
                        watched.insert(&keys, &values).unwrap().unwrap();
                    }
                });
            }
        });
        assert_eq!(watched.count(), 2 * per_thread);
        assert_eq!(watched.capacity(), 8 * FIRST_CAPACITY);
    }

    #[test]
    fn a_copy_brings_every_old_entry_and_keeps_the_new_ones() {
        let (from, to) = (create_set(64).unwrap(), create_set(128).unwrap());
        let (keys, values) = batch(0..10);
        from.update_batch(&keys, &values, 10, MapFlags::ANY, MapFlags::ANY)
            .unwrap();
        // The kernel wrote entry 3 (also in the old set) and entry 20 meanwhile.
        for i in [3u64, 20] {
            to.update(&inode_key(7, i), &99u32.to_ne_bytes(), MapFlags::ANY)
                .unwrap();
        }
        assert_eq!(copy(&from, &to).unwrap(), 10);
        for i in (0..10u64).chain([20]) {
            let want = if i == 20 { 99 } else { i as u32 };
            let got = to.lookup(&inode_key(7, i), MapFlags::ANY).unwrap();
            assert_eq!(got, Some(want.to_ne_bytes().to_vec()), "entry {i}");
        }
    }
}

//! User space's side of the watch hints (bpf/filter/filter.h): a byte per
//! slot, set for every identity before it enters the watched set, so that
//! the kernel skips the set's hash lookup for an identity whose slot is
//! clear (most files a host opens are not watched); after the slots, a
//! summary byte per 2^FSP_HINT_SUMMARY_SHIFT slots, set with any of them,
//! which the kernel checks first.
//!
//! The table is the value of the `watch_hints` array map, created with
//! BPF_F_MMAPABLE: user space maps it and stores bytes straight into it,
//! while the kernel sets bytes of its own. A byte store never undoes
//! another slot's mark, so the two need no lock.
use std::os::fd::AsRawFd;
use std::ptr::NonNull;
use std::sync::atomic::{AtomicU8, Ordering};

use libbpf_rs::MapCore;

use crate::error::{Error, Result};
use crate::skel::types::fsp_watch_hint;

const SLOT_BITS: u32 = fsp_watch_hint::FSP_HINT_SLOT_BITS.0;
const SLOTS: usize = 1 << SLOT_BITS;
const SUMMARY_SHIFT: u32 = fsp_watch_hint::FSP_HINT_SUMMARY_SHIFT.0;
/// The map's value: the slots, then the summary (struct fsp_watch_hints).
const TABLE_BYTES: usize = SLOTS + (SLOTS >> SUMMARY_SHIFT);
const MUL_INO: u32 = fsp_watch_hint::FSP_HINT_MUL_INO.0;
const MUL_INO_HIGH: u32 = fsp_watch_hint::FSP_HINT_MUL_INO_HIGH.0;
const MUL_DEV: u32 = fsp_watch_hint::FSP_HINT_MUL_DEV.0;

/// The slot of identity (dev, ino): the same function as fsp_hint_slot()
/// in bpf/filter/filter.h.
pub(crate) fn hint_slot(dev: u32, ino: u64) -> usize {
    let mut h = (ino as u32)
        .wrapping_mul(MUL_INO)
        .wrapping_add(((ino >> 32) as u32).wrapping_mul(MUL_INO_HIGH))
        .wrapping_add(dev.wrapping_mul(MUL_DEV));
    h ^= h >> 16;
    h = h.wrapping_mul(MUL_INO);
    (h >> (32 - SLOT_BITS)) as usize
}

/// The mapped table.
#[derive(Debug)]
pub(crate) struct Hints {
    table: NonNull<AtomicU8>,
}

// SAFETY: the table is shared memory that is only ever accessed through
// atomics; the mapping lives as long as the Hints.
unsafe impl Send for Hints {}
// SAFETY: as above.
unsafe impl Sync for Hints {}

impl Hints {
    /// Maps the value of `map` (the skeleton's `watch_hints`).
    pub(crate) fn map(map: &impl MapCore) -> Result<Hints> {
        // SAFETY: a shared, writable mapping of the map's fd, of the size of
        // its value (an mmapable array's data starts at offset 0); the
        // result is checked before use.
        let ptr = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                TABLE_BYTES,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                map.as_fd().as_raw_fd(),
                0,
            )
        };
        if ptr == libc::MAP_FAILED {
            return Err(Error::Io {
                what: "mapping the watch hints".into(),
                source: std::io::Error::last_os_error(),
            });
        }
        Ok(Hints {
            table: NonNull::new(ptr.cast()).expect("mmap returned a mapping"),
        })
    }

    fn byte(&self, offset: usize) -> &AtomicU8 {
        assert!(offset < TABLE_BYTES);
        // SAFETY: offset < TABLE_BYTES, inside the mapping.
        unsafe { &*self.table.as_ptr().add(offset) }
    }

    fn slot(&self, index: usize) -> &AtomicU8 {
        self.byte(index & (SLOTS - 1))
    }

    fn summary(&self, index: usize) -> &AtomicU8 {
        self.byte(SLOTS + ((index & (SLOTS - 1)) >> SUMMARY_SHIFT))
    }

    /// Marks each struct fsp_inode_key in `keys` (16 bytes each: dev, pad, ino).
    pub(crate) fn mark(&self, keys: &[u8]) {
        for key in keys.chunks_exact(16) {
            let dev = u32::from_ne_bytes(key[..4].try_into().expect("4 bytes"));
            let ino = u64::from_ne_bytes(key[8..].try_into().expect("8 bytes"));
            let slot = hint_slot(dev, ino);
            self.slot(slot).store(1, Ordering::Relaxed);
            self.summary(slot).store(1, Ordering::Relaxed);
        }
        // The marks are visible before the inserts that follow.
        std::sync::atomic::fence(Ordering::SeqCst);
    }

    /// Is identity (dev, ino) marked?
    #[cfg(test)]
    pub(crate) fn marked(&self, dev: u32, ino: u64) -> bool {
        let slot = hint_slot(dev, ino);
        self.slot(slot).load(Ordering::Relaxed) != 0
            && self.summary(slot).load(Ordering::Relaxed) != 0
    }
}

impl Drop for Hints {
    fn drop(&mut self) {
        // SAFETY: the mapping made in map(), unmapped once.
        unsafe { libc::munmap(self.table.as_ptr().cast(), TABLE_BYTES) };
    }
}

/// A table like the skeleton's, for tests that need no programs.
#[cfg(test)]
pub(crate) fn create_map() -> Result<libbpf_rs::MapHandle> {
    use crate::error::BpfContext;
    let opts = libbpf_sys::bpf_map_create_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_create_opts>() as _,
        map_flags: libbpf_sys::BPF_F_MMAPABLE,
        ..Default::default()
    };
    libbpf_rs::MapHandle::create(
        libbpf_rs::MapType::Array,
        Some("t_hints"),
        4,
        TABLE_BYTES as u32,
        1,
        &opts,
    )
    .context("creating a hint table")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_mapping_is_the_kernels_table() {
        assert_eq!(
            TABLE_BYTES,
            std::mem::size_of::<crate::skel::types::fsp_watch_hints>()
        );
    }

    #[test]
    fn a_mark_sets_its_slot_and_its_summary_byte() {
        let map = create_map().unwrap();
        let hints = Hints::map(&map).unwrap();
        let (dev, ino) = (8 << 20 | 1, 4242);
        let slot = hint_slot(dev, ino);
        let mut key = [0u8; 16];
        key[..4].copy_from_slice(&dev.to_ne_bytes());
        key[8..].copy_from_slice(&ino.to_ne_bytes());
        hints.mark(&key);
        let set: Vec<usize> = (0..TABLE_BYTES)
            .filter(|&i| hints.byte(i).load(Ordering::Relaxed) != 0)
            .collect();
        assert_eq!(set, vec![slot, SLOTS + (slot >> SUMMARY_SHIFT)]);
        assert!(hints.marked(dev, ino));
    }

    #[test]
    fn slots_spread_consecutive_inodes() {
        // A directory's entries often have consecutive inode numbers.
        let mut seen = std::collections::HashSet::new();
        for ino in 1000..11_000u64 {
            let slot = hint_slot(8 << 20 | 1, ino);
            assert!(slot < SLOTS);
            seen.insert(slot);
        }
        assert!(
            seen.len() > 9_900,
            "{} distinct slots of 10,000",
            seen.len()
        );
        assert_ne!(hint_slot(1, 5), hint_slot(2, 5));
        assert_ne!(hint_slot(1, 5), hint_slot(1, 5 | 1 << 32));
    }
}

//! A counting wrapper around the system allocator, so a run can report the
//! heap bytes and allocations that bringing events to user space cost (the
//! seed's B/op). Every thread of the process is counted: the probe's worker
//! (decoding) and the consumer alike.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

pub struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);
/// Bytes allocated minus bytes freed since `track_live` (soak test only:
/// the benchmark's runs do not pay for the second counter).
static LIVE: AtomicI64 = AtomicI64::new(0);
static TRACK_LIVE: AtomicBool = AtomicBool::new(false);

fn note(size: usize) {
    // Relaxed: these are statistics read between runs, not synchronisation.
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
}

fn live(delta: i64) {
    if TRACK_LIVE.load(Ordering::Relaxed) {
        LIVE.fetch_add(delta, Ordering::Relaxed);
    }
}

/// From now on, count the heap in use (see `live_since_tracking`).
pub fn track_live() {
    LIVE.store(0, Ordering::Relaxed);
    TRACK_LIVE.store(true, Ordering::Relaxed);
}

/// Heap bytes in use now minus in use when `track_live` was called.
pub fn live_since_tracking() -> i64 {
    LIVE.load(Ordering::Relaxed)
}

// SAFETY: every call is forwarded unchanged to System, which upholds the
// GlobalAlloc contract; the counters have no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        live(layout.size() as i64);
        // SAFETY: the caller's layout obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        live(layout.size() as i64);
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        live(-(layout.size() as i64));
        // SAFETY: ptr came from System with this layout (all paths above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted like Go's B/op: a growth is a fresh allocation of the new size.
        note(new_size);
        live(new_size as i64 - layout.size() as i64);
        // SAFETY: ptr came from System with this layout; new_size is the caller's.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

/// Bytes and allocations so far, process-wide.
#[derive(Debug, Clone, Copy, Default)]
pub struct Heap {
    pub bytes: u64,
    pub allocs: u64,
}

impl Heap {
    pub fn now() -> Heap {
        Heap {
            bytes: BYTES.load(Ordering::Relaxed),
            allocs: COUNT.load(Ordering::Relaxed),
        }
    }

    pub fn since(self, start: Heap) -> Heap {
        Heap {
            bytes: self.bytes - start.bytes,
            allocs: self.allocs - start.allocs,
        }
    }
}

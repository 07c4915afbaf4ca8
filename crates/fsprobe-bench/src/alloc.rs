//! A counting wrapper around the system allocator, so a run can report the
//! heap bytes and allocations that bringing events to user space cost (the
//! seed's B/op). Every thread of the process is counted: the probe's worker
//! (decoding) and the consumer alike.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicU64, Ordering};

pub struct Counting;

static BYTES: AtomicU64 = AtomicU64::new(0);
static COUNT: AtomicU64 = AtomicU64::new(0);

fn note(size: usize) {
    // Relaxed: these are statistics read between runs, not synchronisation.
    BYTES.fetch_add(size as u64, Ordering::Relaxed);
    COUNT.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to System, which upholds the
// GlobalAlloc contract; the counters have no effect on the memory returned.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: the caller's layout obligations are passed on as they are.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        note(layout.size());
        // SAFETY: as for alloc.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: ptr came from System with this layout (all paths above).
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        // Counted like Go's B/op: a growth is a fresh allocation of the new size.
        note(new_size);
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

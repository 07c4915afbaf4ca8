//! The soak test's workload: churn on the watched tree, one event per step,
//! paced in millisecond batches. A cycle of 100 steps:
//! create a file (open O_CREAT) → write to it 10 times (the last write
//! closes it) → rename it into another leaf directory → open+close an
//! existing file of the tree 85 times → unlink the moved file → mkdir →
//! rmdir. Each step is one event (open, modify, rename, open, unlink,
//! mkdir, rmdir), so the events expected are the steps done minus the
//! failed ones. The metadata operations are 5 % of the steps: they change
//! the watched map and the path caches, while the opens and writes make
//! up the rate.
//!
//! A forked child of a multi-threaded process: it only makes
//! async-signal-safe calls and never allocates (every path is built before
//! the fork). Its progress is in a shared anonymous mapping; it stops when
//! asked, when its time is up, or when its parent is gone.
use std::ffi::CString;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::workload::{close_all_but, monotonic_ns, sleep_until};

/// Slots of the cycle: each has its own names, so a slot's files are gone
/// before its names come round again.
const SLOTS: usize = 4096;
/// Steps of one cycle (see the module comment).
pub const STEPS: u64 = 100;
const WRITES: u64 = 10;

/// Shared with the child.
#[repr(C)]
struct Shared {
    steps: AtomicU64,
    failed: AtomicU64,
    stop: AtomicU64,
    /// Monotonic ns at which the child finished (0 while it runs).
    ended: AtomicU64,
}

/// The paths one slot uses.
struct Slot {
    created: CString,
    moved: CString,
    dir: CString,
}

pub struct Churn {
    pid: i32,
    shared: *mut Shared,
    started_ns: u64,
}

fn c(path: &Path) -> io::Result<CString> {
    CString::new(path.as_os_str().as_bytes()).map_err(|_| io::Error::other("a NUL in a path"))
}

/// The slots: files created in one leaf directory and moved to another.
fn slots(files: &[CString]) -> io::Result<Vec<Slot>> {
    let leaf = |i: usize| {
        let f = Path::new(std::ffi::OsStr::from_bytes(
            files[i % files.len()].as_bytes(),
        ));
        f.parent().unwrap_or(Path::new("/")).to_path_buf()
    };
    (0..SLOTS)
        .map(|k| {
            let (a, b) = (leaf(k * 7919), leaf(k * 7919 + files.len() / 2));
            Ok(Slot {
                created: c(&a.join(format!(".churn-{k}")))?,
                moved: c(&b.join(format!(".moved-{k}")))?,
                dir: c(&a.join(format!(".dir-{k}")))?,
            })
        })
        .collect()
}

/// One step; false if its syscall failed.
fn step(n: u64, slot: &Slot, files: &[CString], seq: &[u32], fd: &mut i32) -> bool {
    let open_existing = |i: u64| {
        let f = &files[seq[i as usize % seq.len()] as usize];
        // SAFETY: f is NUL-terminated and outlives the call.
        let got = unsafe { libc::openat(libc::AT_FDCWD, f.as_ptr(), libc::O_RDONLY) };
        if got >= 0 {
            // SAFETY: got was just returned by openat, closed once.
            unsafe { libc::close(got) };
        }
        got >= 0
    };
    // SAFETY: the paths are NUL-terminated and outlive the calls; fd is
    // ours, closed once.
    unsafe {
        match n % STEPS {
            0 => {
                let flags = libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL;
                *fd = libc::openat(libc::AT_FDCWD, slot.created.as_ptr(), flags, 0o644);
                *fd >= 0
            }
            k @ 1..=WRITES => {
                let ok = *fd >= 0 && libc::write(*fd, b"churn\n".as_ptr().cast(), 6) == 6;
                if k == WRITES && *fd >= 0 {
                    libc::close(*fd);
                    *fd = -1;
                }
                ok
            }
            RENAME => libc::rename(slot.created.as_ptr(), slot.moved.as_ptr()) == 0,
            UNLINK => libc::unlink(slot.moved.as_ptr()) == 0,
            MKDIR => libc::mkdir(slot.dir.as_ptr(), 0o755) == 0,
            RMDIR => libc::rmdir(slot.dir.as_ptr()) == 0,
            _ => open_existing(n),
        }
    }
}

const RENAME: u64 = WRITES + 1;
const UNLINK: u64 = STEPS - 3;
const MKDIR: u64 = STEPS - 2;
const RMDIR: u64 = STEPS - 1;

fn child(
    shared: &Shared,
    slots: &[Slot],
    files: &[CString],
    seq: &[u32],
    rate: u64,
    secs: u64,
    cpu: usize,
) -> ! {
    close_all_but(&mut []);
    let _ = crate::cpu::pin_current_thread(cpu);
    // SAFETY: prctl with integer arguments has no memory effects: 1 µs of
    // timer slack, and SIGKILL if the parent dies.
    unsafe {
        libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong);
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong);
    }
    let t0 = monotonic_ns();
    let end = t0 + secs * 1_000_000_000;
    let (mut n, mut failed, mut fd) = (0u64, 0u64, -1);
    'run: loop {
        let now = monotonic_ns();
        if now >= end || shared.stop.load(Ordering::Relaxed) != 0 {
            break;
        }
        // The steps due by the end of this millisecond; late ones run at
        // once, back to back (until the time is up).
        let ms = (now - t0) / 1_000_000 + 1;
        let due = rate * ms / 1000;
        while n < due {
            if n % 64 == 0 && monotonic_ns() >= end {
                break 'run;
            }
            let slot = &slots[(n / STEPS) as usize % slots.len()];
            failed += u64::from(!step(n, slot, files, seq, &mut fd));
            n += 1;
        }
        shared.failed.store(failed, Ordering::Relaxed);
        shared.steps.store(n, Ordering::Release);
        sleep_until(t0 + ms * 1_000_000);
    }
    // Finish the cycle, so that no file of it is left open or behind.
    while n % STEPS != 0 {
        let slot = &slots[(n / STEPS) as usize % slots.len()];
        failed += u64::from(!step(n, slot, files, seq, &mut fd));
        n += 1;
    }
    shared.failed.store(failed, Ordering::Relaxed);
    shared.steps.store(n, Ordering::Release);
    shared.ended.store(monotonic_ns(), Ordering::Release);
    // SAFETY: _exit skips the parent's atexit handlers and destructors.
    unsafe { libc::_exit(0) }
}

/// Steps done and failed so far.
#[derive(Debug, Clone, Copy)]
pub struct Progress {
    pub steps: u64,
    pub failed: u64,
    /// The child finished its time (or was stopped).
    pub ended: bool,
}

// SAFETY: the shared mapping is only ever accessed through atomics, from
// any thread, and lives until drop.
unsafe impl Send for Churn {}
// SAFETY: as above.
unsafe impl Sync for Churn {}

impl Churn {
    /// Starts `rate` steps per second for `secs` seconds on `cpu`.
    pub fn start(
        files: &[CString],
        seq: &[u32],
        rate: u64,
        secs: u64,
        cpu: usize,
    ) -> io::Result<Churn> {
        let slots = slots(files)?;
        let size = std::mem::size_of::<Shared>();
        // SAFETY: a fresh shared anonymous mapping, zeroed by the kernel,
        // which is a valid Shared (atomics of zero).
        let map = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                size,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED | libc::MAP_ANONYMOUS,
                -1,
                0,
            )
        };
        if map == libc::MAP_FAILED {
            return Err(io::Error::last_os_error());
        }
        let shared = map.cast::<Shared>();
        // SAFETY: the child only makes async-signal-safe calls (see child()).
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            // SAFETY: the mapping is live and shared, and holds a Shared.
            0 => child(unsafe { &*shared }, &slots, files, seq, rate, secs, cpu),
            pid => Ok(Churn {
                pid,
                shared,
                started_ns: monotonic_ns(),
            }),
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    fn shared(&self) -> &Shared {
        // SAFETY: the mapping lives until drop.
        unsafe { &*self.shared }
    }

    pub fn progress(&self) -> Progress {
        let s = self.shared();
        Progress {
            steps: s.steps.load(Ordering::Acquire),
            failed: s.failed.load(Ordering::Relaxed),
            ended: s.ended.load(Ordering::Acquire) != 0,
        }
    }

    /// Steps per second over its life so far.
    pub fn rate(&self) -> f64 {
        let s = self.shared();
        let end = match s.ended.load(Ordering::Acquire) {
            0 => monotonic_ns(),
            t => t,
        };
        s.steps.load(Ordering::Acquire) as f64 * 1e9
            / end.saturating_sub(self.started_ns).max(1) as f64
    }

    /// Asks it to stop and reaps it.
    pub fn stop(&self) {
        self.shared().stop.store(1, Ordering::Relaxed);
        // SAFETY: reaps our child; a null status is allowed.
        unsafe { libc::waitpid(self.pid, std::ptr::null_mut(), 0) };
    }
}

impl Drop for Churn {
    fn drop(&mut self) {
        self.stop();
        // SAFETY: the mapping made in start, unmapped once; the child is gone.
        unsafe { libc::munmap(self.shared.cast(), std::mem::size_of::<Shared>()) };
    }
}

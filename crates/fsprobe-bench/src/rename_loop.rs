//! The unrelated rename loop: a helper process, pinned to the consumer's
//! CPU, that renames one file outside the watched tree back and forth at a
//! fixed rate while a run is measured. A rename anywhere may make the probe
//! distrust its cached path prefixes (every rename can move a directory
//! above a cached one), so this shows what unrelated activity elsewhere on
//! the machine does to the cost of the watched opens.
//!
//! The helper is forked from a multi-threaded process: it only makes
//! async-signal-safe calls (renameat, ppoll, clock_gettime, write, _exit)
//! and never allocates. It stops when its command pipe closes (the parent
//! drops it or dies) or after `MAX_LIFETIME_NS`, whichever comes first.
use std::ffi::CString;
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use crate::workload::{close_all_but, monotonic_ns, pipe, read_full, write_full};

/// The helper stops by itself after this long (1 hour).
const MAX_LIFETIME_NS: u64 = 3_600 * 1_000_000_000;

/// Renames per second of the loop (each rename is one direction).
pub const RATE: u64 = 1_000;

/// A running rename loop.
pub struct RenameLoop {
    pid: i32,
    cmd: RawFd,
    res: RawFd,
    started_ns: u64,
}

/// Sleeps until `due_ns` or until `fd` reports hang-up; true on hang-up.
fn wait_or_hangup(fd: RawFd, due_ns: u64) -> bool {
    let now = monotonic_ns();
    let left = due_ns.saturating_sub(now);
    let ts = libc::timespec {
        tv_sec: (left / 1_000_000_000) as libc::time_t,
        tv_nsec: (left % 1_000_000_000) as libc::c_long,
    };
    let mut pfd = libc::pollfd {
        fd,
        events: libc::POLLIN,
        revents: 0,
    };
    // SAFETY: pfd and ts are valid for the call; no signal mask is passed.
    let n = unsafe { libc::ppoll(&mut pfd, 1, &ts, std::ptr::null()) };
    n > 0 && pfd.revents & (libc::POLLHUP | libc::POLLIN | libc::POLLERR) != 0
}

fn child(a: &CString, b: &CString, cpu: usize, rate: u64, cmd: RawFd, res: RawFd) -> ! {
    close_all_but(&mut [cmd, res]);
    let _ = crate::cpu::pin_current_thread(cpu);
    // SAFETY: prctl with an integer argument has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    let t0 = monotonic_ns();
    let period = 1_000_000_000 / rate.max(1);
    let (mut done, mut failed) = (0u64, 0u64);
    loop {
        let due = t0 + done * period;
        if due - t0 > MAX_LIFETIME_NS || wait_or_hangup(cmd, due) {
            break;
        }
        let (from, to) = if done % 2 == 0 { (a, b) } else { (b, a) };
        // SAFETY: both paths are NUL-terminated and outlive the call.
        let rc =
            unsafe { libc::renameat(libc::AT_FDCWD, from.as_ptr(), libc::AT_FDCWD, to.as_ptr()) };
        failed += u64::from(rc != 0);
        done += 1;
    }
    let elapsed = monotonic_ns() - t0;
    let mut out = [0u8; 24];
    for (i, v) in [done, failed, elapsed].into_iter().enumerate() {
        out[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
    }
    write_full(res, &out);
    // SAFETY: _exit skips the parent's atexit handlers and destructors.
    unsafe { libc::_exit(0) }
}

/// What the loop did.
#[derive(Debug, Clone, Copy)]
pub struct Renamed {
    pub failed: u64,
    /// Renames per second over the loop's life.
    pub rate: f64,
}

impl RenameLoop {
    /// Creates `dir`/a (the file renamed to `dir`/b and back) and starts
    /// renaming at `rate` per second on `cpu`.
    pub fn start(dir: &Path, cpu: usize, rate: u64) -> io::Result<RenameLoop> {
        std::fs::create_dir_all(dir)?;
        let _ = std::fs::remove_file(dir.join("b"));
        std::fs::write(dir.join("a"), b"")?;
        let c = |name: &str| {
            CString::new(dir.join(name).as_os_str().as_bytes())
                .map_err(|_| io::Error::other("a NUL in the scratch path"))
        };
        let (a, b) = (c("a")?, c("b")?);
        let [cmd_r, cmd_w] = pipe()?;
        let [res_r, res_w] = pipe()?;
        // SAFETY: the child only makes async-signal-safe calls (see child()).
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => child(&a, &b, cpu, rate, cmd_r, res_w),
            pid => {
                // SAFETY: the child's ends, closed once in the parent.
                unsafe {
                    libc::close(cmd_r);
                    libc::close(res_w);
                }
                Ok(RenameLoop {
                    pid,
                    cmd: cmd_w,
                    res: res_r,
                    started_ns: monotonic_ns(),
                })
            }
        }
    }

    /// Stops the loop and says what it did.
    pub fn stop(mut self) -> io::Result<Renamed> {
        // SAFETY: our end of the command pipe, closed once (marked closed
        // for drop): the child sees the hang-up and reports.
        unsafe { libc::close(self.cmd) };
        self.cmd = -1;
        let mut buf = [0u8; 24];
        let got = read_full(self.res, &mut buf);
        let lived = monotonic_ns() - self.started_ns;
        if !got {
            return Err(io::Error::other("the rename loop died"));
        }
        let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8"));
        let (renames, failed, elapsed) = (word(0), word(1), word(2).min(lived).max(1));
        Ok(Renamed {
            failed,
            rate: renames as f64 * 1e9 / elapsed as f64,
        })
    }
}

impl Drop for RenameLoop {
    fn drop(&mut self) {
        // SAFETY: our pipe ends, closed once; the child exits on the
        // hang-up and waitpid reaps it.
        unsafe {
            if self.cmd >= 0 {
                libc::close(self.cmd);
            }
            libc::close(self.res);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

//! The measured workload: open(O_RDONLY) + close of a random file of the
//! tree, in a forked child process whose one thread is pinned to the
//! workload CPU. A separate process, so that the probe keeps its default of
//! leaving out its own process (whose seeding walk opens every watched
//! directory), and so that peers can filter on the workload's pid.
//!
//! The child is forked from a multi-threaded process, so it only makes
//! async-signal-safe calls (open, close, read, write, clock_gettime,
//! clock_nanosleep, sched_setaffinity, prctl) and never allocates.
use std::ffi::{CStr, CString};
use std::io;
use std::os::fd::{AsRawFd, RawFd};
use std::time::{Duration, Instant};

use crate::tree::Tree;

pub const SENTINEL_C: &CStr = c"fsb-sentinel";

/// How fast to go.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `ops` operations back to back (the seed's b.N loop).
    FlatOut { ops: u64 },
    /// `rate` operations per second for `secs` seconds, each started at its
    /// scheduled time (late ones start at once); the producer spins while
    /// it is early, so it keeps its CPU busy.
    Rate { rate: u64, secs: f64 },
    /// The same rate in batches: each millisecond's operations back to
    /// back, then a sleep until the next millisecond. The producer uses only
    /// the CPU its operations need, so it can share a CPU with the consumer.
    Ticked { rate: u64, secs: f64 },
}

impl Pace {
    pub fn ops(&self) -> u64 {
        match *self {
            Pace::FlatOut { ops } => ops,
            Pace::Rate { rate, secs } | Pace::Ticked { rate, secs } => (rate as f64 * secs) as u64,
        }
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct Done {
    pub ops: u64,
    pub elapsed_ns: u64,
    /// CPU time of the workload (user + system, so it includes the BPF
    /// programs that run inside its syscalls).
    pub cpu_ns: u64,
    /// Failed open(2) calls: a broken benchmark.
    pub errors: u64,
}

impl Done {
    pub fn ns_per_op(&self) -> f64 {
        self.elapsed_ns as f64 / self.ops.max(1) as f64
    }
}

const SENTINEL: u64 = 1;
const RUN_FLAT: u64 = 2;
const RUN_RATE: u64 = 3;
const RUN_TICKED: u64 = 4;

/// A workload process waiting for commands.
pub struct Workload {
    pid: i32,
    cmd: RawFd,
    res: RawFd,
}

pub(crate) fn pipe() -> io::Result<[RawFd; 2]> {
    let mut fds = [0; 2];
    // SAFETY: fds is a valid array of two ints.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(fds)
}

/// read(2) until `buf` is full; false on EOF or error. Async-signal-safe.
pub(crate) fn read_full(fd: RawFd, buf: &mut [u8]) -> bool {
    let mut got = 0;
    while got < buf.len() {
        // SAFETY: the pointer and length stay inside buf.
        let n = unsafe { libc::read(fd, buf[got..].as_mut_ptr().cast(), buf.len() - got) };
        if n <= 0 {
            return false;
        }
        got += n as usize;
    }
    true
}

pub(crate) fn write_full(fd: RawFd, buf: &[u8]) -> bool {
    let mut put = 0;
    while put < buf.len() {
        // SAFETY: the pointer and length stay inside buf.
        let n = unsafe { libc::write(fd, buf[put..].as_ptr().cast(), buf.len() - put) };
        if n <= 0 {
            return false;
        }
        put += n as usize;
    }
    true
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

fn cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// Sleeps until CLOCK_MONOTONIC reads `ns` (at once if it is past).
/// Async-signal-safe.
pub(crate) fn sleep_until(ns: u64) {
    let ts = libc::timespec {
        tv_sec: (ns / 1_000_000_000) as libc::time_t,
        tv_nsec: (ns % 1_000_000_000) as libc::c_long,
    };
    // SAFETY: ts is valid; a null remainder is allowed with TIMER_ABSTIME.
    while unsafe {
        libc::clock_nanosleep(
            libc::CLOCK_MONOTONIC,
            libc::TIMER_ABSTIME,
            &ts,
            std::ptr::null_mut(),
        )
    } == libc::EINTR
    {}
}

pub(crate) fn monotonic_ns() -> u64 {
    clock_ns(libc::CLOCK_MONOTONIC)
}

fn open_close(dir: RawFd, path: &CStr) -> bool {
    // SAFETY: path is NUL-terminated and outlives the call; dir is an
    // open directory (ignored for absolute paths).
    let fd = unsafe { libc::openat(dir, path.as_ptr(), libc::O_RDONLY) };
    if fd < 0 {
        return false;
    }
    // SAFETY: fd was just returned by openat and is closed exactly once.
    unsafe { libc::close(fd) };
    true
}

fn run(files: &[CString], seq: &[u32], pace: Pace) -> Done {
    let cpu0 = cpu_ns();
    let t0 = Instant::now();
    let t0_ns = monotonic_ns();
    let mut errors = 0;
    let ops = pace.ops();
    let period = match pace {
        Pace::FlatOut { .. } | Pace::Ticked { .. } => 0.0,
        Pace::Rate { rate, .. } => 1e9 / rate as f64,
    };
    // Ticked: the millisecond whose operations run now.
    let per_ms = match pace {
        Pace::Ticked { rate, .. } => rate,
        _ => 0,
    };
    let (mut tick, mut slept) = (0u64, u64::MAX);
    for i in 0..ops {
        if period > 0.0 {
            let due = t0 + Duration::from_nanos((i as f64 * period) as u64);
            while Instant::now() < due {
                std::hint::spin_loop();
            }
        }
        if per_ms > 0 {
            while i >= per_ms * (tick + 1) / 1000 {
                tick += 1;
            }
            if tick != slept {
                sleep_until(t0_ns + tick * 1_000_000);
                slept = tick;
            }
        }
        let f = &files[seq[i as usize % seq.len()] as usize];
        errors += u64::from(!open_close(libc::AT_FDCWD, f));
    }
    Done {
        ops,
        elapsed_ns: t0.elapsed().as_nanos() as u64,
        cpu_ns: cpu_ns() - cpu0,
        errors,
    }
}

/// In a forked child, closes every fd above stderr but `keep`: the probe's
/// and the peers' fds must not outlive them in here (a BPF link held by a
/// child keeps its program attached). Async-signal-safe.
pub(crate) fn close_all_but(keep: &mut [RawFd]) {
    keep.sort_unstable();
    let mut first = 3;
    for &fd in keep.iter() {
        if fd > first {
            // SAFETY: close_range only closes descriptors.
            unsafe { libc::syscall(libc::SYS_close_range, first, fd - 1, 0) };
        }
        first = first.max(fd + 1);
    }
    // SAFETY: as above.
    unsafe { libc::syscall(libc::SYS_close_range, first, u32::MAX, 0) };
}

/// The child: pin, then obey commands until EOF.
fn child(tree: &Tree, seq: &[u32], cpu: usize, cmd: RawFd, res: RawFd) -> ! {
    let root = tree.root_dir.as_raw_fd();
    close_all_but(&mut [root, cmd, res]);
    let _ = crate::cpu::pin_current_thread(cpu);
    // Ticked pacing sleeps to the next millisecond: 1 µs of timer slack
    // instead of the default 50.
    // SAFETY: prctl with an integer argument has no memory effects.
    unsafe { libc::prctl(libc::PR_SET_TIMERSLACK, 1000 as libc::c_ulong) };
    let mut buf = [0u8; 24];
    while read_full(cmd, &mut buf) {
        let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8"));
        let pace = match word(0) {
            SENTINEL => {
                open_close(root, SENTINEL_C);
                write_full(res, &[1]);
                continue;
            }
            RUN_FLAT => Pace::FlatOut { ops: word(1) },
            RUN_RATE => Pace::Rate {
                rate: word(1),
                secs: f64::from_bits(word(2)),
            },
            RUN_TICKED => Pace::Ticked {
                rate: word(1),
                secs: f64::from_bits(word(2)),
            },
            _ => break,
        };
        let d = run(&tree.files, seq, pace);
        let mut out = [0u8; 32];
        for (i, v) in [d.ops, d.elapsed_ns, d.cpu_ns, d.errors]
            .into_iter()
            .enumerate()
        {
            out[i * 8..i * 8 + 8].copy_from_slice(&v.to_ne_bytes());
        }
        write_full(res, &out);
    }
    // SAFETY: _exit skips the parent's atexit handlers and destructors.
    unsafe { libc::_exit(0) }
}

impl Workload {
    pub fn spawn(tree: &Tree, seq: &[u32], cpu: usize) -> io::Result<Workload> {
        let [cmd_r, cmd_w] = pipe()?;
        let [res_r, res_w] = pipe()?;
        // SAFETY: the child only makes async-signal-safe calls (see child()).
        match unsafe { libc::fork() } {
            -1 => Err(io::Error::last_os_error()),
            0 => child(tree, seq, cpu, cmd_r, res_w),
            pid => {
                // SAFETY: the child's ends, closed once in the parent.
                unsafe {
                    libc::close(cmd_r);
                    libc::close(res_w);
                }
                Ok(Workload {
                    pid,
                    cmd: cmd_w,
                    res: res_r,
                })
            }
        }
    }

    pub fn pid(&self) -> u32 {
        self.pid as u32
    }

    fn send(&self, words: [u64; 3]) -> io::Result<()> {
        let mut buf = [0u8; 24];
        for (i, w) in words.into_iter().enumerate() {
            buf[i * 8..i * 8 + 8].copy_from_slice(&w.to_ne_bytes());
        }
        if write_full(self.cmd, &buf) {
            Ok(())
        } else {
            Err(io::Error::other("the workload process is gone"))
        }
    }

    /// Has the workload open the tree's sentinel once (for peer handshakes).
    pub fn sentinel(&self) -> io::Result<()> {
        self.send([SENTINEL, 0, 0])?;
        let mut ack = [0u8; 1];
        if read_full(self.res, &mut ack) {
            Ok(())
        } else {
            Err(io::Error::other("the workload process is gone"))
        }
    }

    pub fn start(&self, pace: Pace) -> io::Result<()> {
        match pace {
            Pace::FlatOut { ops } => self.send([RUN_FLAT, ops, 0]),
            Pace::Rate { rate, secs } => self.send([RUN_RATE, rate, secs.to_bits()]),
            Pace::Ticked { rate, secs } => self.send([RUN_TICKED, rate, secs.to_bits()]),
        }
    }

    /// Blocks until the run started by `start` is over.
    pub fn wait(&self) -> io::Result<Done> {
        let mut buf = [0u8; 32];
        if !read_full(self.res, &mut buf) {
            return Err(io::Error::other("the workload process died"));
        }
        let word = |i: usize| u64::from_ne_bytes(buf[i * 8..i * 8 + 8].try_into().expect("8"));
        Ok(Done {
            ops: word(0),
            elapsed_ns: word(1),
            cpu_ns: word(2),
            errors: word(3),
        })
    }
}

impl Drop for Workload {
    fn drop(&mut self) {
        // SAFETY: our pipe ends, closed once; closing cmd makes the child
        // exit, and waitpid reaps it.
        unsafe {
            libc::close(self.cmd);
            libc::close(self.res);
            libc::waitpid(self.pid, std::ptr::null_mut(), 0);
        }
    }
}

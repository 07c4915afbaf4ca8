//! A clean stop, always: SIGINT or SIGTERM stops fsprobe within a second
//! while other processes keep the watched tree busy, also when SIGINT was
//! inherited as ignored (a background job of a non-interactive shell) or
//! blocked, and the exit summary is the last line on stderr. The output is read slowly,
//! as a terminal would, so the load outruns fsprobe and its kernel buffer
//! never empties.
//!
//! FSPROBE_STOP_ITERATIONS sets how many stops (default 50).
mod common;

use std::ffi::CString;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use common::*;

/// How long fsprobe may take to exit after the signal.
const STOP_DEADLINE: Duration = Duration::from_secs(1);
/// How long the load runs under a started fsprobe before the signal.
const LOADED_FOR: Duration = Duration::from_millis(100);
/// Processes hammering the tree: enough to outrun one consumer.
const HAMMERS: usize = 2;
/// The output is read at about the speed of a terminal: this much every millisecond.
const SLOW_READ: usize = 8 * 1024;
/// The hammers stop by themselves after this long, whatever happens.
const HAMMER_LIFETIME: Duration = Duration::from_secs(300);

fn iterations() -> usize {
    std::env::var("FSPROBE_STOP_ITERATIONS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(50)
}

/// Child processes that create, open and unlink files in a tree in a
/// tight loop until killed (or HAMMER_LIFETIME passes).
struct Hammers {
    pids: Vec<libc::pid_t>,
}

impl Hammers {
    fn start(dir: &Path) -> Hammers {
        let pids = (0..HAMMERS)
            .map(|h| {
                let names: Vec<CString> = (0..8)
                    .map(|i| cstr(dir.join(format!("h{h}-{i}")).as_os_str().as_encoded_bytes()))
                    .collect();
                spawn_hammer(&names)
            })
            .collect();
        Hammers { pids }
    }
}

impl Hammers {
    /// SIGSTOP or SIGCONT to every hammer: they pause while fsprobe starts.
    fn signal(&self, signal: libc::c_int) {
        for &pid in &self.pids {
            // SAFETY: kill() with our own child's pid and a valid signal.
            unsafe { libc::kill(pid, signal) };
        }
    }
}

impl Drop for Hammers {
    fn drop(&mut self) {
        for &pid in &self.pids {
            // SAFETY: our own children; kill and reap them.
            unsafe {
                libc::kill(pid, libc::SIGKILL);
                libc::waitpid(pid, std::ptr::null_mut(), 0);
            }
        }
    }
}

fn monotonic_secs() -> i64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid out pointer; clock_gettime is async-signal-safe.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec
}

/// Forks a child that loops over `names`: create (open O_CREAT), close,
/// reopen, close, unlink. The child makes only async-signal-safe calls
/// (the test process has other threads), and dies with its parent.
fn spawn_hammer(names: &[CString]) -> libc::pid_t {
    let until = monotonic_secs() + HAMMER_LIFETIME.as_secs() as i64;
    // SAFETY: the child only calls async-signal-safe functions on memory
    // allocated before the fork, then _exit()s.
    let pid = unsafe { libc::fork() };
    assert!(pid >= 0, "fork: {}", std::io::Error::last_os_error());
    if pid > 0 {
        return pid;
    }
    // SAFETY: see above; every pointer is a NUL-terminated path from `names`.
    unsafe {
        libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
        while monotonic_secs() < until {
            for name in names {
                let fd = libc::open(name.as_ptr(), libc::O_CREAT | libc::O_WRONLY, 0o644);
                if fd >= 0 {
                    libc::close(fd);
                }
                let fd = libc::open(name.as_ptr(), libc::O_RDONLY);
                if fd >= 0 {
                    libc::close(fd);
                }
                libc::unlink(name.as_ptr());
            }
        }
        libc::_exit(0)
    }
}

/// What fsprobe inherits for SIGINT and SIGTERM.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Inherited {
    Default,
    /// SIGINT set to SIG_IGN, as a non-interactive shell does for a background job.
    SigintIgnored,
    /// Both blocked in the signal mask.
    Blocked,
}

/// How one stop is asked for.
#[derive(Debug, Clone, Copy)]
struct Stop {
    signal: libc::c_int,
    inherited: Inherited,
    transport: &'static str,
    format: &'static str,
}

impl Stop {
    /// Every six stops cover each signal with each inheritance.
    fn nth(i: usize) -> Stop {
        Stop {
            signal: if i.is_multiple_of(2) {
                libc::SIGINT
            } else {
                libc::SIGTERM
            },
            inherited: [
                Inherited::Default,
                Inherited::SigintIgnored,
                Inherited::Blocked,
            ][(i / 2) % 3],
            transport: if (i / 6).is_multiple_of(2) {
                "ring_buffer"
            } else {
                "perf_buffer"
            },
            format: ["none", "json", "table"][i % 3],
        }
    }
}

/// A started fsprobe and the reader of its stderr.
struct Started {
    child: Child,
    stderr: JoinHandle<Vec<String>>,
    stdout: Option<JoinHandle<()>>,
}

/// Reads `out` until EOF, SLOW_READ bytes a millisecond.
fn read_slowly(mut out: impl std::io::Read + Send + 'static) -> JoinHandle<()> {
    std::thread::spawn(move || {
        let mut buf = vec![0; SLOW_READ];
        while out.read(&mut buf).is_ok_and(|n| n > 0) {
            std::thread::sleep(Duration::from_millis(1));
        }
    })
}

/// Starts fsprobe and waits for its ready line.
fn start_fsprobe(dir: &Path, stop: Stop) -> Started {
    let (mut started, ready) = spawn_fsprobe(dir, stop);
    if ready.recv_timeout(Duration::from_secs(60)).is_err() {
        let _ = started.child.kill();
        let _ = started.child.wait();
        panic!(
            "fsprobe never became ready; stderr:\n{}",
            started.stderr.join().unwrap().join("\n")
        );
    }
    started
}

/// Starts fsprobe; the receiver hears of its ready line.
fn spawn_fsprobe(dir: &Path, stop: Stop) -> (Started, mpsc::Receiver<()>) {
    let mut cmd = Command::new(fsprobe_bin());
    cmd.args(["-f", stop.format, "--transport", stop.transport])
        .arg(dir)
        .stdin(Stdio::null())
        .stdout(if stop.format == "none" {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .stderr(Stdio::piped());
    let inherited = stop.inherited;
    // SAFETY: signal(), sigemptyset(), sigaddset() and sigprocmask() are
    // async-signal-safe, as pre_exec requires; the set lives on this stack.
    unsafe {
        cmd.pre_exec(move || {
            match inherited {
                Inherited::Default => {}
                Inherited::SigintIgnored => {
                    libc::signal(libc::SIGINT, libc::SIG_IGN);
                }
                Inherited::Blocked => {
                    let mut set: libc::sigset_t = std::mem::zeroed();
                    libc::sigemptyset(&mut set);
                    libc::sigaddset(&mut set, libc::SIGINT);
                    libc::sigaddset(&mut set, libc::SIGTERM);
                    libc::sigprocmask(libc::SIG_BLOCK, &set, std::ptr::null_mut());
                }
            }
            Ok(())
        });
    }
    let mut child = cmd.spawn().expect("spawn fsprobe");
    let stdout = child.stdout.take().map(read_slowly);
    let err = child.stderr.take().expect("piped stderr");
    let (ready_tx, ready_rx) = mpsc::channel();
    let stderr = std::thread::spawn(move || {
        let mut lines = Vec::new();
        for line in BufReader::new(err).lines() {
            let line = line.unwrap_or_default();
            if line.starts_with("fsprobe: ready") {
                let _ = ready_tx.send(());
            }
            lines.push(line);
        }
        lines
    });
    let started = Started {
        child,
        stderr,
        stdout,
    };
    (started, ready_rx)
}

fn send(child: &Child, signal: libc::c_int) {
    // SAFETY: kill() with our child's pid and a valid signal number.
    unsafe { libc::kill(child.id() as i32, signal) };
}

/// Signals fsprobe and checks how it ends: how long it took and its
/// summary, or what went wrong.
fn stop_and_check(started: Started, stop: Stop) -> Result<(Duration, String), String> {
    let t0 = Instant::now();
    send(&started.child, stop.signal);
    check_end(started, t0)
}

/// Waits for fsprobe to exit, at most STOP_DEADLINE after `t0`, and checks
/// its exit code and its last line.
fn check_end(started: Started, t0: Instant) -> Result<(Duration, String), String> {
    let Started {
        mut child,
        stderr,
        stdout,
    } = started;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for fsprobe") {
            break Some(status);
        }
        if t0.elapsed() > STOP_DEADLINE {
            break None;
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    let took = t0.elapsed();
    if status.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let lines = stderr.join().expect("stderr reader");
    if let Some(reader) = stdout {
        reader.join().expect("stdout reader");
    }
    let status = status.ok_or_else(|| {
        format!(
            "still running {STOP_DEADLINE:?} after the signal; stderr:\n{}",
            lines.join("\n")
        )
    })?;
    if status.code() != Some(0) {
        return Err(format!(
            "exited with {status} after {took:?}; stderr:\n{}",
            lines.join("\n")
        ));
    }
    let last = lines.last().map(String::as_str).unwrap_or_default();
    if !(last.starts_with("fsprobe: ") && last.contains(" events, ") && last.contains(" lost (")) {
        return Err(format!(
            "the summary is not the last line of stderr:\n{}",
            lines.join("\n")
        ));
    }
    Ok((took, last.to_owned()))
}

#[test]
fn sigint_and_sigterm_stop_fsprobe_within_a_second_under_load() {
    let dir = Scratch::new("stopping");
    let hammers = Hammers::start(&dir.path);
    let n = iterations();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for i in 0..n {
        let stop = Stop::nth(i);
        hammers.signal(libc::SIGSTOP);
        let started = start_fsprobe(&dir.path, stop);
        hammers.signal(libc::SIGCONT);
        std::thread::sleep(LOADED_FOR);
        match stop_and_check(started, stop) {
            Ok(stopped) => slowest = slowest.max(stopped),
            Err(why) => failures.push(format!("stop {i} ({stop:?}): {why}")),
        }
    }
    eprintln!(
        "stopping: {n} stops, {} failed; the slowest clean stop took {:?}: {}",
        failures.len(),
        slowest.0,
        slowest.1
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_signal_during_startup_stops_fsprobe_once_it_is_ready() {
    let dir = Scratch::new("stopping-startup");
    // Ignored when inherited: without its own handler installed from the
    // start, fsprobe would never see this signal.
    let stop = Stop {
        signal: libc::SIGINT,
        inherited: Inherited::SigintIgnored,
        transport: "ring_buffer",
        format: "none",
    };
    let (started, ready) = spawn_fsprobe(&dir.path, stop);
    std::thread::sleep(Duration::from_millis(150));
    assert!(
        ready.try_recv().is_err(),
        "ready within 150 ms: too fast to signal it during startup"
    );
    send(&started.child, libc::SIGINT);
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("fsprobe gets ready, then stops");
    if let Err(why) = check_end(started, Instant::now()) {
        panic!("{why}");
    }
}

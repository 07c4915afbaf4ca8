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
use std::process::{Child, Command, ExitStatus, Stdio};
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
/// fsprobe instances started, loaded and stopped together (startup, which
/// the test does not time, takes longest).
const AT_ONCE: usize = 2;
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

/// Waits for the ready line of a spawned fsprobe.
fn await_ready((mut started, ready): (Started, mpsc::Receiver<()>)) -> Started {
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

/// How each child ended: its status and how long after its signal it was
/// seen gone, or None when it still ran STOP_DEADLINE after the signal.
fn wait_exits(
    children: &mut [&mut Child],
    signalled: &[Instant],
) -> Vec<Option<(ExitStatus, Duration)>> {
    let mut exits = vec![None; children.len()];
    loop {
        let mut waiting = false;
        for (i, child) in children.iter_mut().enumerate() {
            if exits[i].is_some() {
                continue;
            }
            match child.try_wait().expect("wait for fsprobe") {
                Some(status) => exits[i] = Some((status, signalled[i].elapsed())),
                None => waiting |= signalled[i].elapsed() <= STOP_DEADLINE,
            }
        }
        if !waiting {
            return exits;
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

/// Checks how fsprobe ended (its exit code and its last line): how long it
/// took and its summary, or what went wrong.
fn judge(
    started: Started,
    exit: Option<(ExitStatus, Duration)>,
) -> Result<(Duration, String), String> {
    let Started {
        mut child,
        stderr,
        stdout,
    } = started;
    if exit.is_none() {
        let _ = child.kill();
        let _ = child.wait();
    }
    let lines = stderr.join().expect("stderr reader");
    if let Some(reader) = stdout {
        reader.join().expect("stdout reader");
    }
    let (status, took) = exit.ok_or_else(|| {
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

/// Waits for fsprobe to exit, at most STOP_DEADLINE after `t0`, and judges it.
fn check_end(mut started: Started, t0: Instant) -> Result<(Duration, String), String> {
    let exit = wait_exits(&mut [&mut started.child], &[t0]).remove(0);
    judge(started, exit)
}

#[test]
fn sigint_and_sigterm_stop_fsprobe_within_a_second_under_load() {
    let dir = Scratch::new("stopping");
    let hammers = Hammers::start(&dir.path);
    let n = iterations();
    let mut failures = Vec::new();
    let mut slowest = (Duration::ZERO, String::new());
    for first in (0..n).step_by(AT_ONCE) {
        let round: Vec<(usize, Stop)> = (first..n.min(first + AT_ONCE))
            .map(|i| (i, Stop::nth(i)))
            .collect();
        hammers.signal(libc::SIGSTOP);
        let spawned: Vec<_> = round
            .iter()
            .map(|(_, stop)| spawn_fsprobe(&dir.path, *stop))
            .collect();
        let mut started: Vec<Started> = spawned.into_iter().map(await_ready).collect();
        hammers.signal(libc::SIGCONT);
        std::thread::sleep(LOADED_FOR);
        let signalled: Vec<Instant> = started
            .iter()
            .zip(&round)
            .map(|(s, (_, stop))| {
                send(&s.child, stop.signal);
                Instant::now()
            })
            .collect();
        let mut children: Vec<&mut Child> = started.iter_mut().map(|s| &mut s.child).collect();
        let exits = wait_exits(&mut children, &signalled);
        for ((started, exit), (i, stop)) in started.into_iter().zip(exits).zip(&round) {
            match judge(started, exit) {
                Ok(stopped) => slowest = slowest.max(stopped),
                Err(why) => failures.push(format!("stop {i} ({stop:?}): {why}")),
            }
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

/// Does /proc/PID/status say the process catches `signal` (SigCgt)?
fn catches(pid: u32, signal: libc::c_int) -> bool {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("SigCgt:"))
        .and_then(|mask| u64::from_str_radix(mask.trim(), 16).ok())
        .is_some_and(|mask| mask & (1 << (signal - 1)) != 0)
}

/// How many BPF programs the process holds open.
fn bpf_programs(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .map(|fds| {
            fds.filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
                .filter(|target| target.as_os_str() == "anon_inode:bpf-prog")
                .count()
        })
        .unwrap_or(0)
}

/// Tries of `caught_before_loading`: each can miss its moment when this
/// thread does not run between fsprobe's handler and its first program
/// (the other test of this file keeps both CPUs busy).
const CATCH_TRIES: usize = 5;

/// Starts fsprobe and freezes it once it catches SIGINT. Some when it then
/// holds no BPF program yet and is not ready: it caught SIGINT from the
/// start. None when the moment was missed: it loaded a program (or got
/// ready) before this thread saw the handler, and it was killed.
fn caught_before_loading(dir: &Path, stop: Stop) -> Option<(Started, mpsc::Receiver<()>)> {
    let (mut started, ready) = spawn_fsprobe(dir, stop);
    let pid = started.child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !catches(pid, libc::SIGINT) {
        assert!(Instant::now() < deadline, "fsprobe never caught SIGINT");
        std::hint::spin_loop();
    }
    // Frozen, so that it cannot get ready between the check and the signal.
    send(&started.child, libc::SIGSTOP);
    std::thread::sleep(Duration::from_millis(50));
    if ready.try_recv().is_err() && bpf_programs(pid) == 0 {
        return Some((started, ready));
    }
    let _ = started.child.kill();
    let _ = started.child.wait();
    None
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
    // A handler installed only once the programs are loaded fails every try.
    let (started, ready) = (0..CATCH_TRIES)
        .find_map(|_| caught_before_loading(&dir.path, stop))
        .unwrap_or_else(|| {
            panic!(
                "SIGINT caught only once the programs were loaded, in {CATCH_TRIES} tries: not from the start"
            )
        });
    send(&started.child, libc::SIGINT);
    send(&started.child, libc::SIGCONT);
    ready
        .recv_timeout(Duration::from_secs(60))
        .expect("fsprobe gets ready, then stops");
    if let Err(why) = check_end(started, Instant::now()) {
        panic!("{why}");
    }
}

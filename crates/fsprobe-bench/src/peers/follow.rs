//! A peer tool as a child process whose output lines are classified and
//! counted by a reader thread, with a sentinel handshake (the workload
//! opens a file outside the scenario's set until the tool reports it) to
//! know that it is really listening before the measured run starts.
use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::workload::Workload;

/// What one output line means.
#[derive(Debug, PartialEq, Eq)]
pub enum Class {
    Event,
    Sentinel,
    Lost(u64),
    Other,
}

#[derive(Default)]
pub struct Counts {
    pub events: AtomicU64,
    pub sentinels: AtomicU64,
    pub lost: AtomicU64,
}

pub struct Follower {
    pub child: Child,
    pub counts: Arc<Counts>,
    /// Every stderr line but the events, with the time it was read.
    stderr: Arc<Mutex<Vec<(Instant, String)>>>,
    readers: Vec<JoinHandle<()>>,
}

type Classify = Box<dyn Fn(&str) -> Class + Send>;

fn read_lines(
    source: impl Read + Send + 'static,
    classify: Classify,
    counts: Arc<Counts>,
) -> JoinHandle<()> {
    std::thread::spawn(move || {
        for line in BufReader::new(source).lines().map_while(Result::ok) {
            let counter = match classify(&line) {
                Class::Event => &counts.events,
                Class::Sentinel => &counts.sentinels,
                Class::Lost(n) => {
                    counts.lost.fetch_add(n, Ordering::SeqCst);
                    continue;
                }
                Class::Other => continue,
            };
            counter.fetch_add(1, Ordering::SeqCst);
        }
    })
}

impl Follower {
    /// Starts `cmd`, classifying its stdout lines (and, on stderr, the
    /// losses, e.g. bpftrace's "Lost N events").
    pub fn spawn(
        cmd: Command,
        classify: impl Fn(&str) -> Class + Send + Sync + 'static,
    ) -> Result<Follower, String> {
        Follower::spawn_with(cmd, false, classify)
    }

    /// The same, for a tool that writes its events to stderr (`perf
    /// trace`): every class is counted on stderr too.
    pub fn spawn_with(
        mut cmd: Command,
        events_on_stderr: bool,
        classify: impl Fn(&str) -> Class + Send + Sync + 'static,
    ) -> Result<Follower, String> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("cannot run {program}: {e}"))?;
        let counts = Arc::new(Counts::default());
        let classify = Arc::new(classify);
        let out = child.stdout.take().expect("piped");
        let c = Arc::clone(&classify);
        let stdout = read_lines(out, Box::new(move |l| c(l)), Arc::clone(&counts));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let (text, err) = (Arc::clone(&stderr), child.stderr.take().expect("piped"));
        let errs = Arc::clone(&counts);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                match classify(&line) {
                    Class::Lost(n) => _ = errs.lost.fetch_add(n, Ordering::SeqCst),
                    Class::Event if events_on_stderr => {
                        errs.events.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    Class::Sentinel if events_on_stderr => {
                        errs.sentinels.fetch_add(1, Ordering::SeqCst);
                        continue;
                    }
                    _ => {}
                }
                text.lock()
                    .expect("stderr text")
                    .push((Instant::now(), line));
            }
        });
        Ok(Follower {
            child,
            counts,
            stderr,
            readers: vec![stdout, stderr_reader],
        })
    }

    pub fn stderr(&self) -> String {
        let lines = self.stderr.lock().expect("stderr text");
        lines.iter().map(|(_, l)| format!("{l}\n")).collect()
    }

    /// When the first stderr line containing `marker` was read.
    pub fn stderr_time(&self, marker: &str) -> Option<Instant> {
        let lines = self.stderr.lock().expect("stderr text");
        lines
            .iter()
            .find(|(_, l)| l.contains(marker))
            .map(|(t, _)| *t)
    }

    /// Waits for `marker` on stderr (e.g. "Watches established").
    /// This polls every 20 ms: fine for seconds, not for milliseconds.
    pub fn wait_stderr(&mut self, marker: &str, timeout: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        while self.stderr_time(marker).is_none() {
            self.check_alive()?;
            if t0.elapsed() > timeout {
                return Err(format!("no '{marker}' after {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    fn check_alive(&mut self) -> Result<(), String> {
        match self.child.try_wait() {
            Ok(Some(status)) => {
                std::thread::sleep(Duration::from_millis(100));
                Err(format!("exited ({status}): {}", self.stderr().trim()))
            }
            _ => Ok(()),
        }
    }

    /// Has the workload open the tree's sentinel until the tool reports
    /// it: from then on the tool sees the workload's opens.
    pub fn handshake(&mut self, w: &Workload, timeout: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        while self.counts.sentinels.load(Ordering::SeqCst) == 0 {
            self.check_alive()?;
            if t0.elapsed() > timeout {
                return Err(format!("never reported the sentinel within {timeout:?}"));
            }
            w.sentinel().map_err(|e| e.to_string())?;
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(())
    }

    /// Stops the tool with `signal` (SIGKILL after 10 s) and reaps it with
    /// wait4: its stderr, and its resource usage over its whole life
    /// (None if it could not be reaped).
    pub fn stop_with_usage(mut self, signal: i32) -> (String, Option<libc::rusage>) {
        let pid = self.child.id() as i32;
        // SAFETY: kill has no memory effects; the pid is our live child.
        unsafe { libc::kill(pid, signal) };
        // SAFETY: rusage is plain data; all-zero is valid.
        let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
        let mut status = 0;
        let t0 = Instant::now();
        let reaped = loop {
            // SAFETY: status and usage are valid out-pointers; the pid is
            // our child, not yet reaped (std's Child never waited on it).
            let rc = unsafe { libc::wait4(pid, &mut status, libc::WNOHANG, &mut usage) };
            if rc == pid {
                break true;
            }
            if rc < 0 {
                break false;
            }
            if t0.elapsed() > Duration::from_secs(10) {
                // SAFETY: as above.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        (self.stderr(), reaped.then_some(usage))
    }

    /// Stops the tool with `signal` and waits for it and its readers.
    pub fn stop(mut self, signal: i32) -> String {
        // SAFETY: kill has no memory effects; the pid is our live child.
        unsafe { libc::kill(self.child.id() as i32, signal) };
        let t0 = Instant::now();
        while matches!(self.child.try_wait(), Ok(None)) && t0.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for r in self.readers.drain(..) {
            let _ = r.join();
        }
        self.stderr()
    }
}

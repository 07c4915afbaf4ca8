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
    stderr: Arc<Mutex<String>>,
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
    /// Starts `cmd`, classifying its stdout lines (and its stderr lines
    /// too when `stderr_too`, e.g. for "Lost N events").
    pub fn spawn(
        mut cmd: Command,
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
        let stderr = Arc::new(Mutex::new(String::new()));
        let (text, err) = (Arc::clone(&stderr), child.stderr.take().expect("piped"));
        let errs = Arc::clone(&counts);
        let stderr_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if let Class::Lost(n) = classify(&line) {
                    errs.lost.fetch_add(n, Ordering::SeqCst);
                }
                let mut t = text.lock().expect("stderr text");
                t.push_str(&line);
                t.push('\n');
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
        self.stderr.lock().expect("stderr text").clone()
    }

    /// Waits for `marker` on stderr (e.g. "Watches established").
    pub fn wait_stderr(&mut self, marker: &str, timeout: Duration) -> Result<(), String> {
        let t0 = Instant::now();
        while !self.stderr().contains(marker) {
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

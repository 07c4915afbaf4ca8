//! Test harness: runs the real `fsprobe` binary (root, real BPF programs),
//! collects its NDJSON output, and lets a test wait for the events its own
//! file operations caused.
#![allow(dead_code)]

use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long an expected event may take to show up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(15);

/// The binary under test: FSPROBE_BIN overrides the one cargo built
/// (the VM harness runs the tests with the binary at another path).
pub fn fsprobe_bin() -> PathBuf {
    std::env::var_os("FSPROBE_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_fsprobe")))
}

/// A directory of its own for each test, removed afterwards.
pub struct Scratch {
    pub path: PathBuf,
}

impl Scratch {
    pub fn new(name: &str) -> Scratch {
        let base =
            std::env::var_os("FSPROBE_TEST_DIR").map_or_else(std::env::temp_dir, PathBuf::from);
        let path = base.join(format!("fsprobe-it-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create scratch dir");
        let path = std::fs::canonicalize(&path).expect("canonicalize scratch dir");
        Scratch { path }
    }

    pub fn join(&self, rel: impl AsRef<Path>) -> PathBuf {
        self.path.join(rel)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// How long a start may take before the test fails.
const READY_TIMEOUT: Duration = Duration::from_secs(180);

/// A running `fsprobe -f json ...`.
pub struct Probe {
    child: Child,
    events: Arc<Mutex<Vec<Value>>>,
    stderr: Arc<Mutex<String>>,
    readers: Vec<JoinHandle<()>>,
}

/// What a probe left when it stopped.
pub struct Finished {
    pub events: Vec<Value>,
    pub stderr: String,
    pub status: ExitStatus,
}

impl Probe {
    /// Starts fsprobe with JSON output and the given arguments, and waits
    /// for its ready line.
    pub fn start<I, S>(args: I) -> Probe
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        let mut cmd = Command::new(fsprobe_bin());
        cmd.args(["-f", "json"])
            .args(args.into_iter().map(Into::into));
        Probe::spawn(cmd)
    }

    /// Runs a command that ends up running `fsprobe -f json ...` (e.g.
    /// through unshare), and waits for its ready line.
    pub fn spawn(mut cmd: Command) -> Probe {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn fsprobe");
        let events = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(String::new()));
        let (ready_tx, ready_rx) = mpsc::channel();

        let out = child.stdout.take().expect("piped stdout");
        let sink = Arc::clone(&events);
        let out_reader = std::thread::spawn(move || {
            for line in BufReader::new(out).lines() {
                let line = line.expect("read fsprobe stdout");
                let v: Value = serde_json::from_str(&line)
                    .unwrap_or_else(|e| panic!("fsprobe printed invalid JSON ({e}): {line}"));
                sink.lock().unwrap().push(v);
            }
        });
        let err = child.stderr.take().expect("piped stderr");
        let log = Arc::clone(&stderr);
        let err_reader = std::thread::spawn(move || {
            for line in BufReader::new(err).lines() {
                let line = line.unwrap_or_default();
                let ready = line.starts_with("fsprobe: ready");
                {
                    let mut log = log.lock().unwrap();
                    log.push_str(&line);
                    log.push('\n');
                }
                // Only once the line is in the log: the caller reads it next.
                if ready {
                    let _ = ready_tx.send(());
                }
            }
        });
        let probe = Probe {
            child,
            events,
            stderr,
            readers: vec![out_reader, err_reader],
        };
        // A start in a TCG guest is some 20 s of verifier; a guest that
        // shares its host's CPUs with others may take several times that.
        if ready_rx.recv_timeout(READY_TIMEOUT).is_err() {
            let finished = probe.stop();
            panic!("fsprobe never became ready; stderr:\n{}", finished.stderr);
        }
        probe
    }

    /// Events so far.
    pub fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Waits for an event matching `pred` and returns it.
    pub fn wait_for(&self, what: &str, pred: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + EVENT_TIMEOUT;
        loop {
            if let Some(v) = self.events.lock().unwrap().iter().find(|v| pred(v)) {
                return v.clone();
            }
            if Instant::now() > deadline {
                panic!(
                    "no event for {what} within {EVENT_TIMEOUT:?}; got:\n{}\nstderr:\n{}",
                    dump(&self.events()),
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// What fsprobe wrote on stderr so far.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Waits until `n` events match `pred` (keep it cheap: it runs under
    /// the lock the reader needs). Fails only when no new event arrived
    /// for EVENT_TIMEOUT.
    pub fn wait_for_count(&self, n: usize, pred: impl Fn(&Value) -> bool) {
        let (mut seen, mut total, mut last_progress) = (0, 0, Instant::now());
        loop {
            {
                let events = self.events.lock().unwrap();
                if events.len() > total {
                    last_progress = Instant::now();
                }
                seen += events[total..].iter().filter(|v| pred(v)).count();
                total = events.len();
            }
            if seen >= n {
                return;
            }
            if last_progress.elapsed() > EVENT_TIMEOUT {
                panic!(
                    "{seen} of {n} events after {EVENT_TIMEOUT:?} without progress; stderr:\n{}",
                    self.stderr.lock().unwrap()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Sends a signal to fsprobe.
    pub fn signal(&self, signal: i32) {
        // SAFETY: kill() with a pid we own and a valid signal number.
        unsafe { libc::kill(self.child.id() as i32, signal) };
    }

    /// SIGINT, then collect everything.
    pub fn stop(mut self) -> Finished {
        self.signal(libc::SIGINT);
        let status = self.child.wait().expect("wait for fsprobe");
        for r in self.readers.drain(..) {
            r.join().expect("reader thread");
        }
        Finished {
            events: self.events.lock().unwrap().clone(),
            stderr: self.stderr.lock().unwrap().clone(),
            status,
        }
    }
}

impl Drop for Probe {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts fsprobe watching `dir`, with extra arguments before it.
pub fn watch(dir: &Path, extra: &[&str]) -> Probe {
    let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
    args.push(dir.display().to_string());
    Probe::start(args)
}

pub fn dump(events: &[Value]) -> String {
    events
        .iter()
        .map(|e| e.to_string())
        .collect::<Vec<_>>()
        .join("\n")
}

/// Runs fsprobe to completion (for bad-input cases).
pub fn run_fsprobe(args: &[&str], uid: Option<u32>) -> std::process::Output {
    use std::os::unix::process::CommandExt;
    let mut cmd = Command::new(fsprobe_bin());
    cmd.args(args).stdin(Stdio::null());
    if let Some(uid) = uid {
        cmd.uid(uid).gid(uid);
    }
    cmd.output().expect("run fsprobe")
}

pub fn tid() -> u32 {
    // SAFETY: gettid has no preconditions.
    unsafe { libc::gettid() as u32 }
}

pub fn pid() -> u32 {
    std::process::id()
}

pub fn ino(path: &Path) -> u64 {
    std::fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("stat {}: {e}", path.display()))
        .ino()
}

/// The event's path field as text.
pub fn path_of(v: &Value, which: &str) -> String {
    v[which]["path"].as_str().unwrap_or_default().to_owned()
}

/// Is `v` a `kind` event by this test thread on `path`?
pub fn is(v: &Value, kind: &str, path: &Path) -> bool {
    v["event"] == kind
        && v["process"]["tid"] == tid()
        && v["file"]["path"].as_str() == path.to_str()
}

/// The process fields every event carries: this test's pid and tid.
pub fn assert_by_me(v: &Value) {
    assert_eq!(v["process"]["pid"], pid(), "pid in {v}");
    assert_eq!(v["process"]["tid"], tid(), "tid in {v}");
    // SAFETY: getppid/getuid/getgid have no preconditions.
    let (ppid, uid, gid) = unsafe { (libc::getppid(), libc::getuid(), libc::getgid()) };
    assert_eq!(v["process"]["ppid"], ppid, "ppid in {v}");
    assert_eq!(v["process"]["uid"], uid, "uid in {v}");
    assert_eq!(v["process"]["gid"], gid, "gid in {v}");
}

/// The mount id of the mount at `mount_point`, from /proc/self/mountinfo.
pub fn mount_id_of(mount_point: &Path) -> u64 {
    let info = std::fs::read_to_string("/proc/self/mountinfo").expect("read mountinfo");
    info.lines()
        .rev()
        .find(|l| l.split(' ').nth(4) == mount_point.to_str())
        .and_then(|l| l.split(' ').next())
        .and_then(|id| id.parse().ok())
        .unwrap_or_else(|| panic!("{} is not a mount point", mount_point.display()))
}

/// A mount made by a test; unmounted on drop.
pub struct Mounted {
    pub at: PathBuf,
}

impl Mounted {
    fn run(args: &[&std::ffi::OsStr], at: &Path) -> Mounted {
        std::fs::create_dir_all(at).expect("create mount point");
        let status = Command::new("mount")
            .args(args)
            .arg(at)
            .status()
            .expect("run mount");
        assert!(status.success(), "mount {args:?} on {}", at.display());
        Mounted { at: at.to_owned() }
    }

    /// A fresh tmpfs at `at`.
    pub fn tmpfs(at: &Path) -> Mounted {
        Mounted::run(
            &["-t".as_ref(), "tmpfs".as_ref(), "fsprobe-test".as_ref()],
            at,
        )
    }

    /// `src` bind-mounted at `at`.
    pub fn bind(src: &Path, at: &Path) -> Mounted {
        Mounted::run(&["--bind".as_ref(), src.as_os_str()], at)
    }
}

impl Drop for Mounted {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg("-l").arg(&self.at).status();
    }
}

/// A C string for libc calls.
pub fn cstr(p: impl AsRef<[u8]>) -> std::ffi::CString {
    std::ffi::CString::new(p.as_ref()).expect("no NUL in test paths")
}

/// Where cgroup v2 is mounted (the unified hierarchy).
pub fn cgroup2_root() -> PathBuf {
    let info = std::fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| {
            l.split(" - ")
                .nth(1)
                .is_some_and(|r| r.starts_with("cgroup2 "))
        })
        .and_then(|l| l.split(' ').nth(4))
        .map(PathBuf::from)
        .expect("a cgroup2 mount (the VM guests and the host both have one)")
}

/// A fresh cgroup v2 directory, removed afterwards.
pub struct Cgroup {
    pub dir: PathBuf,
}

impl Cgroup {
    pub fn new(name: &str) -> Cgroup {
        let dir = cgroup2_root().join(name);
        let _ = std::fs::remove_dir(&dir);
        std::fs::create_dir(&dir)
            .unwrap_or_else(|e| panic!("create cgroup {}: {e}", dir.display()));
        Cgroup { dir }
    }
}

impl Drop for Cgroup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

/// The inode number in a namespace link (`mnt:[4026531840]`): the namespace's id.
pub fn ns_inode_from_link(link: &str) -> u64 {
    link.trim()
        .rsplit_once('[')
        .and_then(|(_, n)| n.strip_suffix(']'))
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("not a namespace link: {link}"))
}

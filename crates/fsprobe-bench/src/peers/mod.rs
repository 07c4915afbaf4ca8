//! Peer tools run on the same workload: inotifywait, fatrace (fanotify),
//! auditd and bpftrace. Each is optional: when one cannot run here, the
//! reason is recorded instead of a number.
mod audit;
mod follow;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use crate::run::{self, Consumed, RunResult};
use crate::tree::{SENTINEL, Tree};
use crate::workload::{Pace, Workload};
use audit::Audit;
use follow::{Class, Follower};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum PeerKind {
    Inotifywait,
    Fatrace,
    Auditd,
    Bpftrace,
}

impl PeerKind {
    pub const ALL: [PeerKind; 4] = [
        PeerKind::Inotifywait,
        PeerKind::Fatrace,
        PeerKind::Auditd,
        PeerKind::Bpftrace,
    ];

    /// How it is run, for the tables.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotifywait -r -m -e open",
            PeerKind::Fatrace => "fatrace -c -f O (fanotify)",
            PeerKind::Auditd => "auditctl -w DIR -p rwxa + auditd",
            PeerKind::Bpftrace => "bpftrace sys_enter_openat /pid/ printf",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotifywait",
            PeerKind::Fatrace => "fatrace",
            PeerKind::Auditd => "auditctl",
            PeerKind::Bpftrace => "bpftrace",
        }
    }

    fn package(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotify-tools",
            PeerKind::Fatrace => "fatrace",
            PeerKind::Auditd => "auditd",
            PeerKind::Bpftrace => "bpftrace",
        }
    }
}

pub(crate) fn installed(binary: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(binary).is_file()))
}

/// apt-get install, quietly; the error text on failure.
fn apt_install(packages: &[&str]) -> Result<(), String> {
    let install = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .output()
            .map_err(|e| format!("apt-get: {e}"))
    };
    let mut args = vec!["install", "-y", "-qq", "--no-install-recommends"];
    args.extend_from_slice(packages);
    let mut out = install(&args)?;
    if !out.status.success() {
        // A fresh machine has no package lists yet.
        install(&["update", "-qq"])?;
        out = install(&args)?;
    }
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

pub struct Peers {
    pub available: Vec<PeerKind>,
    pub unavailable: Vec<(PeerKind, String)>,
    audit: Option<Audit>,
    comm: String,
}

impl Peers {
    /// Finds (and with `install`, installs) the peers, and starts auditd.
    pub fn setup(wanted: &[PeerKind], install: bool) -> Peers {
        // Before apt-get: installing auditd may start it, with rules.
        let audit_prior = wanted
            .contains(&PeerKind::Auditd)
            .then(audit::Prior::snapshot);
        let mut missing: Vec<PeerKind> = wanted
            .iter()
            .copied()
            .filter(|p| !installed(p.binary()))
            .collect();
        let mut unavailable = Vec::new();
        if install && !missing.is_empty() {
            let packages: Vec<&str> = missing.iter().map(|p| p.package()).collect();
            say!("installing {}", packages.join(" "));
            if let Err(e) = apt_install(&packages) {
                eprintln!("fsprobe-bench: apt-get failed: {e}");
            }
            missing.retain(|p| !installed(p.binary()));
        }
        for p in &missing {
            let why = if install {
                "not installed (apt-get failed)"
            } else {
                "not installed (installing is off)"
            };
            unavailable.push((*p, format!("{}: {why}", p.package())));
        }
        let mut available: Vec<PeerKind> = wanted
            .iter()
            .copied()
            .filter(|p| !missing.contains(p))
            .collect();
        let mut audit = None;
        if let Some(prior) = audit_prior.filter(|_| available.contains(&PeerKind::Auditd)) {
            match Audit::setup(prior) {
                Ok(a) => audit = Some(a),
                Err(e) => {
                    available.retain(|p| *p != PeerKind::Auditd);
                    unavailable.push((PeerKind::Auditd, e));
                }
            }
        }
        let comm = std::fs::read_to_string("/proc/self/comm").unwrap_or_default();
        Peers {
            available,
            unavailable,
            audit,
            comm: comm.trim().to_string(),
        }
    }

    /// Starts `kind` listening to the workload process `pid`.
    fn spawn(&mut self, kind: PeerKind, tree: &Tree, pid: u32) -> Result<Follower, String> {
        let root = tree.root.to_string_lossy().into_owned();
        let ends_sentinel = |l: &str| l.ends_with(SENTINEL);
        match kind {
            PeerKind::Inotifywait => {
                let mut cmd = Command::new("inotifywait");
                cmd.args(["-r", "-m", "-e", "open", "--format", "%e %w%f", &root]);
                let mut f = Follower::spawn(cmd, move |l| {
                    if ends_sentinel(l) {
                        Class::Sentinel
                    } else if l.starts_with("OPEN ") {
                        Class::Event
                    } else if l.starts_with("Q_OVERFLOW") {
                        // The count is unknown: this counts the notices.
                        Class::Lost(1)
                    } else {
                        Class::Other
                    }
                })?;
                f.wait_stderr("Watches established", Duration::from_secs(600))?;
                Ok(f)
            }
            PeerKind::Fatrace => {
                let mut cmd = Command::new("fatrace");
                cmd.args(["-c", "-f", "O", "-C", &self.comm])
                    .current_dir(&tree.root);
                let mark = format!("({pid}): ");
                Follower::spawn(cmd, move |l| match (l.contains(&mark), ends_sentinel(l)) {
                    (true, true) => Class::Sentinel,
                    (true, false) => Class::Event,
                    _ => Class::Other,
                })
            }
            PeerKind::Bpftrace => {
                let program = format!(
                    "tracepoint:syscalls:sys_enter_openat /pid == {pid}/ {{ printf(\"%s\\n\", str(args->filename)); }}"
                );
                let mut cmd = Command::new("bpftrace");
                cmd.args(["-e", &program]);
                // str() keeps 64 bytes: match the root's start only.
                let prefix: String = root.chars().take(48).collect();
                Follower::spawn(cmd, move |l| {
                    if let Some(n) = l.strip_prefix("Lost ") {
                        let n = n.split_whitespace().next().and_then(|n| n.parse().ok());
                        Class::Lost(n.unwrap_or(0))
                    } else if ends_sentinel(l) {
                        Class::Sentinel
                    } else if l.starts_with(&prefix) {
                        Class::Event
                    } else {
                        Class::Other
                    }
                })
            }
            PeerKind::Auditd => {
                let audit = self.audit.as_ref().ok_or("auditd is not set up")?;
                let mut cmd = Command::new("tail");
                cmd.args(["-F", "-n", "0", &audit.log]);
                Follower::spawn(cmd, Audit::classify(pid))
            }
        }
    }

    fn consumer_cpu(&self, kind: PeerKind, f: &Follower) -> u64 {
        let pids = match (kind, &self.audit) {
            (PeerKind::Auditd, Some(a)) => a.consumers.clone(),
            _ => vec![f.child.id()],
        };
        pids.into_iter().filter_map(crate::cpu::pid_cpu_ns).sum()
    }

    /// One run of the workload with `kind` listening. The note says what
    /// the peer reported besides its events (overflows, losses).
    /// `workload` forks the workload process: after the audit rules are
    /// in, since the kernel decides at fork whether a task is audited.
    pub fn measure(
        &mut self,
        kind: PeerKind,
        tree: &Tree,
        workload: impl FnOnce() -> Option<Workload>,
        pace: Pace,
    ) -> Result<(RunResult, Option<String>), String> {
        if let (PeerKind::Auditd, Some(a)) = (kind, self.audit.as_mut()) {
            a.begin(&tree.root.to_string_lossy())?;
        }
        let Some(w) = workload() else {
            self.end(kind, tree);
            return Err("the workload did not start".into());
        };
        let w = &w;
        let started = self
            .spawn(kind, tree, w.pid())
            .and_then(|mut f| f.handshake(w, Duration::from_secs(60)).map(|()| f));
        let f = match started {
            Ok(f) => f,
            Err(e) => {
                self.end(kind, tree);
                return Err(e);
            }
        };
        let counts = std::sync::Arc::clone(&f.counts);
        let (ev0, sen0) = (
            counts.events.load(Ordering::SeqCst),
            counts.sentinels.load(Ordering::SeqCst),
        );
        let lost0 = counts.lost.load(Ordering::SeqCst);
        // auditd logs the sentinel's SYSCALL record as an event too.
        let sentinel_is_event = kind == PeerKind::Auditd;
        let cpu0 = self.consumer_cpu(kind, &f);
        let run = run::measure(w, pace, |finished, ops| {
            let progress = || {
                let ev = counts.events.load(Ordering::SeqCst) - ev0;
                let sen = counts.sentinels.load(Ordering::SeqCst) - sen0;
                if sentinel_is_event {
                    ev.saturating_sub(sen)
                } else {
                    ev
                }
            };
            let delivered = run::drain(finished, ops, Duration::from_secs(2), progress);
            Consumed {
                delivered,
                lost: None,
            }
        });
        let cpu1 = self.consumer_cpu(kind, &f);
        let mut notes = Vec::new();
        let signal = if kind == PeerKind::Bpftrace {
            libc::SIGINT
        } else {
            libc::SIGTERM
        };
        let stderr = f.stop(signal);
        let mut r = match run {
            Ok(r) => r,
            Err(e) => {
                self.end(kind, tree);
                return Err(format!("the workload failed: {e}"));
            }
        };
        // Their processes, not this one (whose reader threads only count).
        r.consumer_cpu_ns = Some(cpu1.saturating_sub(cpu0));
        (r.heap_bytes, r.heap_allocs) = (0, 0);
        // bpftrace's RLIMIT_MEMLOCK complaint is harmless (memcg accounting).
        let error = |l: &&str| l.contains("ERROR") && !l.contains("RLIMIT_MEMLOCK");
        if let Some(line) = stderr.lines().find(error) {
            notes.push(line.trim().to_string());
        }
        let reported_lost = counts.lost.load(Ordering::SeqCst) - lost0;
        match kind {
            PeerKind::Auditd => r.lost = self.end(kind, tree),
            PeerKind::Bpftrace => r.lost = Some(reported_lost),
            PeerKind::Inotifywait if reported_lost > 0 => {
                notes.push(format!(
                    "the inotify queue overflowed ({reported_lost} notices)"
                ));
            }
            _ => {}
        }
        if r.open_errors > 0 {
            notes.push(format!("{} opens failed", r.open_errors));
        }
        Ok((r, (!notes.is_empty()).then(|| notes.join("; "))))
    }

    fn end(&mut self, kind: PeerKind, tree: &Tree) -> Option<u64> {
        match (kind, self.audit.as_mut()) {
            (PeerKind::Auditd, Some(a)) => a.end(&tree.root.to_string_lossy()),
            _ => None,
        }
    }
}

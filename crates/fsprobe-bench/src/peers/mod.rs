//! Peer tools run on the same workload: inotifywait, fatrace (fanotify),
//! auditd, bpftrace, opensnoop (bpftrace's opensnoop.bt) and `perf trace`.
//! Each is optional: when one cannot run here, the reason is recorded
//! instead of a number.
mod audit;
pub(crate) mod follow;
mod spawn;

use std::process::Command;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;

use crate::kernel::progs::Progs;
use crate::run::{self, Consumed, RunResult, WarmPass};
use crate::tree::Tree;
use crate::workload::{Pace, Workload};
use audit::Audit;
use follow::Follower;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
pub enum PeerKind {
    Inotifywait,
    Fatrace,
    Auditd,
    Bpftrace,
    Opensnoop,
    PerfTrace,
}

impl PeerKind {
    pub const ALL: [PeerKind; 6] = [
        PeerKind::Inotifywait,
        PeerKind::Fatrace,
        PeerKind::Auditd,
        PeerKind::Bpftrace,
        PeerKind::Opensnoop,
        PeerKind::PerfTrace,
    ];

    /// How it is run, for the tables.
    pub fn label(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotifywait -r -m -e open",
            PeerKind::Fatrace => "fatrace -c -f O (fanotify)",
            PeerKind::Auditd => "auditctl -w DIR -p rwxa + auditd",
            PeerKind::Bpftrace => "bpftrace sys_enter_openat /pid/ printf",
            PeerKind::Opensnoop => "opensnoop.bt (bpftrace, every process)",
            PeerKind::PerfTrace => "perf trace -e openat -p PID",
        }
    }

    fn binary(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotifywait",
            PeerKind::Fatrace => "fatrace",
            PeerKind::Auditd => "auditctl",
            PeerKind::Bpftrace | PeerKind::Opensnoop => "bpftrace",
            PeerKind::PerfTrace => "perf",
        }
    }

    fn package(self) -> &'static str {
        match self {
            PeerKind::Inotifywait => "inotify-tools",
            PeerKind::Fatrace => "fatrace",
            PeerKind::Auditd => "auditd",
            PeerKind::Bpftrace | PeerKind::Opensnoop => "bpftrace",
            PeerKind::PerfTrace => "linux-perf",
        }
    }

    /// Signal that makes it stop (bpftrace and perf print their last
    /// lines on SIGINT).
    fn stop_signal(self) -> i32 {
        match self {
            PeerKind::Bpftrace | PeerKind::Opensnoop | PeerKind::PerfTrace => libc::SIGINT,
            _ => libc::SIGTERM,
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
            let mut packages: Vec<&str> = missing.iter().map(|p| p.package()).collect();
            packages.dedup();
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
        if wanted.contains(&PeerKind::Opensnoop)
            && !missing.contains(&PeerKind::Opensnoop)
            && spawn::opensnoop_script().is_none()
        {
            missing.push(PeerKind::Opensnoop);
            let why = "bpftrace is installed but not opensnoop.bt (looked on the PATH and in /usr/share/bpftrace/tools)";
            unavailable.push((PeerKind::Opensnoop, why.into()));
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
    fn spawn(&self, kind: PeerKind, tree: &Tree, pid: u32) -> Result<Follower, String> {
        if kind == PeerKind::Auditd {
            let audit = self.audit.as_ref().ok_or("auditd is not set up")?;
            let mut cmd = Command::new("tail");
            cmd.args(["-F", "-n", "0", &audit.log]);
            return Follower::spawn(cmd, Audit::classify(pid));
        }
        spawn::follow(kind, tree, pid, &self.comm)
    }

    fn consumer_cpu(&self, kind: PeerKind, f: &Follower) -> u64 {
        let pids = match (kind, &self.audit) {
            (PeerKind::Auditd, Some(a)) => a.consumers.clone(),
            _ => vec![f.child.id()],
        };
        pids.into_iter().filter_map(crate::cpu::pid_cpu_ns).sum()
    }

    /// One run of the workload with `kind` listening. The note says what
    /// the peer reported besides its events (overflows, losses). The error
    /// is the row's status: "not runnable: …" when the tool did not start
    /// or never reported the handshake, "failed: …" otherwise.
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
            a.begin(&tree.root.to_string_lossy())
                .map_err(|e| format!("not runnable: {e}"))?;
        }
        let Some(w) = workload() else {
            self.end(kind, tree);
            return Err("failed: the workload did not start".into());
        };
        let w = &w;
        let started = self
            .spawn(kind, tree, w.pid())
            .and_then(|mut f| f.handshake(w, Duration::from_secs(60)).map(|()| f));
        let f = match started {
            Ok(f) => f,
            Err(e) => {
                self.end(kind, tree);
                return Err(format!("not runnable: {e}"));
            }
        };
        // Attached by now (it reported the sentinel).
        let progs = Progs::of(Some(f.child.id()));
        let counts = std::sync::Arc::clone(&f.counts);
        let (ev0, sen0) = (
            counts.events.load(Ordering::SeqCst),
            counts.sentinels.load(Ordering::SeqCst),
        );
        let lost0 = counts.lost.load(Ordering::SeqCst);
        // auditd logs the sentinel's SYSCALL record as an event too.
        let sentinel_is_event = kind == PeerKind::Auditd;
        let cpu0 = self.consumer_cpu(kind, &f);
        let progress = || {
            let ev = counts.events.load(Ordering::SeqCst) - ev0;
            let sen = counts.sentinels.load(Ordering::SeqCst) - sen0;
            if sentinel_is_event {
                ev.saturating_sub(sen)
            } else {
                ev
            }
        };
        let run = run::measure(&[w], pace, &progs, |finished, ops| {
            let delivered = run::drain(finished, ops, Duration::from_secs(2), progress);
            Consumed {
                delivered,
                lost: None,
            }
        });
        let cpu1 = self.consumer_cpu(kind, &f);
        // A tool with BPF programs runs the operations once more, with
        // BPF statistics on (kernel/stats.rs): its in-kernel time. The
        // timed run above ran without them.
        let mut stats_pass = None;
        let mut lost_in_stats_pass = 0;
        if let (Ok(_), false) = (&run, progs.is_empty()) {
            let before = progress();
            let lost_before = counts.lost.load(Ordering::SeqCst);
            let _on = crate::kernel::stats::on();
            stats_pass = run::measure(&[w], pace, &progs, |finished, ops| {
                let seen = run::drain(finished, before + ops, Duration::from_secs(2), progress);
                Consumed {
                    delivered: seen - before,
                    lost: None,
                }
            })
            .ok();
            lost_in_stats_pass = counts.lost.load(Ordering::SeqCst) - lost_before;
        }
        let rss = crate::procfs::rss(Some(f.child.id())).map(|r| r.total);
        let map_bytes = match progs.is_empty() {
            true => None,
            false => Some(crate::kernel::maps::memlock_total(Some(f.child.id()))),
        };
        drop(progs);
        let mut notes = Vec::new();
        let stderr = f.stop(kind.stop_signal());
        let mut r = match run {
            Ok(r) => r,
            Err(e) => {
                self.end(kind, tree);
                return Err(format!("failed: the workload failed: {e}"));
            }
        };
        // Their processes, not this one (whose reader threads only count).
        r.consumer_cpu_ns = Some(cpu1.saturating_sub(cpu0));
        (r.rss_bytes, r.kernel_map_bytes) = (rss, map_bytes);
        (r.heap_bytes, r.heap_allocs) = (0, 0);
        // bpftrace's RLIMIT_MEMLOCK complaint is harmless (memcg accounting).
        let error = |l: &&str| l.contains("ERROR") && !l.contains("RLIMIT_MEMLOCK");
        if let Some(line) = stderr.lines().find(error) {
            notes.push(line.trim().to_string());
        }
        // Some tools hold the last events until more arrive (perf trace
        // waits for a wakeup): they come out when it stops.
        let stats_delivered = stats_pass.as_ref().map_or(0, |p| p.delivered);
        if let Some(p) = stats_pass {
            r.bpf = p.bpf;
            r.stats_pass = Some(WarmPass {
                ns_per_op: p.ns_per_op,
                ops: p.ops,
                delivered: p.delivered,
                ..WarmPass::default()
            });
        }
        let late = progress().saturating_sub(r.delivered + stats_delivered);
        if late > 0 {
            r.delivered += late;
            notes.push(format!("{late} event(s) came out only when it was stopped"));
        }
        let reported_lost = counts.lost.load(Ordering::SeqCst) - lost0 - lost_in_stats_pass;
        match kind {
            PeerKind::Auditd => r.lost = self.end(kind, tree),
            PeerKind::Bpftrace | PeerKind::Opensnoop | PeerKind::PerfTrace => {
                r.lost = Some(reported_lost)
            }
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

//! auditd as a peer: `auditctl -w <tree> -p rwxa`, with auditd writing the
//! records to its log and `tail -F` following the log (rotations included).
//!
//! Enabling audit once makes the kernel give every task created later a
//! syscall-audit context (slow syscall entry), which would tax every later
//! baseline. Between audit runs the bench therefore adds `-a never,task`
//! (new tasks get no context) and disables audit.
//!
//! At the end the previous state is restored, as read before anything was
//! installed or started: the enabled flag, the backlog limit and the rule
//! list (every rule the bench added is deleted, `-a never,task` included),
//! and auditd is stopped if the bench (or the package install) started it.
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const KEY: &str = "fsprobe-bench";
/// Debian's shipped audit.rules sets this backlog; the kernel default is 64.
const BACKLOG: &str = "8192";

fn auditctl(args: &[&str]) -> Result<String, String> {
    let out = Command::new("auditctl")
        .args(args)
        .output()
        .map_err(|e| format!("auditctl: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "auditctl {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

/// One field of `auditctl -s`.
fn status(field: &str) -> Result<u64, String> {
    let text = auditctl(&["-s"])?;
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.trim().parse().ok())
        .ok_or_else(|| format!("no '{field}' in auditctl -s"))
}

/// The audit state before the bench touched anything.
#[derive(Debug, Clone)]
pub struct Prior {
    /// auditd (the package) was installed.
    installed: bool,
    /// 0, 1 or 2 (locked); None when auditctl was missing.
    enabled: Option<u64>,
    backlog: Option<u64>,
    /// `auditctl -l`, a rule a line.
    rules: Vec<String>,
    /// The registered auditd's pid (0: none).
    daemon_pid: u64,
}

fn rules() -> Vec<String> {
    auditctl(&["-l"])
        .unwrap_or_default()
        .lines()
        .map(str::trim)
        .filter(|l| l.starts_with('-'))
        .map(String::from)
        .collect()
}

impl Prior {
    /// Reads the state; call it before installing or starting anything.
    pub fn snapshot() -> Prior {
        if !super::installed("auditctl") {
            // The kernel's own default, unless the command line enabled it.
            let cmdline = std::fs::read_to_string("/proc/cmdline").unwrap_or_default();
            let on = cmdline.split_whitespace().any(|w| w == "audit=1");
            return Prior {
                installed: false,
                enabled: Some(u64::from(on)),
                backlog: None,
                rules: Vec::new(),
                daemon_pid: 0,
            };
        }
        Prior {
            installed: true,
            enabled: status("enabled").ok(),
            backlog: status("backlog_limit").ok(),
            rules: rules(),
            daemon_pid: status("pid").unwrap_or(0),
        }
    }

    /// Puts back the rules, the backlog and the enabled flag.
    fn restore(&self, backlog_fallback: u64) {
        for rule in rules() {
            if self.rules.contains(&rule) {
                continue;
            }
            let mut args: Vec<&str> = rule.split_whitespace().collect();
            match args.first().copied() {
                Some("-a") => args[0] = "-d",
                Some("-w") => args[0] = "-W",
                _ => continue,
            }
            if let Err(e) = auditctl(&args) {
                eprintln!("fsprobe-bench: restoring the audit rules: {e}");
            }
        }
        let now = rules();
        for rule in self.rules.iter().filter(|r| !now.contains(r)) {
            let args: Vec<&str> = rule.split_whitespace().collect();
            if let Err(e) = auditctl(&args) {
                eprintln!("fsprobe-bench: restoring the audit rules: {e}");
            }
        }
        let backlog = self.backlog.unwrap_or(backlog_fallback).to_string();
        let _ = auditctl(&["-b", &backlog]);
        let enabled = self.enabled.filter(|&e| e < 2);
        if let Some(Err(err)) = enabled.map(|e| auditctl(&["-e", &e.to_string()])) {
            eprintln!("fsprobe-bench: restoring the audit enabled flag: {err}");
        }
    }
}

/// auditd running (ours or the system's), and what to restore.
pub struct Audit {
    daemon: Option<Child>,
    prior: Prior,
    old_backlog: u64,
    pub log: String,
    /// auditd's pid and the kauditd kernel thread's, for their CPU time.
    pub consumers: Vec<u32>,
    lost_before: u64,
}

fn log_path() -> String {
    std::fs::read_to_string("/etc/audit/auditd.conf")
        .unwrap_or_default()
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once('=')?;
            (k.trim() == "log_file").then(|| v.trim().to_string())
        })
        .unwrap_or_else(|| "/var/log/audit/audit.log".into())
}

fn kauditd() -> Option<u32> {
    std::fs::read_dir("/proc").ok()?.flatten().find_map(|e| {
        let pid: u32 = e.file_name().to_str()?.parse().ok()?;
        let comm = std::fs::read_to_string(e.path().join("comm")).ok()?;
        (comm.trim() == "kauditd").then_some(pid)
    })
}

impl Audit {
    /// `prior` was read before anything was installed.
    pub fn setup(prior: Prior) -> Result<Audit, String> {
        let old_backlog = status("backlog_limit")?;
        let mut daemon = None;
        if status("pid")? != 0 && !prior.installed {
            // Installing the package started a daemon (and it loaded the
            // shipped rules and enabled audit): that is not the machine's
            // previous state. Stop it; ours is run in the foreground.
            stop_registered_daemon();
        }
        if status("pid")? == 0 {
            // No init system here starts it: run it in the foreground,
            // leaving the enabled flag to us.
            let child = Command::new("auditd")
                .args(["-n", "-s", "nochange"])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("cannot start auditd: {e}"))?;
            daemon = Some(child);
            let t0 = Instant::now();
            while status("pid")? == 0 {
                if t0.elapsed() > Duration::from_secs(10) {
                    return Err("auditd did not register with the kernel".into());
                }
                std::thread::sleep(Duration::from_millis(50));
            }
        }
        let daemon_pid = status("pid")? as u32;
        auditctl(&["-b", BACKLOG])?;
        Ok(Audit {
            daemon,
            prior,
            old_backlog,
            log: log_path(),
            consumers: std::iter::once(daemon_pid).chain(kauditd()).collect(),
            lost_before: 0,
        })
    }

    /// Enables audit and watches `root`; processes forked from now on are
    /// audited.
    pub fn begin(&mut self, root: &str) -> Result<(), String> {
        let _ = auditctl(&["-d", "never,task"]);
        auditctl(&["-e", "1"])?;
        auditctl(&["-w", root, "-p", "rwxa", "-k", KEY])?;
        self.lost_before = status("lost")?;
        Ok(())
    }

    /// Removes the watch, stops auditing new tasks; returns the kernel's
    /// lost count over the run.
    pub fn end(&mut self, root: &str) -> Option<u64> {
        let lost = status("lost").ok().map(|l| l - self.lost_before);
        let _ = auditctl(&["-W", root, "-p", "rwxa", "-k", KEY]);
        let _ = auditctl(&["-a", "never,task"]);
        let _ = auditctl(&["-e", "0"]);
        lost
    }

    /// Which log lines are events of `pid` and which the sentinel's.
    pub fn classify(pid: u32) -> impl Fn(&str) -> super::follow::Class + Send + Sync + 'static {
        use super::follow::Class;
        let key = format!("key=\"{KEY}\"");
        let pid = format!(" pid={pid} ");
        move |line: &str| {
            if line.starts_with("type=SYSCALL") && line.contains(&key) && line.contains(&pid) {
                Class::Event
            } else if line.starts_with("type=PATH")
                && line.contains(&format!("name=\"{}\"", crate::tree::SENTINEL))
            {
                Class::Sentinel
            } else {
                Class::Other
            }
        }
    }
}

/// SIGTERM to the auditd registered with the kernel, and a wait (10 s at
/// most) until it has unregistered.
fn stop_registered_daemon() {
    let Ok(pid) = status("pid") else { return };
    if pid == 0 {
        return;
    }
    // SAFETY: kill has no memory effects.
    unsafe { libc::kill(pid as i32, libc::SIGTERM) };
    let t0 = Instant::now();
    while status("pid").is_ok_and(|p| p != 0) && t0.elapsed() < Duration::from_secs(10) {
        std::thread::sleep(Duration::from_millis(50));
    }
}

impl Drop for Audit {
    fn drop(&mut self) {
        if let Some(mut d) = self.daemon.take() {
            // SAFETY: kill has no memory effects; the pid is our live child.
            unsafe { libc::kill(d.id() as i32, libc::SIGTERM) };
            let _ = d.wait();
        } else if self.prior.daemon_pid == 0 {
            // Not running before, not ours: the package install started it.
            stop_registered_daemon();
        }
        self.prior.restore(self.old_backlog);
    }
}

//! How each peer tool is started and how its output lines are read:
//! which line is one of the workload's events, the handshake's sentinel, or
//! a loss notice.
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use super::PeerKind;
use super::follow::{Class, Follower};
use crate::tree::{SENTINEL, Tree};

/// Where bpftrace's opensnoop.bt is: Debian installs the tools in /usr/sbin
/// (on the PATH), upstream in /usr/share/bpftrace/tools.
pub fn opensnoop_script() -> Option<PathBuf> {
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("opensnoop.bt"))
            .find(|p| p.is_file())
    });
    let known = [
        "/usr/share/bpftrace/tools/opensnoop.bt",
        "/usr/sbin/opensnoop.bt",
    ];
    on_path.or_else(|| known.iter().map(PathBuf::from).find(|p| p.is_file()))
}

/// Starts `kind` (any but auditd, whose log follower needs its setup)
/// listening to the workload process `pid`; `comm` is the bench's name,
/// which fatrace leaves out.
pub fn follow(kind: PeerKind, tree: &Tree, pid: u32, comm: &str) -> Result<Follower, String> {
    let root = tree.root.to_string_lossy().into_owned();
    match kind {
        PeerKind::Inotifywait => inotifywait(&root),
        PeerKind::Fatrace => fatrace(tree, pid, comm),
        PeerKind::Bpftrace => bpftrace(&root, pid),
        PeerKind::Opensnoop => opensnoop(&root, pid),
        PeerKind::PerfTrace => perf_trace(pid),
        PeerKind::Auditd => Err("auditd is followed through its log".into()),
    }
}

fn ends_sentinel(l: &str) -> bool {
    l.ends_with(SENTINEL)
}

/// bpftrace's "Lost N events".
fn bpftrace_lost(l: &str) -> Option<Class> {
    let n = l.strip_prefix("Lost ")?.split_whitespace().next();
    Some(Class::Lost(n.and_then(|n| n.parse().ok()).unwrap_or(0)))
}

/// bpftrace's str() keeps 64 bytes: paths are matched on the root's start.
fn root_prefix(root: &str) -> String {
    root.chars().take(48).collect()
}

fn inotifywait(root: &str) -> Result<Follower, String> {
    let mut cmd = Command::new("inotifywait");
    cmd.args(["-r", "-m", "-e", "open", "--format", "%e %w%f", root]);
    let mut f = Follower::spawn(cmd, |l| {
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

fn fatrace(tree: &Tree, pid: u32, comm: &str) -> Result<Follower, String> {
    let mut cmd = Command::new("fatrace");
    cmd.args(["-c", "-f", "O", "-C", comm])
        .current_dir(&tree.root);
    let mark = format!("({pid}): ");
    Follower::spawn(cmd, move |l| match (l.contains(&mark), ends_sentinel(l)) {
        (true, true) => Class::Sentinel,
        (true, false) => Class::Event,
        _ => Class::Other,
    })
}

fn bpftrace(root: &str, pid: u32) -> Result<Follower, String> {
    let program = format!(
        "tracepoint:syscalls:sys_enter_openat /pid == {pid}/ {{ printf(\"%s\\n\", str(args->filename)); }}"
    );
    let mut cmd = Command::new("bpftrace");
    cmd.args(["-e", &program]);
    let prefix = root_prefix(root);
    Follower::spawn(cmd, move |l| {
        if let Some(lost) = bpftrace_lost(l) {
            lost
        } else if ends_sentinel(l) {
            Class::Sentinel
        } else if l.starts_with(&prefix) {
            Class::Event
        } else {
            Class::Other
        }
    })
}

/// opensnoop.bt prints "PID COMM FD ERR PATH" for every process's opens.
fn opensnoop(root: &str, pid: u32) -> Result<Follower, String> {
    let script = opensnoop_script().ok_or("opensnoop.bt is gone")?;
    let mut cmd = Command::new("bpftrace");
    cmd.arg(script);
    let (pid, prefix) = (pid.to_string(), root_prefix(root));
    Follower::spawn(cmd, move |l| opensnoop_line(&pid, &prefix, l))
}

fn opensnoop_line(pid: &str, prefix: &str, l: &str) -> Class {
    if let Some(lost) = bpftrace_lost(l) {
        lost
    } else if l.split_whitespace().next() != Some(pid) {
        Class::Other
    } else if ends_sentinel(l) {
        Class::Sentinel
    } else if l.contains(prefix) {
        Class::Event
    } else {
        Class::Other
    }
}

/// `perf trace` writes to stderr.
fn perf_trace(pid: u32) -> Result<Follower, String> {
    let mut cmd = Command::new("perf");
    cmd.args(["trace", "-e", "openat", "-p", &pid.to_string()]);
    Follower::spawn_with(cmd, true, perf_trace_line)
}

/// Without BPF augmentation perf prints the file name as an address: the
/// workload's measured opens are absolute (`dfd: CWD`), the sentinel is
/// opened relative to the tree's fd (`dfd: <n>`).
fn perf_trace_line(l: &str) -> Class {
    if let Some(rest) = l.trim_start().strip_prefix("LOST ") {
        let n = rest.split_whitespace().next().and_then(|n| n.parse().ok());
        Class::Lost(n.unwrap_or(0))
    } else if !l.contains(" openat(") {
        Class::Other
    } else if l.contains(SENTINEL) || !l.contains("openat(dfd: CWD") {
        Class::Sentinel
    } else {
        Class::Event
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn perf_trace_lines_as_debian_12s_perf_prints_them() {
        let event = "   506.443 ( 0.014 ms): openat(dfd: CWD, filename: 0x2f8d0790, flags: RDONLY|CLOEXEC)         = 4";
        let sentinel = "     0.000 ( 0.044 ms): openat(dfd: 3, filename: 0x2fab9ac0, flags: RDONLY|CLOEXEC)           = 4";
        assert_eq!(perf_trace_line(event), Class::Event);
        assert_eq!(perf_trace_line(sentinel), Class::Sentinel);
        assert_eq!(perf_trace_line("LOST 12 events!"), Class::Lost(12));
        assert_eq!(perf_trace_line("Problems reading syscall 1"), Class::Other);
    }

    #[test]
    fn opensnoop_lines_of_the_workload_only() {
        let (pid, root) = ("4242", "/tmp/fsprobe-bench-1/s6");
        let line = |p: &str, path: &str| format!("{p:<6} fsprobe-bench       3   0 {path}");
        let ours = line(pid, "/tmp/fsprobe-bench-1/s6/abc/def");
        assert_eq!(opensnoop_line(pid, root, &ours), Class::Event);
        assert_eq!(
            opensnoop_line(pid, root, &line(pid, "fsb-sentinel")),
            Class::Sentinel
        );
        assert_eq!(
            opensnoop_line(pid, root, &line("42", "/tmp/fsprobe-bench-1/s6/x")),
            Class::Other
        );
        assert_eq!(
            opensnoop_line(pid, root, &line(pid, "/etc/ld.so.cache")),
            Class::Other
        );
        assert_eq!(opensnoop_line(pid, root, "Lost 7 events"), Class::Lost(7));
    }
}

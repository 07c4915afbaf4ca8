//! What the CLI's output costs: the real `fsprobe` binary, as a child
//! process watching the scenario's tree, on the same workload, once with
//! `-f json -o /dev/null` and once with `-f none`. The difference is the
//! JSON sink (formatting and writing); `-f none` is the library and the
//! CLI's loop alone.
//!
//! Its allocations are not counted: the bench's counting allocator only
//! sees this process, and an LD_PRELOAD counter would not work on a static
//! binary.
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::kernel::{self, progs::Progs};
use crate::peers::follow::{Class, Follower};
use crate::run::{self, Consumed, RunResult};
use crate::tree::Tree;
use crate::workload::{Pace, Workload};
use crate::{cpu, procfs};

/// After the workload, the child is done when for this long it neither
/// wrote nor used more than `BUSY_CPU_NS` of CPU in a 50 ms sample (its
/// idle worker polls every 100 ms, for microseconds).
const IDLE: Duration = Duration::from_millis(500);
const BUSY_CPU_NS: u64 = 1_000_000;
/// Longest wait for the drain, after the workload ended.
const DRAIN_MAX: Duration = Duration::from_secs(20);

/// One run of the CLI.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct CliRun {
    /// The command, with the tree as `<tree>`.
    pub command: String,
    /// "ok", "not runnable: …", "accounting: …" or "failed: …".
    pub status: String,
    /// The binary that ran, and its `--version`.
    pub binary: String,
    pub ops: u64,
    /// From the CLI's closing summary line.
    pub events: Option<u64>,
    pub lost: Option<u64>,
    /// The child's CPU (all threads) from the workload's start until it
    /// went idle, per event.
    pub cpu_ns_per_event: Option<f64>,
    /// The user-space share of that CPU (from /proc/PID/stat ticks).
    pub user_share: Option<f64>,
    /// Events over the time from the workload's start to the last output.
    pub events_per_s: Option<f64>,
    /// 1 s over the CPU per event: what one CPU could sustain.
    pub events_per_cpu_s: Option<f64>,
    /// wait4's rusage, over the child's whole life (start-up, the run,
    /// detaching).
    pub rusage_user_s: Option<f64>,
    pub rusage_sys_s: Option<f64>,
    /// Of that, the CPU used before the workload started (loading,
    /// attaching, the seeding walk).
    pub startup_cpu_s: Option<f64>,
    /// From start to its "fsprobe: ready" line.
    pub ready_s: Option<f64>,
    pub rss_bytes: Option<u64>,
    pub kernel_map_bytes: Option<u64>,
    /// The workload's ns/op under it, and its BPF programs' in-kernel ns/op.
    pub ns_per_op: Option<f64>,
    pub bpf_ns_per_op: Option<f64>,
    /// "not measured": the bench's counting allocator sees only its own
    /// process.
    pub allocations: String,
}

/// Where the `fsprobe` binary is: `--fsprobe-bin`, else `$FSPROBE_BIN`,
/// else next to this executable (cargo puts every binary of the workspace
/// in the same target directory).
pub fn locate(flag: Option<&Path>) -> PathBuf {
    if let Some(p) = flag {
        return p.to_path_buf();
    }
    if let Some(p) = std::env::var_os("FSPROBE_BIN") {
        return PathBuf::from(p);
    }
    let exe = std::env::current_exe().unwrap_or_default();
    exe.with_file_name("fsprobe")
}

/// The newest modification time of the files under `dir`.
fn newest(dir: &Path) -> Option<std::time::SystemTime> {
    let mut latest = None;
    for entry in std::fs::read_dir(dir).ok()?.flatten() {
        let path = entry.path();
        let t = match path.is_dir() {
            true => newest(&path),
            false => entry.metadata().and_then(|m| m.modified()).ok(),
        };
        latest = latest.max(t);
    }
    latest
}

fn version(bin: &Path) -> String {
    let out = Command::new(bin).arg("--version").output();
    let text = out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let mut text = text.unwrap_or_default();
    // `cargo run -p fsprobe-bench` does not rebuild the CLI: say so when
    // the library's or the CLI's sources (if they are still where this
    // bench was built from) are newer than the binary.
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let crates = manifest.parent().unwrap_or(manifest);
    let sources = ["fsprobe/src", "fsprobe/bpf", "fsprobe-cli/src"]
        .iter()
        .filter_map(|d| newest(&crates.join(d)))
        .max();
    let built = std::fs::metadata(bin).and_then(|m| m.modified()).ok();
    if let (Some(src), Some(built)) = (sources, built)
        && src > built
    {
        text.push_str("; older than its sources: rebuild it with cargo build --release");
    }
    text
}

/// "fsprobe: N events, M lost (…" → (N, M).
fn summary(stderr: &str) -> Option<(u64, u64)> {
    let line = stderr
        .lines()
        .find(|l| l.contains(" events, ") && l.contains(" lost"))?;
    let rest = line.strip_prefix("fsprobe: ")?;
    let (events, rest) = rest.split_once(" events, ")?;
    let lost = rest.split_whitespace().next()?;
    Some((events.parse().ok()?, lost.parse().ok()?))
}

/// The whole child's CPU time (user + system, from schedstat) and its
/// user/system ticks.
fn cpu_of(pid: u32) -> (u64, (u64, u64)) {
    let ticks = procfs::cpu_ticks(pid).unwrap_or((0, 0));
    (cpu::pid_cpu_ns(pid).unwrap_or(0), ticks)
}

fn seconds(tv: libc::timeval) -> f64 {
    tv.tv_sec as f64 + tv.tv_usec as f64 / 1e6
}

/// One CLI run with `format_args` (e.g. `-f json -o /dev/null`).
pub fn measure(
    bin: &Path,
    format_args: &[&str],
    tree: &Tree,
    seq: &[u32],
    workload_cpu: usize,
    ops: u64,
) -> CliRun {
    let mut out = CliRun {
        command: format!("fsprobe {} <tree>", format_args.join(" ")),
        binary: bin.display().to_string(),
        ops,
        allocations: "not measured".into(),
        ..CliRun::default()
    };
    if !bin.is_file() {
        out.status = format!(
            "not runnable: no fsprobe binary at {} (build it with cargo build --release, or pass --fsprobe-bin)",
            bin.display()
        );
        return out;
    }
    out.binary = format!("{} ({})", bin.display(), version(bin));
    let mut cmd = Command::new(bin);
    cmd.args(format_args).arg(&tree.root);
    let t0 = Instant::now();
    let mut child = match Follower::spawn(cmd, |_| Class::Other) {
        Ok(c) => c,
        Err(e) => {
            out.status = format!("not runnable: {e}");
            return out;
        }
    };
    if let Err(e) = child.wait_stderr("fsprobe: ready", Duration::from_secs(300)) {
        out.status = format!("not runnable: {e}");
        child.stop(libc::SIGTERM);
        return out;
    }
    out.ready_s = child
        .stderr_time("fsprobe: ready")
        .map(|t| (t - t0).as_secs_f64());
    let pid = child.child.id();
    let ran = run_workload(pid, tree, seq, workload_cpu, ops, &mut out);
    let (stderr, usage) = child.stop_with_usage(libc::SIGINT);
    if let Err(e) = ran {
        out.status = format!("failed: {e}");
        return out;
    }
    if let Some(u) = usage {
        out.rusage_user_s = Some(seconds(u.ru_utime));
        out.rusage_sys_s = Some(seconds(u.ru_stime));
    }
    match summary(&stderr) {
        Some((events, lost)) => {
            (out.events, out.lost) = (Some(events), Some(lost));
            out.status = match events + lost == ops {
                true => "ok".into(),
                false => format!("accounting: {events} events + {lost} lost != {ops} operations"),
            };
        }
        None => out.status = format!("failed: no summary line in its stderr: {}", stderr.trim()),
    }
    out
}

/// Runs the workload under the child `pid` and fills the run's figures.
fn run_workload(
    pid: u32,
    tree: &Tree,
    seq: &[u32],
    workload_cpu: usize,
    ops: u64,
    out: &mut CliRun,
) -> std::io::Result<()> {
    let w = Workload::spawn(tree, seq, workload_cpu)?;
    let progs = Progs::of(Some(pid));
    let (cpu0, ticks0) = cpu_of(pid);
    out.startup_cpu_s = Some(cpu0 as f64 / 1e9);
    let t0 = Instant::now();
    let mut last = (cpu0, ticks0, t0);
    let result: RunResult = run::measure(&[&w], Pace::FlatOut { ops }, &progs, |finished, _| {
        last = drain(pid, finished);
        Consumed {
            delivered: 0,
            lost: None,
        }
    })?;
    let (cpu1, ticks1, busy_until) = last;
    out.rss_bytes = procfs::rss(Some(pid)).map(|r| r.total);
    out.kernel_map_bytes = Some(kernel::maps::memlock_total(Some(pid)));
    out.ns_per_op = Some(result.ns_per_op);
    let bpf = kernel::progs::figures(&result.bpf, result.ops);
    out.bpf_ns_per_op = (!bpf.is_empty()).then(|| bpf.iter().map(|p| p.ns_per_op).sum());
    // The events are only known from the summary; per event is per
    // operation here (the accounting check says whether they agree).
    let per = ops.max(1) as f64;
    let cpu = cpu1.saturating_sub(cpu0) as f64;
    out.cpu_ns_per_event = Some(cpu / per);
    out.events_per_cpu_s = (cpu > 0.0).then(|| per * 1e9 / cpu);
    let (user, sys) = (ticks1.0 - ticks0.0, ticks1.1 - ticks0.1);
    out.user_share = (user + sys > 0).then(|| user as f64 / (user + sys) as f64);
    out.events_per_s = Some(per / (busy_until - t0).as_secs_f64().max(1e-9));
    Ok(())
}

/// Waits until the workload finished and the child went idle; returns its
/// CPU and ticks then, and when it last did something (50 ms resolution).
fn drain(pid: u32, finished: &AtomicBool) -> (u64, (u64, u64), Instant) {
    let sample = || (cpu_of(pid), procfs::written_bytes(pid).unwrap_or(0));
    let mut prev = sample();
    let mut busy_until = Instant::now();
    let mut ended: Option<Instant> = None;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let now = sample();
        let busy = now.1 != prev.1 || now.0.0.saturating_sub(prev.0.0) > BUSY_CPU_NS;
        if busy {
            busy_until = Instant::now();
        }
        prev = now;
        if finished.load(Ordering::SeqCst) {
            let since = *ended.get_or_insert_with(Instant::now);
            if busy_until.elapsed() > IDLE || since.elapsed() > DRAIN_MAX {
                let ((cpu, ticks), _) = now;
                return (cpu, ticks, busy_until);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_cli_summary_line() {
        let text = "fsprobe: ready (backend: tracepoint, watched inodes: 3, syscalls hooked: 20)\nfsprobe: 120000 events, 7 lost (buffer full: 7, in flight: 0, undecodable: 0), watch limit hits: 0, syscalls filtered out by process: 0\n";
        assert_eq!(summary(text), Some((120000, 7)));
        assert_eq!(summary("fsprobe: ready\n"), None);
    }
}

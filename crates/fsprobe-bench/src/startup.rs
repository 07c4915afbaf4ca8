//! Time to ready and memory with a large tree watched (scenario 4: 40,000
//! directories, 80,000 files, so 120,000 watched inodes), with the dentry
//! and inode caches warm and cold, next to `inotifywait -r` setting up its
//! watches on the same tree and the CLI binary reaching "ready".
//!
//! Cold means `sync` then `echo 3 > /proc/sys/vm/drop_caches` (which drops
//! the whole machine's clean caches); whether it worked is checked on the
//! kernel's dentry count, which must fall by at least 90 % of the tree's
//! inodes.
//!
//! Starts run on every CPU, as a user's would: the rest of the benchmark
//! pins itself and what it starts to the consumer CPU, which would leave
//! fsprobe's two loading threads and its walk's threads one CPU between
//! them.
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::kernel::maps::{self, MapInfo};
use crate::peers::follow::{Class, Follower};
use crate::probe_run::{self, Watch};
use crate::procfs;
use crate::stats::Spread;
use crate::tree::Tree;

/// One listener with warm or cold caches.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StartupRow {
    pub listener: String,
    /// "warm" or "cold".
    pub caches: String,
    /// "ok", "not runnable: …", "failed: …"; with cold caches, a note when
    /// the drop could not be verified.
    pub status: String,
    /// Seconds from starting it to ready: `Probe::start` returning, the
    /// CLI's "fsprobe: ready", inotifywait's "Watches established".
    pub ready_s: Option<Spread>,
    pub runs: Vec<f64>,
    /// Inodes in the probe's filter.
    pub watched: Option<u64>,
    /// `memlock` of its BPF maps, once ready.
    pub kernel_map_bytes: Option<u64>,
    /// Its process's resident size once ready, and (library in this
    /// process) before it started.
    pub rss_bytes: Option<u64>,
    pub rss_before_bytes: Option<u64>,
    /// Of the resident size once ready, the mappings of BPF maps (the ring
    /// buffer, the watch hints): counted in `kernel_map_bytes` too.
    #[serde(default)]
    pub rss_bpf_map_bytes: Option<u64>,
    /// Cold: dentries the kernel dropped before each start.
    pub dentries_dropped: Vec<u64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Startup {
    pub scenario: u8,
    pub tree_inodes: u64,
    pub rows: Vec<StartupRow>,
    /// The probe's maps once ready (warm), with their entries.
    pub maps: Vec<MapInfo>,
}

/// How many starts of each kind.
#[derive(Debug, Clone, Copy)]
pub struct Counts {
    pub warm: usize,
    pub cold: usize,
}

/// Drops the clean caches; the dentries that went.
fn drop_caches() -> Result<u64, String> {
    let before = procfs::dentries().unwrap_or(0);
    // SAFETY: sync has no preconditions.
    unsafe { libc::sync() };
    std::fs::write("/proc/sys/vm/drop_caches", "3")
        .map_err(|e| format!("cannot drop the caches: {e}"))?;
    Ok(before.saturating_sub(procfs::dentries().unwrap_or(before)))
}

/// One start of `listener` per run, each after making the caches `caches`.
fn row(
    listener: &str,
    caches: &str,
    runs: usize,
    tree_inodes: u64,
    mut start: impl FnMut(&mut StartupRow) -> Result<f64, String>,
) -> StartupRow {
    let mut row = StartupRow {
        listener: listener.into(),
        caches: caches.into(),
        status: "ok".into(),
        ..StartupRow::default()
    };
    for _ in 0..runs {
        if crate::stop::requested() {
            break;
        }
        if caches == "cold" {
            match drop_caches() {
                Ok(n) => row.dentries_dropped.push(n),
                Err(e) => {
                    row.status = format!("not runnable: {e}");
                    return row;
                }
            }
        }
        match start(&mut row) {
            Ok(s) => row.runs.push(s),
            Err(e) => {
                row.status = e;
                break;
            }
        }
    }
    row.ready_s = Spread::of(&row.runs);
    let weak = row
        .dentries_dropped
        .iter()
        .filter(|&&n| n < tree_inodes * 9 / 10);
    if let Some(n) = weak.min() {
        row.status = format!(
            "cold not verified: as few as {n} dentries dropped for a tree of {tree_inodes} inodes"
        );
    }
    row
}

/// The library in this process: `Probe::start` to its return.
fn library(tree: &Tree, row: &mut StartupRow, maps_out: &mut Vec<MapInfo>) -> Result<f64, String> {
    let before = procfs::rss(None).map(|r| r.total);
    let t0 = Instant::now();
    let probe = probe_run::start(
        tree,
        Watch::Tree,
        fsprobe::ResolutionMode::default(),
        fsprobe::Transport::RingBuffer,
        crate::plan::DEFAULT_PAGES,
    )
    .map_err(|e| format!("failed: {e}"))?;
    let ready = t0.elapsed().as_secs_f64();
    row.watched = Some(probe.ready().watched_inodes);
    row.rss_before_bytes = before;
    row.rss_bytes = procfs::rss(None).map(|r| r.total);
    row.rss_bpf_map_bytes = procfs::bpf_map_resident(None);
    row.kernel_map_bytes = Some(maps::memlock_total(None));
    if maps_out.is_empty() && row.caches == "warm" {
        *maps_out = maps::of(None, true);
    }
    probe.join().map_err(|e| format!("failed: stopping: {e}"))?;
    Ok(ready)
}

/// A child process, from its start until `marker` on its stderr.
fn child_until(cmd: Command, marker: &str, row: &mut StartupRow) -> Result<f64, String> {
    let t0 = Instant::now();
    let mut child =
        Follower::spawn(cmd, |_| Class::Other).map_err(|e| format!("not runnable: {e}"))?;
    let waited = child.wait_stderr(marker, Duration::from_secs(600));
    let at = child.stderr_time(marker);
    let pid = child.child.id();
    row.rss_bytes = procfs::rss(Some(pid)).map(|r| r.total);
    row.rss_bpf_map_bytes = procfs::bpf_map_resident(Some(pid));
    let map_bytes = maps::memlock_total(Some(pid));
    row.kernel_map_bytes = (map_bytes > 0).then_some(map_bytes);
    child.stop(libc::SIGINT);
    waited.map_err(|e| format!("not runnable: {e}"))?;
    Ok(at.map_or(0.0, |t| (t - t0).as_secs_f64()))
}

/// Every row: the library, the CLI (if its binary exists) and inotifywait
/// (if installed), warm then cold.
pub fn measure(
    scenario: &crate::tree::Scenario,
    tree: &Tree,
    counts: Counts,
    cli: &Path,
) -> Startup {
    // The directories and files, the root and the sentinel.
    let tree_inodes = (scenario.dirs() + scenario.files + 2) as u64;
    let scenario = scenario.id;
    let mut out = Startup {
        scenario,
        tree_inodes,
        ..Startup::default()
    };
    let root = tree.root.to_string_lossy().into_owned();
    let _all_cpus = crate::cpu::AllCpus::widen()
        .map_err(|e| eprintln!("fsprobe-bench: starts stay on one CPU: {e}"))
        .ok();
    for (caches, runs) in [("warm", counts.warm), ("cold", counts.cold)] {
        say!("  time to ready, {caches} caches");
        let maps = &mut out.maps;
        let lib = "fsprobe library (Probe::start returns)";
        out.rows.push(row(lib, caches, runs, tree_inodes, |r| {
            library(tree, r, maps)
        }));
        let cli_row = "fsprobe CLI -f none (until \"fsprobe: ready\")";
        out.rows.push(match cli.is_file() {
            true => row(cli_row, caches, runs, tree_inodes, |r| {
                let mut cmd = Command::new(cli);
                cmd.args(["-f", "none", &root]);
                child_until(cmd, "fsprobe: ready", r)
            }),
            false => StartupRow {
                listener: cli_row.into(),
                caches: caches.into(),
                status: format!("not runnable: no fsprobe binary at {}", cli.display()),
                ..StartupRow::default()
            },
        });
        let inotify = "inotifywait -r (until \"Watches established\")";
        out.rows.push(match crate::peers::installed("inotifywait") {
            true => row(inotify, caches, runs, tree_inodes, |r| {
                let mut cmd = Command::new("inotifywait");
                cmd.args(["-r", "-m", "-e", "open", &root]);
                child_until(cmd, "Watches established", r)
            }),
            false => StartupRow {
                listener: inotify.into(),
                caches: caches.into(),
                status: "not runnable: inotify-tools is not installed".into(),
                ..StartupRow::default()
            },
        });
    }
    out
}

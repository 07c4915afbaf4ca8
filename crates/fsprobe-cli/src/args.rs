//! Command-line flags, named as in the seed (FSProbe) so its users feel at home.
use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};
use fsprobe::{BackendKind, EventKind, ResolutionMode, Transport};

/// File-system event notifier based on eBPF: VFS events with paths
/// resolved from kernel dentries.
#[derive(Debug, Parser)]
#[command(
    name = "fsprobe",
    version,
    about,
    after_help = "Example:\n  sudo fsprobe /tmp"
)]
pub struct Args {
    /// Files and directories to watch.
    pub paths: Vec<PathBuf>,

    /// User space channel size.
    #[arg(short = 's', long = "chan-size", default_value_t = 1000)]
    pub chan_size: usize,

    /// In-kernel dentry resolution mode: fragments, single_fragment or perf_buffer.
    #[arg(long = "dentry-resolution-mode", default_value = "perf_buffer", value_parser = parse_mode)]
    pub dentry_resolution_mode: ResolutionMode,

    /// Listen for this event only (repeatable). Default: all but modify.
    /// One of: open, mkdir, link, rename, setattr, unlink, rmdir, modify.
    #[arg(short = 'e', long = "event", value_parser = parse_event)]
    pub events: Vec<EventKind>,

    /// Keep watching files moved out of the watched trees.
    #[arg(long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub follow: bool,

    /// Output format.
    #[arg(short = 'f', long, value_enum, default_value_t = Format::Table)]
    pub format: Format,

    /// Write events to this file (created or truncated) instead of stdout.
    #[arg(short = 'o', long)]
    pub output: Option<PathBuf>,

    /// Report only events on the watched paths; false: the whole system.
    #[arg(long = "paths-filtering", default_value_t = true, action = ArgAction::Set,
          num_args = 0..=1, default_missing_value = "true", value_name = "BOOL")]
    pub paths_filtering: bool,

    /// Kernel-to-user buffer size, in 4 KiB pages (rounded up to a power
    /// of two); per CPU with --transport perf_buffer.
    #[arg(long = "perf-buffer-size", default_value_t = 128)]
    pub perf_buffer_size: usize,

    /// Kernel-to-user transport: ring_buffer (one buffer, ordered, woken
    /// when a quarter is full) or perf_buffer (one buffer per CPU, woken
    /// per event, as the seed did).
    #[arg(long, default_value = "ring_buffer", value_parser = parse_transport)]
    pub transport: Transport,

    /// Watch whole trees, and directories created later; false: direct children only.
    #[arg(short = 'r', long, default_value_t = true, action = ArgAction::Set, num_args = 0..=1,
          default_missing_value = "true", value_name = "BOOL")]
    pub recursive: bool,

    /// Where to hook: auto, fentry, kprobe or tracepoint.
    #[arg(long, env = "FSPROBE_BACKEND", default_value = "auto", value_parser = parse_backend)]
    pub backend: BackendKind,

    /// BTF file describing the running kernel, when it does not publish
    /// /sys/kernel/btf/vmlinux.
    #[arg(long, value_name = "FILE")]
    pub btf: Option<PathBuf>,

    /// Most files and directories the in-kernel filter can hold.
    #[arg(long = "max-watches", default_value_t = 1 << 20)]
    pub max_watches: u32,

    /// Report only this process (thread-group id; repeatable). Checked in
    /// the kernel, so other processes cost no buffer space.
    #[arg(long = "pid", value_name = "PID")]
    pub pids: Vec<u32>,

    /// Report all processes but this one (repeatable).
    #[arg(long = "exclude-pid", value_name = "PID", conflicts_with = "pids")]
    pub exclude_pids: Vec<u32>,

    /// Report only this real user id (repeatable).
    #[arg(long = "uid", value_name = "UID")]
    pub uids: Vec<u32>,

    /// Report all users but this one (repeatable).
    #[arg(long = "exclude-uid", value_name = "UID", conflicts_with = "uids")]
    pub exclude_uids: Vec<u32>,

    /// Report only this command name (task comm, at most 15 bytes; repeatable).
    #[arg(long = "comm", value_name = "NAME")]
    pub comms: Vec<String>,

    /// Report all commands but this one (repeatable).
    #[arg(long = "exclude-comm", value_name = "NAME", conflicts_with = "comms")]
    pub exclude_comms: Vec<String>,

    /// Entries of the in-kernel path cache [default: 40000 directories;
    /// 4096 whole paths with single_fragment].
    #[arg(long = "cache-size", value_name = "ENTRIES")]
    pub cache_size: Option<u32>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    /// Aligned columns.
    Table,
    /// One JSON object per line (NDJSON).
    Json,
    /// Nothing (count only).
    None,
}

fn parse_event(s: &str) -> Result<EventKind, String> {
    s.parse()
}

fn parse_transport(s: &str) -> Result<Transport, String> {
    s.parse()
}

fn parse_mode(s: &str) -> Result<ResolutionMode, String> {
    s.parse()
}

fn parse_backend(s: &str) -> Result<BackendKind, String> {
    s.parse()
}

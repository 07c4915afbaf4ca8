//! Command-line flags, named as in the seed (FSProbe) so its users feel at home.
use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{ArgAction, Parser, ValueEnum};
use fsprobe::{BackendKind, EventKind, ResolutionMode, Transport};

const EXAMPLES: &str = "\
Examples:
  fsprobe /etc                                  table of events under /etc
  fsprobe -f json -o /var/log/fsprobe.ndjson /home /etc
                                                NDJSON to a file (SIGHUP reopens it)
  fsprobe --paths-filtering=false -e rename     every rename on the host
  fsprobe -f none --metrics 127.0.0.1:9464 /srv Prometheus metrics only
  fsprobe -f none --nats nats://127.0.0.1:4222 /etc
                                                publish to JetStream, subject fsprobe.<host>
  fsprobe -f none --syslog-tcp 127.0.0.1:514 /etc
                                                RFC 5424 syslog, octet-counted, over TCP

Exit status: 0 after SIGINT or SIGTERM, 1 on a runtime error, 2 on a usage error.";

/// File-system event notifier based on eBPF: VFS events with paths
/// resolved from kernel dentries.
#[derive(Debug, Parser)]
#[command(name = "fsprobe", version, after_help = EXAMPLES)]
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

    #[command(flatten)]
    pub service: ServiceArgs,
}

/// Where else events go, and what watches fsprobe while it runs.
#[derive(Debug, clap::Args)]
pub struct ServiceArgs {
    /// Serve Prometheus metrics over HTTP at this address (e.g. 127.0.0.1:9464).
    #[arg(long, value_name = "ADDR", help_heading = "Service")]
    pub metrics: Option<SocketAddr>,

    /// Publish every record, as its NDJSON object, to this NATS server's
    /// JetStream (e.g. nats://127.0.0.1:4222).
    #[arg(long, value_name = "URL", help_heading = "NATS JetStream")]
    pub nats: Option<String>,

    /// Subjects are PREFIX.<hostname> (dots in the host name become '_').
    #[arg(
        long = "nats-subject-prefix",
        value_name = "PREFIX",
        default_value = "fsprobe",
        help_heading = "NATS JetStream"
    )]
    pub nats_subject_prefix: String,

    /// The JetStream stream; created, on PREFIX.>, if it does not exist.
    #[arg(
        long = "nats-stream",
        value_name = "NAME",
        default_value = "FSPROBE",
        help_heading = "NATS JetStream"
    )]
    pub nats_stream: String,

    /// Records held in memory while the server is unreachable; past this
    /// (and a full spool) records are counted lost.
    #[arg(
        long = "nats-buffer",
        value_name = "RECORDS",
        default_value_t = 65536,
        help_heading = "NATS JetStream"
    )]
    pub nats_buffer: usize,

    /// Spill records that overflow the memory buffer to this file, and
    /// publish what a previous run left in it first.
    #[arg(
        long = "nats-spool",
        value_name = "FILE",
        help_heading = "NATS JetStream"
    )]
    pub nats_spool: Option<PathBuf>,

    /// Most bytes the spool file may hold.
    #[arg(long = "nats-spool-size", value_name = "BYTES", default_value_t = 256 << 20,
          help_heading = "NATS JetStream")]
    pub nats_spool_size: u64,

    /// Send RFC 5424 syslog messages over TCP with octet-counted framing
    /// (RFC 6587) to HOST:PORT.
    #[arg(long = "syslog-tcp", value_name = "HOST:PORT", help_heading = "Syslog")]
    pub syslog_tcp: Option<String>,

    /// Send RFC 5424 syslog messages over UDP, one per datagram, to HOST:PORT.
    #[arg(long = "syslog-udp", value_name = "HOST:PORT", help_heading = "Syslog")]
    pub syslog_udp: Option<String>,

    /// Syslog facility: kern, user, daemon, auth, authpriv, local0 ... local7.
    #[arg(long = "syslog-facility", value_name = "NAME", default_value = "daemon",
          value_parser = parse_facility, help_heading = "Syslog")]
    pub syslog_facility: u8,

    /// Largest UDP datagram; a longer message is not sent and is counted
    /// lost (a loss record says so). rsyslog accepts 8 KiB unless told more.
    #[arg(
        long = "syslog-udp-max",
        value_name = "BYTES",
        default_value_t = 8192,
        help_heading = "Syslog"
    )]
    pub syslog_udp_max: usize,

    /// Records held in memory while the syslog server is unreachable.
    #[arg(
        long = "syslog-buffer",
        value_name = "RECORDS",
        default_value_t = 65536,
        help_heading = "Syslog"
    )]
    pub syslog_buffer: usize,

    /// At exit, how long the network outputs may take to send what they
    /// hold; what is left is counted lost (or kept in the NATS spool).
    #[arg(
        long = "drain-timeout",
        value_name = "SECONDS",
        default_value_t = 5.0,
        help_heading = "Service"
    )]
    pub drain_timeout: f64,
}

/// Syslog facility names and numbers (RFC 5424, section 6.2.1).
const FACILITIES: &[(&str, u8)] = &[
    ("kern", 0),
    ("user", 1),
    ("mail", 2),
    ("daemon", 3),
    ("auth", 4),
    ("syslog", 5),
    ("lpr", 6),
    ("news", 7),
    ("uucp", 8),
    ("cron", 9),
    ("authpriv", 10),
    ("ftp", 11),
    ("local0", 16),
    ("local1", 17),
    ("local2", 18),
    ("local3", 19),
    ("local4", 20),
    ("local5", 21),
    ("local6", 22),
    ("local7", 23),
];

fn parse_facility(s: &str) -> Result<u8, String> {
    FACILITIES
        .iter()
        .find(|(name, _)| *name == s)
        .map(|(_, n)| *n)
        .ok_or_else(|| format!("unknown syslog facility '{s}'"))
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

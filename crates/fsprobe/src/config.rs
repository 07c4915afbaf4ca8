//! Probe options, validated once into a [`Config`].
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use crate::error::{Error, InvalidOption, Result};
use crate::event::EventKind;
use crate::progress::{ProgressReport, WalkProgress};

/// How the kernel side turns dentries into paths, and what it caches
/// (bpf/resolve/cache.h, src/cache.rs). Every mode reports whole, exact paths;
/// they differ in where the cost and the memory go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResolutionMode {
    /// The walk stops at the first directory user space knows; user space
    /// keeps (parent, name) fragments of directories and rebuilds prefixes
    /// by following parents.
    Fragments,
    /// The kernel keeps whole paths of directories; a hit on the file's
    /// directory skips the walk.
    SingleFragment,
    /// The walk stops at the first directory user space knows; the event
    /// carries only the rest, and user space keeps whole prefixes (default).
    #[default]
    PerfBuffer,
}

impl ResolutionMode {
    /// Entries of the in-kernel cache unless set: the seed benchmark's
    /// 40,000 directories; 4,096 whole paths (4 KiB each) for single_fragment.
    pub fn default_cache_size(self) -> u32 {
        match self {
            ResolutionMode::SingleFragment => 4096,
            ResolutionMode::Fragments | ResolutionMode::PerfBuffer => 40_000,
        }
    }

    /// enum fsp_resolution in bpf/abi/events.h.
    pub(crate) fn raw(self) -> u32 {
        match self {
            ResolutionMode::PerfBuffer => 0,
            ResolutionMode::Fragments => 1,
            ResolutionMode::SingleFragment => 2,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            ResolutionMode::Fragments => "fragments",
            ResolutionMode::SingleFragment => "single_fragment",
            ResolutionMode::PerfBuffer => "perf_buffer",
        }
    }
}

/// How records travel from the kernel to user space (`--transport`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Transport {
    /// One BPF ring buffer shared by all CPUs (Linux 5.8+): records arrive
    /// in the order they were sent, and the consumer is woken only when a
    /// quarter of the buffer is pending (default).
    #[default]
    RingBuffer,
    /// A perf event array: one buffer per CPU, each of the buffer size,
    /// with a wakeup per record (the seed's transport). Records of
    /// different CPUs are not ordered between them.
    PerfBuffer,
}

impl Transport {
    /// enum fsp_transport in bpf/abi/events.h.
    pub(crate) fn raw(self) -> u32 {
        match self {
            Transport::RingBuffer => 0,
            Transport::PerfBuffer => 1,
        }
    }

    /// The name used on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::RingBuffer => "ring_buffer",
            Transport::PerfBuffer => "perf_buffer",
        }
    }
}

impl FromStr for Transport {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "ring_buffer" => Ok(Transport::RingBuffer),
            "perf_buffer" => Ok(Transport::PerfBuffer),
            _ => Err(format!(
                "unknown transport '{s}' (expected ring_buffer or perf_buffer)"
            )),
        }
    }
}

impl FromStr for ResolutionMode {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "fragments" => Ok(ResolutionMode::Fragments),
            "single_fragment" => Ok(ResolutionMode::SingleFragment),
            "perf_buffer" => Ok(ResolutionMode::PerfBuffer),
            _ => Err(format!(
                "unknown dentry resolution mode '{s}' (expected fragments, single_fragment or perf_buffer)"
            )),
        }
    }
}

impl fmt::Display for ResolutionMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where the probes hook into the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BackendKind {
    /// The best the running kernel allows.
    #[default]
    Auto,
    /// fentry/fexit on VFS functions.
    Fentry,
    /// kprobes/kretprobes on VFS functions.
    Kprobe,
    /// Syscall tracepoints, with paths resolved from kernel objects.
    Tracepoint,
}

impl BackendKind {
    /// The name used on the command line and in the ready line.
    pub fn name(self) -> &'static str {
        match self {
            BackendKind::Auto => "auto",
            BackendKind::Fentry => "fentry",
            BackendKind::Kprobe => "kprobe",
            BackendKind::Tracepoint => "tracepoint",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl serde::Serialize for BackendKind {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

impl FromStr for BackendKind {
    type Err = String;
    fn from_str(s: &str) -> std::result::Result<Self, Self::Err> {
        match s {
            "auto" => Ok(BackendKind::Auto),
            "fentry" => Ok(BackendKind::Fentry),
            "kprobe" => Ok(BackendKind::Kprobe),
            "tracepoint" => Ok(BackendKind::Tracepoint),
            _ => Err(format!(
                "unknown backend '{s}' (expected auto, fentry, kprobe or tracepoint)"
            )),
        }
    }
}

/// Builds a [`Probe`](crate::Probe). Defaults follow the seed's CLI.
#[derive(Debug, Clone)]
pub struct ProbeBuilder {
    pub(crate) paths: Vec<PathBuf>,
    pub(crate) recursive: bool,
    pub(crate) paths_filtering: bool,
    pub(crate) follow: bool,
    pub(crate) events: Vec<EventKind>,
    pub(crate) channel_size: usize,
    pub(crate) buffer_pages: usize,
    pub(crate) transport: Transport,
    pub(crate) resolution_mode: ResolutionMode,
    pub(crate) backend: BackendKind,
    pub(crate) max_watches: u32,
    pub(crate) exclude_own_process: bool,
    pub(crate) btf: Option<PathBuf>,
    pub(crate) cache_size: Option<u32>,
    pub(crate) pids: ProcessFilter<u32>,
    pub(crate) uids: ProcessFilter<u32>,
    pub(crate) comms: ProcessFilter<String>,
    pub(crate) walk_progress: Option<ProgressReport>,
}

/// Which processes are reported: checked in the kernel at syscall entry,
/// so filtered-out processes cost no buffer space.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum ProcessFilter<T> {
    /// Every process.
    #[default]
    Off,
    /// Only these.
    Include(Vec<T>),
    /// All but these.
    Exclude(Vec<T>),
}

impl<T> ProcessFilter<T> {
    /// The listed values.
    pub(crate) fn values(&self) -> &[T] {
        match self {
            ProcessFilter::Off => &[],
            ProcessFilter::Include(v) | ProcessFilter::Exclude(v) => v,
        }
    }

    /// enum fsp_proc_filter in bpf/abi/events.h.
    pub(crate) fn raw(&self) -> u32 {
        match self {
            ProcessFilter::Off => 0,
            ProcessFilter::Include(_) => 1,
            ProcessFilter::Exclude(_) => 2,
        }
    }
}

/// Most values one process filter holds.
pub const MAX_FILTER_VALUES: usize = 64;

/// Largest channel: its queue is allocated up front (src/channel.rs).
pub const MAX_CHANNEL_SIZE: usize = 1 << 20;

/// Largest watch limit: htab_map_alloc() (kernel/bpf/hashtab.c) rounds
/// max_entries up to a power of two of 16-byte buckets and refuses (E2BIG)
/// more than U32_MAX bytes of them, so 2^27 entries is the most any kernel takes.
pub const MAX_WATCHES: u32 = 1 << 27;

/// Where the running kernel publishes its BTF.
pub(crate) const KERNEL_BTF: &str = "/sys/kernel/btf/vmlinux";

impl Default for ProbeBuilder {
    fn default() -> Self {
        ProbeBuilder {
            paths: Vec::new(),
            recursive: true,
            paths_filtering: true,
            follow: true,
            events: Vec::new(),
            channel_size: 1000,
            buffer_pages: 128,
            transport: Transport::RingBuffer,
            resolution_mode: ResolutionMode::PerfBuffer,
            backend: BackendKind::Auto,
            max_watches: 1 << 20,
            exclude_own_process: true,
            btf: None,
            cache_size: None,
            pids: ProcessFilter::Off,
            uids: ProcessFilter::Off,
            comms: ProcessFilter::Off,
            walk_progress: None,
        }
    }
}

impl ProbeBuilder {
    /// Adds a file or directory to watch.
    pub fn path(mut self, path: impl Into<PathBuf>) -> Self {
        self.paths.push(path.into());
        self
    }

    /// Adds several paths to watch.
    pub fn paths<I, P>(mut self, paths: I) -> Self
    where
        I: IntoIterator<Item = P>,
        P: Into<PathBuf>,
    {
        self.paths.extend(paths.into_iter().map(Into::into));
        self
    }

    /// Watch whole trees, including directories created later (default
    /// true); false watches only the direct children of each directory.
    pub fn recursive(mut self, on: bool) -> Self {
        self.recursive = on;
        self
    }

    /// Report only events on the watched paths (default true); false
    /// reports the whole system.
    pub fn paths_filtering(mut self, on: bool) -> Self {
        self.paths_filtering = on;
        self
    }

    /// Keep reporting watched files moved out of the trees (default true).
    pub fn follow(mut self, on: bool) -> Self {
        self.follow = on;
        self
    }

    /// Report these kinds only (default: all but modify).
    pub fn events(mut self, kinds: impl IntoIterator<Item = EventKind>) -> Self {
        self.events = kinds.into_iter().collect();
        self
    }

    /// Capacity of the channel between the probe and its consumer (default 1000).
    pub fn channel_size(mut self, n: usize) -> Self {
        self.channel_size = n;
        self
    }

    /// Size of the kernel-to-user buffer in 4 KiB pages, rounded up to a
    /// power of two (default 128); per CPU with the perf buffer transport.
    pub fn buffer_pages(mut self, pages: usize) -> Self {
        self.buffer_pages = pages;
        self
    }

    /// The kernel-to-user transport (default ring buffer).
    pub fn transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// Dentry resolution mode (default perf_buffer).
    pub fn resolution_mode(mut self, mode: ResolutionMode) -> Self {
        self.resolution_mode = mode;
        self
    }

    /// Entries of the in-kernel path cache (default
    /// [`ResolutionMode::default_cache_size`]): directories for fragments
    /// and perf_buffer, whole directory paths (4 KiB each) for
    /// single_fragment.
    pub fn cache_size(mut self, entries: u32) -> Self {
        self.cache_size = Some(entries);
        self
    }

    /// Report only the processes (thread-group ids) given, or all but them.
    pub fn pid_filter(mut self, filter: ProcessFilter<u32>) -> Self {
        self.pids = filter;
        self
    }

    /// Report only the real user ids given, or all but them.
    pub fn uid_filter(mut self, filter: ProcessFilter<u32>) -> Self {
        self.uids = filter;
        self
    }

    /// Report only the command names (task comm, at most 15 bytes) given,
    /// or all but them.
    pub fn comm_filter(mut self, filter: ProcessFilter<String>) -> Self {
        self.comms = filter;
        self
    }

    /// Backend (default auto).
    pub fn backend(mut self, backend: BackendKind) -> Self {
        self.backend = backend;
        self
    }

    /// Most files and directories the in-kernel filter can hold (default 2^20).
    pub fn max_watches(mut self, n: u32) -> Self {
        self.max_watches = n;
        self
    }

    /// Leave out the activity of the process that runs the probe (default true).
    pub fn exclude_own_process(mut self, on: bool) -> Self {
        self.exclude_own_process = on;
        self
    }

    /// Calls `callback` every `every` while the initial walk of the watched
    /// trees goes on (first once it has taken `every`), and once when it is
    /// over, before [`start`](Self::start) returns: a large tree takes
    /// seconds to walk.
    pub fn on_walk_progress(
        mut self,
        every: Duration,
        callback: impl Fn(&WalkProgress) + Send + Sync + 'static,
    ) -> Self {
        self.walk_progress = Some(ProgressReport {
            every,
            callback: Arc::new(callback),
        });
        self
    }

    /// BTF of the running kernel, for kernels that do not publish it at
    /// /sys/kernel/btf/vmlinux (e.g. from a BTFHub archive).
    pub fn btf(mut self, path: impl Into<PathBuf>) -> Self {
        self.btf = Some(path.into());
        self
    }

    /// Checks the options and canonicalizes the watched paths.
    pub(crate) fn validate(&self) -> Result<Config> {
        let cache_size = self
            .cache_size
            .unwrap_or(self.resolution_mode.default_cache_size());
        if !(16..=1 << 24).contains(&cache_size) {
            return Err(Error::InvalidOption(InvalidOption::CacheSize {
                value: cache_size,
                min: 16,
                max: 1 << 24,
            }));
        }
        if self.paths_filtering && self.paths.is_empty() {
            return Err(Error::InvalidOption(InvalidOption::NoPaths));
        }
        if !(1..=MAX_CHANNEL_SIZE).contains(&self.channel_size) {
            return Err(Error::InvalidOption(InvalidOption::ChannelSize {
                value: self.channel_size,
                max: MAX_CHANNEL_SIZE,
            }));
        }
        if self.buffer_pages == 0 || self.buffer_pages > 1 << 18 {
            return Err(Error::InvalidOption(InvalidOption::BufferPages {
                value: self.buffer_pages,
                max: 1 << 18,
            }));
        }
        if !(1..=MAX_WATCHES).contains(&self.max_watches) {
            return Err(Error::InvalidOption(InvalidOption::MaxWatches {
                value: self.max_watches,
                max: MAX_WATCHES,
            }));
        }
        if let Some(btf) = self.btf.as_ref().filter(|b| !b.is_file()) {
            return Err(Error::BtfFile(btf.clone()));
        }
        for (what, n) in [
            ("pid", self.pids.values().len()),
            ("uid", self.uids.values().len()),
            ("comm", self.comms.values().len()),
        ] {
            if n > MAX_FILTER_VALUES {
                return Err(Error::InvalidOption(InvalidOption::TooManyFilterValues {
                    filter: what,
                    count: n,
                    max: MAX_FILTER_VALUES,
                }));
            }
        }
        if let Some(long) = self
            .comms
            .values()
            .iter()
            .find(|c| c.is_empty() || c.len() > 15)
        {
            return Err(Error::InvalidOption(InvalidOption::CommLength(
                long.clone(),
            )));
        }
        let paths = self
            .paths
            .iter()
            .map(|p| {
                std::fs::canonicalize(p).map_err(|source| Error::Watch {
                    path: p.clone(),
                    source,
                })
            })
            .collect::<Result<Vec<_>>>()?;
        let mut events = if self.events.is_empty() {
            EventKind::defaults()
        } else {
            self.events.clone()
        };
        events.sort();
        events.dedup();
        Ok(Config {
            paths,
            recursive: self.recursive,
            paths_filtering: self.paths_filtering,
            follow: self.follow,
            events,
            channel_size: self.channel_size,
            buffer_bytes: (self.buffer_pages * 4096).next_power_of_two(),
            transport: self.transport,
            backend: self.backend,
            max_watches: self.max_watches,
            exclude_own_process: self.exclude_own_process,
            btf: self.btf.clone(),
            resolution_mode: self.resolution_mode,
            cache_size,
            pids: self.pids.clone(),
            uids: self.uids.clone(),
            comms: self.comms.clone(),
            walk_progress: self.walk_progress.clone(),
        })
    }
}

/// Validated options.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub paths: Vec<PathBuf>,
    pub recursive: bool,
    pub paths_filtering: bool,
    pub follow: bool,
    pub events: Vec<EventKind>,
    pub channel_size: usize,
    /// Of the ring buffer, or of each CPU's perf buffer.
    pub buffer_bytes: usize,
    pub transport: Transport,
    pub backend: BackendKind,
    pub max_watches: u32,
    pub exclude_own_process: bool,
    /// A BTF file given instead of the kernel's.
    pub btf: Option<PathBuf>,
    pub resolution_mode: ResolutionMode,
    /// Entries of the mode's in-kernel cache.
    pub cache_size: u32,
    pub pids: ProcessFilter<u32>,
    pub uids: ProcessFilter<u32>,
    pub comms: ProcessFilter<String>,
    pub walk_progress: Option<ProgressReport>,
}

impl Config {
    pub(crate) fn event_mask(&self) -> u32 {
        self.events.iter().fold(0, |m, k| m | 1 << (*k as u32))
    }

    /// Ring buffer: the bytes pending before producers wake the sleeping
    /// consumer, a quarter of the ring (it also reads every 100 ms; see
    /// PERFORMANCE-NOTES: a wakeup per event costs more than resolving the
    /// path).
    pub(crate) fn wakeup_watermark(&self) -> u64 {
        (self.buffer_bytes / 4) as u64
    }
}

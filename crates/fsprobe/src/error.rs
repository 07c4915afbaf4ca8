//! The library's error type: every variant is data a program can match on,
//! and no type of another crate appears in it.
use std::fmt;
use std::path::PathBuf;

/// Everything that can stop a probe from starting or running.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Loading BPF programs needs root (CAP_BPF, CAP_PERFMON, CAP_SYS_ADMIN).
    #[error("fsprobe must run as root (effective uid is {0})")]
    NotRoot(u32),
    /// CO-RE needs the kernel's BTF.
    #[error("no BTF at {0}: the kernel needs CONFIG_DEBUG_INFO_BTF, or give a BTF file for it")]
    NoBtf(PathBuf),
    /// The BTF file given for the kernel does not exist or is not a file.
    #[error("no BTF file at {0}")]
    BtfFile(PathBuf),
    /// A path given to watch cannot be used.
    #[error("cannot watch {path}: {source}")]
    Watch {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The watched map is smaller than the trees to watch.
    #[error(
        "the watched trees hold more than {0} directories and files with several links; raise the watch limit"
    )]
    TooManyWatches(u32),
    /// An option's value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(InvalidOption),
    /// The requested backend cannot run on this kernel.
    #[error("{backend}: {reason}")]
    BackendUnavailable {
        backend: &'static str,
        reason: String,
    },
    /// A kernel interface (tracefs, a syscall) failed.
    #[error("{what}: {source}")]
    Io {
        what: String,
        #[source]
        source: std::io::Error,
    },
    /// libbpf failed to open, load or attach the BPF object, or to use a map.
    #[error("{what}: {source}")]
    Bpf {
        what: String,
        #[source]
        source: BpfError,
    },
    /// The probe's worker thread died.
    #[error("the probe's worker thread stopped unexpectedly")]
    WorkerGone,
}

impl Error {
    /// True when the request is at fault: an option out of range, a path
    /// that cannot be watched, a BTF file that is not there, trees larger
    /// than the watch limit. False when the system is: not root, no kernel
    /// BTF, a kernel that refuses the programs or maps, a failed read.
    pub fn is_usage(&self) -> bool {
        matches!(
            self,
            Error::InvalidOption(_)
                | Error::BtfFile(_)
                | Error::Watch { .. }
                | Error::TooManyWatches(_)
        )
    }
}

/// An option that [`ProbeBuilder`](crate::ProbeBuilder) refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum InvalidOption {
    /// The cache size is out of range.
    #[error("the cache size must be between {min} and {max} entries, not {value}")]
    CacheSize { value: u32, min: u32, max: u32 },
    /// Paths filtering is on and no path was given.
    #[error("no path to watch (give one, or disable paths filtering)")]
    NoPaths,
    /// The channel size is out of range.
    #[error("the channel size must be between 1 and {max}, not {value}")]
    ChannelSize { value: usize, max: usize },
    /// The buffer size is out of range.
    #[error("the buffer size must be between 1 and {max} pages, not {value}")]
    BufferPages { value: usize, max: usize },
    /// The watch limit is out of range.
    #[error("the watch limit must be between 1 and {max}, not {value}")]
    MaxWatches { value: u32, max: u32 },
    /// A process filter holds more values than the kernel's table.
    #[error("at most {max} values per {filter} filter, not {count}")]
    TooManyFilterValues {
        filter: &'static str,
        count: usize,
        max: usize,
    },
    /// A command name that no task comm can be.
    #[error("command name '{0}' must be 1 to 15 bytes long (the kernel's task comm)")]
    CommLength(String),
    /// The BTF path cannot be passed to libbpf.
    #[error("BTF path {} contains a NUL byte", .0.display())]
    BtfPathNul(PathBuf),
}

/// An error from libbpf: its message and, when it came from the kernel,
/// the errno.
#[derive(Debug)]
pub struct BpfError {
    message: String,
    errno: Option<i32>,
    kind: libbpf_rs::ErrorKind,
}

impl BpfError {
    /// The errno of the failed call, when there was one.
    pub fn errno(&self) -> Option<i32> {
        self.errno
    }

    /// libbpf's classification, for the backend's choices.
    pub(crate) fn kind(&self) -> libbpf_rs::ErrorKind {
        self.kind
    }
}

impl From<libbpf_rs::Error> for BpfError {
    fn from(e: libbpf_rs::Error) -> Self {
        let mut errno = None;
        let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
        while let Some(c) = cause {
            if let Some(io) = c.downcast_ref::<std::io::Error>() {
                errno = io.raw_os_error();
            }
            cause = c.source();
        }
        BpfError {
            message: e.to_string(),
            errno,
            kind: e.kind(),
        }
    }
}

impl fmt::Display for BpfError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for BpfError {}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) trait BpfContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T> BpfContext<T> for std::result::Result<T, libbpf_rs::Error> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Bpf {
            what: what.into(),
            source: source.into(),
        })
    }
}

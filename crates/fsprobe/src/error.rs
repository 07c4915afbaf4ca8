//! The library's error type.
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
    #[error("the watched trees hold more than {0} files and directories; raise the watch limit")]
    TooManyWatches(u32),
    /// An option's value is out of range.
    #[error("invalid option: {0}")]
    InvalidOption(String),
    /// A feature that this build does not provide yet.
    #[error("{0} is not yet implemented")]
    NotImplemented(String),
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
    /// libbpf failed to open, load or attach the BPF object.
    #[error("{what}: {source}")]
    Bpf {
        what: String,
        #[source]
        source: libbpf_rs::Error,
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
                | Error::NotImplemented(_)
        )
    }
}

/// Shorthand for results of this crate.
pub type Result<T> = std::result::Result<T, Error>;

pub(crate) trait BpfContext<T> {
    fn context(self, what: impl Into<String>) -> Result<T>;
}

impl<T> BpfContext<T> for std::result::Result<T, libbpf_rs::Error> {
    fn context(self, what: impl Into<String>) -> Result<T> {
        self.map_err(|source| Error::Bpf {
            what: what.into(),
            source,
        })
    }
}

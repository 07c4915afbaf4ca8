//! fsprobe: file-system events from the kernel's VFS layer, with every
//! path resolved from kernel dentries.
//!
//! A syscall's path argument is whatever the caller wrote in its own
//! memory: relative, full of `..`, through symlinks, or rewritten after the
//! kernel read it. fsprobe's BPF programs instead walk the kernel's dentry
//! tree (and the mount tree above it), so each event names the file the
//! kernel actually touched, by absolute path, inode, device and mount, and
//! says who did it. An in-kernel filter keyed by (device, inode) keeps
//! unwatched files from costing anything beyond the hook.
//!
//! ```no_run
//! use fsprobe::{EventKind, Probe, Record};
//!
//! let probe = Probe::builder()
//!     .path("/etc")
//!     .events([EventKind::Open, EventKind::Rename])
//!     .start()?;
//! eprintln!("watching {} inodes", probe.ready().watched_inodes);
//! for record in probe.records() {
//!     match record {
//!         Record::Event(e) => println!("{} {} by pid {}", e.kind, e.file.path.display(), e.process.pid),
//!         Record::Lost { count, reason, .. } => eprintln!("lost {count} events: {}", reason.description()),
//!         Record::Unwatched { count, .. } => eprintln!("{count} files could not be watched"),
//!         _ => {} // records of later versions
//!     }
//! }
//! # Ok::<(), fsprobe::Error>(())
//! ```
//!
//! Running a probe needs root and a kernel with BTF (5.10 or newer).
//!
//! With the `tokio` feature, [`ProbeBuilder::start_async`] starts a probe
//! without blocking the runtime and [`Probe::into_stream`] gives its records
//! as a `Stream` (see `examples/async_watch.rs`). [`Probe::stats`] reads the
//! live counters at any time, e.g. for a metrics endpoint.

#[cfg(test)]
mod alloc_count;
mod ascii;
mod backend;
mod cache;
mod cgroup;
mod channel;
mod clock;
mod config;
mod decode;
mod dirents;
mod error;
mod event;
mod hints;
mod json;
#[cfg(test)]
mod json_alloc_tests;
mod libbpf_log;
mod loss;
mod mounts;
mod pacing;
mod probe;
mod progress;
mod records;
mod recycle;
mod reorder;
mod seed;
mod seed_threads;
mod stats;
#[cfg(feature = "tokio")]
mod stream;
mod subtrees;
#[cfg(test)]
mod test_rng;
mod tracefs;
mod transport;
mod watched;
mod worker;

#[allow(
    clippy::all,
    clippy::undocumented_unsafe_blocks,
    missing_docs,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    unused_imports
)]
mod skel {
    include!(concat!(env!("OUT_DIR"), "/fsprobe.skel.rs"));
}

pub use clock::rfc3339;
pub use config::{
    BackendKind, MAX_CHANNEL_SIZE, MAX_FILTER_VALUES, MAX_WATCHES, ProbeBuilder, ProcessFilter,
    ResolutionMode, Transport,
};
pub use error::{BpfError, Error, InvalidOption, Result};
pub use event::{
    ContainerId, Event, EventKind, ExtraString, FileRef, IoUringRequest, LossReason, MknodInfo,
    MountInfo, OpenInfo, Origin, Process, Record, SetAttr, UnwatchedReason, XattrInfo, base64,
};
pub use probe::{Probe, Ready, Summary};
pub use progress::WalkProgress;
pub use records::{Iter, Records, RecvError};
pub use stats::{Stats, StatsReader};
#[cfg(feature = "tokio")]
pub use stream::RecordStream;

//! Backends: how the probes hook into the kernel. They differ only in
//! their hooks; path resolution, filtering and the record layout are the
//! shared C headers in bpf/.
pub(crate) mod tracepoint;

use crate::config::BackendKind;
use crate::error::{Error, Result};

/// Picks the backend to run for a requested kind.
pub(crate) fn choose(requested: BackendKind) -> Result<BackendKind> {
    match requested {
        BackendKind::Auto | BackendKind::Tracepoint => Ok(BackendKind::Tracepoint),
        BackendKind::Fentry | BackendKind::Kprobe => Err(Error::NotImplemented(format!(
            "the {} backend",
            requested.name()
        ))),
    }
}

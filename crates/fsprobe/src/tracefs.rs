//! Finds (or mounts) tracefs, where syscall tracepoints are listed.
use std::path::{Path, PathBuf};

use crate::error::{Error, Result};

const CANDIDATES: [&str; 2] = ["/sys/kernel/tracing", "/sys/kernel/debug/tracing"];

/// The tracefs mount, mounting it at /sys/kernel/tracing when absent
/// (Debian does not mount it at boot; libbpf needs it to attach by name).
pub(crate) fn ensure_mounted() -> Result<PathBuf> {
    if let Some(found) = CANDIDATES
        .iter()
        .map(Path::new)
        .find(|p| p.join("events").is_dir())
    {
        return Ok(found.to_owned());
    }
    let target = Path::new(CANDIDATES[0]);
    let c_target = std::ffi::CString::new(CANDIDATES[0]).expect("no NUL in a constant");
    // SAFETY: all pointers are valid NUL-terminated strings for the call's duration.
    let rc = unsafe {
        libc::mount(
            c"nodev".as_ptr(),
            c_target.as_ptr(),
            c"tracefs".as_ptr(),
            0,
            std::ptr::null(),
        )
    };
    if rc != 0 {
        return Err(Error::Io {
            what: format!("mounting tracefs on {}", target.display()),
            source: std::io::Error::last_os_error(),
        });
    }
    Ok(target.to_owned())
}

/// Does the running kernel have the syscall tracepoints for `syscall`?
pub(crate) fn has_syscall(tracefs: &Path, syscall: &str) -> bool {
    let dir = tracefs.join("events/syscalls");
    dir.join(format!("sys_enter_{syscall}")).is_dir()
        && dir.join(format!("sys_exit_{syscall}")).is_dir()
}

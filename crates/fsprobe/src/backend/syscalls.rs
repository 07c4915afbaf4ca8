//! The syscalls behind each kind of event: every backend hooks their
//! entry and exit tracepoints (bpf/hooks_syscalls.h) for arguments and
//! return values.
use crate::event::EventKind;

/// The syscalls behind each kind of event.
pub(crate) fn syscalls(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::Open => &["open", "openat", "openat2", "creat"],
        EventKind::Mkdir => &["mkdir", "mkdirat"],
        EventKind::Link => &["link", "linkat"],
        EventKind::Rename => &["rename", "renameat", "renameat2"],
        EventKind::Setattr => &[
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "lchown",
            "fchownat",
            "truncate",
            "ftruncate",
            "utime",
            "utimes",
            "futimesat",
            "utimensat",
        ],
        EventKind::Unlink => &["unlink", "unlinkat"],
        EventKind::Rmdir => &["rmdir", "unlinkat"],
        EventKind::Modify => &["write", "pwrite64", "writev", "pwritev", "pwritev2"],
    }
}

/// Syscalls that can change the path of a cached directory or let a new
/// one reuse its key: hooked in every mode to invalidate the path caches
/// (bpf/cache.h), whatever events are selected.
pub(crate) const PATH_CHANGERS: &[&str] = &[
    "rename",
    "renameat",
    "renameat2",
    "rmdir",
    "unlinkat",
    "mount",
    "umount",
    "move_mount",
    "pivot_root",
    "clone",
    "clone3",
    "unshare",
];

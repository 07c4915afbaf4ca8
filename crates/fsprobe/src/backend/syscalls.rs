//! The syscalls behind each kind of event: every backend handles their
//! entry and exit (bpf/hooks/syscalls.h) for arguments and return values.
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
/// (bpf/resolve/cache.h), whatever events are selected.
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

/// Every syscall to hook for these events, path changers included, once
/// each and sorted.
pub(crate) fn hooked(events: &[EventKind]) -> Vec<&'static str> {
    let mut names: Vec<&'static str> = events
        .iter()
        .flat_map(|k| syscalls(*k).iter().copied())
        .chain(PATH_CHANGERS.iter().copied())
        .collect();
    names.sort_unstable();
    names.dedup();
    names
}

/// The x86-64 number of a syscall named here, as its tracefs event names
/// it (arch/x86/entry/syscalls/syscall_64.tbl; the event of umount2 is
/// `umount`). The BPF side switches on the same numbers.
pub(crate) fn number(name: &str) -> u32 {
    match name {
        "write" => 1,
        "open" => 2,
        "pwrite64" => 18,
        "writev" => 20,
        "clone" => 56,
        "truncate" => 76,
        "ftruncate" => 77,
        "rename" => 82,
        "mkdir" => 83,
        "rmdir" => 84,
        "creat" => 85,
        "link" => 86,
        "unlink" => 87,
        "chmod" => 90,
        "fchmod" => 91,
        "chown" => 92,
        "fchown" => 93,
        "lchown" => 94,
        "utime" => 132,
        "pivot_root" => 155,
        "mount" => 165,
        "umount" => 166,
        "utimes" => 235,
        "openat" => 257,
        "mkdirat" => 258,
        "fchownat" => 260,
        "futimesat" => 261,
        "unlinkat" => 263,
        "renameat" => 264,
        "linkat" => 265,
        "fchmodat" => 268,
        "unshare" => 272,
        "utimensat" => 280,
        "pwritev" => 296,
        "renameat2" => 316,
        "pwritev2" => 328,
        "move_mount" => 429,
        "clone3" => 435,
        "openat2" => 437,
        "fchmodat2" => 452,
        _ => unreachable!("syscall {name} has no number in syscalls::number"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hooked_syscall_has_a_distinct_number() {
        let names = hooked(&EventKind::ALL);
        let mut numbers: Vec<u32> = names.iter().map(|n| number(n)).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), names.len());
        assert!(numbers.iter().all(|&n| n < 512), "FSP_NR_SYSCALLS");
    }

    /// The BPF side switches on its own enum of the same numbers
    /// (`NR_openat = 257, ...` in bpf/hooks/syscalls.h): the two must agree.
    #[test]
    fn numbers_match_the_bpf_enum() {
        let header = include_str!("../../bpf/hooks/syscalls.h");
        let mut bpf = std::collections::HashMap::new();
        for item in header.split([',', '\n', '{']) {
            let Some((name, value)) = item.trim().split_once(" = ") else {
                continue;
            };
            if let (Some(name), Ok(value)) = (name.strip_prefix("NR_"), value.trim().parse::<u32>())
            {
                bpf.insert(name, value);
            }
        }
        for name in hooked(&EventKind::ALL) {
            // The tracefs event of umount2 is called umount.
            let bpf_name = if name == "umount" { "umount2" } else { name };
            assert_eq!(bpf.get(bpf_name), Some(&number(name)), "{name}");
        }
    }
}

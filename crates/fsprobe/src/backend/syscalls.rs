//! The syscalls fsprobe handles and the io_uring opcodes it reports, from
//! the one table each (bpf/abi/syscalls.def, bpf/abi/io_uring.def; build.rs
//! generates the Rust halves), and what to hook for the selected events.
use crate::event::EventKind;

/// A row of bpf/abi/syscalls.def.
#[derive(Debug, Clone, Copy)]
pub(crate) struct SyscallDef {
    pub name: &'static str,
    /// x86-64 number.
    pub nr: u32,
    /// The name of its tracefs event (sys_enter_<tracefs>).
    pub tracefs: &'static str,
    /// The event kinds it reports.
    pub events: &'static [EventKind],
    /// T_ENTRY: looked at on entry too.
    pub entry: bool,
    /// T_TREE: may change a cached directory's path.
    pub tree: bool,
    /// T_MOUNTS: changes a mount table.
    #[allow(dead_code)]
    pub mounts: bool,
    /// T_WATCH: keeps the watched set current.
    pub watch: bool,
    /// T_FD: its object is a file descriptor argument.
    #[allow(dead_code)]
    pub fd: bool,
}

/// A row of bpf/abi/io_uring.def.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IoOpDef {
    /// The opcode without IORING_OP_.
    pub name: &'static str,
    pub nr: u8,
    pub event: EventKind,
}

/// A row of bpf/abi/syscalls_ia32.def.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Ia32SyscallDef {
    pub name: &'static str,
    /// ia32 number.
    pub nr: u32,
    /// The x86-64 syscall it is handled as; None: only named in records.
    pub twin: Option<u32>,
}

include!(concat!(env!("OUT_DIR"), "/syscall_table.rs"));
include!(concat!(env!("OUT_DIR"), "/syscall_ia32_table.rs"));
include!(concat!(env!("OUT_DIR"), "/io_uring_table.rs"));

/// Names the BPF side sends for opens no syscall hook reports (vfs_open()).
const NAMED_ONLY: &[(u32, &str)] = &[(59, "execve"), (322, "execveat")];

/// The name of x86-64 syscall nr, "unknown" for one not in the table.
pub(crate) fn syscall_name(nr: u16) -> &'static str {
    let nr = u32::from(nr);
    SYSCALLS
        .iter()
        .map(|s| (s.nr, s.name))
        .chain(NAMED_ONLY.iter().copied())
        .find(|s| s.0 == nr)
        .map_or("unknown", |s| s.1)
}

/// The name of ia32 syscall nr, "unknown" for one not in the table.
pub(crate) fn ia32_syscall_name(nr: u16) -> &'static str {
    IA32_SYSCALLS
        .iter()
        .find(|s| s.nr == u32::from(nr))
        .map_or("unknown", |s| s.name)
}

/// The ia32 syscalls to hook, as bits by ia32 number: those whose x86-64
/// twin's bit is set in `native`.
pub(crate) fn ia32_bits(native: &[u64; 8]) -> [u64; 8] {
    let mut bits = [0u64; 8];
    for s in IA32_SYSCALLS {
        if let Some(twin) = s.twin
            && native[(twin / 64) as usize] >> (twin % 64) & 1 == 1
        {
            bits[(s.nr / 64) as usize] |= 1 << (s.nr % 64);
        }
    }
    bits
}

/// The name of io_uring opcode nr, "unknown" for one not in the table.
pub(crate) fn io_op_name(nr: u8) -> &'static str {
    IO_URING_OPS
        .iter()
        .find(|o| o.nr == nr)
        .map_or("unknown", |o| o.name)
}

/// The syscalls to hook for these events: those that report one of them,
/// those that keep the watched set current (T_WATCH) and those that may
/// change cached paths (T_TREE), in number order.
pub(crate) fn hooked(events: &[EventKind]) -> Vec<&'static SyscallDef> {
    SYSCALLS
        .iter()
        .filter(|s| s.watch || s.tree || s.events.iter().any(|k| events.contains(k)))
        .collect()
}

/// The io_uring opcodes that report one of these events.
pub(crate) fn io_ops(events: &[EventKind]) -> impl Iterator<Item = &'static IoOpDef> + '_ {
    IO_URING_OPS.iter().filter(|o| events.contains(&o.event))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn syscall_numbers_and_names_are_distinct_and_fit_the_bitmaps() {
        let mut numbers: Vec<u32> = SYSCALLS.iter().map(|s| s.nr).collect();
        numbers.sort_unstable();
        numbers.dedup();
        assert_eq!(numbers.len(), SYSCALLS.len());
        assert!(numbers.iter().all(|&n| n < 512), "FSP_NR_SYSCALLS");
        let mut names: Vec<&str> = SYSCALLS.iter().map(|s| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), SYSCALLS.len());
    }

    #[test]
    fn the_table_has_the_numbers_of_the_x86_64_abi() {
        // A few from arch/x86/entry/syscalls/syscall_64.tbl, as a check on the table.
        for (name, nr) in [
            ("openat", 257),
            ("unlinkat", 263),
            ("renameat2", 316),
            ("open_by_handle_at", 304),
            ("setxattrat", 463),
        ] {
            assert_eq!(
                SYSCALLS.iter().find(|s| s.name == name).map(|s| s.nr),
                Some(nr)
            );
        }
        assert_eq!(syscall_name(266), "symlinkat");
        assert_eq!(io_op_name(18), "OPENAT");
    }

    #[test]
    fn ia32_syscalls_have_the_numbers_of_the_ia32_abi_and_twins_in_the_table() {
        // A few from arch/x86/entry/syscalls/syscall_32.tbl.
        for (name, nr) in [
            ("open", 5),
            ("rename", 38),
            ("truncate64", 193),
            ("openat", 295),
            ("renameat2", 353),
            ("setxattrat", 463),
        ] {
            assert_eq!(
                IA32_SYSCALLS.iter().find(|s| s.name == name).map(|s| s.nr),
                Some(nr)
            );
        }
        let mut numbers: Vec<u32> = IA32_SYSCALLS.iter().map(|s| s.nr).collect();
        numbers.dedup();
        assert_eq!(numbers.len(), IA32_SYSCALLS.len(), "sorted and distinct");
        assert!(numbers.iter().all(|&n| n < 512), "FSP_NR_SYSCALLS");
        // Every handled x86-64 syscall that ia32 has is handled in ia32 too.
        for s in SYSCALLS {
            let twins = IA32_SYSCALLS
                .iter()
                .filter(|i| i.twin == Some(s.nr))
                .count();
            assert!(twins > 0, "{} has no ia32 twin", s.name);
        }
        let mut native = [0u64; 8];
        native[0] |= 1 << 2; // open
        let bits = ia32_bits(&native);
        assert_eq!(bits[0], 1 << 5);
        assert_eq!(ia32_syscall_name(193), "truncate64");
        assert_eq!(syscall_name(59), "execve");
    }

    #[test]
    fn every_event_kind_has_a_syscall_and_every_syscall_a_kind_or_a_trait() {
        for kind in EventKind::ALL {
            assert!(SYSCALLS.iter().any(|s| s.events.contains(&kind)), "{kind}");
        }
        for s in SYSCALLS {
            assert!(!s.events.is_empty() || s.tree, "{}", s.name);
        }
    }

    #[test]
    fn hooking_one_event_still_hooks_what_keeps_the_watch_current() {
        let names: Vec<&str> = hooked(&[EventKind::Open]).iter().map(|s| s.name).collect();
        for needed in [
            "openat",
            "mkdirat",
            "renameat2",
            "unlinkat",
            "mount",
            "clone3",
        ] {
            assert!(names.contains(&needed), "{needed} in {names:?}");
        }
        assert!(!names.contains(&"fchmod"));
    }
}

//! Which programs a backend loads on this kernel, and the load-time
//! constants that go with them: decided from kernel.rs's findings before
//! anything is loaded, with a reason for everything left out.
use std::collections::BTreeSet;

use crate::backend::kernel::Kernel;
use crate::backend::syscalls::{self, SyscallDef};
use crate::config::{BackendKind, Config};
use crate::event::EventKind;

/// fsprobe's load-time constants that the plan decides (bpf/core/maps.h, bpf/hooks/vfs.h).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Constants {
    pub sys_enter: [u64; 8],
    pub sys_exit: [u64; 8],
    /// The same by ia32 number (syscalls_ia32.def).
    pub ia32_enter: [u64; 8],
    pub ia32_exit: [u64; 8],
    pub vfs_syscalls: [u64; 8],
    pub io_reported: u64,
    pub vfs_hooks: bool,
    pub layout: Layout,
}

/// Where each vfs_*() exit finds its arguments (struct fsp_vfs_layout).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Layout {
    pub mkdir_dentry: u8,
    pub mkdir_ret: u8,
    pub mkdir_ret_dentry: bool,
    pub rmdir_dentry: u8,
    pub rmdir_ret: u8,
    pub unlink_dentry: u8,
    pub unlink_ret: u8,
    pub link_dentry: u8,
    pub link_ret: u8,
    pub symlink_dentry: u8,
    pub symlink_ret: u8,
    pub mknod_dentry: u8,
    pub mknod_ret: u8,
    pub notify_dentry: u8,
    pub notify_attr: u8,
    pub notify_ret: u8,
    pub rename_ret: u8,
}

/// What a backend loads and sets.
#[derive(Debug, Clone, Default)]
pub(crate) struct Plan {
    /// The BPF programs to load (by the skeleton's names).
    pub programs: BTreeSet<&'static str>,
    pub constants: Constants,
    /// Syscalls handled, and those this kernel does not have.
    pub syscalls: Vec<&'static str>,
    pub missing_syscalls: Vec<&'static str>,
    /// io_uring opcodes reported at completion.
    pub io_uring_ops: Vec<&'static str>,
    /// What could not be had, and why ("hook: reason").
    pub left_out: Vec<String>,
}

/// A VFS operation's pair of hooks: the LSM path hook (entry) and the
/// function that performs it (exit), by the suffix of their program names.
struct VfsPair {
    entry: &'static str,
    exit: &'static str,
}

const MKDIR: VfsPair = VfsPair {
    entry: "path_mkdir",
    exit: "vfs_mkdir",
};
const UNLINK: VfsPair = VfsPair {
    entry: "path_unlink",
    exit: "vfs_unlink",
};
const RMDIR: VfsPair = VfsPair {
    entry: "path_rmdir",
    exit: "vfs_rmdir",
};
const RENAME: VfsPair = VfsPair {
    entry: "path_rename",
    exit: "vfs_rename",
};
const LINK: VfsPair = VfsPair {
    entry: "path_link",
    exit: "vfs_link",
};
const SYMLINK: VfsPair = VfsPair {
    entry: "path_symlink",
    exit: "vfs_symlink",
};
const MKNOD: VfsPair = VfsPair {
    entry: "path_mknod",
    exit: "vfs_mknod",
};
const CHMOD: VfsPair = VfsPair {
    entry: "path_chmod",
    exit: "notify_change",
};
const CHOWN: VfsPair = VfsPair {
    entry: "path_chown",
    exit: "notify_change",
};
const TRUNCATE: VfsPair = VfsPair {
    entry: "path_truncate",
    exit: "notify_change",
};
const UTIMES: VfsPair = VfsPair {
    entry: "vfs_utimes",
    exit: "notify_change",
};
const ALL_PAIRS: [&VfsPair; 11] = [
    &MKDIR, &UNLINK, &RMDIR, &RENAME, &LINK, &SYMLINK, &MKNOD, &CHMOD, &CHOWN, &TRUNCATE, &UTIMES,
];

/// The kernel function a VFS program suffix hooks.
fn target(suffix: &str) -> String {
    match suffix.strip_prefix("path_") {
        Some(op) => format!("security_path_{op}"),
        None => suffix.to_owned(),
    }
}

/// The pairs whose hooks report a syscall's whole operation on the VFS
/// backends. mknod is not among them (its LSM hook also runs for O_CREAT
/// opens, and skips regular files), nor ftruncate (security_path_truncate()
/// is not on its path in every kernel), nor opens, writes, xattrs, mounts.
fn vfs_pairs_of(s: &SyscallDef) -> &'static [&'static VfsPair] {
    match s.name {
        "mkdir" | "mkdirat" => &[&MKDIR],
        "unlink" => &[&UNLINK],
        "unlinkat" => &[&UNLINK, &RMDIR],
        "rmdir" => &[&RMDIR],
        "rename" | "renameat" | "renameat2" => &[&RENAME],
        "link" | "linkat" => &[&LINK],
        "symlink" | "symlinkat" => &[&SYMLINK],
        "chmod" | "fchmod" | "fchmodat" | "fchmodat2" => &[&CHMOD],
        "chown" | "fchown" | "lchown" | "fchownat" => &[&CHOWN],
        "truncate" => &[&TRUNCATE],
        "utime" | "utimes" | "futimesat" | "utimensat" => &[&UTIMES],
        _ => &[],
    }
}

/// Syscalls whose entry the VFS hooks replace (the source of an unlink,
/// rmdir or rename is resolved in the LSM hook).
fn vfs_replaces_entry(s: &SyscallDef) -> bool {
    matches!(
        s.name,
        "unlink" | "unlinkat" | "rmdir" | "rename" | "renameat" | "renameat2"
    )
}

/// io_uring opcodes whose operations the VFS hooks report.
const VFS_IO_OPS: [&str; 5] = ["RENAMEAT", "UNLINKAT", "MKDIRAT", "SYMLINKAT", "LINKAT"];

fn set_bit(bits: &mut [u64; 8], nr: u32) {
    bits[(nr / 64) as usize] |= 1 << (nr % 64);
}

/// Test-only: leave the syscall hooks out, to show that on the VFS
/// backends the events do not depend on them (tests/backends.rs).
pub(crate) const NO_SYSCALL_HOOKS_ENV: &str = "FSPROBE_TEST_NO_SYSCALL_HOOKS";

struct Planner<'k> {
    kernel: &'k mut Kernel,
    kind: BackendKind,
    plan: Plan,
}

impl Planner<'_> {
    fn flavour(&self) -> (&'static str, &'static str) {
        match self.kind {
            BackendKind::Fentry => ("fentry_", "fexit_"),
            _ => ("kprobe_", "kretprobe_"),
        }
    }

    /// Can the program for `suffix` (entry or exit flavour) run here?
    fn usable(&mut self, suffix: &str) -> Result<(), String> {
        let func = target(suffix);
        if self.kernel.func(&func).is_none() {
            return Err(format!("{func} is not in this kernel's BTF"));
        }
        self.kernel.attachable(&func)?;
        if self.kind == BackendKind::Fentry && func == "security_path_chown" {
            self.kernel.fentry_loads(&func)?;
        }
        Ok(())
    }

    fn keep(&mut self, name: &'static str) {
        self.plan.programs.insert(name);
    }

    /// Keeps the program `<prefix><suffix>` if it can run; returns whether it does.
    fn try_keep(&mut self, prefix: &str, suffix: &str) -> bool {
        let name = format!("{prefix}{suffix}");
        let Some(static_name) = PROGRAM_NAMES.iter().copied().find(|n| *n == name) else {
            return false;
        };
        if self.plan.programs.contains(static_name) {
            return true;
        }
        match self.usable(suffix) {
            Ok(()) => {
                self.keep(static_name);
                true
            }
            Err(reason) => {
                self.plan.left_out.push(format!("{name}: {reason}"));
                false
            }
        }
    }

    /// The argument positions of the vfs_*() exits, from their prototypes.
    fn layout(&mut self) {
        let k = &self.kernel;
        let pos = |f: &str, arg: &str| -> Option<(u8, u8, bool)> {
            let p = k.func(f)?;
            Some((p.position(arg)?, p.params.len() as u8, p.returns_pointer))
        };
        let mut l = Layout::default();
        if let Some((d, n, r)) = pos("vfs_mkdir", "dentry") {
            (l.mkdir_dentry, l.mkdir_ret, l.mkdir_ret_dentry) = (d, n, r);
        }
        if let Some((d, n, _)) = pos("vfs_rmdir", "dentry") {
            (l.rmdir_dentry, l.rmdir_ret) = (d, n);
        }
        if let Some((d, n, _)) = pos("vfs_unlink", "dentry") {
            (l.unlink_dentry, l.unlink_ret) = (d, n);
        }
        if let Some((d, n, _)) = pos("vfs_link", "new_dentry") {
            (l.link_dentry, l.link_ret) = (d, n);
        }
        if let Some((d, n, _)) = pos("vfs_symlink", "dentry") {
            (l.symlink_dentry, l.symlink_ret) = (d, n);
        }
        if let Some((d, n, _)) = pos("vfs_mknod", "dentry") {
            (l.mknod_dentry, l.mknod_ret) = (d, n);
        }
        if let Some((d, n, _)) = pos("notify_change", "dentry") {
            (l.notify_dentry, l.notify_ret) = (d, n);
            l.notify_attr = k
                .func("notify_change")
                .and_then(|p| p.position("attr"))
                .unwrap_or(0);
        }
        if let Some(p) = k.func("vfs_rename") {
            l.rename_ret = p.params.len() as u8;
        }
        self.plan.constants.layout = l;
    }

    /// The VFS hooks: returns the pairs that can run.
    fn vfs_hooks(&mut self) -> Vec<&'static VfsPair> {
        let (entry, exit) = self.flavour();
        self.layout();
        let mut usable = Vec::new();
        for pair in ALL_PAIRS {
            let e = self.try_keep(entry, pair.entry);
            let x = self.try_keep(exit, pair.exit);
            if e && x {
                usable.push(pair);
            }
        }
        if self.kind == BackendKind::Kprobe
            && self.plan.programs.contains("kretprobe_notify_change")
        {
            self.try_keep("kprobe_", "notify_change");
        }
        // Opens no syscall hook reports (execve, in-kernel, io_uring without its hooks).
        if self.kind == BackendKind::Kprobe {
            self.try_keep("kprobe_", "vfs_open");
        }
        self.try_keep(exit, "vfs_open");
        // Which io_uring request a thread issues (the VFS events' origin).
        self.try_keep(entry, "io_issue_sqe");
        self.try_keep(exit, "io_issue_sqe");
        usable
    }

    /// io_uring's submission and completion tracepoints, in this kernel's form.
    fn io_uring(&mut self, config: &Config, vfs: &[&'static VfsPair]) {
        let k = &self.kernel;
        let submit = if k.tracepoint("io_uring_submit_req").is_some() {
            Some("fsp_io_submit_req")
        } else {
            match k.tracepoint("io_uring_submit_sqe").map(|p| p.params.len()) {
                Some(2) => Some("fsp_io_submit_sqe"),
                Some(7) => Some("fsp_io_submit_sqe_510"),
                _ => None,
            }
        };
        let complete = match k.tracepoint("io_uring_complete").map(|p| p.params.len()) {
            Some(3) => Some("fsp_io_complete_cqe"),
            Some(7) => Some("fsp_io_complete"),
            Some(4) => Some("fsp_io_complete_510"),
            _ => None,
        };
        let (Some(submit), Some(complete)) = (submit, complete) else {
            self.plan
                .left_out
                .push("io_uring: no io_uring tracepoints of a known form".into());
            return;
        };
        self.keep(submit);
        self.keep(complete);
        let vfs_covers_names = [&MKDIR, &UNLINK, &RMDIR, &RENAME, &LINK, &SYMLINK]
            .iter()
            .all(|p| vfs.iter().any(|v| std::ptr::eq(*v, *p)));
        // The namespace ops keep the watch current whatever events are selected.
        let mut wanted: Vec<EventKind> = config.events.clone();
        wanted.extend([
            EventKind::Mkdir,
            EventKind::Rename,
            EventKind::Unlink,
            EventKind::Rmdir,
        ]);
        for op in syscalls::io_ops(&wanted) {
            if vfs_covers_names && VFS_IO_OPS.contains(&op.name) {
                continue;
            }
            self.plan.constants.io_reported |= 1 << op.nr;
            self.plan.io_uring_ops.push(op.name);
        }
    }

    /// The syscall hooks: which syscalls each handles.
    fn syscalls(&mut self, config: &Config, vfs: &[&'static VfsPair]) {
        if std::env::var_os(NO_SYSCALL_HOOKS_ENV).is_some() {
            self.plan.left_out.push(format!(
                "syscall hooks: {NO_SYSCALL_HOOKS_ENV} is set (test only)"
            ));
            return;
        }
        self.keep("fsp_sys_enter");
        self.keep("fsp_sys_exit");
        let is_vfs = self.kind != BackendKind::Tracepoint;
        for s in syscalls::hooked(&config.events) {
            if !self.kernel.has_syscall(s.tracefs) {
                self.plan.missing_syscalls.push(s.name);
                continue;
            }
            self.plan.syscalls.push(s.name);
            let pairs = vfs_pairs_of(s);
            let covered = is_vfs
                && !pairs.is_empty()
                && pairs
                    .iter()
                    .all(|p| vfs.iter().any(|v| std::ptr::eq(*v, *p)));
            let c = &mut self.plan.constants;
            set_bit(&mut c.sys_exit, s.nr);
            if s.entry && !(covered && vfs_replaces_entry(s)) {
                set_bit(&mut c.sys_enter, s.nr);
            }
            if covered {
                set_bit(&mut c.vfs_syscalls, s.nr);
            }
        }
        // 32-bit syscalls (int 0x80 works in a 64-bit process too) as their twins.
        let c = &mut self.plan.constants;
        c.ia32_enter = syscalls::ia32_bits(&c.sys_enter);
        c.ia32_exit = syscalls::ia32_bits(&c.sys_exit);
    }
}

/// The programs of the skeleton this module may choose (their C names).
const PROGRAM_NAMES: &[&str] = &[
    "fentry_path_mkdir",
    "fentry_path_mknod",
    "fentry_path_symlink",
    "fentry_path_unlink",
    "fentry_path_rmdir",
    "fentry_path_rename",
    "fentry_path_link",
    "fentry_path_chmod",
    "fentry_path_chown",
    "fentry_path_truncate",
    "fentry_vfs_utimes",
    "fexit_vfs_mkdir",
    "fexit_vfs_mknod",
    "fexit_vfs_symlink",
    "fexit_vfs_unlink",
    "fexit_vfs_rmdir",
    "fexit_vfs_rename",
    "fexit_vfs_link",
    "fexit_notify_change",
    "fexit_vfs_open",
    "fentry_io_issue_sqe",
    "fexit_io_issue_sqe",
    "kprobe_path_mkdir",
    "kprobe_path_mknod",
    "kprobe_path_symlink",
    "kprobe_path_unlink",
    "kprobe_path_rmdir",
    "kprobe_path_rename",
    "kprobe_path_link",
    "kprobe_path_chmod",
    "kprobe_path_chown",
    "kprobe_path_truncate",
    "kprobe_vfs_utimes",
    "kprobe_notify_change",
    "kretprobe_vfs_mkdir",
    "kretprobe_vfs_mknod",
    "kretprobe_vfs_symlink",
    "kretprobe_vfs_unlink",
    "kretprobe_vfs_rmdir",
    "kretprobe_vfs_rename",
    "kretprobe_vfs_link",
    "kretprobe_notify_change",
    "kprobe_vfs_open",
    "kretprobe_vfs_open",
    "kprobe_io_issue_sqe",
    "kretprobe_io_issue_sqe",
];

/// The plan of backend `kind` (not Auto) on this kernel.
pub(crate) fn plan(kernel: &mut Kernel, kind: BackendKind, config: &Config) -> Plan {
    let mut p = Planner {
        kernel,
        kind,
        plan: Plan::default(),
    };
    let vfs = if kind == BackendKind::Tracepoint {
        Vec::new()
    } else {
        p.plan.constants.vfs_hooks = true;
        p.vfs_hooks()
    };
    p.syscalls(config, &vfs);
    p.io_uring(config, &vfs);
    if p.kernel.tracepoint("sched_process_exit").is_some() {
        p.keep("fsp_proc_exit");
    } else {
        p.plan
            .left_out
            .push("process exits: no sched_process_exit tracepoint".into());
    }
    p.plan
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_vfs_pair_names_programs_of_both_flavours() {
        for pair in ALL_PAIRS {
            for (entry, exit) in [("fentry_", "fexit_"), ("kprobe_", "kretprobe_")] {
                for name in [
                    format!("{entry}{}", pair.entry),
                    format!("{exit}{}", pair.exit),
                ] {
                    assert!(PROGRAM_NAMES.contains(&name.as_str()), "{name}");
                }
            }
        }
        assert_eq!(target("path_mkdir"), "security_path_mkdir");
        assert_eq!(target("vfs_utimes"), "vfs_utimes");
    }

    #[test]
    fn the_program_list_matches_the_bpf_object() {
        let c = include_str!("../../bpf/hooks/vfs.h").to_owned()
            + include_str!("../../bpf/hooks/io_uring.h");
        for name in PROGRAM_NAMES {
            assert!(
                c.contains(&format!("({name},"))
                    || c.contains(&format!("({name})"))
                    || c.contains(&format!(" {name}(")),
                "{name} is not a program of bpf/hooks"
            );
        }
    }
}

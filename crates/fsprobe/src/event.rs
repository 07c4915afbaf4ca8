//! The events fsprobe reports, as typed values.
use std::fmt::{self, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

use crate::ascii::{Ascii, base64_quads};
use crate::clock::Rfc3339;

// Values formatted for JSON (times, devices, octal modes, flag names) are
// built on the stack (src/ascii.rs) or serialized through small
// Display/iterator wrappers, never as a String or a Vec: serializing an
// event allocates nothing.

/// The kinds of file-system event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
#[non_exhaustive]
pub enum EventKind {
    /// A file was opened (open, openat, openat2, creat, open_by_handle_at,
    /// io_uring OPENAT/OPENAT2, an executable opened by execve).
    Open = 1,
    /// A directory was created (mkdir, mkdirat, io_uring MKDIRAT).
    Mkdir = 2,
    /// A hard link was created (link, linkat, io_uring LINKAT).
    Link = 3,
    /// A file or directory was renamed or moved (rename, renameat, renameat2, io_uring RENAMEAT).
    Rename = 4,
    /// Attributes changed: mode, owner, times or size (chmod, chown, utimensat, truncate families).
    Setattr = 5,
    /// A name was removed (unlink, unlinkat, io_uring UNLINKAT).
    Unlink = 6,
    /// A directory was removed (rmdir, unlinkat with AT_REMOVEDIR).
    Rmdir = 7,
    /// A file was written (write family, copy_file_range, sendfile,
    /// splice, fallocate, io_uring writes). Off unless asked for.
    Modify = 8,
    /// A symbolic link was created (symlink, symlinkat, io_uring SYMLINKAT).
    Symlink = 9,
    /// A FIFO, socket or device node was created (mknod, mknodat).
    Mknod = 10,
    /// An extended attribute was set (setxattr family, io_uring SETXATTR).
    Setxattr = 11,
    /// An extended attribute was removed (removexattr family).
    Removexattr = 12,
    /// A mount was attached (mount, move_mount, pivot_root).
    Mount = 13,
    /// A mount was detached (umount2).
    Umount = 14,
}

impl EventKind {
    /// Every kind, in the order of the seed's documentation, then the new ones.
    pub const ALL: [EventKind; 14] = [
        EventKind::Open,
        EventKind::Mkdir,
        EventKind::Link,
        EventKind::Rename,
        EventKind::Setattr,
        EventKind::Unlink,
        EventKind::Rmdir,
        EventKind::Modify,
        EventKind::Symlink,
        EventKind::Mknod,
        EventKind::Setxattr,
        EventKind::Removexattr,
        EventKind::Mount,
        EventKind::Umount,
    ];

    /// The name used on the command line and in JSON.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Open => "open",
            EventKind::Mkdir => "mkdir",
            EventKind::Link => "link",
            EventKind::Rename => "rename",
            EventKind::Setattr => "setattr",
            EventKind::Unlink => "unlink",
            EventKind::Rmdir => "rmdir",
            EventKind::Modify => "modify",
            EventKind::Symlink => "symlink",
            EventKind::Mknod => "mknod",
            EventKind::Setxattr => "setxattr",
            EventKind::Removexattr => "removexattr",
            EventKind::Mount => "mount",
            EventKind::Umount => "umount",
        }
    }

    /// The kind a record's `kind` byte names (enum fsp_kind).
    pub(crate) fn from_raw(raw: u8) -> Option<EventKind> {
        EventKind::ALL.into_iter().find(|k| *k as u8 == raw)
    }

    /// The kinds reported when none are asked for: all but modify.
    pub fn defaults() -> Vec<EventKind> {
        EventKind::ALL
            .into_iter()
            .filter(|k| *k != EventKind::Modify)
            .collect()
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for EventKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        EventKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
                format!(
                    "unknown event '{s}' (expected one of: {})",
                    names.join(", ")
                )
            })
    }
}

impl Serialize for EventKind {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// A container, recognised from its cgroup path.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct ContainerId {
    /// "docker", "containerd", "cri-o", "podman", "systemd-nspawn" or "lxc".
    pub runtime: &'static str,
    /// The runtime's id (64 hex digits) or the machine's name.
    pub id: std::sync::Arc<str>,
}

/// Who caused the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Process {
    /// Thread-group id (what user space calls the pid).
    pub pid: u32,
    /// Thread id.
    pub tid: u32,
    /// Parent's pid.
    pub ppid: u32,
    /// Command name (task comm, at most 15 bytes).
    pub comm: String,
    /// Real user id.
    pub uid: u32,
    /// Real group id.
    pub gid: u32,
    /// Effective user id.
    pub euid: u32,
    /// Effective group id.
    pub egid: u32,
    /// When the process started (its thread group leader's start time,
    /// nanoseconds since boot, as `/proc/PID/stat`'s starttime counts it):
    /// with `pid`, it tells processes apart across pid reuse.
    pub start_time_ns: u64,
    /// The executable (the task's `mm->exe_file`), resolved in the kernel
    /// like any file; `None` for kernel threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<Arc<FileRef>>,
    /// Inode number of the task's mount namespace (as in `/proc/PID/ns/mnt`).
    pub mnt_ns: u32,
    /// Inode number of the task's pid namespace (as in `/proc/PID/ns/pid`).
    pub pid_ns: u32,
    /// cgroup v2 id: the inode number of the cgroup's directory.
    pub cgroup_id: u64,
    /// The cgroup's path under the cgroup2 mount, when it still exists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<std::sync::Arc<str>>,
    /// The container, when the cgroup path follows a known runtime's pattern.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub container: Option<ContainerId>,
}

/// A file named by an event, identified by the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct FileRef {
    /// Absolute path, resolved from kernel dentries up to the root of the
    /// acting process's mount namespace: the path as that process sees it.
    pub path: PathBuf,
    /// When the process is in another mount namespace than fsprobe: the
    /// same file's path in fsprobe's namespace (the host), if that file
    /// system is visible there.
    pub host_path: Option<PathBuf>,
    /// Where the file's mount is mounted, in the process's namespace
    /// (from that namespace's mountinfo); `None` when it could not be read.
    pub mount_point: Option<Arc<Path>>,
    /// Inode number (64 bits); 0 when the file could not be identified.
    pub inode: u64,
    /// The inode's generation (`i_generation`): with `inode`, tells this
    /// file from a later one that reuses its number; 0 where the file
    /// system sets none.
    pub inode_generation: u32,
    /// Device of the file system, as `(major, minor)`.
    pub device: (u32, u32),
    /// Mount id, as in /proc/self/mountinfo.
    pub mount_id: u32,
    /// Inode mode (type and permission bits); 0 when unknown.
    pub mode: u16,
    /// The walk stopped before reaching the root: the path's start is missing.
    pub truncated: bool,
    /// How many trailing bytes of `path` were taken from the syscall's
    /// argument rather than from kernel dentries (0: none).
    pub user_suffix_len: u16,
    /// The walk reached a file-system root that is not its mount's root.
    pub disconnected: bool,
    /// No path could be obtained at all.
    pub missing: bool,
    /// The file system's type (e.g. "ext4", "tmpfs", "overlay").
    pub fstype: &'static str,
}

impl FileRef {
    /// The path as bytes.
    pub fn path_bytes(&self) -> &[u8] {
        self.path.as_os_str().as_bytes()
    }

    /// True when every byte of the path came from kernel dentries.
    pub fn is_kernel_resolved(&self) -> bool {
        !self.truncated && !self.missing && self.user_suffix_len == 0
    }
}

/// Serializes a path as a JSON string under `key`; a path that is not
/// valid UTF-8 is written with U+FFFD replacements plus its exact bytes in
/// base64 under `<key>_bytes`, so nothing is lost.
fn serialize_path<M: SerializeMap>(map: &mut M, key: &str, path: &Path) -> Result<(), M::Error> {
    serialize_bytes(map, key, path.as_os_str().as_bytes())
}

/// [`serialize_path`] for bytes that are not a path.
fn serialize_bytes<M: SerializeMap>(map: &mut M, key: &str, bytes: &[u8]) -> Result<(), M::Error> {
    match std::str::from_utf8(bytes) {
        Ok(s) => map.serialize_entry(key, s),
        Err(_) => {
            map.serialize_entry(key, &format_args!("{}", Lossy(bytes)))?;
            map.serialize_entry(
                &format_args!("{key}_bytes"),
                &format_args!("{}", Base64(bytes)),
            )
        }
    }
}

/// Bytes displayed as `String::from_utf8_lossy` would make them: each
/// invalid sequence as U+FFFD.
struct Lossy<'a>(&'a [u8]);

impl fmt::Display for Lossy<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for chunk in self.0.utf8_chunks() {
            f.write_str(chunk.valid())?;
            if !chunk.invalid().is_empty() {
                f.write_char(char::REPLACEMENT_CHARACTER)?;
            }
        }
        Ok(())
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    let _ = write!(out, "{}", Base64(bytes));
    out
}

/// Bytes displayed as [`base64`].
struct Base64<'a>(&'a [u8]);

impl fmt::Display for Base64<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for quad in base64_quads(self.0) {
            // ASCII, so always UTF-8.
            f.write_str(std::str::from_utf8(&quad).map_err(|_| fmt::Error)?)?;
        }
        Ok(())
    }
}

/// A sequence of names, serialized from the iterator rather than from a
/// collected Vec.
struct Names<I>(I);

impl<I: Iterator<Item = &'static str> + Clone> Serialize for Names<I> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.0.clone())
    }
}

impl Serialize for FileRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        serialize_path(&mut map, "path", &self.path)?;
        if let Some(host) = &self.host_path {
            serialize_path(&mut map, "host_path", host)?;
        }
        map.serialize_entry("inode", &self.inode)?;
        map.serialize_entry("inode_generation", &self.inode_generation)?;
        map.serialize_entry("mount_id", &self.mount_id)?;
        if let Some(point) = &self.mount_point {
            serialize_path(&mut map, "mount_point", point)?;
        }
        let (major, minor) = self.device;
        map.serialize_entry("device", &Ascii::device((major, minor)))?;
        map.serialize_entry("mode", &Ascii::octal(u32::from(self.mode)))?;
        if !self.fstype.is_empty() {
            map.serialize_entry("fstype", &self.fstype)?;
        }
        if self.truncated {
            map.serialize_entry("truncated", &true)?;
        }
        if self.user_suffix_len > 0 {
            map.serialize_entry("user_suffix_len", &self.user_suffix_len)?;
        }
        if self.disconnected {
            map.serialize_entry("disconnected", &true)?;
        }
        if self.missing {
            map.serialize_entry("missing", &true)?;
        }
        map.end()
    }
}

/// What an open asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct OpenInfo {
    /// The O_* flags as passed to the syscall.
    pub flags: u32,
    /// The creation mode (meaningful with O_CREAT or O_TMPFILE).
    pub mode: u32,
}

const OPEN_FLAG_NAMES: &[(u32, &str)] = &[
    (0o100, "O_CREAT"),
    (0o200, "O_EXCL"),
    (0o400, "O_NOCTTY"),
    (0o1000, "O_TRUNC"),
    (0o2000, "O_APPEND"),
    (0o4000, "O_NONBLOCK"),
    (0o10000, "O_DSYNC"),
    (0o40000, "O_DIRECT"),
    (0o200000, "O_DIRECTORY"),
    (0o400000, "O_NOFOLLOW"),
    (0o1000000, "O_NOATIME"),
    (0o2000000, "O_CLOEXEC"),
    (0o4000000, "O_SYNC"),
    (0o10000000, "O_PATH"),
    (0o20000000, "O_TMPFILE"),
];

impl OpenInfo {
    /// The flags as symbolic names, access mode first.
    pub fn flag_names(&self) -> Vec<&'static str> {
        self.flag_name_iter().collect()
    }

    /// [`OpenInfo::flag_names`], without a Vec.
    pub(crate) fn flag_name_iter(&self) -> impl Iterator<Item = &'static str> + Clone + use<> {
        let access = match self.flags & 3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => "O_ACCMODE",
        };
        let mut rest = self.flags & !3;
        if rest & 0o20200000 == 0o20200000 {
            // O_TMPFILE includes O_DIRECTORY's bit.
            rest &= !0o200000;
        }
        std::iter::once(access).chain(
            OPEN_FLAG_NAMES
                .iter()
                .filter(move |(bit, _)| rest & bit == *bit)
                .map(|(_, n)| *n),
        )
    }
}

impl Serialize for OpenInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("flags", &Names(self.flag_name_iter()))?;
        map.serialize_entry("raw_flags", &self.flags)?;
        map.serialize_entry("mode", &Ascii::octal(self.mode))?;
        map.end()
    }
}

/// What a setattr event changed; `None` for what it left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
#[non_exhaustive]
pub struct SetAttr {
    /// New permission bits (chmod family).
    #[serde(skip_serializing_if = "Option::is_none", serialize_with = "octal")]
    pub mode: Option<u32>,
    /// New owner (chown family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// New group (chown family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// New size (truncate family).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub size: Option<i64>,
    /// Access or modification times were set (utime family).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub times: bool,
}

fn octal<S: Serializer>(mode: &Option<u32>, s: S) -> Result<S::Ok, S::Error> {
    match mode {
        Some(m) => Ascii::octal(*m).serialize(s),
        None => s.serialize_none(),
    }
}

/// How an operation reached the kernel.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Origin {
    /// A syscall, by name (e.g. "openat"; "unknown" for one fsprobe has no name for).
    Syscall(&'static str),
    /// A 32-bit (ia32) syscall, by its ia32 name (e.g. "truncate64"): made
    /// through int 0x80, by a 32-bit or a 64-bit process.
    Ia32Syscall(&'static str),
    /// An io_uring request.
    IoUring(IoUringRequest),
    /// No syscall was in flight: a kernel thread acted (nfsd, a kworker, ...).
    Kernel,
}

/// The io_uring request behind an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct IoUringRequest {
    /// The opcode without its `IORING_OP_` prefix (e.g. "OPENAT"), or "unknown".
    pub opcode: &'static str,
    /// The opcode's number.
    pub opcode_nr: u8,
    /// The submitter's user_data.
    pub user_data: u64,
    /// It completed in an io-wq worker or the SQPOLL thread (tid is theirs).
    pub worker: bool,
    /// Submitted with IOSQE_CQE_SKIP_SUCCESS: the kernel posts no
    /// completion on success, so it is reported at submission (retval 0);
    /// a failure is reported again with its error.
    pub unconfirmed: bool,
}

impl Serialize for Origin {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(match self {
            Origin::Syscall(_) | Origin::Ia32Syscall(_) => "syscall",
            Origin::IoUring(_) => "io_uring",
            Origin::Kernel => "kernel",
        })
    }
}

impl Serialize for IoUringRequest {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("opcode", self.opcode)?;
        map.serialize_entry("user_data", &self.user_data)?;
        if self.worker {
            map.serialize_entry("worker", &true)?;
        }
        if self.unconfirmed {
            map.serialize_entry("unconfirmed", &true)?;
        }
        map.end()
    }
}

/// A string an event carries besides its paths: a symlink's target, an
/// extended attribute's name, a mount's source. Not a path fsprobe
/// resolved: the kernel's copy of what the caller passed, or the caller's
/// memory itself (`from_user`), which the caller may have changed since.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExtraString {
    /// The bytes, as they were read.
    pub bytes: Box<[u8]>,
    /// Read from the caller's memory rather than from the kernel's copy.
    pub from_user: bool,
    /// Longer than fsprobe reads (1,023 bytes): cut.
    pub truncated: bool,
}

impl ExtraString {
    /// Serializes under `key` (plus `<key>_bytes` when not UTF-8), with
    /// `user_supplied` and `truncated` flags when set.
    fn serialize_into<M: SerializeMap>(&self, map: &mut M, key: &str) -> Result<(), M::Error> {
        serialize_bytes(map, key, &self.bytes)?;
        if self.from_user {
            map.serialize_entry("user_supplied", &true)?;
        }
        if self.truncated {
            map.serialize_entry(&format_args!("{key}_truncated"), &true)?;
        }
        Ok(())
    }
}

/// The type of a node created by mknod, from its mode.
pub(crate) fn node_type(mode: u32) -> &'static str {
    match mode & 0o170000 {
        0o010000 => "fifo",
        0o020000 => "char",
        0o060000 => "block",
        0o140000 => "socket",
        0o100000 | 0 => "regular",
        _ => "unknown",
    }
}

/// What a mknod event created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct MknodInfo {
    /// The requested mode: type and permission bits.
    pub mode: u32,
    /// For device nodes, the device as `(major, minor)`.
    pub rdev: (u32, u32),
}

impl Serialize for MknodInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("type", node_type(self.mode))?;
        map.serialize_entry("mode", &Ascii::octal(self.mode & 0o7777))?;
        if matches!(self.mode & 0o170000, 0o020000 | 0o060000) {
            let (major, minor) = self.rdev;
            map.serialize_entry("rdev", &Ascii::device((major, minor)))?;
        }
        map.end()
    }
}

/// The extended attribute a setxattr or removexattr event names.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct XattrInfo {
    /// Its name, e.g. `security.capability`.
    pub name: Option<ExtraString>,
    /// setxattr: the value's size in bytes.
    pub size: Option<u64>,
    /// setxattr: XATTR_CREATE (1) and XATTR_REPLACE (2).
    pub flags: u32,
}

impl Serialize for XattrInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(name) = &self.name {
            name.serialize_into(&mut map, "name")?;
        }
        if let Some(size) = self.size {
            map.serialize_entry("size", &size)?;
        }
        let flags = [(1, "XATTR_CREATE"), (2, "XATTR_REPLACE")]
            .into_iter()
            .filter(|(bit, _)| self.flags & bit != 0)
            .map(|(_, n)| n);
        if self.flags & 3 != 0 {
            map.serialize_entry("flags", &Names(flags))?;
        }
        map.end()
    }
}

/// What a mount or umount event did.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct MountInfo {
    /// mount: the source (a device, a directory to bind, "tmpfs", ...);
    /// umount: the mount's source as the kernel kept it.
    pub source: Option<ExtraString>,
    /// mount: the MS_* flags; umount: the MNT_* flags.
    pub flags: u32,
}

impl Serialize for MountInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        if let Some(source) = &self.source {
            source.serialize_into(&mut map, "source")?;
        }
        map.serialize_entry("flags", &self.flags)?;
        map.end()
    }
}

/// One file-system operation that reached the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Event {
    /// Position in its CPU's stream of records that passed the filters:
    /// consecutive unless records were lost in between.
    pub seq: u64,
    /// The CPU the event was recorded on.
    pub cpu: u32,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub time_ns: i128,
    /// What happened.
    pub kind: EventKind,
    /// How it reached the kernel.
    pub origin: Origin,
    /// The operation's result: the syscall's return value (an fd, a byte
    /// count, 0), the io_uring completion's, or the VFS function's;
    /// negative errno on failure.
    pub retval: i64,
    /// Who did it.
    pub process: Process,
    /// The file (rename and link: the source; mount: the mount's root).
    pub file: FileRef,
    /// Rename: the new name; link: the new link.
    pub target: Option<FileRef>,
    /// Open events: flags and mode.
    pub open: Option<OpenInfo>,
    /// Mkdir events: the requested mode.
    pub mkdir_mode: Option<u32>,
    /// Setattr events: what changed.
    pub setattr: Option<SetAttr>,
    /// Symlink events: the link's target, as the caller gave it.
    pub symlink_target: Option<ExtraString>,
    /// Mknod events: what was created.
    pub mknod: Option<MknodInfo>,
    /// Setxattr and removexattr events: the attribute.
    pub xattr: Option<XattrInfo>,
    /// Mount and umount events.
    pub mount: Option<MountInfo>,
}

impl Event {
    /// The time as RFC 3339 UTC with nanoseconds.
    pub fn time_rfc3339(&self) -> String {
        crate::clock::rfc3339(self.time_ns)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.file.path
    }

    /// The target's path, for rename and link.
    pub fn target_path(&self) -> Option<&Path> {
        self.target.as_ref().map(|t| t.path.as_path())
    }

    /// The syscall that did it, when one did.
    pub fn syscall(&self) -> Option<&'static str> {
        match self.origin {
            Origin::Syscall(name) | Origin::Ia32Syscall(name) => Some(name),
            _ => None,
        }
    }
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("time", &Rfc3339(self.time_ns))?;
        map.serialize_entry("event", &self.kind)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("cpu", &self.cpu)?;
        map.serialize_entry("origin", &self.origin)?;
        match &self.origin {
            Origin::Syscall(name) => map.serialize_entry("syscall", name)?,
            Origin::Ia32Syscall(name) => {
                map.serialize_entry("syscall", name)?;
                map.serialize_entry("syscall_abi", "ia32")?;
            }
            Origin::IoUring(io) => map.serialize_entry("io_uring", io)?,
            Origin::Kernel => {}
        }
        map.serialize_entry("retval", &self.retval)?;
        map.serialize_entry("process", &self.process)?;
        map.serialize_entry("file", &self.file)?;
        if let Some(t) = &self.target {
            map.serialize_entry("target", t)?;
        }
        if let Some(o) = &self.open {
            map.serialize_entry("open", o)?;
        }
        if let Some(m) = self.mkdir_mode {
            map.serialize_entry("mode", &Ascii::octal(m))?;
        }
        if let Some(a) = &self.setattr {
            map.serialize_entry("setattr", a)?;
        }
        if let Some(t) = &self.symlink_target {
            map.serialize_entry("symlink", &SymlinkJson(t))?;
        }
        if let Some(m) = &self.mknod {
            map.serialize_entry("mknod", m)?;
        }
        if let Some(x) = &self.xattr {
            map.serialize_entry("xattr", x)?;
        }
        if let Some(m) = &self.mount {
            map.serialize_entry("mount", m)?;
        }
        map.end()
    }
}

/// `{"target": ..., "user_supplied": ...}` for a symlink event.
struct SymlinkJson<'a>(&'a ExtraString);

impl Serialize for SymlinkJson<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        self.0.serialize_into(&mut map, "target")?;
        map.end()
    }
}

/// Why events were lost.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum LossReason {
    /// The kernel-to-user buffer was full (raise --perf-buffer-size).
    BufferFull,
    /// More syscalls in flight at once than the probe can track.
    TooManyInFlight,
    /// Still in the kernel buffer when the probe stopped and its last
    /// read ran out of time.
    Unread,
}

impl LossReason {
    /// The name in JSON (`reason`).
    pub fn name(self) -> &'static str {
        match self {
            LossReason::BufferFull => "buffer_full",
            LossReason::TooManyInFlight => "too_many_in_flight",
            LossReason::Unread => "unread",
        }
    }

    /// What happened, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            LossReason::BufferFull => "the kernel buffer was full",
            LossReason::TooManyInFlight => "too many syscalls were in flight",
            LossReason::Unread => {
                "still in the kernel buffer when the stop's last read ran out of time"
            }
        }
    }
}

impl Serialize for LossReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// Why files could not be watched.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum UnwatchedReason {
    /// The in-kernel filter is full (raise --max-watches).
    WatchLimit,
    /// Entries of a directory that entered a watched tree could not be
    /// read (it moved again, or permissions), so are not watched.
    Unreadable,
}

impl UnwatchedReason {
    /// The name in JSON (`reason`).
    pub fn name(self) -> &'static str {
        match self {
            UnwatchedReason::WatchLimit => "watch_limit",
            UnwatchedReason::Unreadable => "unreadable",
        }
    }

    /// What happened, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            UnwatchedReason::WatchLimit => "the watch limit was reached",
            UnwatchedReason::Unreadable => "their directory could not be read",
        }
    }
}

impl Serialize for UnwatchedReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What the probe delivers: events, and notices of what it lost or
/// could not watch.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Record {
    /// A file-system event.
    Event(Box<Event>),
    /// `count` events were lost here, between the records around it.
    Lost {
        /// How many.
        count: u64,
        /// Why.
        reason: LossReason,
        /// The CPU they were lost on, when known (a gap in its `seq`).
        cpu: Option<u32>,
    },
    /// `count` files or directories could not be watched, from here on:
    /// their events will not be reported (nor, for a directory, those of
    /// what it holds).
    Unwatched {
        /// How many.
        count: u64,
        /// Why.
        reason: UnwatchedReason,
        /// The directory they are in, when known.
        path: Option<PathBuf>,
    },
}

impl Record {
    /// The record's NDJSON object, as serde_json writes it, appended to
    /// `out` (without a newline); allocates nothing once `out` has the
    /// room.
    ///
    /// The same bytes as `serde_json::to_writer(out, self)`, several times
    /// faster: keys are written as literals, not escaped at run time.
    pub fn write_json(&self, out: &mut Vec<u8>) {
        crate::json::write_record(self, out);
    }
}

impl Serialize for Record {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Record::Event(e) => e.serialize(s),
            Record::Lost { count, reason, cpu } => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("event", "lost")?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("reason", reason)?;
                if let Some(cpu) = cpu {
                    map.serialize_entry("cpu", cpu)?;
                }
                map.end()
            }
            Record::Unwatched {
                count,
                reason,
                path,
            } => {
                let mut map = s.serialize_map(None)?;
                map.serialize_entry("event", "unwatched")?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("reason", reason)?;
                if let Some(path) = path {
                    serialize_path(&mut map, "path", path)?;
                }
                map.end()
            }
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use std::ffi::OsStr;

    /// A file under /data on ext4.
    fn file(path: &[u8]) -> FileRef {
        FileRef {
            path: PathBuf::from(OsStr::from_bytes(path)),
            host_path: None,
            mount_point: Some(Arc::from(Path::new("/data"))),
            inode: 1_234_567_890_123,
            inode_generation: 42,
            device: (259, 3),
            mount_id: 31,
            mode: 0o100644,
            truncated: false,
            user_suffix_len: 0,
            disconnected: false,
            missing: false,
            fstype: "ext4",
        }
    }

    /// A process without executable, cgroup path or container.
    fn process() -> Process {
        Process {
            pid: 4321,
            tid: 4322,
            ppid: 1,
            comm: "cat".to_owned(),
            uid: 1000,
            gid: 1000,
            euid: 0,
            egid: 0,
            start_time_ns: 987_654_321,
            exe: None,
            mnt_ns: 4_026_531_841,
            pid_ns: 4_026_531_836,
            cgroup_id: 7777,
            cgroup: None,
            container: None,
        }
    }

    /// A process in a docker container, with its executable.
    fn container_process() -> Process {
        let mut exe = file(b"/usr/bin/cat");
        exe.host_path = Some(PathBuf::from(
            "/var/lib/docker/overlay2/x/merged/usr/bin/cat",
        ));
        exe.mount_point = Some(Arc::from(Path::new("/")));
        exe.fstype = "overlay";
        exe.mode = 0o100755;
        Process {
            comm: "we\"ird\u{1}".to_owned(),
            exe: Some(Arc::new(exe)),
            cgroup: Some(Arc::from("/system.slice/docker-abc.scope")),
            container: Some(ContainerId {
                runtime: "docker",
                id: Arc::from("abc"),
            }),
            ..process()
        }
    }

    fn event(kind: EventKind, origin: Origin) -> Event {
        Event {
            seq: 17,
            cpu: 1,
            time_ns: 1_795_896_103_123_456_789,
            kind,
            origin,
            retval: 3,
            process: process(),
            file: file(b"/data/notes.txt"),
            target: None,
            open: None,
            mkdir_mode: None,
            setattr: None,
            symlink_target: None,
            mknod: None,
            xattr: None,
            mount: None,
        }
    }

    /// An ordinary open: openat(O_RDONLY|O_CLOEXEC) of a UTF-8 path.
    pub(crate) fn open_event() -> Event {
        Event {
            open: Some(OpenInfo {
                flags: 0o2000000,
                mode: 0,
            }),
            ..event(EventKind::Open, Origin::Syscall("openat"))
        }
    }

    /// [`open_event`] by a process in a container, with its executable.
    pub(crate) fn container_open_event() -> Event {
        Event {
            process: container_process(),
            ..open_event()
        }
    }

    fn json(record: &Record) -> String {
        serde_json::to_string(record).unwrap()
    }

    /// Records of many sorts, each with its JSON as fsprobe writes it
    /// (the same bytes since before serializing stopped allocating).
    pub(crate) fn golden_records() -> Vec<(Record, &'static str)> {
        let mut rename = event(EventKind::Rename, Origin::Syscall("renameat2"));
        rename.retval = 0;
        let mut to = file(b"/data/new \"name\".txt");
        to.host_path = Some(PathBuf::from("/host/data/new.txt"));
        rename.target = Some(to);

        let mut odd = event(EventKind::Unlink, Origin::Kernel);
        odd.retval = -2;
        odd.file = file(b"/data/bad\xff\"\n\xc3");
        odd.file.host_path = Some(PathBuf::from(OsStr::from_bytes(b"/h\xfe")));
        odd.file.mount_point = None;
        odd.file.truncated = true;
        odd.file.user_suffix_len = 4;
        odd.file.disconnected = true;
        odd.file.missing = true;
        odd.file.fstype = "";
        odd.file.mode = 0;

        let events: Vec<(Event, &str)> = vec![
            (
                open_event(),
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"open","seq":17,"cpu":1,"origin":"syscall","syscall":"openat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"open":{"flags":["O_RDONLY","O_CLOEXEC"],"raw_flags":524288,"mode":"0"}}"#,
            ),
            (
                container_open_event(),
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"open","seq":17,"cpu":1,"origin":"syscall","syscall":"openat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"we\"ird\u0001","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"exe":{"path":"/usr/bin/cat","host_path":"/var/lib/docker/overlay2/x/merged/usr/bin/cat","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/","device":"259:3","mode":"100755","fstype":"overlay"},"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777,"cgroup":"/system.slice/docker-abc.scope","container":{"runtime":"docker","id":"abc"}},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"open":{"flags":["O_RDONLY","O_CLOEXEC"],"raw_flags":524288,"mode":"0"}}"#,
            ),
            (
                Event {
                    open: Some(OpenInfo {
                        flags: 0o1 | 0o100 | 0o200 | 0o1000 | 0o2000000,
                        mode: 0o640,
                    }),
                    ..event(EventKind::Open, Origin::Syscall("openat"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"open","seq":17,"cpu":1,"origin":"syscall","syscall":"openat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"open":{"flags":["O_WRONLY","O_CREAT","O_EXCL","O_TRUNC","O_CLOEXEC"],"raw_flags":524993,"mode":"640"}}"#,
            ),
            (
                Event {
                    open: Some(OpenInfo {
                        flags: 0o2 | 0o20200000 | 0o4000000,
                        mode: 0o600,
                    }),
                    ..event(
                        EventKind::Open,
                        Origin::IoUring(IoUringRequest {
                            opcode: "OPENAT2",
                            opcode_nr: 28,
                            user_data: u64::MAX,
                            worker: true,
                            unconfirmed: true,
                        }),
                    )
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"open","seq":17,"cpu":1,"origin":"io_uring","io_uring":{"opcode":"OPENAT2","user_data":18446744073709551615,"worker":true,"unconfirmed":true},"retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"open":{"flags":["O_RDWR","O_SYNC","O_TMPFILE"],"raw_flags":5308418,"mode":"600"}}"#,
            ),
            (
                Event {
                    open: Some(OpenInfo {
                        flags: 0o3 | 0o10000000,
                        mode: 0,
                    }),
                    ..event(
                        EventKind::Open,
                        Origin::IoUring(IoUringRequest {
                            opcode: "OPENAT",
                            opcode_nr: 18,
                            user_data: 0,
                            worker: false,
                            unconfirmed: false,
                        }),
                    )
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"open","seq":17,"cpu":1,"origin":"io_uring","io_uring":{"opcode":"OPENAT","user_data":0},"retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"open":{"flags":["O_ACCMODE","O_PATH"],"raw_flags":2097155,"mode":"0"}}"#,
            ),
            (
                Event {
                    setattr: Some(SetAttr {
                        mode: Some(0o4755),
                        uid: Some(0),
                        gid: None,
                        size: Some(-1),
                        times: true,
                    }),
                    ..event(EventKind::Setattr, Origin::Ia32Syscall("truncate64"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"setattr","seq":17,"cpu":1,"origin":"syscall","syscall":"truncate64","syscall_abi":"ia32","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"setattr":{"mode":"4755","uid":0,"size":-1,"times":true}}"#,
            ),
            (
                Event {
                    setattr: Some(SetAttr::default()),
                    ..event(EventKind::Setattr, Origin::Syscall("utimensat"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"setattr","seq":17,"cpu":1,"origin":"syscall","syscall":"utimensat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"setattr":{}}"#,
            ),
            (
                Event {
                    mknod: Some(MknodInfo {
                        mode: 0o020620,
                        rdev: (136, 4),
                    }),
                    ..event(EventKind::Mknod, Origin::Syscall("mknodat"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"mknod","seq":17,"cpu":1,"origin":"syscall","syscall":"mknodat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"mknod":{"type":"char","mode":"620","rdev":"136:4"}}"#,
            ),
            (
                Event {
                    mknod: Some(MknodInfo {
                        mode: 0o010644,
                        rdev: (0, 0),
                    }),
                    ..event(EventKind::Mknod, Origin::Syscall("mknod"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"mknod","seq":17,"cpu":1,"origin":"syscall","syscall":"mknod","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"mknod":{"type":"fifo","mode":"644"}}"#,
            ),
            (
                rename,
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"rename","seq":17,"cpu":1,"origin":"syscall","syscall":"renameat2","retval":0,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"target":{"path":"/data/new \"name\".txt","host_path":"/host/data/new.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"}}"#,
            ),
            (
                odd,
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"unlink","seq":17,"cpu":1,"origin":"kernel","retval":-2,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/bad�\"\n�","path_bytes":"L2RhdGEvYmFk/yIKww==","host_path":"/h�","host_path_bytes":"L2j+","inode":1234567890123,"inode_generation":42,"mount_id":31,"device":"259:3","mode":"0","truncated":true,"user_suffix_len":4,"disconnected":true,"missing":true}}"#,
            ),
            (
                Event {
                    mkdir_mode: Some(0o755),
                    ..event(EventKind::Mkdir, Origin::Syscall("mkdir"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"mkdir","seq":17,"cpu":1,"origin":"syscall","syscall":"mkdir","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"mode":"755"}"#,
            ),
            (
                Event {
                    symlink_target: Some(ExtraString {
                        bytes: b"../t\xffx"[..].into(),
                        from_user: true,
                        truncated: true,
                    }),
                    ..event(EventKind::Symlink, Origin::Syscall("symlinkat"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"symlink","seq":17,"cpu":1,"origin":"syscall","syscall":"symlinkat","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"symlink":{"target":"../t�x","target_bytes":"Li4vdP94","user_supplied":true,"target_truncated":true}}"#,
            ),
            (
                Event {
                    xattr: Some(XattrInfo {
                        name: Some(ExtraString {
                            bytes: b"user.x"[..].into(),
                            from_user: false,
                            truncated: true,
                        }),
                        size: Some(12),
                        flags: 3,
                    }),
                    ..event(EventKind::Setxattr, Origin::Syscall("setxattr"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"setxattr","seq":17,"cpu":1,"origin":"syscall","syscall":"setxattr","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"xattr":{"name":"user.x","name_truncated":true,"size":12,"flags":["XATTR_CREATE","XATTR_REPLACE"]}}"#,
            ),
            (
                Event {
                    xattr: Some(XattrInfo {
                        name: None,
                        size: None,
                        flags: 0,
                    }),
                    ..event(EventKind::Removexattr, Origin::Syscall("removexattr"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"removexattr","seq":17,"cpu":1,"origin":"syscall","syscall":"removexattr","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"xattr":{}}"#,
            ),
            (
                Event {
                    mount: Some(MountInfo {
                        source: Some(ExtraString {
                            bytes: b"/dev/\x80sda1"[..].into(),
                            from_user: true,
                            truncated: false,
                        }),
                        flags: 0x1000,
                    }),
                    ..event(EventKind::Mount, Origin::Syscall("mount"))
                },
                r#"{"time":"2026-11-28T20:01:43.123456789Z","event":"mount","seq":17,"cpu":1,"origin":"syscall","syscall":"mount","retval":3,"process":{"pid":4321,"tid":4322,"ppid":1,"comm":"cat","uid":1000,"gid":1000,"euid":0,"egid":0,"start_time_ns":987654321,"mnt_ns":4026531841,"pid_ns":4026531836,"cgroup_id":7777},"file":{"path":"/data/notes.txt","inode":1234567890123,"inode_generation":42,"mount_id":31,"mount_point":"/data","device":"259:3","mode":"100644","fstype":"ext4"},"mount":{"source":"/dev/�sda1","source_bytes":"L2Rldi+Ac2RhMQ==","user_supplied":true,"flags":4096}}"#,
            ),
        ];
        let unwatched = Record::Unwatched {
            count: 1,
            reason: UnwatchedReason::Unreadable,
            path: Some(PathBuf::from(OsStr::from_bytes(b"/d/\xe2\x82"))),
        };
        let unwatched_json = r#"{"event":"unwatched","count":1,"reason":"unreadable","path":"/d/�","path_bytes":"L2Qv4oI="}"#;
        events
            .into_iter()
            .map(|(e, j)| (Record::Event(Box::new(e)), j))
            .chain([(unwatched, unwatched_json)])
            .collect()
    }

    #[test]
    fn records_serialize_to_their_golden_json() {
        for (record, expected) in golden_records() {
            assert_eq!(json(&record), expected);
        }
    }

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
    }

    #[test]
    fn open_flags_are_named() {
        let o = OpenInfo {
            flags: 0o1101 | 0o2000000,
            mode: 0o644,
        };
        assert_eq!(
            o.flag_names(),
            ["O_WRONLY", "O_CREAT", "O_TRUNC", "O_CLOEXEC"]
        );
    }

    #[test]
    fn notices_serialize_with_snake_case_reasons() {
        let unwatched = Record::Unwatched {
            count: 7,
            reason: UnwatchedReason::WatchLimit,
            path: None,
        };
        assert_eq!(
            serde_json::to_string(&unwatched).unwrap(),
            r#"{"event":"unwatched","count":7,"reason":"watch_limit"}"#
        );
        let lost = Record::Lost {
            count: 2,
            reason: LossReason::Unread,
            cpu: Some(0),
        };
        assert_eq!(
            serde_json::to_string(&lost).unwrap(),
            r#"{"event":"lost","count":2,"reason":"unread","cpu":0}"#
        );
    }

    #[test]
    fn event_kinds_parse_and_reject() {
        assert_eq!("rmdir".parse::<EventKind>(), Ok(EventKind::Rmdir));
        assert!(
            "delete"
                .parse::<EventKind>()
                .unwrap_err()
                .contains("unknown event 'delete'")
        );
        assert!(!EventKind::defaults().contains(&EventKind::Modify));
    }
}

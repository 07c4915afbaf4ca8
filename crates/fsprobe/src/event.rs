//! The events fsprobe reports, as typed values.
use std::fmt;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// The eight kinds of file-system event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[repr(u8)]
pub enum EventKind {
    /// A file was opened (open, openat, openat2, creat).
    Open = 1,
    /// A directory was created (mkdir, mkdirat).
    Mkdir = 2,
    /// A hard link was created (link, linkat).
    Link = 3,
    /// A file or directory was renamed or moved (rename, renameat, renameat2).
    Rename = 4,
    /// Attributes changed: mode, owner, times or size (chmod, chown, utimensat, truncate families).
    Setattr = 5,
    /// A name was removed (unlink, unlinkat).
    Unlink = 6,
    /// A directory was removed (rmdir, unlinkat with AT_REMOVEDIR).
    Rmdir = 7,
    /// A file was written (write family). Off unless asked for.
    Modify = 8,
}

impl EventKind {
    /// Every kind, in the order of the seed's documentation.
    pub const ALL: [EventKind; 8] = [
        EventKind::Open,
        EventKind::Mkdir,
        EventKind::Link,
        EventKind::Rename,
        EventKind::Setattr,
        EventKind::Unlink,
        EventKind::Rmdir,
        EventKind::Modify,
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
        }
    }

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
pub struct ContainerId {
    /// "docker", "containerd", "cri-o", "podman", "systemd-nspawn" or "lxc".
    pub runtime: &'static str,
    /// The runtime's id (64 hex digits) or the machine's name.
    pub id: std::sync::Arc<str>,
}

/// Who caused the event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
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
    /// The executable (the task's `mm->exe_file`), resolved in the kernel
    /// like any file; `None` for kernel threads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exe: Option<FileRef>,
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
    let bytes = path.as_os_str().as_bytes();
    match std::str::from_utf8(bytes) {
        Ok(s) => map.serialize_entry(key, s),
        Err(_) => {
            map.serialize_entry(key, &String::from_utf8_lossy(bytes))?;
            map.serialize_entry(&format!("{key}_bytes"), &base64(bytes))
        }
    }
}

/// Standard base64 with padding (RFC 4648).
pub fn base64(bytes: &[u8]) -> String {
    const TABLE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let n = chunk
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, b)| acc | (u32::from(*b) << (16 - 8 * i)));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(TABLE[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

impl Serialize for FileRef {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        serialize_path(&mut map, "path", &self.path)?;
        if let Some(host) = &self.host_path {
            serialize_path(&mut map, "host_path", host)?;
        }
        map.serialize_entry("inode", &self.inode)?;
        map.serialize_entry("mount_id", &self.mount_id)?;
        if let Some(point) = &self.mount_point {
            serialize_path(&mut map, "mount_point", point)?;
        }
        map.serialize_entry("device", &format!("{}:{}", self.device.0, self.device.1))?;
        map.serialize_entry("mode", &format!("{:o}", self.mode))?;
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
        let access = match self.flags & 3 {
            0 => "O_RDONLY",
            1 => "O_WRONLY",
            2 => "O_RDWR",
            _ => "O_ACCMODE",
        };
        let mut names = vec![access];
        let mut rest = self.flags & !3;
        if rest & 0o20200000 == 0o20200000 {
            // O_TMPFILE includes O_DIRECTORY's bit.
            rest &= !0o200000;
        }
        names.extend(
            OPEN_FLAG_NAMES
                .iter()
                .filter(|(bit, _)| rest & bit == *bit)
                .map(|(_, n)| *n),
        );
        names
    }
}

impl Serialize for OpenInfo {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(3))?;
        map.serialize_entry("flags", &self.flag_names())?;
        map.serialize_entry("raw_flags", &self.flags)?;
        map.serialize_entry("mode", &format!("{:o}", self.mode))?;
        map.end()
    }
}

/// What a setattr event changed; `None` for what it left alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize)]
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
        Some(m) => s.serialize_str(&format!("{m:o}")),
        None => s.serialize_none(),
    }
}

/// One file-system operation that reached the kernel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Event {
    /// Position in its CPU's stream of events that passed the filters:
    /// consecutive unless events were lost in between.
    pub seq: u64,
    /// The CPU the event was recorded on.
    pub cpu: u32,
    /// Wall-clock time, nanoseconds since the Unix epoch.
    pub time_ns: i128,
    /// What happened.
    pub kind: EventKind,
    /// The syscall that did it (e.g. "openat").
    pub syscall: &'static str,
    /// The syscall's return value: negative errno on failure.
    pub retval: i64,
    /// Who did it.
    pub process: Process,
    /// The file (rename and link: the source).
    pub file: FileRef,
    /// Rename: the new name; link: the new link.
    pub target: Option<FileRef>,
    /// Open events: flags and mode.
    pub open: Option<OpenInfo>,
    /// Mkdir events: the requested mode.
    pub mkdir_mode: Option<u32>,
    /// Setattr events: what changed.
    pub setattr: Option<SetAttr>,
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
}

impl Serialize for Event {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(None)?;
        map.serialize_entry("time", &self.time_rfc3339())?;
        map.serialize_entry("event", &self.kind)?;
        map.serialize_entry("seq", &self.seq)?;
        map.serialize_entry("cpu", &self.cpu)?;
        map.serialize_entry("syscall", self.syscall)?;
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
            map.serialize_entry("mode", &format!("{m:o}"))?;
        }
        if let Some(a) = &self.setattr {
            map.serialize_entry("setattr", a)?;
        }
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
    /// The in-kernel filter held `max_watches` files and directories already.
    WatchLimit,
}

impl UnwatchedReason {
    /// The name in JSON (`reason`).
    pub fn name(self) -> &'static str {
        match self {
            UnwatchedReason::WatchLimit => "watch_limit",
        }
    }

    /// What happened, in a few words.
    pub fn description(self) -> &'static str {
        match self {
            UnwatchedReason::WatchLimit => "the watch limit was reached",
        }
    }
}

impl Serialize for UnwatchedReason {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name())
    }
}

/// What the probe delivers: events, and notices of events it lost or of
/// files it could not watch.
#[derive(Debug, Clone, PartialEq, Eq)]
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
    /// `count` new files or directories in the watched trees could not be
    /// watched since the previous such record: their later events are not
    /// reported (nor, for a directory, those of what it will hold).
    Unwatched {
        /// How many.
        count: u64,
        /// Why.
        reason: UnwatchedReason,
    },
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
            Record::Unwatched { count, reason } => {
                let mut map = s.serialize_map(Some(3))?;
                map.serialize_entry("event", "unwatched")?;
                map.serialize_entry("count", count)?;
                map.serialize_entry("reason", reason)?;
                map.end()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

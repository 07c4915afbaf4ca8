//! Raw records (bpf/abi/events.h) → typed events, with every length checked.
use std::mem::size_of;

use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;

use crate::cache::{Def, DirKey, PathCache};
use crate::cgroup::CgroupPaths;
use crate::clock::BootClock;
use crate::config::ResolutionMode;
use crate::event::{Event, EventKind, FileRef, OpenInfo, Process, SetAttr};
use crate::mounts::{MountTables, Task};
use crate::skel::types::{fsp_cache_def, fsp_dir_key, fsp_event, fsp_file};

/// Mirrors bpf/abi/events.h; the generated types carry the layout.
const FSP_EVENT_VERSION: u8 = 3;
const PATH_TRUNCATED: u16 = 1;
const PATH_USER_SUFFIX: u16 = 2;
const PATH_DISCONNECTED: u16 = 4;
const PATH_MISSING: u16 = 8;
const ATTR_MODE: u32 = 1;
const ATTR_UID: u32 = 2;
const ATTR_GID: u32 = 4;
const ATTR_SIZE: u32 = 8;
const ATTR_TIMES: u32 = 16;

/// The header is fixed-size plain data; pin its layout to the C side's.
const _: () = assert!(size_of::<fsp_event>() == 328);
const _: () = assert!(size_of::<fsp_file>() == 64);
const _: () = assert!(size_of::<fsp_cache_def>() == 24);

/// Why a record could not be decoded (a bug, or a version mismatch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record version {0} is not {FSP_EVENT_VERSION}")]
    Version(u8),
    #[error("unknown event kind {0}")]
    Kind(u8),
    #[error("paths and defs of {0} bytes overrun a record of {1} bytes")]
    Overrun(usize, usize),
}

/// The x86-64 syscalls the probes report, by number.
pub(crate) fn syscall_name(nr: u16) -> &'static str {
    match nr {
        1 => "write",
        2 => "open",
        18 => "pwrite64",
        20 => "writev",
        76 => "truncate",
        77 => "ftruncate",
        82 => "rename",
        83 => "mkdir",
        84 => "rmdir",
        85 => "creat",
        86 => "link",
        87 => "unlink",
        90 => "chmod",
        91 => "fchmod",
        92 => "chown",
        93 => "fchown",
        94 => "lchown",
        132 => "utime",
        235 => "utimes",
        257 => "openat",
        258 => "mkdirat",
        260 => "fchownat",
        261 => "futimesat",
        263 => "unlinkat",
        264 => "renameat",
        265 => "linkat",
        268 => "fchmodat",
        280 => "utimensat",
        296 => "pwritev",
        316 => "renameat2",
        328 => "pwritev2",
        437 => "openat2",
        452 => "fchmodat2",
        _ => "unknown",
    }
}

/// A NUL-padded kernel string (task comm, file-system type).
fn comm(raw: &[i8; 16]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// A file-system type name, interned: there are a few dozen, and events
/// then carry them without allocating.
fn fstype_name(raw: &[i8; 16]) -> &'static str {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static NAMES: OnceLock<Mutex<HashMap<[i8; 16], &'static str>>> = OnceLock::new();
    let mut names = NAMES
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    names
        .entry(*raw)
        .or_insert_with(|| Box::leak(comm(raw).into_boxed_str()))
}

/// Kernel dev_t (MAJOR = dev >> 20, MINOR = dev & 0xfffff; include/linux/kdev_t.h).
pub(crate) fn split_kernel_dev(dev: u32) -> (u32, u32) {
    (dev >> 20, dev & 0xfffff)
}

fn file_ref(raw: &fsp_file, path: PathBuf, unknown_prefix: bool) -> FileRef {
    FileRef {
        path,
        host_path: None,
        mount_point: None,
        inode: raw.ino,
        device: split_kernel_dev(raw.dev),
        mount_id: raw.mnt_id,
        mode: raw.mode,
        truncated: raw.flags & PATH_TRUNCATED != 0 || unknown_prefix,
        user_suffix_len: if raw.flags & PATH_USER_SUFFIX != 0 {
            raw.user_len
        } else {
            0
        },
        disconnected: raw.flags & PATH_DISCONNECTED != 0,
        missing: raw.flags & PATH_MISSING != 0,
        fstype: fstype_name(&raw.fstype),
    }
}

fn setattr(h: &fsp_event) -> SetAttr {
    let has = |bit| h.attr_mask & bit != 0;
    SetAttr {
        mode: has(ATTR_MODE).then_some(h.mode & 0o7777),
        uid: has(ATTR_UID).then_some(h.attr_uid),
        gid: has(ATTR_GID).then_some(h.attr_gid),
        size: has(ATTR_SIZE).then_some(h.attr_size),
        times: has(ATTR_TIMES),
    }
}

/// Reads the fixed header at the start of a record.
fn header(bytes: &[u8]) -> Result<fsp_event, DecodeError> {
    if bytes.len() < size_of::<fsp_event>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: the slice holds at least size_of::<fsp_event>() bytes, and
    // fsp_event is plain integers and integer arrays, valid for any bit
    // pattern; read_unaligned copes with the ring buffer's 8-byte alignment.
    let h = unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<fsp_event>()) };
    Ok(h)
}

fn dir_key(k: &fsp_dir_key) -> DirKey {
    DirKey {
        mnt_id: k.mnt_id,
        dev: k.dev,
        ino: k.ino,
    }
}

/// The CPU a record was sent from, if it has a whole header.
pub(crate) fn record_cpu(bytes: &[u8]) -> Option<u32> {
    header(bytes).ok().map(|h| h.cpu)
}

/// Decodes records, rebuilding cached path prefixes (src/cache.rs).
#[derive(Debug)]
pub(crate) struct Decoder {
    clock: BootClock,
    cache: PathCache,
    /// Prefixes user space did not know (a bug if ever non-zero); such
    /// paths are reported truncated.
    pub(crate) unknown_prefixes: u64,
    /// An epoch flush to publish to the kernel (cache_gen[1]).
    pub(crate) new_epoch: Option<u64>,
    cgroups: CgroupPaths,
    mounts: MountTables,
}

/// One slot (file or target) of a record, as sent.
struct Slot<'a> {
    raw: &'a fsp_file,
    kernel: &'a [u8],
}

impl Decoder {
    /// `cache_limit`: user-space cache entries kept before an epoch flush.
    pub(crate) fn new(clock: BootClock, mode: ResolutionMode, cache_limit: usize) -> Self {
        Decoder {
            clock,
            cache: PathCache::new(mode, cache_limit),
            unknown_prefixes: 0,
            new_epoch: None,
            cgroups: CgroupPaths::new(),
            mounts: MountTables::new(),
        }
    }

    /// The slot's whole path: its cached prefix, if any, then what the
    /// kernel sent; then learns the directories it defines.
    fn path(&mut self, slot: &Slot, which: u8, defs: &[fsp_cache_def]) -> (PathBuf, bool) {
        let mut full = Vec::with_capacity(slot.kernel.len() + 64);
        let prefix = (slot.raw.prefix.ino != 0).then(|| dir_key(&slot.raw.prefix));
        let mut unknown = false;
        if let Some(key) = prefix
            && self
                .cache
                .prefix(key, slot.raw.cache_gen, &mut full)
                .is_err()
        {
            self.unknown_prefixes += 1;
            unknown = true;
            full.clear();
        }
        let prefix_len = full.len();
        full.extend_from_slice(slot.kernel);
        let mine: Vec<Def> = defs
            .iter()
            .filter(|d| d.slot == which)
            .map(|d| Def {
                key: dir_key(&d.key),
                end: d.end as usize,
                name_len: d.name_len as usize,
            })
            .collect();
        if !mine.is_empty() && !unknown {
            self.cache
                .learn(slot.raw.cache_gen, &full, prefix_len, prefix, &mine);
        }
        (PathBuf::from(std::ffi::OsString::from_vec(full)), unknown)
    }

    /// Does user space know every cached prefix this record refers to?
    pub(crate) fn prefixes_known(&self, bytes: &[u8]) -> bool {
        let Ok(h) = header(bytes) else {
            return true; // decode() will say what is wrong
        };
        [&h.file, &h.target, &h.exe]
            .into_iter()
            .all(|f| f.prefix.ino == 0 || self.cache.knows(dir_key(&f.prefix), f.cache_gen))
    }

    /// Fills in where the file is mounted and, for a process in another
    /// mount namespace, the file's path on the host.
    fn place(&mut self, f: &mut FileRef, h: &fsp_event) {
        if f.mount_id == 0 || f.missing {
            return;
        }
        let (ns, generation) = (h.mnt_ns, h.mount_gen);
        let task = Task {
            pid: h.pid,
            ppid: h.ppid,
        };
        f.mount_point = self.mounts.mount_point(ns, task, generation, f.mount_id);
        if ns != self.mounts.own_ns && !f.truncated {
            f.host_path = self
                .mounts
                .host_path_of(ns, task, generation, f.mount_id, &f.path);
        }
    }

    /// Decodes one record.
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Result<Event, DecodeError> {
        let h = header(bytes)?;
        if h.version != FSP_EVENT_VERSION {
            return Err(DecodeError::Version(h.version));
        }
        let kind = EventKind::from_raw(h.kind).ok_or(DecodeError::Kind(h.kind))?;
        let data = &bytes[size_of::<fsp_event>()..];
        let (file_len, target_len) = (h.file.path_len as usize, h.target.path_len as usize);
        let exe_len = h.exe.path_len as usize;
        let paths = file_len + target_len + exe_len;
        let defs_len = h.n_defs as usize * size_of::<fsp_cache_def>();
        let needed = paths + defs_len;
        if needed > data.len() {
            return Err(DecodeError::Overrun(needed, bytes.len()));
        }
        let defs: Vec<fsp_cache_def> = data[paths..needed]
            .chunks_exact(size_of::<fsp_cache_def>())
            // SAFETY: each chunk holds size_of::<fsp_cache_def>() bytes of
            // plain integers, valid for any bit pattern; read_unaligned
            // copes with the defs' byte alignment.
            .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<fsp_cache_def>()) })
            .collect();
        let clock = self.clock;
        if let Some(epoch) = self.cache.maintain(h.ts_ns, || clock.boot_now_ns()) {
            self.new_epoch = Some(epoch);
        }
        let file = Slot {
            raw: &h.file,
            kernel: &data[..file_len],
        };
        let (file_path, file_unknown) = self.path(&file, 0, &defs);
        let has_target = matches!(kind, EventKind::Rename | EventKind::Link);
        let target = if has_target {
            let slot = Slot {
                raw: &h.target,
                kernel: &data[file_len..file_len + target_len],
            };
            let (path, unknown) = self.path(&slot, 1, &defs);
            let mut target = file_ref(&h.target, path, unknown);
            self.place(&mut target, &h);
            Some(target)
        } else {
            None
        };
        let exe = if h.exe.flags & PATH_MISSING == 0 {
            let slot = Slot {
                raw: &h.exe,
                kernel: &data[file_len + target_len..paths],
            };
            let (path, unknown) = self.path(&slot, 2, &defs);
            let mut exe = file_ref(&h.exe, path, unknown);
            self.place(&mut exe, &h);
            Some(exe)
        } else {
            None
        };
        let mut file = file_ref(&h.file, file_path, file_unknown);
        self.place(&mut file, &h);
        let cgroup = self.cgroups.get(h.cgroup_id).cloned();
        Ok(Event {
            seq: h.seq,
            cpu: h.cpu,
            time_ns: self.clock.to_unix_ns(h.ts_ns),
            kind,
            syscall: syscall_name(h.syscall_nr),
            retval: h.retval,
            process: Process {
                pid: h.pid,
                tid: h.tid,
                ppid: h.ppid,
                comm: comm(&h.comm),
                uid: h.uid,
                gid: h.gid,
                euid: h.euid,
                egid: h.egid,
                exe,
                mnt_ns: h.mnt_ns,
                pid_ns: h.pid_ns,
                cgroup_id: h.cgroup_id,
                cgroup: cgroup.as_ref().map(|c| c.path.clone()),
                container: cgroup.and_then(|c| c.container),
            },
            file,
            target,
            open: (kind == EventKind::Open).then_some(OpenInfo {
                flags: h.open_flags,
                mode: h.mode,
            }),
            mkdir_mode: (kind == EventKind::Mkdir).then_some(h.mode),
            setattr: (kind == EventKind::Setattr).then(|| setattr(&h)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(bytes: &[u8]) -> Result<Event, DecodeError> {
        Decoder::new(BootClock::now(), ResolutionMode::PerfBuffer, 100).decode(bytes)
    }

    fn record(h: &fsp_event, paths: &[u8]) -> Vec<u8> {
        // SAFETY: fsp_event is plain data; viewing it as bytes is sound.
        let head = unsafe {
            std::slice::from_raw_parts((h as *const fsp_event).cast::<u8>(), size_of::<fsp_event>())
        };
        [head, paths].concat()
    }

    fn rename_header() -> fsp_event {
        let mut h = fsp_event {
            version: FSP_EVENT_VERSION,
            kind: EventKind::Rename as u8,
            syscall_nr: 316,
            pid: 42,
            tid: 43,
            retval: 0,
            ..Default::default()
        };
        h.file.path_len = 6;
        h.file.ino = 7;
        h.file.dev = (8 << 20) | 3;
        h.target.path_len = 7;
        h.target.ino = 7;
        h
    }

    #[test]
    fn decodes_both_paths_of_a_rename() {
        let h = rename_header();
        let e = decode(&record(&h, b"/a/old/b/new2")).unwrap();
        assert_eq!(e.kind, EventKind::Rename);
        assert_eq!(e.syscall, "renameat2");
        assert_eq!(e.file.path, std::path::Path::new("/a/old"));
        assert_eq!(e.file.device, (8, 3));
        assert_eq!(e.target.unwrap().path, std::path::Path::new("/b/new2"));
    }

    #[test]
    fn rejects_overrun_short_and_foreign_records() {
        let h = rename_header();
        assert_eq!(
            decode(&record(&h, b"/a/old/b/new")),
            Err(DecodeError::Overrun(13, 340))
        );
        assert_eq!(decode(&[0u8; 10]), Err(DecodeError::Short(10)));
        let mut bad = rename_header();
        bad.version = 9;
        assert_eq!(
            decode(&record(&bad, b"/a/old/b/new2")),
            Err(DecodeError::Version(9))
        );
        bad.version = FSP_EVENT_VERSION;
        bad.kind = 77;
        assert_eq!(
            decode(&record(&bad, b"/a/old/b/new2")),
            Err(DecodeError::Kind(77))
        );
    }

    #[test]
    fn keeps_non_utf8_bytes_and_user_suffix() {
        let mut h = rename_header();
        h.kind = EventKind::Unlink as u8;
        h.file.path_len = 4;
        h.file.flags = PATH_USER_SUFFIX;
        h.file.user_len = 2;
        h.target.path_len = 0;
        let e = decode(&record(&h, b"/a\xff\xfe")).unwrap();
        assert_eq!(e.file.path_bytes(), b"/a\xff\xfe");
        assert_eq!(e.file.user_suffix_len, 2);
        assert!(!e.file.is_kernel_resolved());
        assert!(e.target.is_none());
    }

    fn def_bytes(ino: u64, end: u16, name_len: u16) -> Vec<u8> {
        let d = fsp_cache_def {
            key: fsp_dir_key {
                mnt_id: 21,
                dev: 8,
                ino,
            },
            end,
            name_len,
            ..Default::default()
        };
        // SAFETY: fsp_cache_def is plain data; viewing it as bytes is sound.
        unsafe {
            std::slice::from_raw_parts(
                (&d as *const fsp_cache_def).cast::<u8>(),
                size_of::<fsp_cache_def>(),
            )
        }
        .to_vec()
    }

    fn open_header(path_len: u16, n_defs: u16) -> fsp_event {
        let mut h = fsp_event {
            version: FSP_EVENT_VERSION,
            kind: EventKind::Open as u8,
            syscall_nr: 257,
            n_defs,
            ..Default::default()
        };
        h.file.path_len = path_len;
        h.file.cache_gen = 5;
        h
    }

    #[test]
    fn rebuilds_a_cached_prefix_in_both_user_space_modes() {
        for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
            let mut decoder = Decoder::new(BootClock::now(), mode, 100);
            // Walked to the root: teaches /srv/data (ino 30) then /srv (ino 20).
            let first = [
                record(&open_header(15, 2), b"/srv/data/a.txt"),
                def_bytes(30, 9, 4),
                def_bytes(20, 4, 3),
            ]
            .concat();
            let e = decoder.decode(&first).unwrap();
            assert_eq!(e.file.path, std::path::Path::new("/srv/data/a.txt"));
            // Stopped at /srv/data: only "/b.txt" travels.
            let mut h = open_header(6, 0);
            h.file.prefix = fsp_dir_key {
                mnt_id: 21,
                dev: 8,
                ino: 30,
            };
            let e = decoder.decode(&record(&h, b"/b.txt")).unwrap();
            assert_eq!(
                e.file.path,
                std::path::Path::new("/srv/data/b.txt"),
                "{mode}"
            );
            assert!(e.file.is_kernel_resolved());
            // Another generation (a rename happened): the prefix is unknown,
            // and the path is reported truncated rather than wrong.
            h.file.cache_gen = 6;
            let e = decoder.decode(&record(&h, b"/b.txt")).unwrap();
            assert!(e.file.truncated, "{mode}");
            assert_eq!(decoder.unknown_prefixes, 1);
        }
    }
}

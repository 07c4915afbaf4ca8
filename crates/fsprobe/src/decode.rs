//! Raw records (bpf/events.h) → typed events, with every length checked.
use std::mem::size_of;

use crate::clock::BootClock;
use crate::event::{Event, EventKind, FileRef, OpenInfo, Process, SetAttr, path_from_bytes};
use crate::skel::types::{fsp_event, fsp_file};

/// Mirrors bpf/events.h; the generated types carry the layout.
const FSP_EVENT_VERSION: u8 = 1;
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
const _: () = assert!(size_of::<fsp_event>() == 136);
const _: () = assert!(size_of::<fsp_file>() == 24);

/// Why a record could not be decoded (a bug, or a version mismatch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record version {0} is not {FSP_EVENT_VERSION}")]
    Version(u8),
    #[error("unknown event kind {0}")]
    Kind(u8),
    #[error("paths of {0} bytes overrun a record of {1} bytes")]
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

fn comm(raw: &[i8; 16]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

/// Kernel dev_t (MAJOR = dev >> 20, MINOR = dev & 0xfffff; include/linux/kdev_t.h).
pub(crate) fn split_kernel_dev(dev: u32) -> (u32, u32) {
    (dev >> 20, dev & 0xfffff)
}

fn file_ref(raw: &fsp_file, path: &[u8]) -> FileRef {
    FileRef {
        path: path_from_bytes(path),
        inode: raw.ino,
        device: split_kernel_dev(raw.dev),
        mount_id: raw.mnt_id,
        mode: raw.mode,
        truncated: raw.flags & PATH_TRUNCATED != 0,
        user_suffix_len: if raw.flags & PATH_USER_SUFFIX != 0 {
            raw.user_len
        } else {
            0
        },
        disconnected: raw.flags & PATH_DISCONNECTED != 0,
        missing: raw.flags & PATH_MISSING != 0,
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

/// Decodes one record.
pub(crate) fn decode(bytes: &[u8], clock: BootClock) -> Result<Event, DecodeError> {
    let h = header(bytes)?;
    if h.version != FSP_EVENT_VERSION {
        return Err(DecodeError::Version(h.version));
    }
    let kind = EventKind::from_raw(h.kind).ok_or(DecodeError::Kind(h.kind))?;
    let data = &bytes[size_of::<fsp_event>()..];
    let (file_len, target_len) = (h.file.path_len as usize, h.target.path_len as usize);
    if file_len + target_len > data.len() {
        return Err(DecodeError::Overrun(file_len + target_len, bytes.len()));
    }
    let has_target = matches!(kind, EventKind::Rename | EventKind::Link);
    Ok(Event {
        time_ns: clock.to_unix_ns(h.ts_ns),
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
        },
        file: file_ref(&h.file, &data[..file_len]),
        target: has_target.then(|| file_ref(&h.target, &data[file_len..file_len + target_len])),
        open: (kind == EventKind::Open).then_some(OpenInfo {
            flags: h.open_flags,
            mode: h.mode,
        }),
        mkdir_mode: (kind == EventKind::Mkdir).then_some(h.mode),
        setattr: (kind == EventKind::Setattr).then(|| setattr(&h)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let e = decode(&record(&h, b"/a/old/b/new2"), BootClock::now()).unwrap();
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
            decode(&record(&h, b"/a/old/b/new"), BootClock::now()),
            Err(DecodeError::Overrun(13, 148))
        );
        assert_eq!(
            decode(&[0u8; 10], BootClock::now()),
            Err(DecodeError::Short(10))
        );
        let mut bad = rename_header();
        bad.version = 9;
        assert_eq!(
            decode(&record(&bad, b"/a/old/b/new2"), BootClock::now()),
            Err(DecodeError::Version(9))
        );
        bad.version = FSP_EVENT_VERSION;
        bad.kind = 77;
        assert_eq!(
            decode(&record(&bad, b"/a/old/b/new2"), BootClock::now()),
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
        let e = decode(&record(&h, b"/a\xff\xfe"), BootClock::now()).unwrap();
        assert_eq!(e.file.path_bytes(), b"/a\xff\xfe");
        assert_eq!(e.file.user_suffix_len, 2);
        assert!(!e.file.is_kernel_resolved());
        assert!(e.target.is_none());
    }
}

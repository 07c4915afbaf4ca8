//! The first layer of decoding: a record's bytes (bpf/abi/events.h),
//! checked, as borrowed slices. Every length is checked against the
//! record's size before anything is sliced, so no input can make it read
//! out of bounds or panic (the fuzz test in tests/ feeds it noise).
use std::mem::size_of;

use crate::event::EventKind;
use crate::skel::types::{
    fsp_cache_def, fsp_event, fsp_event_version, fsp_file, fsp_kind, fsp_origin, fsp_path_flags,
    fsp_record_flags,
};

/// struct fsp_event.version this decoder reads (FSP_EVENT_VERSION).
pub(crate) const EVENT_VERSION: u8 = fsp_event_version::FSP_EVENT_VERSION.0 as u8;

/// The header is fixed-size plain data; pin its layout to the C side's.
const _: () = assert!(size_of::<fsp_event>() == 408);
const _: () = assert!(size_of::<fsp_file>() == 80);
const _: () = assert!(size_of::<fsp_cache_def>() == 32);

/// enum fsp_path_flags, enum fsp_record_flags, as the skeleton generated them.
pub(crate) const PATH_TRUNCATED: u16 = fsp_path_flags::FSP_PATH_TRUNCATED.0 as u16;
pub(crate) const PATH_USER_SUFFIX: u16 = fsp_path_flags::FSP_PATH_USER_SUFFIX.0 as u16;
pub(crate) const PATH_DISCONNECTED: u16 = fsp_path_flags::FSP_PATH_DISCONNECTED.0 as u16;
pub(crate) const PATH_MISSING: u16 = fsp_path_flags::FSP_PATH_MISSING.0 as u16;
pub(crate) const PATH_FOREIGN_MOUNT: u16 = fsp_path_flags::FSP_PATH_FOREIGN_MOUNT.0 as u16;
pub(crate) const REC_PROCESS: u8 = fsp_record_flags::FSP_REC_PROCESS.0 as u8;
pub(crate) const REC_EXTRA_USER: u8 = fsp_record_flags::FSP_REC_EXTRA_USER.0 as u8;
pub(crate) const REC_EXTRA_TRUNCATED: u8 = fsp_record_flags::FSP_REC_EXTRA_TRUNCATED.0 as u8;
pub(crate) const REC_CGROUP_TRUNCATED: u8 = fsp_record_flags::FSP_REC_CGROUP_TRUNCATED.0 as u8;
pub(crate) const REC_IO_ASYNC: u8 = fsp_record_flags::FSP_REC_IO_ASYNC.0 as u8;
pub(crate) const REC_IO_UNCONFIRMED: u8 = fsp_record_flags::FSP_REC_IO_UNCONFIRMED.0 as u8;

/// Why a record could not be decoded (a bug, or a version mismatch).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("record of {0} bytes is shorter than its header")]
    Short(usize),
    #[error("record version {0} is not {EVENT_VERSION}")]
    Version(u8),
    #[error("unknown record kind {0}")]
    Kind(u8),
    #[error("strings and defs of {0} bytes overrun a record of {1} bytes")]
    Overrun(usize, usize),
}

/// What a record is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RecordKind {
    /// An event of this kind.
    Event(EventKind),
    /// The process (pid, proc_start) exited.
    ProcessExit,
    /// A directory entered a watched tree with its contents: walk it.
    Subtree,
    /// A mount of another mount namespace, described.
    MountDef,
}

impl RecordKind {
    fn from_raw(raw: u8) -> Option<RecordKind> {
        match u32::from(raw) {
            k if k == fsp_kind::FSP_PROC_EXIT.0 => Some(RecordKind::ProcessExit),
            k if k == fsp_kind::FSP_SUBTREE.0 => Some(RecordKind::Subtree),
            k if k == fsp_kind::FSP_MOUNT_DEF.0 => Some(RecordKind::MountDef),
            k if k < fsp_kind::FSP_KIND_EVENTS.0 => EventKind::from_raw(raw).map(RecordKind::Event),
            _ => None,
        }
    }
}

/// enum fsp_origin.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum RawOrigin {
    Syscall(u16),
    Ia32Syscall(u16),
    IoUring(u8),
    Kernel,
}

/// A checked record: its header and the byte slices that follow it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub hdr: fsp_event,
    pub kind: RecordKind,
    pub file_path: &'a [u8],
    pub target_path: &'a [u8],
    pub extra: &'a [u8],
    /// The process definition's executable path and cgroup path (empty
    /// when the record defines no process).
    pub exe_path: &'a [u8],
    pub cgroup: &'a [u8],
    defs: &'a [u8],
}

/// Reads the fixed header at the start of a record.
pub(crate) fn header(bytes: &[u8]) -> Result<fsp_event, DecodeError> {
    if bytes.len() < size_of::<fsp_event>() {
        return Err(DecodeError::Short(bytes.len()));
    }
    // SAFETY: the slice holds at least size_of::<fsp_event>() bytes, and
    // fsp_event is plain integers and integer arrays, valid for any bit
    // pattern; read_unaligned copes with the transport's alignment.
    Ok(unsafe { std::ptr::read_unaligned(bytes.as_ptr().cast::<fsp_event>()) })
}

/// Splits `n` bytes off the front of `rest`.
fn take<'a>(rest: &mut &'a [u8], n: usize) -> &'a [u8] {
    let (head, tail) = rest.split_at(n);
    *rest = tail;
    head
}

impl<'a> RawRecord<'a> {
    /// Checks and slices a record.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<RawRecord<'a>, DecodeError> {
        let hdr = header(bytes)?;
        if hdr.version != EVENT_VERSION {
            return Err(DecodeError::Version(hdr.version));
        }
        let kind = RecordKind::from_raw(hdr.kind).ok_or(DecodeError::Kind(hdr.kind))?;
        let mut data = &bytes[size_of::<fsp_event>()..];
        let defines = hdr.rflags & REC_PROCESS != 0;
        let (exe_len, cgroup_len) = if defines {
            (hdr.proc.exe.path_len as usize, hdr.proc.cgroup_len as usize)
        } else {
            (0, 0)
        };
        let lens = [
            hdr.file.path_len as usize,
            hdr.target.path_len as usize,
            hdr.extra_len as usize,
            exe_len,
            cgroup_len,
            hdr.n_defs as usize * size_of::<fsp_cache_def>(),
        ];
        let needed: usize = lens.iter().sum();
        if needed > data.len() {
            return Err(DecodeError::Overrun(needed, bytes.len()));
        }
        Ok(RawRecord {
            hdr,
            kind,
            file_path: take(&mut data, lens[0]),
            target_path: take(&mut data, lens[1]),
            extra: take(&mut data, lens[2]),
            exe_path: take(&mut data, lens[3]),
            cgroup: take(&mut data, lens[4]),
            defs: take(&mut data, lens[5]),
        })
    }

    /// The directories this record teaches user space.
    pub(crate) fn defs(&self) -> impl Iterator<Item = fsp_cache_def> + '_ {
        self.defs
            .chunks_exact(size_of::<fsp_cache_def>())
            // SAFETY: each chunk holds size_of::<fsp_cache_def>() bytes of
            // plain integers, valid for any bit pattern; read_unaligned
            // copes with the defs' byte alignment.
            .map(|c| unsafe { std::ptr::read_unaligned(c.as_ptr().cast::<fsp_cache_def>()) })
    }

    /// Does this record carry its process's definition?
    pub(crate) fn defines_process(&self) -> bool {
        self.hdr.rflags & REC_PROCESS != 0
    }

    pub(crate) fn origin(&self) -> RawOrigin {
        match u32::from(self.hdr.origin) {
            o if o == fsp_origin::FSP_ORIGIN_SYSCALL.0 => RawOrigin::Syscall(self.hdr.op),
            o if o == fsp_origin::FSP_ORIGIN_SYSCALL_IA32.0 => RawOrigin::Ia32Syscall(self.hdr.op),
            o if o == fsp_origin::FSP_ORIGIN_IO_URING.0 => RawOrigin::IoUring(self.hdr.op as u8),
            _ => RawOrigin::Kernel,
        }
    }
}

/// The CPU a record was sent from, if it has a whole header.
pub(crate) fn record_cpu(bytes: &[u8]) -> Option<u32> {
    header(bytes).ok().map(|h| h.cpu)
}

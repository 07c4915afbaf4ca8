//! Records (bpf/abi/events.h) → typed events, in two layers: raw.rs checks
//! a record and slices it; this module rebuilds its paths from the path
//! caches' mirrors (src/cache.rs), its process from the process table
//! (process.rs), and places its files in the mount tables (src/mounts.rs).
pub(crate) mod process;
pub(crate) mod raw;

use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::Arc;

use crate::backend::syscalls::{ia32_syscall_name, io_op_name, syscall_name};
use crate::cache::{Def, DirKey, PathCache};
use crate::cgroup::container_id;
use crate::clock::BootClock;
use crate::config::ResolutionMode;
use crate::event::{
    Event, EventKind, ExtraString, FileRef, IoUringRequest, MknodInfo, MountInfo, OpenInfo, Origin,
    Process, SetAttr, XattrInfo,
};
use crate::mounts::{Mount, MountTables};
use crate::skel::types::{fsp_attr, fsp_dir_key, fsp_dir_key_flags, fsp_event, fsp_file, fsp_slot};

use process::{ProcessInfo, ProcessKey, Processes};
pub use raw::DecodeError;
pub(crate) use raw::record_cpu;
use raw::{
    PATH_DISCONNECTED, PATH_FOREIGN_MOUNT, PATH_MISSING, PATH_TRUNCATED, PATH_USER_SUFFIX,
    REC_CGROUP_TRUNCATED, REC_EXTRA_TRUNCATED, REC_EXTRA_USER, REC_IO_ASYNC, REC_IO_UNCONFIRMED,
    RawOrigin, RawRecord, RecordKind,
};

const ATTR_MODE: u32 = fsp_attr::FSP_ATTR_MODE.0;
const ATTR_UID: u32 = fsp_attr::FSP_ATTR_UID.0;
const ATTR_GID: u32 = fsp_attr::FSP_ATTR_GID.0;
const ATTR_SIZE: u32 = fsp_attr::FSP_ATTR_SIZE.0;
const ATTR_TIMES: u32 = fsp_attr::FSP_ATTR_TIMES.0;

/// A directory user space must walk to add its contents to the watched set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Subtree {
    pub path: PathBuf,
    pub dev: u32,
    pub ino: u64,
    /// The path is not all kernel-resolved (cut, or partly unknown).
    pub partial: bool,
}

/// What one record turned into.
#[derive(Debug)]
pub(crate) enum Decoded {
    Event(Box<Event>),
    /// A notice for the probe itself (a process exit, a subtree to walk).
    Subtree(Subtree),
    Notice,
}

/// A decoded record, with its place in its CPU's numbering.
#[derive(Debug)]
pub(crate) struct DecodedRecord {
    pub cpu: u32,
    pub seq: u64,
    pub what: Decoded,
}

/// A NUL-padded kernel string (task comm, file-system type), into `out`
/// (cleared first: a recycled event's comm keeps its buffer).
fn comm_into(raw: &[i8; 16], mut out: String) -> String {
    let len = raw.iter().position(|&c| c == 0).unwrap_or(raw.len());
    let bytes: [u8; 16] = raw.map(|c| c as u8);
    out.clear();
    match std::str::from_utf8(&bytes[..len]) {
        Ok(s) => out.push_str(s),
        Err(_) => out.push_str(&String::from_utf8_lossy(&bytes[..len])),
    }
    out
}

fn comm(raw: &[i8; 16]) -> String {
    comm_into(raw, String::new())
}

/// The buffers of an event the consumer handed back (src/recycle.rs),
/// which the next event's strings are written into.
#[derive(Default)]
struct Spare {
    file_path: Vec<u8>,
    target_path: Vec<u8>,
    comm: String,
}

impl Spare {
    /// Takes the buffers out of `e`, leaving it empty.
    fn take(e: &mut Event) -> Spare {
        let path = |p: &mut PathBuf| std::mem::take(p).into_os_string().into_vec();
        Spare {
            file_path: path(&mut e.file.path),
            target_path: e
                .target
                .as_mut()
                .map(|t| path(&mut t.path))
                .unwrap_or_default(),
            comm: std::mem::take(&mut e.process.comm),
        }
    }
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

/// A syscall's dev_t argument (new_decode_dev(), include/linux/kdev_t.h).
fn split_user_dev(dev: u32) -> (u32, u32) {
    ((dev & 0xfff00) >> 8, (dev & 0xff) | ((dev >> 12) & 0xfff00))
}

fn file_ref(raw: &fsp_file, path: PathBuf, unknown_prefix: bool) -> FileRef {
    FileRef {
        path,
        host_path: None,
        mount_point: None,
        inode: raw.ino,
        inode_generation: raw.generation,
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

fn dir_key(k: &fsp_dir_key) -> DirKey {
    DirKey {
        mnt_id: k.mnt_id,
        dev: k.dev,
        ino: k.ino,
        generation: k.generation,
        by_removals: k.flags & fsp_dir_key_flags::FSP_DIR_KEY_BY_REMOVALS.0 != 0,
    }
}

/// An rmdir's directory as the path caches know it: the record's identity.
/// (Its walk started at the parent, the directory being gone, so the
/// record neither stops at nor teaches the directory itself.) Where
/// i_generation is 0 the key held the kernel's rmdir count instead, which
/// the record does not say: such entries go at the next epoch flush.
fn removed_dir_key(f: &fsp_file) -> Option<DirKey> {
    (f.ino != 0 && f.generation != 0).then_some(DirKey {
        mnt_id: f.mnt_id,
        dev: f.dev,
        ino: f.ino,
        generation: f.generation,
        by_removals: false,
    })
}

/// The record's extra string, if it has one.
fn extra(r: &RawRecord) -> Option<ExtraString> {
    (!r.extra.is_empty()).then(|| ExtraString {
        bytes: r.extra.into(),
        from_user: r.hdr.rflags & REC_EXTRA_USER != 0,
        truncated: r.hdr.rflags & REC_EXTRA_TRUNCATED != 0,
    })
}

fn origin(r: &RawRecord) -> Origin {
    match r.origin() {
        RawOrigin::Syscall(nr) => Origin::Syscall(syscall_name(nr)),
        RawOrigin::Ia32Syscall(nr) => Origin::Ia32Syscall(ia32_syscall_name(nr)),
        RawOrigin::IoUring(op) => Origin::IoUring(IoUringRequest {
            opcode: io_op_name(op),
            opcode_nr: op,
            user_data: r.hdr.user_data,
            worker: r.hdr.rflags & REC_IO_ASYNC != 0,
            unconfirmed: r.hdr.rflags & REC_IO_UNCONFIRMED != 0,
        }),
        RawOrigin::Kernel => Origin::Kernel,
    }
}

/// Decodes records, rebuilding cached path prefixes and process contexts.
#[derive(Debug)]
pub(crate) struct Decoder {
    clock: BootClock,
    cache: PathCache,
    /// Prefixes user space did not know (a bug if ever non-zero); such
    /// paths are reported truncated.
    pub(crate) unknown_prefixes: u64,
    /// An epoch flush to publish to the kernel (cache_gen[1]).
    pub(crate) new_epoch: Option<u64>,
    processes: Processes,
    mounts: MountTables,
    /// The defs of the slot being decoded (kept: no allocation per record).
    defs: Vec<Def>,
}

/// One slot (file, target, executable) of a record, as sent.
struct Slot<'a> {
    raw: &'a fsp_file,
    kernel: &'a [u8],
    which: u8,
}

impl Decoder {
    /// `cache_limit`: user-space cache ranges kept before an epoch flush;
    /// `ordered`: records are read in the order they were sent (the ring
    /// buffer; src/cache.rs).
    pub(crate) fn new(
        clock: BootClock,
        mode: ResolutionMode,
        cache_limit: usize,
        ordered: bool,
    ) -> Self {
        Decoder {
            clock,
            cache: PathCache::new(mode, cache_limit, ordered),
            unknown_prefixes: 0,
            new_epoch: None,
            processes: Processes::default(),
            mounts: MountTables::new(),
            defs: Vec::new(),
        }
    }

    /// Sizes the path cache's mirror for `dirs` directories (src/cache.rs:
    /// PathCache::reserve_for()).
    pub(crate) fn reserve_dirs(&mut self, dirs: usize) {
        self.cache.reserve_for(dirs);
    }

    /// Records that named a process user space did not know (a bug if non-zero).
    pub(crate) fn unknown_processes(&self) -> u64 {
        self.processes.unknown
    }

    /// The slot's whole path, built in `full` (cleared first): its cached
    /// prefix, if any, then what the kernel sent; then learns the
    /// directories it defines.
    fn path(&mut self, slot: &Slot, r: &RawRecord, mut full: Vec<u8>) -> (PathBuf, bool) {
        full.clear();
        full.reserve(slot.kernel.len() + 64);
        let prefix = (slot.raw.prefix.ino != 0).then(|| dir_key(&slot.raw.prefix));
        let mut unknown = false;
        // What follows a prefix starts a component of its own: a record
        // that says otherwise is malformed, and gluing would invent a name.
        let glues = !slot.kernel.is_empty() && slot.kernel[0] != b'/';
        if let Some(key) = prefix
            && (glues
                || self
                    .cache
                    .prefix(key, slot.raw.cache_gen, &mut full)
                    .is_err())
        {
            self.unknown_prefixes += 1;
            unknown = true;
            full.clear();
        }
        let prefix_len = full.len();
        full.extend_from_slice(slot.kernel);
        let mut mine = std::mem::take(&mut self.defs);
        mine.clear();
        mine.extend(r.defs().filter(|d| d.slot == slot.which).map(|d| Def {
            key: dir_key(&d.key),
            end: d.end as usize,
            name_len: d.name_len as usize,
        }));
        if !mine.is_empty() && !unknown {
            self.cache.learn(
                slot.raw.cache_gen,
                &full,
                prefix_len,
                prefix,
                &mine,
                r.hdr.ts_ns,
            );
        }
        self.defs = mine;
        (PathBuf::from(std::ffi::OsString::from_vec(full)), unknown)
    }

    /// The slot as a FileRef, its path built in `buf`.
    fn slot_ref(
        &mut self,
        raw: &fsp_file,
        kernel: &[u8],
        which: u32,
        r: &RawRecord,
        buf: Vec<u8>,
    ) -> FileRef {
        let slot = Slot {
            raw,
            kernel,
            which: which as u8,
        };
        let (path, unknown) = self.path(&slot, r, buf);
        file_ref(raw, path, unknown)
    }

    /// Does user space know every cached prefix and the process this record refers to?
    pub(crate) fn prefixes_known(&self, bytes: &[u8]) -> bool {
        let Ok(r) = RawRecord::parse(bytes) else {
            return true; // decode() will say what is wrong
        };
        let h = &r.hdr;
        let mut files = vec![&h.file, &h.target];
        if r.defines_process() {
            files.push(&h.proc.exe);
        }
        let prefixes = files.into_iter().all(|f| {
            (f.prefix.ino == 0 || self.cache.knows(dir_key(&f.prefix), f.cache_gen))
                && (f.flags & PATH_FOREIGN_MOUNT == 0
                    || self.mounts.knows_foreign(f.mnt_id, h.mount_gen))
        });
        let process = !matches!(r.kind, RecordKind::Event(_))
            || r.defines_process()
            || self.processes.knows((h.pid, h.proc_start));
        prefixes && process
    }

    /// Fills in where the file is mounted and, for a file seen from
    /// another mount namespace (`mnt_ns`: the acting task's), its path on
    /// the host.
    fn place(&mut self, f: &mut FileRef, raw: &fsp_file, h: &fsp_event, mnt_ns: u32) {
        if f.mount_id == 0 || f.missing {
            return;
        }
        let foreign = raw.flags & PATH_FOREIGN_MOUNT != 0;
        f.mount_point = self.mounts.mount_point(foreign, h.mount_gen, f.mount_id);
        if f.truncated {
            return;
        }
        if foreign {
            f.host_path = self.mounts.host_path_of(h.mount_gen, f.mount_id, &f.path);
        } else if mnt_ns != 0 && mnt_ns != self.mounts.own_ns {
            // A host mount, used from another namespace (an inherited
            // file, /proc/PID/root): the kernel walked the host's tree.
            f.host_path = Some(f.path.clone());
        }
    }

    /// Learns a mount of another namespace from its FSP_MOUNT_DEF.
    fn define_mount(&mut self, r: &RawRecord) {
        let h = &r.hdr;
        let whole =
            |f: &fsp_file| f.flags & (PATH_TRUNCATED | PATH_DISCONNECTED | PATH_MISSING) == 0;
        if !whole(&h.file)
            || !whole(&h.target)
            || r.file_path.is_empty()
            || r.target_path.is_empty()
        {
            // Nothing is guessed: its files get no mount point nor host path.
            return;
        }
        let point = std::ffi::OsStr::from_bytes(r.file_path);
        self.mounts.define(
            Mount {
                id: h.file.mnt_id,
                dev: split_kernel_dev(h.file.dev),
                root: r.target_path.to_vec(),
                point: Arc::from(std::path::Path::new(point)),
                fstype: fstype_name(&h.file.fstype).to_owned(),
            },
            h.mount_gen,
        );
    }

    /// The process context this record carries or refers to.
    fn process_info(&mut self, r: &RawRecord) -> Option<Arc<ProcessInfo>> {
        let h = &r.hdr;
        let key: ProcessKey = (h.pid, h.proc_start);
        if !r.defines_process() {
            return self.processes.get(key);
        }
        let p = &h.proc;
        let exe = if p.exe.flags & PATH_MISSING == 0 {
            let mut exe =
                self.slot_ref(&p.exe, r.exe_path, fsp_slot::FSP_SLOT_EXE.0, r, Vec::new());
            self.place(&mut exe, &p.exe, h, p.mnt_ns);
            Some(Arc::new(exe))
        } else {
            None
        };
        let mut cgroup = String::from_utf8_lossy(r.cgroup).into_owned();
        if cgroup.is_empty() {
            cgroup.push('/');
        }
        if h.rflags & REC_CGROUP_TRUNCATED != 0 {
            cgroup.insert_str(0, "...");
        }
        let info = ProcessInfo {
            exe,
            mnt_ns: p.mnt_ns,
            pid_ns: p.pid_ns,
            cgroup_id: p.cgroup_id,
            container: container_id(&cgroup),
            cgroup: Some(cgroup.into()),
        };
        Some(self.processes.define(key, info))
    }

    fn process(&mut self, r: &RawRecord, comm_buf: String) -> Process {
        let h = &r.hdr;
        let info = self.process_info(r);
        let info = info.as_deref();
        Process {
            pid: h.pid,
            tid: h.tid,
            ppid: h.ppid,
            comm: comm_into(&h.comm, comm_buf),
            uid: h.uid,
            gid: h.gid,
            euid: h.euid,
            egid: h.egid,
            start_time_ns: h.proc_start,
            exe: info.and_then(|i| i.exe.clone()),
            mnt_ns: info.map_or(0, |i| i.mnt_ns),
            pid_ns: info.map_or(0, |i| i.pid_ns),
            cgroup_id: info.map_or(0, |i| i.cgroup_id),
            cgroup: info.and_then(|i| i.cgroup.clone()),
            container: info.and_then(|i| i.container.clone()),
        }
    }

    fn event(&mut self, r: &RawRecord, kind: EventKind, spare: Spare) -> Event {
        let h = &r.hdr;
        let process = self.process(r, spare.comm);
        let mut file = self.slot_ref(
            &h.file,
            r.file_path,
            fsp_slot::FSP_SLOT_FILE.0,
            r,
            spare.file_path,
        );
        self.place(&mut file, &h.file, h, process.mnt_ns);
        if kind == EventKind::Rmdir
            && h.retval == 0
            && let Some(key) = removed_dir_key(&h.file)
        {
            self.cache.forget_removed(key, h.file.cache_gen, h.ts_ns);
        }
        let target = matches!(kind, EventKind::Rename | EventKind::Link).then(|| {
            let mut t = self.slot_ref(
                &h.target,
                r.target_path,
                fsp_slot::FSP_SLOT_TARGET.0,
                r,
                spare.target_path,
            );
            self.place(&mut t, &h.target, h, process.mnt_ns);
            t
        });
        Event {
            seq: h.seq,
            cpu: h.cpu,
            time_ns: self.clock.to_unix_ns(h.ts_ns),
            kind,
            origin: origin(r),
            retval: h.retval,
            process,
            file,
            target,
            open: (kind == EventKind::Open).then_some(OpenInfo {
                flags: h.open_flags,
                mode: h.mode,
            }),
            mkdir_mode: (kind == EventKind::Mkdir).then_some(h.mode),
            setattr: (kind == EventKind::Setattr).then(|| setattr(h)),
            symlink_target: (kind == EventKind::Symlink).then(|| extra(r)).flatten(),
            mknod: (kind == EventKind::Mknod).then_some(MknodInfo {
                mode: h.mode,
                rdev: split_user_dev(h.rdev),
            }),
            xattr: matches!(kind, EventKind::Setxattr | EventKind::Removexattr).then(|| {
                XattrInfo {
                    name: extra(r),
                    size: (kind == EventKind::Setxattr).then_some(h.attr_size as u64),
                    flags: h.attr_mask,
                }
            }),
            mount: matches!(kind, EventKind::Mount | EventKind::Umount).then(|| MountInfo {
                source: extra(r),
                flags: h.open_flags,
            }),
        }
    }

    /// The event, in `spare`'s box and buffers when there is one (taken
    /// from it), else in new ones.
    fn boxed_event(
        &mut self,
        r: &RawRecord,
        kind: EventKind,
        spare: &mut Option<Box<Event>>,
    ) -> Box<Event> {
        match spare.take() {
            Some(mut boxed) => {
                let buffers = Spare::take(&mut boxed);
                // Moved into the old box: its former fields are dropped, not its allocation.
                *boxed = self.event(r, kind, buffers);
                boxed
            }
            None => Box::new(self.event(r, kind, Spare::default())),
        }
    }

    /// Decodes one record.
    #[cfg(test)]
    pub(crate) fn decode(&mut self, bytes: &[u8]) -> Result<DecodedRecord, DecodeError> {
        self.decode_reusing(bytes, &mut None)
    }

    /// Decodes one record; an event is built in `spare` (taken from it)
    /// when it holds one: a consumer's recycled event (src/recycle.rs).
    pub(crate) fn decode_reusing(
        &mut self,
        bytes: &[u8],
        spare: &mut Option<Box<Event>>,
    ) -> Result<DecodedRecord, DecodeError> {
        let r = RawRecord::parse(bytes)?;
        let h = &r.hdr;
        let clock = self.clock;
        if let Some(epoch) = self.cache.maintain(h.ts_ns, || clock.boot_now_ns()) {
            self.new_epoch = Some(epoch);
            self.processes.flush(clock.boot_now_ns());
        }
        self.processes.expire(h.ts_ns);
        let what = match r.kind {
            RecordKind::Event(kind) => Decoded::Event(self.boxed_event(&r, kind, spare)),
            RecordKind::ProcessExit => {
                self.processes.exited((h.pid, h.proc_start), h.ts_ns);
                Decoded::Notice
            }
            RecordKind::MountDef => {
                self.define_mount(&r);
                Decoded::Notice
            }
            RecordKind::Subtree => {
                let f = self.slot_ref(
                    &h.file,
                    r.file_path,
                    fsp_slot::FSP_SLOT_FILE.0,
                    &r,
                    Vec::new(),
                );
                Decoded::Subtree(Subtree {
                    partial: !f.is_kernel_resolved(),
                    path: f.path,
                    dev: h.file.dev,
                    ino: h.file.ino,
                })
            }
        };
        Ok(DecodedRecord {
            cpu: h.cpu,
            seq: h.seq,
            what,
        })
    }
}

#[cfg(test)]
mod fuzz;
#[cfg(test)]
mod tests;

//! Decoder tests on byte fixtures (no kernel).
use std::mem::size_of;
use std::path::Path;

use super::*;
use crate::skel::types::{fsp_cache_def, fsp_kind, fsp_origin};

fn decoder() -> Decoder {
    Decoder::new(BootClock::now(), ResolutionMode::PerfBuffer, 100, true)
}

fn event(d: &mut Decoder, bytes: &[u8]) -> Result<Event, DecodeError> {
    match d.decode(bytes)?.what {
        Decoded::Event(e) => Ok(*e),
        other => panic!("not an event: {other:?}"),
    }
}

pub(crate) fn record(h: &fsp_event, data: &[u8]) -> Vec<u8> {
    // SAFETY: fsp_event is plain data; viewing it as bytes is sound.
    let head = unsafe {
        std::slice::from_raw_parts((h as *const fsp_event).cast::<u8>(), size_of::<fsp_event>())
    };
    [head, data].concat()
}

pub(crate) fn header(kind: EventKind) -> fsp_event {
    fsp_event {
        version: raw::EVENT_VERSION,
        kind: kind as u8,
        origin: fsp_origin::FSP_ORIGIN_SYSCALL.0 as u8,
        pid: 42,
        tid: 43,
        ..Default::default()
    }
}

fn rename_header() -> fsp_event {
    let mut h = header(EventKind::Rename);
    h.op = 316;
    h.file.path_len = 6;
    h.file.ino = 7;
    h.file.dev = (8 << 20) | 3;
    h.target.path_len = 7;
    h.target.ino = 7;
    h
}

#[test]
fn decodes_both_paths_of_a_rename() {
    let e = event(&mut decoder(), &record(&rename_header(), b"/a/old/b/new2")).unwrap();
    assert_eq!(e.kind, EventKind::Rename);
    assert_eq!(e.origin, Origin::Syscall("renameat2"));
    assert_eq!(e.file.path, Path::new("/a/old"));
    assert_eq!(e.file.device, (8, 3));
    assert_eq!(e.target.unwrap().path, Path::new("/b/new2"));
}

#[test]
fn rejects_overrun_short_and_foreign_records() {
    let h = rename_header();
    let size = size_of::<fsp_event>();
    assert_eq!(
        decoder().decode(&record(&h, b"/a/old/b/new")).unwrap_err(),
        DecodeError::Overrun(13, size + 12)
    );
    assert_eq!(
        decoder().decode(&[0u8; 10]).unwrap_err(),
        DecodeError::Short(10)
    );
    let mut bad = rename_header();
    bad.version = 9;
    assert_eq!(
        decoder()
            .decode(&record(&bad, b"/a/old/b/new2"))
            .unwrap_err(),
        DecodeError::Version(9)
    );
    bad.version = raw::EVENT_VERSION;
    bad.kind = 77;
    assert_eq!(
        decoder()
            .decode(&record(&bad, b"/a/old/b/new2"))
            .unwrap_err(),
        DecodeError::Kind(77)
    );
}

#[test]
fn keeps_non_utf8_bytes_and_user_suffix() {
    let mut h = header(EventKind::Unlink);
    h.file.path_len = 4;
    h.file.flags = PATH_USER_SUFFIX;
    h.file.user_len = 2;
    let e = event(&mut decoder(), &record(&h, b"/a\xff\xfe")).unwrap();
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
            generation: 7,
            ..Default::default()
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
    let mut h = header(EventKind::Open);
    h.op = 257;
    h.n_defs = n_defs;
    h.file.path_len = path_len;
    h.file.cache_gen = 5;
    h
}

#[test]
fn rebuilds_a_cached_prefix_in_both_user_space_modes() {
    for mode in [ResolutionMode::PerfBuffer, ResolutionMode::Fragments] {
        let mut decoder = Decoder::new(BootClock::now(), mode, 100, true);
        // Walked to the root: teaches /srv/data (ino 30) then /srv (ino 20).
        let first = [
            record(&open_header(15, 2), b"/srv/data/a.txt"),
            def_bytes(30, 9, 4),
            def_bytes(20, 4, 3),
        ]
        .concat();
        let e = event(&mut decoder, &first).unwrap();
        assert_eq!(e.file.path, Path::new("/srv/data/a.txt"));
        // Stopped at /srv/data: only "/b.txt" travels.
        let mut h = open_header(6, 0);
        h.file.prefix = fsp_dir_key {
            mnt_id: 21,
            dev: 8,
            ino: 30,
            generation: 7,
            ..Default::default()
        };
        let e = event(&mut decoder, &record(&h, b"/b.txt")).unwrap();
        assert_eq!(e.file.path, Path::new("/srv/data/b.txt"), "{mode}");
        assert!(e.file.is_kernel_resolved());
        // The same inode number with another i_generation (the directory
        // was removed and a new one got its number): unknown, not the old path.
        h.file.prefix.generation = 8;
        let e = event(&mut decoder, &record(&h, b"/b.txt")).unwrap();
        assert!(e.file.truncated, "{mode}");
        assert_eq!(decoder.unknown_prefixes, 1);
        h.file.prefix.generation = 7;
        // Another generation (a rename happened): the prefix is unknown,
        // and the path is reported truncated rather than wrong.
        h.file.cache_gen = 6;
        let e = event(&mut decoder, &record(&h, b"/b.txt")).unwrap();
        assert!(e.file.truncated, "{mode}");
        assert_eq!(decoder.unknown_prefixes, 2);
    }
}

#[test]
fn a_process_defined_once_serves_its_later_records() {
    let mut d = decoder();
    let mut h = open_header(2, 0);
    h.proc_start = 777;
    h.rflags = raw::REC_PROCESS;
    h.proc.mnt_ns = 4026531840;
    h.proc.cgroup_id = 99;
    h.proc.exe.path_len = 8;
    h.proc.exe.ino = 5;
    h.proc.cgroup_len = 20;
    let first = record(&h, b"/a/usr/bin/x/system.slice/cron.svc");
    assert!(d.prefixes_known(&first));
    let e = event(&mut d, &first).unwrap();
    let exe = e.process.exe.as_ref().unwrap();
    assert_eq!(exe.path, Path::new("/usr/bin"));
    assert_eq!(exe.inode, 5);
    assert_eq!(e.process.cgroup.as_deref(), Some("/x/system.slice/cron"));
    assert_eq!(e.process.cgroup_id, 99);
    // The next record of the process carries no definition.
    h.rflags = 0;
    h.proc = Default::default();
    let next = record(&h, b"/b");
    assert!(d.prefixes_known(&next));
    let e = event(&mut d, &next).unwrap();
    assert_eq!(e.process.exe.unwrap().path, Path::new("/usr/bin"));
    assert_eq!(e.process.mnt_ns, 4026531840);
    assert_eq!(e.process.start_time_ns, 777);
    // Same pid, another start time: another process, unknown so far.
    h.proc_start = 778;
    let other = record(&h, b"/c");
    assert!(!d.prefixes_known(&other));
    let e = event(&mut d, &other).unwrap();
    assert!(e.process.exe.is_none());
    assert_eq!(d.unknown_processes(), 1);
}

#[test]
fn decodes_the_strings_of_the_new_kinds() {
    let mut d = decoder();
    let mut h = header(EventKind::Symlink);
    h.file.path_len = 5;
    h.extra_len = 9;
    h.rflags = raw::REC_EXTRA_USER;
    let e = event(&mut d, &record(&h, b"/w/ln../target")).unwrap();
    let t = e.symlink_target.unwrap();
    assert_eq!(&*t.bytes, b"../target");
    assert!(t.from_user);
    let mut h = header(EventKind::Setxattr);
    h.file.path_len = 2;
    h.extra_len = 19;
    h.attr_size = 20;
    h.attr_mask = 1;
    h.origin = fsp_origin::FSP_ORIGIN_IO_URING.0 as u8;
    h.op = 42;
    h.user_data = 0xfeed;
    let e = event(&mut d, &record(&h, b"/fsecurity.capability")).unwrap();
    let x = e.xattr.unwrap();
    assert_eq!(&*x.name.unwrap().bytes, b"security.capability");
    assert_eq!(x.size, Some(20));
    assert_eq!(x.flags, 1);
    match e.origin {
        Origin::IoUring(io) => {
            assert_eq!(io.opcode, "SETXATTR");
            assert_eq!(io.user_data, 0xfeed);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_subtree_notice_names_the_directory_to_walk() {
    let mut h = header(EventKind::Open);
    h.kind = fsp_kind::FSP_SUBTREE.0 as u8;
    h.file.path_len = 4;
    h.file.ino = 12;
    h.file.dev = 3;
    match decoder().decode(&record(&h, b"/d/e")).unwrap().what {
        Decoded::Subtree(s) => {
            assert_eq!(s.path, Path::new("/d/e"));
            assert_eq!((s.dev, s.ino), (3, 12));
            assert!(!s.partial);
        }
        other => panic!("{other:?}"),
    }
}

/// Decodes `bytes` into `spare` (a recycled event), as the worker does.
fn event_reusing(d: &mut Decoder, bytes: &[u8], spare: Box<Event>) -> Box<Event> {
    let mut spare = Some(spare);
    match d.decode_reusing(bytes, &mut spare).unwrap().what {
        Decoded::Event(e) => {
            assert!(spare.is_none(), "the spare was not used");
            e
        }
        other => panic!("not an event: {other:?}"),
    }
}

fn named_open(path_len: u16, ino: u64, comm: &[u8]) -> fsp_event {
    let mut h = header(EventKind::Open);
    h.op = 257;
    h.file.path_len = path_len;
    h.file.ino = ino;
    for (dst, &c) in h.comm.iter_mut().zip(comm) {
        *dst = c as i8;
    }
    h
}

#[test]
fn a_recycled_event_keeps_nothing_of_the_one_before() {
    let mut d = decoder();
    let rename = event(&mut d, &record(&rename_header(), b"/a/old/b/new2")).unwrap();
    let long = b"/a/much/longer/path/than/the/next";
    let h = named_open(long.len() as u16, 9, b"first-comm");
    let first = event_reusing(&mut d, &record(&h, long), Box::new(rename));
    assert_eq!(first.kind, EventKind::Open);
    assert_eq!(
        first.file.path,
        Path::new("/a/much/longer/path/than/the/next")
    );
    assert_eq!(first.target, None, "the rename's target stayed");
    assert_eq!(first.process.comm, "first-comm");
    let second = event_reusing(&mut d, &record(&named_open(3, 10, b"sh"), b"/ab"), first);
    assert_eq!(second.file.path, Path::new("/ab"));
    assert_eq!(second.file.inode, 10);
    assert_eq!(second.process.comm, "sh");
    let rename = event_reusing(&mut d, &record(&rename_header(), b"/a/old/b/new2"), second);
    assert_eq!(rename.file.path, Path::new("/a/old"));
    assert_eq!(rename.target.unwrap().path, Path::new("/b/new2"));
}

#[test]
fn a_recycled_event_is_decoded_in_its_own_memory() {
    let mut d = decoder();
    let long = b"/a/path/long/enough/for/the/next/one";
    let h = named_open(long.len() as u16, 9, b"cat");
    let first = event(&mut d, &record(&h, long)).map(Box::new).unwrap();
    let (boxed, path) = (
        &*first as *const Event,
        first.file.path.as_os_str().as_bytes().as_ptr(),
    );
    let comm = first.process.comm.as_ptr();
    let next = event_reusing(&mut d, &record(&named_open(4, 10, b"ls"), b"/abc"), first);
    assert_eq!(next.file.path, Path::new("/abc"));
    assert_eq!(&*next as *const Event, boxed, "a new box");
    assert_eq!(
        next.file.path.as_os_str().as_bytes().as_ptr(),
        path,
        "a new path buffer"
    );
    assert_eq!(next.process.comm.as_ptr(), comm, "a new comm buffer");
}

#[test]
fn a_recycled_event_is_decoded_without_allocating() {
    let mut d = decoder();
    let long = b"/a/path/long/enough/for/the/next/one";
    let h = named_open(long.len() as u16, 9, b"cat");
    let bytes = record(&named_open(5, 10, b"ls"), b"/abcd");
    // The first record defines the process and sizes the buffers.
    let first = Box::new(event(&mut d, &record(&h, long)).unwrap());
    let mut spare = Some(event_reusing(&mut d, &record(&h, long), first));
    let start = crate::alloc_count::allocations();
    let decoded = d.decode_reusing(&bytes, &mut spare).unwrap();
    let used = crate::alloc_count::allocations() - start;
    let Decoded::Event(e) = decoded.what else {
        panic!("not an event")
    };
    assert_eq!(e.file.path, Path::new("/abcd"));
    assert_eq!(used, 0, "allocations decoding into a recycled event");
}

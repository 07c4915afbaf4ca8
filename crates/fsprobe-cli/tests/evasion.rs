//! Nothing gets past: the operations that syscall-based monitors miss,
//! done as an attacker would on a watched directory, each checked for
//! its exact event kind, paths, inode, pid and return value.
//!
//! - io_uring requests (OPENAT, WRITE, MKDIRAT, RENAMEAT, LINKAT,
//!   SYMLINKAT, UNLINKAT), inline and forced to an io-wq worker
//!   (IOSQE_ASYNC); the opcodes this kernel lacks are skipped, by its own
//!   io_uring probe (5.10 stops at UNLINKAT);
//! - open_by_handle_at(), which names no path at all;
//! - symlink(), mknod() of a FIFO, setxattr();
//! - writes through copy_file_range(), sendfile(), splice(), fallocate().
mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use io_uring::{IoUring, opcode, squeue, types};
use serde_json::Value;

use common::*;

fn c(p: &Path) -> CString {
    cstr(p.as_os_str().as_bytes())
}

/// A ring and the opcodes this kernel supports.
struct Ring {
    ring: IoUring,
    probe: io_uring::Probe,
}

impl Ring {
    fn new() -> Ring {
        let ring = IoUring::new(8).expect("io_uring_setup");
        let mut probe = io_uring::Probe::new();
        ring.submitter()
            .register_probe(&mut probe)
            .expect("IORING_REGISTER_PROBE");
        Ring { ring, probe }
    }

    fn supports(&self, code: u8) -> bool {
        self.probe.is_supported(code)
    }

    /// Submits one request (to an io-wq worker when `worker`) and returns its result.
    fn run(&mut self, entry: squeue::Entry, worker: bool) -> i32 {
        let entry = if worker {
            entry.flags(squeue::Flags::ASYNC)
        } else {
            entry
        };
        // SAFETY: every pointer the entry holds outlives the wait below.
        unsafe { self.ring.submission().push(&entry).expect("a free SQE") };
        self.ring.submit_and_wait(1).expect("io_uring_enter");
        let cqe = self.ring.completion().next().expect("a CQE");
        cqe.result()
    }
}

/// The event of `kind` on `path` by this process, whose io_uring opcode is `op`.
fn uring_event(probe: &Probe, kind: &str, path: &Path, op: &str) -> Value {
    let ev = probe.wait_for(&format!("io_uring {op} on {}", path.display()), |v| {
        v["event"] == kind
            && v["process"]["pid"] == pid()
            && v["file"]["path"].as_str() == path.to_str()
            && v["io_uring"]["opcode"] == op
    });
    assert_eq!(ev["origin"], "io_uring", "{ev}");
    ev
}

/// Who did it: the submitting thread, or an io-wq worker of this process
/// (IOSQE_ASYNC, or a request the kernel could not do without blocking,
/// such as an O_CREAT open).
fn check_worker(ev: &Value, forced: bool) {
    let in_worker = ev["io_uring"]["worker"] == true;
    if forced {
        assert!(in_worker, "IOSQE_ASYNC runs in a worker: {ev}");
    }
    if in_worker {
        let comm = ev["process"]["comm"].as_str().unwrap_or_default();
        assert!(comm.starts_with("iou-wrk"), "{ev}");
        assert_ne!(ev["process"]["tid"], tid(), "{ev}");
    } else {
        assert_eq!(ev["process"]["tid"], tid(), "{ev}");
    }
}

#[test]
fn io_uring_requests_are_reported_with_their_results() {
    let dir = Scratch::new("uring");
    let probe = watch(
        &dir.path,
        &[
            "-e", "open", "-e", "modify", "-e", "mkdir", "-e", "rename", "-e", "link", "-e",
            "symlink", "-e", "unlink", "-e", "rmdir",
        ],
    );
    let mut ring = Ring::new();
    let cwd = types::Fd(libc::AT_FDCWD);
    for worker in [false, true] {
        let tag = if worker { "async" } else { "inline" };
        // OPENAT, creating the file: the result is the new fd.
        let file = dir.join(format!("created-{tag}"));
        let cf = c(&file);
        let flags = libc::O_CREAT | libc::O_WRONLY | libc::O_CLOEXEC;
        let fd = ring.run(
            opcode::OpenAt::new(cwd, cf.as_ptr())
                .flags(flags)
                .mode(0o640)
                .build(),
            worker,
        );
        assert!(fd >= 0, "OPENAT: {fd}");
        let ev = uring_event(&probe, "open", &file, "OPENAT");
        assert_eq!(ev["retval"], fd, "{ev}");
        assert_eq!(ev["file"]["inode"], ino(&file), "{ev}");
        assert_eq!(
            ev["open"]["raw_flags"].as_u64().unwrap() as i32 & flags,
            flags,
            "{ev}"
        );
        check_worker(&ev, worker);
        // WRITE: the result is the byte count.
        let data = b"written through io_uring";
        let n = ring.run(
            opcode::Write::new(types::Fd(fd), data.as_ptr(), data.len() as u32).build(),
            worker,
        );
        assert_eq!(n, data.len() as i32);
        let ev = uring_event(&probe, "modify", &file, "WRITE");
        assert_eq!(ev["retval"], n, "{ev}");
        assert_eq!(ev["file"]["inode"], ino(&file), "{ev}");
        // SAFETY: fd is the descriptor OPENAT returned, closed once.
        unsafe { libc::close(fd) };

        if ring.supports(opcode::MkDirAt::CODE) {
            let d = dir.join(format!("dir-{tag}"));
            let cd = c(&d);
            let rc = ring.run(
                opcode::MkDirAt::new(cwd, cd.as_ptr()).mode(0o750).build(),
                worker,
            );
            assert_eq!(rc, 0, "MKDIRAT");
            let ev = uring_event(&probe, "mkdir", &d, "MKDIRAT");
            assert_eq!(ev["retval"], 0);
            assert_eq!(ev["file"]["inode"], ino(&d), "{ev}");
            check_worker(&ev, worker);
        } else {
            eprintln!("MKDIRAT: not on this kernel, skipped");
        }
        if ring.supports(opcode::LinkAt::CODE) {
            let link = dir.join(format!("hardlink-{tag}"));
            let (cf, cl) = (c(&file), c(&link));
            let rc = ring.run(
                opcode::LinkAt::new(cwd, cf.as_ptr(), cwd, cl.as_ptr()).build(),
                worker,
            );
            assert_eq!(rc, 0, "LINKAT");
            let ev = uring_event(&probe, "link", &file, "LINKAT");
            assert_eq!(path_of(&ev, "target"), link.to_str().unwrap(), "{ev}");
            assert_eq!(ev["target"]["inode"], ino(&file), "{ev}");
            check_worker(&ev, worker);
        }
        if ring.supports(opcode::SymlinkAt::CODE) {
            let link = dir.join(format!("symlink-{tag}"));
            let (target, cl) = (cstr("../elsewhere"), c(&link));
            let rc = ring.run(
                opcode::SymlinkAt::new(cwd, target.as_ptr(), cl.as_ptr()).build(),
                worker,
            );
            assert_eq!(rc, 0, "SYMLINKAT");
            let ev = uring_event(&probe, "symlink", &link, "SYMLINKAT");
            assert_eq!(ev["symlink"]["target"], "../elsewhere", "{ev}");
            assert_eq!(ev["file"]["inode"], ino(&link), "{ev}");
            check_worker(&ev, worker);
        }
        // RENAMEAT (5.11+; Debian's 5.10 has it).
        let renamed = dir.join(format!("renamed-{tag}"));
        let (cf, cr) = (c(&file), c(&renamed));
        let inode = ino(&file);
        let rc = ring.run(
            opcode::RenameAt::new(cwd, cf.as_ptr(), cwd, cr.as_ptr()).build(),
            worker,
        );
        assert_eq!(rc, 0, "RENAMEAT");
        let ev = uring_event(&probe, "rename", &file, "RENAMEAT");
        assert_eq!(path_of(&ev, "target"), renamed.to_str().unwrap(), "{ev}");
        assert_eq!(ev["file"]["inode"], inode, "{ev}");
        check_worker(&ev, worker);
        // UNLINKAT.
        let cr = c(&renamed);
        let rc = ring.run(opcode::UnlinkAt::new(cwd, cr.as_ptr()).build(), worker);
        assert_eq!(rc, 0, "UNLINKAT");
        let ev = uring_event(&probe, "unlink", &renamed, "UNLINKAT");
        assert_eq!(ev["file"]["inode"], inode, "{ev}");
        assert_eq!(ev["retval"], 0);
        check_worker(&ev, worker);
        // A failure, reported with its errno: unlinking a directory.
        let d = dir.join(format!("not-a-file-{tag}"));
        fs::create_dir(&d).unwrap();
        let cd = c(&d);
        let rc = ring.run(opcode::UnlinkAt::new(cwd, cd.as_ptr()).build(), worker);
        assert_eq!(rc, -libc::EISDIR, "UNLINKAT of a directory");
        let ev = probe.wait_for("the failed UNLINKAT", |v| {
            v["event"] == "unlink"
                && v["retval"] == -libc::EISDIR
                && path_of(v, "file") == d.to_str().unwrap()
        });
        assert_eq!(ev["io_uring"]["opcode"], "UNLINKAT", "{ev}");
        assert_eq!(ev["file"]["inode"], ino(&d), "{ev}");
    }
    probe.stop();
}

/// A file handle for `path`, and the mount id name_to_handle_at() reports.
fn handle_of(path: &Path) -> Vec<u8> {
    // struct file_handle: handle_bytes, handle_type, f_handle[] (MAX_HANDLE_SZ 128).
    let mut buf = vec![0u8; 8 + 128];
    buf[..4].copy_from_slice(&128u32.to_ne_bytes());
    let mut mount_id: libc::c_int = 0;
    let p = c(path);
    // SAFETY: buf holds a file_handle with room for 128 bytes of handle; p is NUL-terminated.
    let rc = unsafe {
        libc::syscall(
            libc::SYS_name_to_handle_at,
            libc::AT_FDCWD,
            p.as_ptr(),
            buf.as_mut_ptr(),
            &mut mount_id,
            0,
        )
    };
    assert_eq!(
        rc,
        0,
        "name_to_handle_at: {}",
        std::io::Error::last_os_error()
    );
    buf
}

#[test]
fn open_by_handle_at_is_reported_with_the_file_it_opened() {
    let dir = Scratch::new("handle");
    let file = dir.join("secret");
    fs::write(&file, b"x").unwrap();
    let mut handle = handle_of(&file);
    let probe = watch(&dir.path, &["-e", "open"]);
    let mount = fs::File::open(&dir.path).unwrap();
    // SAFETY: handle holds the file_handle name_to_handle_at() filled.
    let fd = unsafe {
        libc::syscall(
            libc::SYS_open_by_handle_at,
            mount.as_raw_fd(),
            handle.as_mut_ptr(),
            libc::O_RDONLY,
        )
    };
    assert!(
        fd >= 0,
        "open_by_handle_at: {}",
        std::io::Error::last_os_error()
    );
    let ev = probe.wait_for("open_by_handle_at", |v| {
        v["event"] == "open" && v["syscall"] == "open_by_handle_at" && v["process"]["tid"] == tid()
    });
    // SAFETY: fd is the descriptor open_by_handle_at returned, closed once.
    unsafe { libc::close(fd as i32) };
    assert_eq!(path_of(&ev, "file"), file.to_str().unwrap(), "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&file), "{ev}");
    assert_eq!(ev["retval"], fd, "{ev}");
    assert_by_me(&ev);
    probe.stop();
}

#[test]
fn symlinks_nodes_and_xattrs_are_reported() {
    let dir = Scratch::new("nodes");
    let probe = watch(&dir.path, &[]);
    let link = dir.join("link");
    std::os::unix::fs::symlink("/etc/shadow", &link).unwrap();
    let ev = probe.wait_for("symlink", |v| is(v, "symlink", &link));
    assert_eq!(ev["symlink"]["target"], "/etc/shadow", "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&link), "{ev}");
    assert_eq!(ev["retval"], 0);
    assert_by_me(&ev);

    let fifo = dir.join("fifo");
    let cf = c(&fifo);
    // SAFETY: cf is NUL-terminated.
    let rc = unsafe { libc::mknod(cf.as_ptr(), libc::S_IFIFO | 0o600, 0) };
    assert_eq!(rc, 0, "mknod: {}", std::io::Error::last_os_error());
    let ev = probe.wait_for("mknod", |v| is(v, "mknod", &fifo));
    assert_eq!(ev["mknod"]["type"], "fifo", "{ev}");
    assert_eq!(ev["mknod"]["mode"], "600", "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&fifo), "{ev}");
    assert_by_me(&ev);

    // trusted.* works on tmpfs on every kernel here (user.* only from 6.6).
    let file = dir.join("file");
    fs::write(&file, b"x").unwrap();
    let (cpath, name, value) = (c(&file), cstr("trusted.fsprobe"), b"forged");
    // SAFETY: the strings are NUL-terminated, value is value.len() bytes.
    let rc = unsafe {
        libc::setxattr(
            cpath.as_ptr(),
            name.as_ptr(),
            value.as_ptr().cast(),
            value.len(),
            0,
        )
    };
    assert_eq!(rc, 0, "setxattr: {}", std::io::Error::last_os_error());
    let ev = probe.wait_for("setxattr", |v| is(v, "setxattr", &file));
    assert_eq!(ev["xattr"]["name"], "trusted.fsprobe", "{ev}");
    assert_eq!(ev["xattr"]["size"], value.len(), "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&file), "{ev}");
    // SAFETY: the strings are NUL-terminated.
    let rc = unsafe { libc::removexattr(cpath.as_ptr(), name.as_ptr()) };
    assert_eq!(rc, 0);
    let ev = probe.wait_for("removexattr", |v| is(v, "removexattr", &file));
    assert_eq!(ev["xattr"]["name"], "trusted.fsprobe", "{ev}");
    probe.stop();
}

#[test]
fn writes_that_bypass_write_are_reported() {
    let dir = Scratch::new("writes");
    let src = dir.join("src");
    fs::write(&src, vec![b'a'; 4096]).unwrap();
    let probe = watch(&dir.path, &["-e", "modify"]);
    let input = fs::File::open(&src).unwrap();
    let modify = |name: &str, target: &Path, syscall: &str, ret: i64| {
        let ev = probe.wait_for(name, |v| is(v, "modify", target) && v["syscall"] == syscall);
        assert_eq!(ev["retval"], ret, "{ev}");
        assert_eq!(ev["file"]["inode"], ino(target), "{ev}");
        assert_by_me(&ev);
    };

    let dst = dir.join("copied");
    let out = fs::File::create(&dst).unwrap();
    // SAFETY: both fds are open; NULL offsets use the file positions.
    let n = unsafe {
        libc::copy_file_range(
            input.as_raw_fd(),
            std::ptr::null_mut(),
            out.as_raw_fd(),
            std::ptr::null_mut(),
            100,
            0,
        )
    };
    assert_eq!(n, 100);
    modify("copy_file_range", &dst, "copy_file_range", 100);

    let dst = dir.join("sent");
    let out = fs::File::create(&dst).unwrap();
    let mut off: libc::off_t = 0;
    // SAFETY: both fds are open, off is a valid offset.
    let n = unsafe { libc::sendfile(out.as_raw_fd(), input.as_raw_fd(), &mut off, 200) };
    assert_eq!(n, 200);
    modify("sendfile", &dst, "sendfile", 200);

    let dst = dir.join("spliced");
    let out = fs::File::create(&dst).unwrap();
    let mut pipe = [0i32; 2];
    // SAFETY: pipe has room for two fds.
    assert_eq!(unsafe { libc::pipe(pipe.as_mut_ptr()) }, 0);
    // SAFETY: pipe[1] is the write end; the buffer is 300 bytes.
    let n = unsafe { libc::write(pipe[1], [b'p'; 300].as_ptr().cast(), 300) };
    assert_eq!(n, 300);
    // SAFETY: pipe[0] is the read end, out is open; NULL offsets are allowed.
    let n = unsafe {
        libc::splice(
            pipe[0],
            std::ptr::null_mut(),
            out.as_raw_fd(),
            std::ptr::null_mut(),
            300,
            0,
        )
    };
    assert_eq!(n, 300);
    modify("splice", &dst, "splice", 300);
    // SAFETY: closing the two pipe fds once.
    unsafe {
        libc::close(pipe[0]);
        libc::close(pipe[1]);
    }

    let dst = dir.join("allocated");
    let out = fs::File::create(&dst).unwrap();
    // SAFETY: out is open.
    assert_eq!(unsafe { libc::fallocate(out.as_raw_fd(), 0, 0, 8192) }, 0);
    modify("fallocate", &dst, "fallocate", 0);
    probe.stop();
}

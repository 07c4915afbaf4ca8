//! 32-bit syscalls are no way around fsprobe: a 64-bit process can make
//! them through `int 0x80`, with numbers of another table and arguments in
//! other registers. Each is reported as what it does, named by its ia32
//! name, with the exact paths, inode, return value and the new state of
//! the watch (a directory made by an ia32 mkdir is watched; one renamed by
//! an ia32 rename is reported under its new name).
#![cfg(target_arch = "x86_64")]
mod common;

use std::fs;
use std::path::Path;

use common::*;

/// ia32 numbers (arch/x86/entry/syscalls/syscall_32.tbl).
const IA32_WRITE: u32 = 4;
const IA32_OPEN: u32 = 5;
const IA32_LCHOWN16: u32 = 16;
const IA32_RENAME: u32 = 38;
const IA32_MKDIR: u32 = 39;
const IA32_TRUNCATE64: u32 = 193;
const IA32_OPENAT: u32 = 295;
const IA32_UNLINKAT: u32 = 301;

/// An ia32 syscall through int 0x80, with up to five 32-bit arguments.
fn int80(nr: u32, args: [u32; 5]) -> i32 {
    let ret: u32;
    // SAFETY: a syscall with plain integer arguments; the pointers among
    // them point into Low's mapping. rbx (reserved by LLVM) is swapped in
    // and out around the trap; r8-r11 are declared clobbered for kernels
    // that did not preserve them in int 0x80.
    unsafe {
        std::arch::asm!(
            "xchg {b}, rbx",
            "int 0x80",
            "xchg {b}, rbx",
            b = inout(reg) u64::from(args[0]) => _,
            inlateout("eax") nr => ret,
            in("ecx") args[1],
            in("edx") args[2],
            in("esi") args[3],
            in("edi") args[4],
            out("r8") _,
            out("r9") _,
            out("r10") _,
            out("r11") _,
        );
    }
    ret as i32
}

/// Memory below 4 GiB (MAP_32BIT), where 32-bit pointer arguments can point.
struct Low {
    base: *mut u8,
    used: usize,
}

const LOW_SIZE: usize = 1 << 16;

impl Low {
    fn new() -> Low {
        // SAFETY: an anonymous private mapping; checked below.
        let base = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                LOW_SIZE,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | libc::MAP_32BIT,
                -1,
                0,
            )
        };
        assert_ne!(base, libc::MAP_FAILED, "mmap(MAP_32BIT)");
        assert!((base as u64) < (1 << 32));
        Low {
            base: base.cast(),
            used: 0,
        }
    }

    /// bytes copied below 4 GiB: their 32-bit address.
    fn put(&mut self, bytes: &[u8]) -> u32 {
        assert!(self.used + bytes.len() <= LOW_SIZE);
        // SAFETY: the mapping has room for bytes at used (checked above).
        let at = unsafe { self.base.add(self.used) };
        // SAFETY: at is writable for bytes.len() bytes and does not overlap bytes.
        unsafe { std::ptr::copy_nonoverlapping(bytes.as_ptr(), at, bytes.len()) };
        self.used += bytes.len().next_multiple_of(8);
        at as u64 as u32
    }

    /// A path as a NUL-terminated string below 4 GiB.
    fn path(&mut self, p: &Path) -> u32 {
        self.put(cstr(p.as_os_str().as_encoded_bytes()).as_bytes_with_nul())
    }
}

impl Drop for Low {
    fn drop(&mut self) {
        // SAFETY: the mapping made in new(), unmapped once.
        unsafe { libc::munmap(self.base.cast(), LOW_SIZE) };
    }
}

/// The event of `kind` on `path` made by ia32 syscall `name`.
fn ia32_event(probe: &Probe, kind: &str, path: &Path, name: &str) -> serde_json::Value {
    let ev = probe.wait_for(&format!("ia32 {name} on {}", path.display()), |v| {
        is(v, kind, path) && v["syscall"] == name
    });
    assert_eq!(ev["origin"], "syscall", "{ev}");
    assert_eq!(ev["syscall_abi"], "ia32", "{ev}");
    assert_by_me(&ev);
    ev
}

#[test]
fn ia32_syscalls_are_reported_with_their_results() {
    let dir = Scratch::new("ia32");
    let old = dir.join("old");
    fs::write(&old, b"x").unwrap();
    let events = ["open", "modify", "setattr", "mkdir", "rename", "unlink"];
    let args: Vec<&str> = events.iter().flat_map(|e| ["-e", e]).collect();
    let probe = watch(&dir.path, &args);
    let mut low = Low::new();

    // open(2) by its ia32 number 5, which is fstat's in x86-64.
    let fd = int80(IA32_OPEN, [low.path(&old), libc::O_RDONLY as u32, 0, 0, 0]);
    assert!(fd >= 0, "ia32 open: {fd}");
    let ev = ia32_event(&probe, "open", &old, "open");
    assert_eq!(ev["retval"], fd, "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&old), "{ev}");
    // SAFETY: fd was opened above, closed once.
    unsafe { libc::close(fd) };

    // openat(AT_FDCWD, ...): the directory fd is -100 in a 32-bit register.
    let new = dir.join("new");
    let flags = (libc::O_CREAT | libc::O_WRONLY) as u32;
    let fd = int80(
        IA32_OPENAT,
        [libc::AT_FDCWD as u32, low.path(&new), flags, 0o640, 0],
    );
    assert!(fd >= 0, "ia32 openat: {fd}");
    let ev = ia32_event(&probe, "open", &new, "openat");
    assert_eq!(ev["retval"], fd, "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&new), "{ev}");
    let data = low.put(b"12345");
    assert_eq!(int80(IA32_WRITE, [fd as u32, data, 5, 0, 0]), 5);
    let ev = ia32_event(&probe, "modify", &new, "write");
    assert_eq!(ev["retval"], 5, "{ev}");
    // SAFETY: fd was opened above, closed once.
    unsafe { libc::close(fd) };

    // The old 16-bit chown: gid 0xffff means "unchanged".
    assert_eq!(
        int80(IA32_LCHOWN16, [low.path(&new), 1234, 0xffff, 0, 0]),
        0
    );
    let ev = ia32_event(&probe, "setattr", &new, "lchown");
    assert_eq!(ev["setattr"]["uid"], 1234, "{ev}");
    assert!(ev["setattr"]["gid"].is_null(), "{ev}");

    // truncate64: the length's halves in two registers (4 GiB + 1).
    assert_eq!(int80(IA32_TRUNCATE64, [low.path(&new), 1, 1, 0, 0]), 0);
    let ev = ia32_event(&probe, "setattr", &new, "truncate64");
    assert_eq!(ev["setattr"]["size"], (1u64 << 32) + 1, "{ev}");

    // A directory an ia32 mkdir made is watched: a 64-bit create inside is reported.
    let sub = dir.join("sub");
    assert_eq!(int80(IA32_MKDIR, [low.path(&sub), 0o755, 0, 0, 0]), 0);
    let ev = ia32_event(&probe, "mkdir", &sub, "mkdir");
    assert_eq!(ev["file"]["inode"], ino(&sub), "{ev}");
    let inside = sub.join("inside");
    fs::write(&inside, b"y").unwrap();
    probe.wait_for("the create in the new directory", |v| {
        is(v, "open", &inside)
    });

    // A directory an ia32 rename moved: what is below gets the new path.
    let moved = dir.join("moved");
    assert_eq!(
        int80(IA32_RENAME, [low.path(&sub), low.path(&moved), 0, 0, 0]),
        0
    );
    let ev = ia32_event(&probe, "rename", &sub, "rename");
    assert_eq!(path_of(&ev, "target"), moved.to_str().unwrap(), "{ev}");
    let now = moved.join("inside");
    fs::File::open(&now).unwrap();
    probe.wait_for("an open under the new name", |v| {
        is(v, "open", &now) && v["syscall_abi"].is_null()
    });

    let at_fdcwd = libc::AT_FDCWD as u32;
    assert_eq!(int80(IA32_UNLINKAT, [at_fdcwd, low.path(&new), 0, 0, 0]), 0);
    ia32_event(&probe, "unlink", &new, "unlinkat");
    probe.stop();
}

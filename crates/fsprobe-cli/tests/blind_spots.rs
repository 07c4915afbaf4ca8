//! The watch follows the tree whatever is selected and however the tree
//! changes: directories created later with an -e list that leaves out
//! mkdir, a populated directory moved in, entries deeper than PATH_MAX at
//! start, a file system mounted over a watched directory. Each case does
//! something inside and expects the event with its exact path and inode.
mod common;

use std::ffi::CString;
use std::fs;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;

use common::*;

#[test]
fn directories_created_later_are_watched_whatever_the_events() {
    for events in [["-e", "open"], ["-e", "unlink"], ["-e", "modify"]] {
        let dir = Scratch::new(&format!("later-{}", events[1]));
        let probe = watch(&dir.path, &events);
        let deep = dir.join("a/b/c");
        fs::create_dir_all(&deep).unwrap();
        let file = deep.join("f");
        fs::write(&file, b"x").unwrap();
        fs::remove_file(&file).unwrap();
        let kind = events[1];
        let ev = probe.wait_for(&format!("{kind} in a new directory"), |v| {
            is(v, kind, &file)
        });
        assert_by_me(&ev);
        probe.stop();
    }
}

#[test]
fn a_populated_directory_moved_in_brings_its_whole_subtree() {
    let dir = Scratch::new("moved-in");
    let outside = Scratch::new("moved-in-outside");
    let deep = outside.join("x/y/z");
    fs::create_dir_all(&deep).unwrap();
    fs::write(deep.join("old"), b"x").unwrap();
    let watched = dir.join("inside");
    fs::create_dir(&watched).unwrap();
    let probe = watch(&dir.path, &[]);
    let moved = watched.join("x");
    fs::rename(outside.join("x"), &moved).unwrap();
    // At once, before fsprobe can have walked it, and two levels down.
    let old = moved.join("y/z/old");
    fs::File::open(&old).unwrap();
    let ev = probe.wait_for("an open two levels below the moved directory", |v| {
        is(v, "open", &old)
    });
    assert_eq!(ev["file"]["inode"], ino(&old), "{ev}");
    let new = moved.join("y/z/new");
    fs::write(&new, b"y").unwrap();
    probe.wait_for("a create below it", |v| is(v, "open", &new));
    // And later, once it has been walked.
    std::thread::sleep(std::time::Duration::from_millis(500));
    fs::remove_file(&old).unwrap();
    let ev = probe.wait_for("an unlink below it", |v| is(v, "unlink", &old));
    assert_by_me(&ev);
    let sub = moved.join("y/w");
    fs::create_dir(&sub).unwrap();
    let f = sub.join("f");
    fs::write(&f, b"z").unwrap();
    probe.wait_for("a create in a new directory below it", |v| {
        is(v, "open", &f)
    });
    probe.stop();
}

fn c(name: &str) -> CString {
    CString::new(name).unwrap()
}

/// mkdirat + openat: one level down from `dir`.
fn descend(dir: &OwnedFd, name: &str) -> OwnedFd {
    let n = c(name);
    // SAFETY: dir is open, n is NUL-terminated.
    let rc = unsafe { libc::mkdirat(dir.as_raw_fd(), n.as_ptr(), 0o755) };
    assert_eq!(rc, 0);
    // SAFETY: as above.
    let fd = unsafe {
        libc::openat(
            dir.as_raw_fd(),
            n.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY,
        )
    };
    assert!(fd >= 0);
    // SAFETY: openat returned a new fd.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

#[test]
fn entries_deeper_than_path_max_are_watched() {
    let dir = Scratch::new("deep");
    let top = fs::File::open(&dir.path).unwrap();
    // SAFETY: dup of an open fd.
    let mut at = unsafe { OwnedFd::from_raw_fd(libc::dup(top.as_raw_fd())) };
    let name = "d".repeat(200);
    // 25 levels of 201 bytes: deeper than PATH_MAX (4096).
    for _ in 0..25 {
        at = descend(&at, &name);
    }
    let leaf = c("leaf");
    // SAFETY: at is open, leaf NUL-terminated.
    let fd = unsafe {
        libc::openat(
            at.as_raw_fd(),
            leaf.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o644,
        )
    };
    assert!(fd >= 0);
    // SAFETY: closing the fd openat returned.
    unsafe { libc::close(fd) };
    let probe = watch(&dir.path, &["-e", "open", "-e", "unlink"]);
    let stderr_has_warning = probe.stderr().contains("could not be read");
    assert!(!stderr_has_warning, "the walk reached every entry");
    // SAFETY: at is open, leaf NUL-terminated.
    let fd = unsafe { libc::openat(at.as_raw_fd(), leaf.as_ptr(), libc::O_RDONLY) };
    assert!(fd >= 0);
    // SAFETY: closing the fd openat returned.
    unsafe { libc::close(fd) };
    let ev = probe.wait_for("the open of the deep file", |v| {
        v["event"] == "open"
            && v["process"]["tid"] == tid()
            && path_of(v, "file").ends_with(&format!("{name}/leaf"))
    });
    // The kernel has no path longer than PATH_MAX: the start is cut and flagged.
    assert_eq!(ev["file"]["truncated"], true, "{ev}");
    // SAFETY: stat is plain data, zero is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: at is open, leaf NUL-terminated, st writable.
    let rc = unsafe { libc::fstatat(at.as_raw_fd(), leaf.as_ptr(), &mut st, 0) };
    assert_eq!(rc, 0);
    assert_eq!(ev["file"]["inode"], st.st_ino, "{ev}");
    // SAFETY: at is open, leaf NUL-terminated.
    let rc = unsafe { libc::unlinkat(at.as_raw_fd(), leaf.as_ptr(), 0) };
    assert_eq!(rc, 0);
    probe.wait_for("the unlink of the deep file", |v| {
        v["event"] == "unlink" && path_of(v, "file").ends_with(&format!("{name}/leaf"))
    });
    probe.stop();
    // Scratch's remove_dir_all cannot reach PATH_MAX-deep entries by path: undo by fd.
    remove_deep(&dir.path, &name, 25);
}

fn remove_deep(root: &Path, name: &str, levels: usize) {
    let mut fds = vec![fs::File::open(root).unwrap().into()];
    for _ in 0..levels {
        let n = c(name);
        let parent: &OwnedFd = fds.last().unwrap();
        // SAFETY: parent is open, n NUL-terminated.
        let fd = unsafe {
            libc::openat(
                parent.as_raw_fd(),
                n.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            )
        };
        assert!(fd >= 0);
        // SAFETY: openat returned a new fd.
        fds.push(unsafe { OwnedFd::from_raw_fd(fd) });
    }
    for _ in 0..levels {
        fds.pop();
        let parent = fds.last().unwrap();
        let n = c(name);
        // SAFETY: parent is open, n NUL-terminated.
        unsafe { libc::unlinkat(parent.as_raw_fd(), n.as_ptr(), libc::AT_REMOVEDIR) };
    }
}

#[test]
fn a_mount_over_a_watched_directory_is_reported_and_watched() {
    let dir = Scratch::new("mounted-over");
    let over = dir.join("over");
    fs::create_dir(&over).unwrap();
    let src = Scratch::new("mounted-over-src");
    fs::create_dir_all(src.join("p/q")).unwrap();
    fs::write(src.join("p/q/existing"), b"x").unwrap();
    let bound = dir.join("bound");
    fs::create_dir(&bound).unwrap();
    let probe = watch(&dir.path, &[]);

    let tmpfs = Mounted::tmpfs(&over);
    let ev = probe.wait_for("the mount", |v| {
        v["event"] == "mount" && path_of(v, "file") == over.to_str().unwrap()
    });
    assert_eq!(ev["file"]["fstype"], "tmpfs", "{ev}");
    assert_eq!(ev["file"]["mount_id"], mount_id_of(&over), "{ev}");
    let inside = over.join("created");
    fs::write(&inside, b"y").unwrap();
    let ev = probe.wait_for("a create on the new mount", |v| is(v, "open", &inside));
    assert_eq!(ev["file"]["inode"], ino(&inside), "{ev}");
    assert_eq!(ev["file"]["fstype"], "tmpfs");

    // A bind mount of a populated tree: what it shows is watched at once.
    // Of a subdirectory: the mount's root has a d_parent (src) nobody watches.
    let bind = Mounted::bind(&src.join("p"), &bound);
    let existing = bound.join("q/existing");
    fs::File::open(&existing).unwrap();
    let ev = probe.wait_for("an open deep in the bind mount", |v| {
        is(v, "open", &existing)
    });
    assert_eq!(ev["file"]["inode"], ino(&existing), "{ev}");
    // The mount's root itself, once its contents were walked: its d_parent
    // is the source's, a directory nobody watches.
    std::thread::sleep(std::time::Duration::from_millis(500));
    drop(fs::read_dir(&bound).unwrap());
    let ev = probe.wait_for("an open of the bind mount's root", |v| {
        is(v, "open", &bound)
    });
    assert_eq!(ev["file"]["inode"], ino(&bound), "{ev}");
    drop(bind);
    probe.wait_for("the umount", |v| {
        v["event"] == "umount" && path_of(v, "file") == bound.to_str().unwrap()
    });
    drop(tmpfs);
    probe.stop();
}

/// A watched path is a name in a directory nobody watches: operations on
/// it by name must be reported all the same. (The dcache lookup of a name
/// skipped directories that watch nothing, so on the tracepoint backend
/// `chmod`, `rename` and `unlink` of a watched file, and the rename and
/// rmdir of a watched tree's top, went unreported.)
#[test]
fn watched_paths_themselves_are_reported_by_name() {
    let dir = Scratch::new("watched-paths");
    let file = dir.join("shadow");
    fs::write(&file, b"x").unwrap();
    let top = dir.join("tree");
    fs::create_dir(&top).unwrap();
    let probe = Probe::start([file.display().to_string(), top.display().to_string()]);
    let file_ino = ino(&file);
    let mut perms = fs::metadata(&file).unwrap().permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o600);
    fs::set_permissions(&file, perms).unwrap();
    let ev = probe.wait_for("the chmod of the watched file", |v| is(v, "setattr", &file));
    assert_eq!(ev["file"]["inode"], file_ino, "{ev}");
    assert_eq!(ev["setattr"]["mode"], "600", "{ev}");
    let moved = dir.join("shadow-");
    fs::rename(&file, &moved).unwrap();
    let ev = probe.wait_for("the rename of the watched file", |v| is(v, "rename", &file));
    assert_eq!(path_of(&ev, "target"), moved.to_str().unwrap(), "{ev}");
    assert_eq!(ev["file"]["inode"], file_ino, "{ev}");
    fs::remove_file(&moved).unwrap();
    let ev = probe.wait_for("the unlink of the watched file", |v| {
        is(v, "unlink", &moved)
    });
    assert_eq!(ev["file"]["inode"], file_ino, "{ev}");
    assert_by_me(&ev);

    let top_ino = ino(&top);
    let renamed = dir.join("tree-");
    fs::rename(&top, &renamed).unwrap();
    let ev = probe.wait_for("the rename of the tree's top", |v| is(v, "rename", &top));
    assert_eq!(path_of(&ev, "target"), renamed.to_str().unwrap(), "{ev}");
    assert_eq!(ev["file"]["inode"], top_ino, "{ev}");
    fs::remove_dir(&renamed).unwrap();
    let ev = probe.wait_for("the rmdir of the tree's top", |v| is(v, "rmdir", &renamed));
    assert_eq!(ev["file"]["inode"], top_ino, "{ev}");
    probe.stop();
}

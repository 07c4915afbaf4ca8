//! Each of the eight events, caused by this test process and checked
//! field by field: exact absolute paths, inodes, pid/tid, return values.
//! Runs as root with the real BPF programs.
mod common;

use std::fs;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::Path;

use common::*;

#[test]
fn open_reports_path_inode_fd_and_flags() {
    let dir = Scratch::new("open");
    let probe = watch(&dir.path, &[]);
    let path = dir.join("created.txt");
    let file = fs::File::create(&path).unwrap();
    let ev = probe.wait_for("open of created.txt", |v| is(v, "open", &path));
    assert_by_me(&ev);
    assert_eq!(ev["file"]["inode"], ino(&path));
    assert_eq!(ev["retval"].as_i64().unwrap(), {
        use std::os::fd::AsRawFd;
        file.as_raw_fd() as i64
    });
    let flags: Vec<&str> = ev["open"]["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f.as_str().unwrap())
        .collect();
    assert!(
        flags.contains(&"O_CREAT") && flags.contains(&"O_WRONLY"),
        "{ev}"
    );
    assert_eq!(ev["file"]["mount_id"], mount_id_for(&path));
    let meta = fs::metadata(&path).unwrap();
    assert_eq!(
        ev["file"]["device"],
        format!("{}:{}", libc::major(meta.dev()), libc::minor(meta.dev()))
    );
    assert!(
        ev["file"].get("user_suffix_len").is_none(),
        "an open is resolved from its fd: {ev}"
    );
    probe.stop();
}

/// The mount id of the mount holding `path`, from /proc/self/fdinfo.
fn mount_id_for(path: &Path) -> u64 {
    use std::os::fd::AsRawFd;
    let f = fs::File::open(path).unwrap();
    let info = fs::read_to_string(format!("/proc/self/fdinfo/{}", f.as_raw_fd())).unwrap();
    info.lines()
        .find_map(|l| l.strip_prefix("mnt_id:"))
        .map(|v| v.trim().parse().unwrap())
        .unwrap()
}

#[test]
fn failed_open_carries_errno_and_parent_resolved_path() {
    let dir = Scratch::new("open-fail");
    let probe = watch(&dir.path, &[]);
    let missing = dir.join("missing.txt");
    assert!(fs::File::open(&missing).is_err());
    let ev = probe.wait_for("failed open", |v| is(v, "open", &missing));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], -libc::ENOENT);
    assert_eq!(ev["file"]["inode"], 0);
    // The directory came from the dcache; only the missing name from the argument.
    assert_eq!(ev["file"]["user_suffix_len"], "missing.txt".len());
    probe.stop();
}

#[test]
fn mkdir_reports_new_directory_inode() {
    let dir = Scratch::new("mkdir");
    let probe = watch(&dir.path, &[]);
    let path = dir.join("newdir");
    fs::create_dir(&path).unwrap();
    let ev = probe.wait_for("mkdir", |v| is(v, "mkdir", &path));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], ino(&path));
    assert!(
        ev["file"]["mode"].as_str().unwrap().starts_with("40"),
        "{ev}"
    );
    probe.stop();
}

#[test]
fn link_reports_source_and_new_link() {
    let dir = Scratch::new("link");
    let src = dir.join("src.txt");
    fs::write(&src, b"x").unwrap();
    let probe = watch(&dir.path, &[]);
    let dst = dir.join("hardlink.txt");
    fs::hard_link(&src, &dst).unwrap();
    let ev = probe.wait_for("link", |v| is(v, "link", &src));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], ino(&src));
    assert_eq!(path_of(&ev, "target"), dst.to_str().unwrap());
    assert_eq!(ev["target"]["inode"], ino(&src));
    probe.stop();
}

#[test]
fn rename_reports_both_paths_across_directories() {
    let dir = Scratch::new("rename");
    let src = dir.join("a/old name.txt");
    fs::create_dir_all(dir.join("a")).unwrap();
    fs::create_dir_all(dir.join("b/c")).unwrap();
    fs::write(&src, b"x").unwrap();
    let inode = ino(&src);
    let probe = watch(&dir.path, &[]);
    let dst = dir.join("b/c/new name.txt");
    fs::rename(&src, &dst).unwrap();
    let ev = probe.wait_for("rename", |v| is(v, "rename", &src));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], inode);
    assert_eq!(path_of(&ev, "target"), dst.to_str().unwrap());
    assert_eq!(ev["target"]["inode"], inode);
    probe.stop();
}

#[test]
fn setattr_reports_mode_owner_size_and_times() {
    let dir = Scratch::new("setattr");
    let path = dir.join("f.txt");
    fs::write(&path, b"0123456789").unwrap();
    let probe = watch(&dir.path, &[]);

    fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
    let ev = probe.wait_for("chmod", |v| {
        is(v, "setattr", &path) && v["setattr"]["mode"] == "600"
    });
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], ino(&path));

    std::os::unix::fs::chown(&path, Some(1234), Some(5678)).unwrap();
    let ev = probe.wait_for("chown", |v| {
        is(v, "setattr", &path) && v["setattr"]["uid"] == 1234
    });
    assert_eq!(ev["setattr"]["gid"], 5678);

    fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .unwrap()
        .set_len(3)
        .unwrap();
    let ev = probe.wait_for("ftruncate", |v| {
        is(v, "setattr", &path) && v["setattr"]["size"] == 3
    });
    assert_eq!(ev["syscall"], "ftruncate");

    let c = cstr(path.as_os_str().as_bytes());
    // SAFETY: c is a valid C string; NULL times means "now".
    let rc = unsafe { libc::utimensat(libc::AT_FDCWD, c.as_ptr(), std::ptr::null(), 0) };
    assert_eq!(rc, 0);
    probe.wait_for("utimensat", |v| {
        is(v, "setattr", &path) && v["setattr"]["times"] == true
    });
    probe.stop();
}

#[test]
fn unlink_reports_removed_inode() {
    let dir = Scratch::new("unlink");
    let path = dir.join("doomed.txt");
    fs::write(&path, b"x").unwrap();
    let inode = ino(&path);
    let probe = watch(&dir.path, &[]);
    fs::remove_file(&path).unwrap();
    let ev = probe.wait_for("unlink", |v| is(v, "unlink", &path));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], inode);
    probe.stop();
}

#[test]
fn rmdir_reports_removed_directory_and_failures() {
    let dir = Scratch::new("rmdir");
    let empty = dir.join("empty");
    let full = dir.join("full");
    fs::create_dir(&empty).unwrap();
    fs::create_dir(&full).unwrap();
    fs::write(full.join("keep"), b"x").unwrap();
    let (empty_ino, full_ino) = (ino(&empty), ino(&full));
    let probe = watch(&dir.path, &[]);

    fs::remove_dir(&empty).unwrap();
    let ev = probe.wait_for("rmdir", |v| is(v, "rmdir", &empty));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 0);
    assert_eq!(ev["file"]["inode"], empty_ino);

    assert!(fs::remove_dir(&full).is_err());
    let ev = probe.wait_for("failed rmdir", |v| is(v, "rmdir", &full));
    assert_eq!(ev["retval"], -libc::ENOTEMPTY);
    assert_eq!(ev["file"]["inode"], full_ino);
    probe.stop();
}

#[test]
fn modify_is_reported_only_when_asked() {
    let dir = Scratch::new("modify");
    let path = dir.join("log.txt");
    fs::write(&path, b"").unwrap();
    let probe = watch(&dir.path, &["-e", "modify"]);
    let mut f = fs::OpenOptions::new().append(true).open(&path).unwrap();
    f.write_all(b"hello").unwrap();
    let ev = probe.wait_for("write", |v| is(v, "modify", &path));
    assert_by_me(&ev);
    assert_eq!(ev["retval"], 5);
    assert_eq!(ev["file"]["inode"], ino(&path));
    let done = probe.stop();
    assert!(
        done.events.iter().all(|v| v["event"] == "modify"),
        "-e modify reported other kinds:\n{}",
        dump(&done.events)
    );

    // Default events: all but modify.
    let probe = watch(&dir.path, &[]);
    f.write_all(b"again").unwrap();
    fs::File::open(&path).unwrap();
    probe.wait_for("open", |v| is(v, "open", &path));
    let done = probe.stop();
    assert!(
        done.events.iter().all(|v| v["event"] != "modify"),
        "{}",
        dump(&done.events)
    );
}

#[test]
fn dirfd_relative_calls_resolve_dotdot_in_the_kernel() {
    let dir = Scratch::new("dirfd");
    fs::create_dir_all(dir.join("x/y")).unwrap();
    fs::create_dir_all(dir.join("z")).unwrap();
    let probe = watch(&dir.path, &[]);
    let dirfd = fs::File::open(dir.join("x/y")).unwrap();
    use std::os::fd::AsRawFd;
    let name = cstr("../../z/made-via-dirfd");
    // SAFETY: valid dirfd and C string.
    let rc = unsafe { libc::mkdirat(dirfd.as_raw_fd(), name.as_ptr(), 0o755) };
    assert_eq!(rc, 0);
    let made = dir.join("z/made-via-dirfd");
    let ev = probe.wait_for("mkdirat via ..", |v| is(v, "mkdir", &made));
    assert_eq!(ev["file"]["inode"], ino(&made));
    assert!(ev["file"].get("user_suffix_len").is_none(), "{ev}");

    // SAFETY: valid dirfd and C string.
    let rc = unsafe { libc::unlinkat(dirfd.as_raw_fd(), name.as_ptr(), libc::AT_REMOVEDIR) };
    assert_eq!(rc, 0);
    let ev = probe.wait_for("unlinkat(AT_REMOVEDIR)", |v| is(v, "rmdir", &made));
    assert_eq!(ev["syscall"], "unlinkat");
    probe.stop();
}

#[test]
fn non_utf8_names_are_carried_losslessly() {
    let dir = Scratch::new("nonutf8");
    let probe = watch(&dir.path, &[]);
    let mut raw = dir.path.as_os_str().as_bytes().to_vec();
    raw.extend_from_slice(b"/bad-\xff\xfe name\nx");
    let path = std::path::PathBuf::from(std::ffi::OsStr::from_bytes(&raw));
    fs::write(&path, b"x").unwrap();
    let ev = probe.wait_for("open of a non-UTF-8 name", |v| {
        v["event"] == "open" && v["process"]["tid"] == tid() && v["file"]["path_bytes"].is_string()
    });
    assert_eq!(ev["file"]["path_bytes"], fsprobe::base64(&raw));
    assert_eq!(ev["file"]["path"], String::from_utf8_lossy(&raw).as_ref());
    assert_eq!(ev["file"]["inode"], ino(&path));
    probe.stop();
}

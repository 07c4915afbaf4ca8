//! What is watched: deep paths, mounts inside the tree, new directories,
//! files moved out, filtering on and off, event selection, and fsprobe's
//! own activity. Runs as root with the real BPF programs.
mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use common::*;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn a_3000_byte_path_resolves_exactly() {
    let dir = Scratch::new("deep");
    // 30 components of 99 bytes: well past the seed's 70-component cap in bytes.
    let mut deep = dir.path.clone();
    for i in 0..30 {
        deep.push(format!("{i:02}{}", "d".repeat(97)));
    }
    fs::create_dir_all(&deep).unwrap();
    let file = deep.join("leaf.txt");
    assert!(file.as_os_str().len() > 3000, "{}", file.as_os_str().len());
    let probe = watch(&dir.path, &[]);
    fs::write(&file, b"x").unwrap();
    let ev = probe.wait_for("open of the deep file", |v| is(v, "open", &file));
    assert_eq!(ev["file"]["inode"], ino(&file));
    assert!(ev["file"].get("truncated").is_none(), "{ev}");
    fs::remove_file(&file).unwrap();
    let ev = probe.wait_for("unlink of the deep file (name lookup)", |v| {
        is(v, "unlink", &file)
    });
    assert!(ev["file"].get("user_suffix_len").is_none(), "{ev}");
    probe.stop();
}

#[test]
fn a_path_longer_than_path_max_is_flagged_truncated() {
    let dir = Scratch::new("toolong");
    // Build a tree deeper than PATH_MAX by descending with relative mkdirs.
    let mut fd = fs::File::open(&dir.path).unwrap();
    let name = "t".repeat(200);
    for _ in 0..22 {
        use std::os::fd::AsRawFd;
        let c = cstr(&name);
        // SAFETY: valid dirfd and C strings.
        unsafe {
            assert_eq!(libc::mkdirat(fd.as_raw_fd(), c.as_ptr(), 0o755), 0);
            let next = libc::openat(
                fd.as_raw_fd(),
                c.as_ptr(),
                libc::O_RDONLY | libc::O_DIRECTORY,
            );
            assert!(next >= 0);
            fd = std::os::fd::FromRawFd::from_raw_fd(next);
        }
    }
    // The seeding walk cannot open paths beyond PATH_MAX either: watch
    // everything, this test is about resolution.
    let probe = Probe::start(["--paths-filtering=false", "-e", "open"]);
    use std::os::fd::AsRawFd;
    let leaf = cstr("leaf");
    // SAFETY: valid dirfd and C string.
    let f = unsafe {
        libc::openat(
            fd.as_raw_fd(),
            leaf.as_ptr(),
            libc::O_CREAT | libc::O_WRONLY,
            0o644,
        )
    };
    assert!(f >= 0);
    let ev = probe.wait_for("open beyond PATH_MAX", |v| {
        v["event"] == "open" && v["process"]["tid"] == tid() && v["file"]["truncated"] == true
    });
    let path = path_of(&ev, "file");
    assert!(path.ends_with(&format!("{name}/leaf")), "{path}");
    assert!(path.len() <= 4095, "{}", path.len());
    // SAFETY: f is our descriptor.
    unsafe { libc::close(f) };
    probe.stop();
}

#[test]
fn tmpfs_inside_the_tree_keeps_its_full_prefix() {
    let dir = Scratch::new("tmpfs");
    let mnt = dir.join("sub/mnt");
    let tmpfs = Mounted::tmpfs(&mnt);
    let probe = watch(&dir.path, &[]);
    let file = mnt.join("on-tmpfs.txt");
    fs::write(&file, b"x").unwrap();
    let ev = probe.wait_for("open on tmpfs", |v| is(v, "open", &file));
    assert_eq!(ev["file"]["inode"], ino(&file));
    assert_eq!(ev["file"]["mount_id"], mount_id_of(&mnt));
    fs::create_dir(mnt.join("d")).unwrap();
    probe.wait_for("mkdir on tmpfs (lookup crosses the mount)", |v| {
        is(v, "mkdir", &mnt.join("d"))
    });
    probe.stop();
    drop(tmpfs);
}

#[test]
fn directories_created_after_start_are_watched() {
    let dir = Scratch::new("newdirs");
    let probe = watch(&dir.path, &[]);
    let nested = dir.join("later/deeper");
    fs::create_dir_all(&nested).unwrap();
    let file = nested.join("f.txt");
    fs::write(&file, b"x").unwrap();
    let ev = probe.wait_for("open in a new directory", |v| is(v, "open", &file));
    assert_eq!(ev["file"]["inode"], ino(&file));
    probe.stop();

    // Not recursive: only direct children count.
    let probe = watch(&dir.path, &["--recursive=false"]);
    let top = dir.join("top.txt");
    fs::write(&top, b"x").unwrap();
    fs::write(&file, b"y").unwrap();
    probe.wait_for("open of a direct child", |v| is(v, "open", &top));
    let done = probe.stop();
    assert!(
        !done.events.iter().any(|v| is(v, "open", &file)),
        "non-recursive watch reported a grandchild:\n{}",
        dump(&done.events)
    );
}

fn outside_dir(name: &str) -> Scratch {
    Scratch::new(&format!("{name}-outside"))
}

#[test]
fn a_file_moved_out_of_the_tree_is_still_reported() {
    let dir = Scratch::new("follow");
    let elsewhere = outside_dir("follow");
    let file = dir.join("tracked.txt");
    fs::write(&file, b"x").unwrap();
    let inode = ino(&file);
    let probe = watch(&dir.path, &[]);
    let moved = elsewhere.join("tracked.txt");
    fs::rename(&file, &moved).unwrap();
    probe.wait_for("rename out", |v| is(v, "rename", &file));
    chmod(&moved, 0o640);
    let ev = probe.wait_for("chmod after the move", |v| is(v, "setattr", &moved));
    assert_eq!(ev["file"]["inode"], inode);
    probe.stop();
}

#[test]
fn a_directory_moved_out_keeps_its_whole_subtree_watched() {
    let dir = Scratch::new("follow-dir");
    let elsewhere = outside_dir("follow-dir");
    fs::create_dir_all(dir.join("proj/src/deep")).unwrap();
    fs::write(dir.join("proj/src/deep/old.rs"), b"x").unwrap();
    let probe = watch(&dir.path, &[]);
    let moved = elsewhere.join("proj-moved");
    fs::rename(dir.join("proj"), &moved).unwrap();
    probe.wait_for("rename of the directory", |v| {
        is(v, "rename", &dir.join("proj"))
    });
    // An existing file deep inside, and a file created after the move.
    chmod(&moved.join("src/deep/old.rs"), 0o600);
    let created = moved.join("src/deep/new.rs");
    fs::write(&created, b"y").unwrap();
    let ev = probe.wait_for("chmod inside the moved tree", |v| {
        is(v, "setattr", &moved.join("src/deep/old.rs"))
    });
    assert_eq!(ev["file"]["inode"], ino(&moved.join("src/deep/old.rs")));
    let ev = probe.wait_for("creation inside the moved tree", |v| {
        is(v, "open", &created)
    });
    assert_eq!(ev["file"]["inode"], ino(&created));
    probe.stop();
}

#[test]
fn a_new_hard_link_to_a_watched_file_is_reported_under_its_new_name() {
    let dir = Scratch::new("follow-link");
    let elsewhere = outside_dir("follow-link");
    let file = dir.join("secret.txt");
    fs::write(&file, b"x").unwrap();
    let probe = watch(&dir.path, &[]);
    let alias = elsewhere.join("alias.txt");
    fs::hard_link(&file, &alias).unwrap();
    let ev = probe.wait_for("link", |v| is(v, "link", &file));
    assert_eq!(path_of(&ev, "target"), alias.to_str().unwrap());
    // Opened through the new name only: reported with that name.
    fs::File::open(&alias).unwrap();
    let ev = probe.wait_for("open through the new link", |v| is(v, "open", &alias));
    assert_eq!(ev["file"]["inode"], ino(&file));
    probe.stop();
}

#[test]
fn follow_false_stops_at_the_tree_boundary() {
    let dir = Scratch::new("nofollow");
    let elsewhere = outside_dir("nofollow");
    let file = dir.join("left.txt");
    fs::write(&file, b"x").unwrap();
    let probe = watch(&dir.path, &["--follow=false"]);
    let moved = elsewhere.join("left.txt");
    fs::rename(&file, &moved).unwrap();
    probe.wait_for("rename out", |v| is(v, "rename", &file));
    chmod(&moved, 0o640);
    // A marker event inside the tree, after the chmod: once it shows up,
    // the chmod would have too.
    let marker = dir.join("marker");
    fs::create_dir(&marker).unwrap();
    probe.wait_for("marker", |v| is(v, "mkdir", &marker));
    let done = probe.stop();
    assert!(
        !done.events.iter().any(|v| is(v, "setattr", &moved)),
        "--follow=false still reported the moved file:\n{}",
        dump(&done.events)
    );
}

#[test]
fn paths_filtering_false_sees_the_whole_system() {
    let watched = Scratch::new("filter-on");
    let unwatched = Scratch::new("filter-off");
    let file = unwatched.join("anywhere.txt");

    let probe = watch(&watched.path, &[]);
    fs::write(&file, b"x").unwrap();
    let marker = watched.join("marker");
    fs::write(&marker, b"x").unwrap();
    probe.wait_for("marker", |v| is(v, "open", &marker));
    let done = probe.stop();
    assert!(
        !done.events.iter().any(|v| is(v, "open", &file)),
        "filtering on reported an unwatched file:\n{}",
        dump(&done.events)
    );

    let probe = Probe::start(["--paths-filtering=false"]);
    fs::write(&file, b"y").unwrap();
    let ev = probe.wait_for("open of an unwatched file", |v| is(v, "open", &file));
    assert_eq!(ev["file"]["inode"], ino(&file));
    probe.stop();
}

#[test]
fn event_flag_limits_the_kinds() {
    let dir = Scratch::new("only-mkdir");
    let probe = watch(&dir.path, &["-e", "mkdir", "-e", "rmdir"]);
    let file = dir.join("ignored.txt");
    fs::write(&file, b"x").unwrap();
    fs::remove_file(&file).unwrap();
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    fs::remove_dir(&sub).unwrap();
    probe.wait_for("mkdir", |v| is(v, "mkdir", &sub));
    probe.wait_for("rmdir", |v| is(v, "rmdir", &sub));
    let done = probe.stop();
    let kinds: Vec<&str> = done
        .events
        .iter()
        .filter_map(|v| v["event"].as_str())
        .collect();
    assert!(
        kinds.iter().all(|k| *k == "mkdir" || *k == "rmdir"),
        "{kinds:?}"
    );
}

#[test]
fn fsprobe_never_reports_its_own_activity() {
    let dir = Scratch::new("self");
    let out: PathBuf = dir.join("fsprobe-output.ndjson");
    let out_arg = format!("--output={}", out.display());
    let probe = Probe::start([
        "-e",
        "open",
        "-e",
        "modify",
        &out_arg,
        dir.path.to_str().unwrap(),
    ]);
    let probe_pid = probe.pid();
    let marker = dir.join("marker");
    fs::write(&marker, b"x").unwrap();
    // Wait until the output file shows the marker (written by fsprobe itself).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    while !fs::read_to_string(&out)
        .unwrap_or_default()
        .contains("marker")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "marker never reached {}",
            out.display()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let done = probe.stop();
    assert!(done.status.success(), "{}", done.stderr);
    let written = fs::read_to_string(&out).unwrap();
    let events: Vec<serde_json::Value> = written
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(events.iter().any(|v| is(v, "open", &marker)));
    assert!(
        events.iter().all(|v| v["process"]["pid"] != probe_pid),
        "fsprobe reported itself:\n{written}"
    );
    assert!(
        done.stderr.contains("fsprobe: ") && done.stderr.contains(" lost"),
        "{}",
        done.stderr
    );
}

//! Path caches must never serve a stale path: after a mount is moved or
//! replaced by another mount of the same directory, and after a directory
//! is renamed, every mode reports the new path. Each case first warms the
//! cache through the old path (the probe's summary shows walks it served).
mod common;

use std::fs;
use std::path::Path;

use common::*;

const MODES: [&str; 3] = ["perf_buffer", "fragments", "single_fragment"];

/// The tests of this file run one at a time. Each mounts, moves mounts or
/// renames directories, and each of those invalidates every cached path on
/// the host (by design: a moved mount or a renamed directory changes the
/// paths below it). Run side by side, one test's mounts could flush the
/// cache between another's two opens, and its "the cache served a walk"
/// check would then fail for a reason of its neighbour's making (seen once
/// in the 5.10 guest: "fragments: the cache served nothing").
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn exclusive() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `n`th open (1-based) by this thread of a file whose path ends with `suffix`.
fn nth_open(probe: &Probe, suffix: &str, n: usize) -> serde_json::Value {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    loop {
        let opens: Vec<serde_json::Value> = probe
            .events()
            .into_iter()
            .filter(|v| v["event"] == "open" && v["process"]["tid"] == tid())
            .filter(|v| path_of(v, "file").ends_with(suffix))
            .collect();
        if let Some(v) = opens.get(n - 1) {
            return v.clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no open #{n} of *{suffix}; got:\n{}",
            dump(&opens)
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// Opens `file` twice: the second open is served by the cache.
fn open_twice(probe: &Probe, file: &Path, suffix: &str) {
    for _ in 0..2 {
        fs::File::open(file).unwrap();
    }
    let second = nth_open(probe, suffix, 2);
    assert_eq!(path_of(&second, "file"), file.to_str().unwrap());
}

/// The summary's path walks: cut short by the cache, and to the root
/// ("path walks: N cut short by the MODE cache, M to the root").
fn walks(stderr: &str) -> (u64, u64) {
    stderr
        .lines()
        .find_map(|l| l.split_once(", path walks: ").map(|(_, walks)| walks))
        .and_then(|l| {
            let (cached, rest) = l.split_once(" cut short by the ")?;
            let (_, full) = rest.split_once(" cache, ")?;
            Some((
                cached.parse().ok()?,
                full.split_whitespace().next()?.parse().ok()?,
            ))
        })
        .unwrap_or_else(|| panic!("no walk summary in:\n{stderr}"))
}

fn cached_walks(stderr: &str) -> u64 {
    walks(stderr).0
}

/// MS_MOVE keeps the mount (same id, same dentries) at another place.
fn move_mount(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    let (f, t) = (
        cstr(from.as_os_str().as_encoded_bytes()),
        cstr(to.as_os_str().as_encoded_bytes()),
    );
    // SAFETY: valid NUL-terminated paths; the other arguments may be NULL for MS_MOVE.
    let rc = unsafe {
        libc::mount(
            f.as_ptr(),
            t.as_ptr(),
            std::ptr::null(),
            libc::MS_MOVE,
            std::ptr::null(),
        )
    };
    assert_eq!(
        rc,
        0,
        "mount --move {} {}: {}",
        from.display(),
        to.display(),
        std::io::Error::last_os_error()
    );
}

#[test]
fn a_moved_mount_is_reported_at_its_new_place() {
    let _serial = exclusive();
    for mode in MODES {
        let dir = Scratch::new(&format!("move-{mode}"));
        let first = dir.join("first");
        let tmpfs = Mounted::tmpfs(&first);
        fs::create_dir_all(first.join("d/e")).unwrap();
        fs::write(first.join("d/e/f"), b"x").unwrap();
        let probe = watch(&dir.path, &["--dentry-resolution-mode", mode]);
        open_twice(&probe, &first.join("d/e/f"), "/d/e/f");
        let second = dir.join("second");
        move_mount(&first, &second);
        let moved = Mounted { at: second.clone() };
        std::mem::forget(tmpfs);
        let now = second.join("d/e/f");
        fs::File::open(&now).unwrap();
        let ev = nth_open(&probe, "/d/e/f", 3);
        assert_eq!(path_of(&ev, "file"), now.to_str().unwrap(), "{mode}: {ev}");
        let finished = probe.stop();
        assert!(
            cached_walks(&finished.stderr) > 0,
            "{mode}: the cache served nothing"
        );
        drop(moved);
    }
}

#[test]
fn a_directory_bound_again_elsewhere_is_reported_at_the_new_mount() {
    let _serial = exclusive();
    for mode in MODES {
        let dir = Scratch::new(&format!("rebind-{mode}"));
        let src = dir.join("src");
        fs::create_dir_all(src.join("d/e")).unwrap();
        fs::write(src.join("d/e/f"), b"x").unwrap();
        let probe = watch(&dir.path, &["--dentry-resolution-mode", mode]);
        let old = dir.join("old");
        let bind = Mounted::bind(&src, &old);
        open_twice(&probe, &old.join("d/e/f"), "/d/e/f");
        drop(bind);
        // The new bind mount may well get the freed mount's id and memory:
        // only the invalidation on mount syscalls keeps the old path out.
        let new = dir.join("new");
        let _bind = Mounted::bind(&src, &new);
        let now = new.join("d/e/f");
        fs::File::open(&now).unwrap();
        let ev = nth_open(&probe, "/d/e/f", 3);
        assert_eq!(path_of(&ev, "file"), now.to_str().unwrap(), "{mode}: {ev}");
        assert_eq!(ev["file"]["mount_id"], mount_id_of(&new), "{mode}");
        probe.stop();
    }
}

#[test]
fn files_under_a_renamed_directory_get_the_new_name() {
    let _serial = exclusive();
    for mode in MODES {
        let dir = Scratch::new(&format!("rename-{mode}"));
        fs::create_dir_all(dir.join("a/b/c")).unwrap();
        fs::write(dir.join("a/b/c/f"), b"x").unwrap();
        let probe = watch(&dir.path, &["--dentry-resolution-mode", mode]);
        open_twice(&probe, &dir.join("a/b/c/f"), "/c/f");
        fs::rename(dir.join("a/b"), dir.join("a/B")).unwrap();
        let now = dir.join("a/B/c/f");
        fs::File::open(&now).unwrap();
        let ev = nth_open(&probe, "/c/f", 3);
        assert_eq!(path_of(&ev, "file"), now.to_str().unwrap(), "{mode}: {ev}");
        let finished = probe.stop();
        assert!(
            cached_walks(&finished.stderr) > 0,
            "{mode}: the cache served nothing"
        );
    }
}

/// RENAMEAT (or UNLINKAT with AT_REMOVEDIR) through io_uring from a thread
/// named `comm`, which the probe does not report; its result.
fn quiet_io_uring(comm: &str, entry: io_uring::squeue::Entry) -> i32 {
    std::thread::Builder::new()
        .name(comm.into())
        .spawn(move || {
            let mut ring = io_uring::IoUring::new(4).expect("io_uring_setup");
            // SAFETY: the entry's paths outlive the call (the caller keeps them).
            unsafe { ring.submission().push(&entry).expect("queue") };
            ring.submit_and_wait(1).expect("io_uring_enter");
            ring.completion().next().expect("a completion").result()
        })
        .unwrap()
        .join()
        .unwrap()
}

/// A process left out of the report still moves directories: its io_uring
/// rename must invalidate the caches like anyone's. (The syscall hooks see
/// no syscall here, and the tracepoint backend sees the request only.)
#[test]
fn a_directory_renamed_through_io_uring_by_an_unreported_thread_gets_the_new_name() {
    let _serial = exclusive();
    const QUIET: &str = "fsp-quiet-ren";
    for mode in MODES {
        let dir = Scratch::new(&format!("uring-rename-{mode}"));
        fs::create_dir_all(dir.join("a/b/c")).unwrap();
        fs::write(dir.join("a/b/c/f"), b"x").unwrap();
        let probe = watch(
            &dir.path,
            &["--dentry-resolution-mode", mode, "--exclude-comm", QUIET],
        );
        open_twice(&probe, &dir.join("a/b/c/f"), "/c/f");
        let (old, new) = (
            cstr(dir.join("a/b").as_os_str().as_encoded_bytes()),
            cstr(dir.join("a/B").as_os_str().as_encoded_bytes()),
        );
        let rename = io_uring::opcode::RenameAt::new(
            io_uring::types::Fd(libc::AT_FDCWD),
            old.as_ptr(),
            io_uring::types::Fd(libc::AT_FDCWD),
            new.as_ptr(),
        )
        .build();
        let res = quiet_io_uring(QUIET, rename);
        if res == -libc::EINVAL {
            eprintln!("skipped: this kernel's io_uring has no RENAMEAT");
            probe.stop();
            return;
        }
        assert_eq!(res, 0, "io_uring RENAMEAT");
        let now = dir.join("a/B/c/f");
        fs::File::open(&now).unwrap();
        let ev = nth_open(&probe, "/c/f", 3);
        assert_eq!(path_of(&ev, "file"), now.to_str().unwrap(), "{mode}: {ev}");
        let finished = probe.stop();
        assert!(
            !finished.events.iter().any(|v| v["event"] == "rename"),
            "{mode}: the excluded thread's rename was reported"
        );
        assert!(
            cached_walks(&finished.stderr) > 0,
            "{mode}: the cache served nothing"
        );
    }
}

/// An rmdir changes no other directory's path: it only frees an inode
/// number, and the cache keys tell a reused number apart by the inode's
/// i_generation. So directories created and removed outside the watched
/// tree, as builds and package managers do all the time, must not send
/// the watched tree's walks back to the root. (Before, every rmdir on the
/// host made every cached walk stale.)
#[test]
fn an_rmdir_elsewhere_leaves_the_cache_warm() {
    let _serial = exclusive();
    const ROUNDS: usize = 20;
    for mode in MODES {
        let dir = Scratch::new(&format!("rmdir-watched-{mode}"));
        let elsewhere = Scratch::new(&format!("rmdir-unwatched-{mode}"));
        fs::create_dir_all(dir.join("a/b")).unwrap();
        let file = dir.join("a/b/f");
        fs::write(&file, b"x").unwrap();
        let probe = watch(&dir.path, &["--dentry-resolution-mode", mode]);
        open_twice(&probe, &file, "/b/f");
        for _ in 0..ROUNDS {
            fs::create_dir(elsewhere.join("d")).unwrap();
            fs::remove_dir(elsewhere.join("d")).unwrap();
            fs::File::open(&file).unwrap();
        }
        let last = nth_open(&probe, "/b/f", 2 + ROUNDS);
        assert_eq!(
            path_of(&last, "file"),
            file.to_str().unwrap(),
            "{mode}: {last}"
        );
        let finished = probe.stop();
        let (cached, full) = walks(&finished.stderr);
        assert!(
            cached >= ROUNDS as u64 && full < (ROUNDS / 2) as u64,
            "{mode}: {ROUNDS} opens after an unrelated rmdir each: {cached} walks cut short, {full} to the root"
        );
    }
}

/// A directory the caches know as one that watches its children (its
/// files were just opened, the second time through the cache) and that
/// then leaves the watched tree with --follow=false watches nothing from
/// then on: the next open in it is not reported. The rename makes every
/// cached answer stale, the kernel's memo of watching directories
/// (bpf/resolve/dir_memo.h) included.
#[test]
fn a_directory_moved_out_of_the_tree_stops_watching_at_once() {
    let _serial = exclusive();
    for mode in MODES {
        let dir = Scratch::new(&format!("leave-{mode}"));
        let elsewhere = Scratch::new(&format!("leave-{mode}-outside"));
        fs::create_dir_all(dir.join("sub")).unwrap();
        fs::write(dir.join("sub/f"), b"x").unwrap();
        let probe = watch(
            &dir.path,
            &["--dentry-resolution-mode", mode, "--follow=false"],
        );
        open_twice(&probe, &dir.join("sub/f"), "/sub/f");
        fs::rename(dir.join("sub"), elsewhere.join("sub")).unwrap();
        let moved = elsewhere.join("sub/f");
        fs::File::open(&moved).unwrap();
        // A marker inside the tree, after the open: once it shows up, the
        // open would have too.
        let marker = dir.join("marker");
        fs::File::create(&marker).unwrap();
        probe.wait_for("marker", |v| is(v, "open", &marker));
        let finished = probe.stop();
        assert!(
            !finished.events.iter().any(|v| is(v, "open", &moved)),
            "{mode}: an open in the directory moved out was reported:\n{}",
            dump(&finished.events)
        );
        assert!(
            cached_walks(&finished.stderr) > 0,
            "{mode}: the cache served nothing"
        );
    }
}

//! Backend selection, and what the VFS backends add: paths taken from the
//! dentries the kernel used, never from the caller's string.
//!
//! FSPROBE_EXPECT_AUTO names the backend `auto` must pick on this kernel:
//! tracepoint on hosts that refuse fentry (the default), fentry in the VM
//! guests (set by vmtest/run.sh).
mod common;

use std::fs;
use std::os::unix::fs::symlink;
use std::path::Path;

use common::*;

const AUTO_ORDER: [&str; 3] = ["fentry", "kprobe", "tracepoint"];

fn expected_auto() -> String {
    std::env::var("FSPROBE_EXPECT_AUTO").unwrap_or_else(|_| "tracepoint".into())
}

/// The backend a probe reports in its ready line.
fn backend_of(stderr: &str) -> String {
    let ready = stderr
        .lines()
        .find(|l| l.starts_with("fsprobe: ready"))
        .unwrap_or_else(|| panic!("no ready line in:\n{stderr}"));
    ready
        .split("backend: ")
        .nth(1)
        .and_then(|r| r.split(',').next())
        .unwrap_or_default()
        .to_owned()
}

#[test]
fn auto_picks_the_best_backend_this_kernel_allows() {
    let dir = Scratch::new("auto");
    let probe = Probe::start(["--backend", "auto", dir.path.to_str().unwrap()]);
    let done = probe.stop();
    assert_eq!(backend_of(&done.stderr), expected_auto(), "{}", done.stderr);
}

#[test]
fn forcing_a_backend_either_runs_it_or_says_why_not() {
    let dir = Scratch::new("forced");
    let expected = expected_auto();
    let usable_from = AUTO_ORDER.iter().position(|b| *b == expected).unwrap();
    for (i, backend) in AUTO_ORDER.iter().enumerate() {
        if i < usable_from {
            let out = run_fsprobe(&["--backend", backend, dir.path.to_str().unwrap()], None);
            let stderr = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{backend}: {stderr}");
            assert_eq!(stderr.lines().count(), 1, "{backend}: {stderr}");
            assert!(
                stderr.starts_with(&format!("fsprobe: error: {backend}: ")),
                "the error must name the backend: {stderr}"
            );
            if *backend == "fentry" && expected == "tracepoint" {
                // These hosts refuse fentry programs outright.
                assert!(
                    stderr.contains("the kernel refused an fentry program on vfs_open (EPERM)"),
                    "{stderr}"
                );
            }
        } else if i == usable_from {
            let probe = Probe::start(["--backend", backend, dir.path.to_str().unwrap()]);
            let done = probe.stop();
            assert_eq!(backend_of(&done.stderr), *backend, "{}", done.stderr);
        }
    }
}

/// Is the running probe hooked into the VFS (fentry or kprobe)?
fn is_vfs(stderr_backend: &str) -> bool {
    stderr_backend == "fentry" || stderr_backend == "kprobe"
}

#[test]
fn paths_come_from_kernel_dentries_not_from_the_callers_string() {
    let dir = Scratch::new("canonical");
    let real = dir.join("real");
    fs::create_dir_all(real.join("x")).unwrap();
    symlink(&real, dir.join("link")).unwrap();
    let bound = dir.join("bound");
    let bind = Mounted::bind(&real, &bound);
    let probe = Probe::start([dir.path.to_str().unwrap()]);

    // Through a symlinked directory and "..": the kernel made real/made.
    let made = real.join("made");
    fs::create_dir(dir.join("link/x/../made")).unwrap();
    let ev = probe.wait_for("mkdir through a symlink and ..", |v| {
        v["event"] == "mkdir" && v["process"]["tid"] == tid() && v["retval"] == 0
    });

    // Through the bind mount: the path names the bind mount, where the
    // process reached the file, and the inode is the real one.
    fs::write(real.join("a"), b"x").unwrap();
    let inode = ino(&real.join("a"));
    fs::rename(bound.join("a"), bound.join("b")).unwrap();
    let renamed = probe.wait_for("rename through the bind mount", |v| {
        v["event"] == "rename" && v["process"]["tid"] == tid()
    });
    let done = probe.stop();

    assert_eq!(path_of(&renamed, "file"), bound.join("a").to_str().unwrap());
    assert_eq!(
        path_of(&renamed, "target"),
        bound.join("b").to_str().unwrap()
    );
    assert_eq!(renamed["file"]["inode"], inode);
    assert_eq!(renamed["file"]["mount_id"], mount_id_of(&bound));
    drop(bind);

    if is_vfs(&backend_of(&done.stderr)) {
        // The VFS hook saw the dentry the kernel created: canonical.
        assert_eq!(path_of(&ev, "file"), made.to_str().unwrap(), "{ev}");
        assert_eq!(ev["file"]["inode"], ino(&made));
        assert!(ev["file"].get("user_suffix_len").is_none(), "{ev}");
    } else {
        // Syscall tracepoints alone: the dcache lookup stops at the
        // symlink, and the rest is flagged as the caller's string.
        let path = path_of(&ev, "file");
        assert_eq!(path, dir.join("link/x/../made").to_str().unwrap(), "{ev}");
        assert_eq!(
            ev["file"]["user_suffix_len"],
            "link/x/../made".len(),
            "{ev}"
        );
        assert_eq!(ev["file"]["inode"], 0);
    }
    assert!(Path::new(&made).is_dir());
}

/// On the VFS backends the events come from the VFS: with the syscall hooks
/// left out (a test-only setting), every operation that reaches the VFS is
/// still reported, with its exact path, inode and result, and named by the
/// syscall the VFS hook found the thread in. The tracepoint backend has
/// nothing else: the ready line must say the syscall hooks are left out.
#[test]
fn the_vfs_backends_report_without_any_syscall_hook() {
    let dir = Scratch::new("no-syscall-hooks");
    let mut cmd = std::process::Command::new(fsprobe_bin());
    cmd.env("FSPROBE_TEST_NO_SYSCALL_HOOKS", "1")
        .args(["-f", "json", dir.path.to_str().unwrap()]);
    let probe = Probe::spawn(cmd);
    let stderr = probe.stderr();
    assert!(
        stderr.contains("syscall hooks: FSPROBE_TEST_NO_SYSCALL_HOOKS is set"),
        "the ready line must name what is left out: {stderr}"
    );
    if !is_vfs(&backend_of(&stderr)) {
        probe.stop();
        return;
    }
    let sub = dir.join("sub");
    fs::create_dir(&sub).unwrap();
    let ev = probe.wait_for("mkdir", |v| is(v, "mkdir", &sub));
    assert_eq!(ev["file"]["inode"], ino(&sub), "{ev}");
    assert_eq!(ev["retval"], 0, "{ev}");
    assert_eq!(ev["syscall"], "mkdir", "{ev}");

    let file = sub.join("file");
    fs::write(&file, b"x").unwrap();
    let ev = probe.wait_for("the create's open", |v| is(v, "open", &file));
    assert_eq!(ev["file"]["inode"], ino(&file), "{ev}");
    // vfs_open() returns 0; the fd comes later, in the syscall.
    assert_eq!(ev["retval"], 0, "{ev}");

    let moved = dir.join("moved");
    fs::rename(&file, &moved).unwrap();
    let ev = probe.wait_for("rename", |v| is(v, "rename", &file));
    assert_eq!(path_of(&ev, "target"), moved.to_str().unwrap(), "{ev}");
    assert_eq!(ev["file"]["inode"], ino(&moved), "{ev}");

    let link = dir.join("link");
    fs::hard_link(&moved, &link).unwrap();
    probe.wait_for("link", |v| is(v, "link", &moved));
    symlink("moved", dir.join("sym")).unwrap();
    probe.wait_for("symlink", |v| is(v, "symlink", &dir.join("sym")));

    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&moved, fs::Permissions::from_mode(0o600)).unwrap();
    let ev = probe.wait_for("chmod", |v| is(v, "setattr", &moved));
    assert_eq!(ev["setattr"]["mode"], "600", "{ev}");

    let inode = ino(&link);
    fs::remove_file(&link).unwrap();
    let ev = probe.wait_for("unlink", |v| is(v, "unlink", &link));
    assert_eq!(ev["file"]["inode"], inode, "{ev}");
    fs::remove_dir(&sub).unwrap();
    // A vfs_rmdir() partly inlined into its callers is not hooked (5.10's
    // vfs_rmdir.part.0): the ready line says so, and only the syscall hook
    // would report the rmdir.
    if !stderr.contains("vfs_rmdir") {
        probe.wait_for("rmdir", |v| is(v, "rmdir", &sub));
    }
    probe.stop();
}

//! Who and where: every context field of an event checked against ground
//! truth taken from /proc and stat of the test's own processes and files.
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;

/// The inode of /proc/PID/ns/KIND: the namespace's id.
fn ns_of(pid: &str, kind: &str) -> u64 {
    fs::metadata(format!("/proc/{pid}/ns/{kind}"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/ns/{kind}: {e}"))
        .ino()
}

/// The file-system type of the mount with this id, from /proc/self/mountinfo.
fn fstype_of_mount(mount_id: u64) -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').next() == Some(&mount_id.to_string()))
        .and_then(|l| l.split(" - ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .unwrap_or_else(|| panic!("mount {mount_id} not in mountinfo"))
        .to_owned()
}

/// The mount point of the mount with this id, from /proc/self/mountinfo.
fn mount_point_of(mount_id: u64) -> String {
    let info = fs::read_to_string("/proc/self/mountinfo").unwrap();
    info.lines()
        .find(|l| l.split(' ').next() == Some(&mount_id.to_string()))
        .and_then(|l| l.split(' ').nth(4))
        .unwrap_or_else(|| panic!("mount {mount_id} not in mountinfo"))
        .replace("\\040", " ")
}

#[test]
fn process_fields_match_proc() {
    let dir = Scratch::new("ctx-process");
    let probe = watch(&dir.path, &[]);
    let path = dir.join("made-by-me");
    fs::write(&path, b"x").unwrap();
    let ev = probe.wait_for("open of made-by-me", |v| is(v, "open", &path));
    assert_by_me(&ev);
    let p = &ev["process"];
    // SAFETY: geteuid/getegid have no preconditions.
    let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
    assert_eq!(p["euid"], euid);
    assert_eq!(p["egid"], egid);
    let exe = fs::canonicalize("/proc/self/exe").unwrap();
    assert_eq!(p["exe"]["path"].as_str(), exe.to_str(), "{ev}");
    assert_eq!(p["exe"]["inode"], fs::metadata(&exe).unwrap().ino());
    assert_eq!(p["mnt_ns"], ns_of("self", "mnt"));
    assert_eq!(p["pid_ns"], ns_of("self", "pid"));
    let mount_id = ev["file"]["mount_id"].as_u64().unwrap();
    assert_eq!(ev["file"]["fstype"], fstype_of_mount(mount_id), "{ev}");
    assert!(ev["seq"].is_u64() && ev["cpu"].is_u64(), "{ev}");
    probe.stop();
}

#[test]
fn a_file_on_tmpfs_reports_tmpfs() {
    let dir = Scratch::new("ctx-tmpfs");
    let mnt = dir.join("mnt");
    let _tmpfs = Mounted::tmpfs(&mnt);
    let probe = watch(&dir.path, &[]);
    let path = mnt.join("on-tmpfs");
    fs::write(&path, b"x").unwrap();
    let ev = probe.wait_for("open on tmpfs", |v| is(v, "open", &path));
    assert_eq!(ev["file"]["fstype"], "tmpfs", "{ev}");
    assert_eq!(ev["file"]["mount_id"], mount_id_of(&mnt));
    assert_eq!(ev["file"]["mount_point"].as_str(), mnt.to_str(), "{ev}");
    assert!(
        ev["file"].get("host_path").is_none(),
        "same namespace: {ev}"
    );
    probe.stop();
}

#[test]
fn a_file_on_a_bind_mount_reports_the_bind_mount() {
    let dir = Scratch::new("ctx-bind");
    let src = dir.join("src");
    fs::create_dir(&src).unwrap();
    let view = dir.join("view");
    let _bind = Mounted::bind(&src, &view);
    let probe = watch(&dir.path, &[]);
    let path = view.join("through-the-bind");
    fs::write(&path, b"x").unwrap();
    let ev = probe.wait_for("open through the bind mount", |v| is(v, "open", &path));
    assert_eq!(ev["file"]["inode"], ino(&src.join("through-the-bind")));
    assert_eq!(ev["file"]["mount_id"], mount_id_of(&view), "{ev}");
    assert_eq!(ev["file"]["mount_point"].as_str(), view.to_str(), "{ev}");
    let fstype = fstype_of_mount(mount_id_of(&view));
    assert_eq!(ev["file"]["fstype"], fstype.as_str(), "{ev}");
    // The process's executable sits on its own mount, found the same way.
    let exe = &ev["process"]["exe"];
    let exe_mount = exe["mount_id"].as_u64().unwrap();
    assert_eq!(
        exe["mount_point"].as_str(),
        Some(mount_point_of(exe_mount).as_str()),
        "{ev}"
    );
    probe.stop();
}

/// Runs `script` with sh in a fresh cgroup, in new mount and pid
/// namespaces; the script writes its own ids to `ids` before acting.
fn run_contained(cgroup: &Cgroup, ids: &Path, script: &str) {
    let wrapper = format!(
        "echo $$ > {procs} && exec unshare -m -p -f sh -c '\
         readlink /proc/self/ns/mnt > {ids}; readlink /proc/self/ns/pid >> {ids}; \
         readlink /proc/self > /dev/null; {script}'",
        procs = cgroup.dir.join("cgroup.procs").display(),
        ids = ids.display(),
    );
    let status = Command::new("sh").arg("-c").arg(&wrapper).status().unwrap();
    assert!(status.success(), "{wrapper}");
}

#[test]
fn a_contained_process_reports_its_namespaces_cgroup_container_and_both_paths() {
    let dir = Scratch::new("ctx-container");
    let id = format!("{:064x}", 0xf5_u64 << 32 | pid() as u64);
    let cgroup = Cgroup::new(&format!("docker-{id}.scope"));
    // Inside its mount namespace the process bind-mounts src at view, a
    // mount the host never sees: it writes view/NAME, which on the host
    // is src/NAME.
    let src = dir.join("src");
    let view = dir.join("view");
    fs::create_dir(&src).unwrap();
    fs::create_dir(&view).unwrap();
    let probe = watch(&dir.path, &[]);
    let name = "from-the-container";
    let (seen_inside, on_host) = (view.join(name), src.join(name));
    let ids = std::env::temp_dir().join(format!("fsprobe-ids-{}", pid()));
    // The sleep keeps a task in the namespace, as a container's init
    // would: fsprobe reads the namespace's mount table through it.
    run_contained(
        &cgroup,
        &ids,
        &format!(
            "mount --bind {} {} && touch {} && sleep 1",
            src.display(),
            view.display(),
            seen_inside.display()
        ),
    );
    let ev = probe.wait_for("open by the contained process", |v| {
        v["event"] == "open" && path_of(v, "file") == seen_inside.to_str().unwrap()
    });
    let lines: Vec<String> = fs::read_to_string(&ids)
        .unwrap()
        .lines()
        .map(String::from)
        .collect();
    let _ = fs::remove_file(&ids);
    let p = &ev["process"];
    assert_eq!(p["mnt_ns"], ns_inode_from_link(&lines[0]), "{ev}");
    assert_eq!(p["pid_ns"], ns_inode_from_link(&lines[1]), "{ev}");
    assert_ne!(p["mnt_ns"], ns_of("self", "mnt"), "a new mount namespace");
    assert_ne!(p["pid_ns"], ns_of("self", "pid"), "a new pid namespace");
    assert_eq!(
        p["cgroup_id"],
        fs::metadata(&cgroup.dir).unwrap().ino(),
        "{ev}"
    );
    let cgroup_name = cgroup.dir.file_name().unwrap().to_str().unwrap();
    assert_eq!(p["cgroup"], format!("/{cgroup_name}"), "{ev}");
    assert_eq!(p["container"]["runtime"], "docker", "{ev}");
    assert_eq!(p["container"]["id"], id.as_str(), "{ev}");
    assert_eq!(p["comm"], "touch");
    // Both views of the file: the process's and the host's.
    let file = &ev["file"];
    assert_eq!(file["host_path"].as_str(), on_host.to_str(), "{ev}");
    assert_eq!(file["inode"], ino(&on_host), "{ev}");
    assert_eq!(file["mount_point"].as_str(), view.to_str(), "{ev}");
    let mount_id = file["mount_id"].as_u64().unwrap();
    let host_mounts = fs::read_to_string("/proc/self/mountinfo").unwrap();
    assert!(
        !host_mounts
            .lines()
            .any(|l| l.split(' ').next() == Some(&mount_id.to_string())),
        "the namespace's own bind mount, unknown to the host: {ev}"
    );
    // touch itself is on a mount the namespace copied from the host.
    let exe = &p["exe"];
    assert_eq!(exe["host_path"], exe["path"], "{ev}");
    probe.stop();
}

#[test]
fn process_filters_run_in_the_kernel() {
    let dir = Scratch::new("ctx-filters");
    let a = dir.join("by-touch");
    let b = dir.join("by-cp");
    let c = dir.join("by-me");
    let me = pid().to_string();
    for (flag, value, expect_touch, expect_cp, expect_me) in [
        ("--comm", "touch", true, false, false),
        ("--exclude-comm", "touch", false, true, true),
        ("--exclude-pid", me.as_str(), true, true, false),
        ("--uid", "0", true, true, true),
        ("--exclude-uid", "0", false, false, false),
    ] {
        for f in [&a, &b, &c] {
            let _ = fs::remove_file(f);
        }
        let probe = watch(&dir.path, &[flag, value]);
        assert!(Command::new("touch").arg(&a).status().unwrap().success());
        assert!(
            Command::new("cp")
                .arg("/dev/null")
                .arg(&b)
                .status()
                .unwrap()
                .success()
        );
        fs::write(&c, b"").unwrap();
        std::thread::sleep(std::time::Duration::from_millis(300));
        let finished = probe.stop();
        let saw = |p: &Path| {
            finished
                .events
                .iter()
                .any(|v| path_of(v, "file") == p.to_str().unwrap())
        };
        for (file, expected, who) in [
            (&a, expect_touch, "touch"),
            (&b, expect_cp, "cp"),
            (&c, expect_me, "this test"),
        ] {
            assert_eq!(
                saw(file),
                expected,
                "{flag} {value}: {who}\n{}",
                dump(&finished.events)
            );
        }
        let filtered: u64 = finished
            .stderr
            .lines()
            .find_map(|l| l.split("syscalls filtered out by process: ").nth(1))
            .and_then(|n| n.split(|c: char| !c.is_ascii_digit()).next()?.parse().ok())
            .unwrap_or_else(|| panic!("no filter count in {}", finished.stderr));
        assert!(
            filtered > 0 || flag == "--uid",
            "{flag}: nothing was filtered in the kernel"
        );
    }
}

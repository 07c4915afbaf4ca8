//! Context that outlives the process: a process that is gone, with its
//! cgroup and its mount namespace, before fsprobe reads a single record
//! keeps its whole context, and a reused pid gets the new process's.
//!
//! fsprobe is stopped (SIGSTOP) while the processes run, so it cannot
//! read anything from /proc or the cgroup file system until they, their
//! namespaces and their cgroups are gone: what the events carry can only
//! come from the kernel, at the time of the operation. The ground truth is
//! what the processes read about themselves before they exited.
mod common;

use std::fs;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::process::Command;

use common::*;
use serde_json::Value;

/// What a process inside new mount and pid namespaces said about itself.
struct Truth {
    mnt_ns: u64,
    pid_ns: u64,
    exe: String,
    /// /proc/self/cgroup's v2 line: "/name".
    cgroup: String,
    /// Its bind mount, from its own mountinfo: id, root in the file
    /// system, mount point.
    mount_id: u64,
    mount_root: String,
    mount_point: String,
    inode: u64,
}

fn read_truth(path: &Path, view: &Path) -> Truth {
    let text = fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    let mut next = || lines.next().unwrap_or_else(|| panic!("truth file: {text}"));
    let (mnt, pid, exe) = (next(), next(), next());
    let mount = next();
    let fields: Vec<&str> = mount.split(' ').collect();
    assert_eq!(
        fields[4],
        view.to_str().unwrap(),
        "the bind mount's line: {mount}"
    );
    let cgroup = next()
        .strip_prefix("0::")
        .unwrap_or_else(|| panic!("a cgroup v2 line: {text}"))
        .to_owned();
    let inode = next().trim().parse().unwrap();
    Truth {
        mnt_ns: ns_inode_from_link(mnt),
        pid_ns: ns_inode_from_link(pid),
        exe: exe.trim().to_owned(),
        cgroup,
        mount_id: fields[0].parse().unwrap(),
        mount_root: fields[3].to_owned(),
        mount_point: fields[4].to_owned(),
        inode,
    }
}

#[test]
fn a_process_gone_with_its_namespace_and_cgroup_keeps_its_whole_context() {
    let dir = Scratch::new("outlived-ns");
    let (src, view) = (dir.join("src"), dir.join("view"));
    fs::create_dir(&src).unwrap();
    fs::create_dir(&view).unwrap();
    let probe = watch(&dir.path, &["-e", "open", "-e", "modify"]);
    let cgroup = Cgroup::new(&format!("fsprobe-outlived-{}", pid()));
    let cgroup_ino = fs::metadata(&cgroup.dir).unwrap().ino();
    let cgroup_name = format!("/{}", cgroup.dir.file_name().unwrap().to_str().unwrap());
    let truth_file = std::env::temp_dir().join(format!("fsprobe-outlived-{}", pid()));
    let name = "written-inside";
    let (inside, on_host) = (view.join(name), src.join(name));

    probe.signal(libc::SIGSTOP);
    // In a fresh cgroup, new mount and pid namespaces (with their own
    // /proc, as a container has): bind-mount src at view (a mount the
    // host never sees), say who and where it is, write view/NAME and
    // exit; then its cgroup is removed.
    let script = format!(
        "echo $$ > {procs} && exec unshare -m -p -f sh -c '\
         mount -t proc proc /proc && mount --bind {src} {view} && \
         readlink /proc/self/ns/mnt > {t} && readlink /proc/self/ns/pid >> {t} && \
         readlink /proc/$$/exe >> {t} && grep \" {view} \" /proc/self/mountinfo >> {t} && \
         grep ^0:: /proc/self/cgroup >> {t} && \
         echo hello > {inside} && stat -c %i {inside} >> {t}'",
        procs = cgroup.dir.join("cgroup.procs").display(),
        src = src.display(),
        view = view.display(),
        t = truth_file.display(),
        inside = inside.display(),
    );
    let status = Command::new("sh").arg("-c").arg(&script).status().unwrap();
    assert!(status.success(), "{script}");
    let truth = read_truth(&truth_file, &view);
    let _ = fs::remove_file(&truth_file);
    let cgroup_dir = cgroup.dir.clone();
    drop(cgroup);
    assert!(
        !cgroup_dir.exists(),
        "the cgroup is removed before fsprobe reads"
    );
    probe.signal(libc::SIGCONT);

    let opened = probe.wait_for("open inside the namespace", |v| {
        v["event"] == "open" && path_of(v, "file") == inside.to_str().unwrap()
    });
    let modified = probe.wait_for("write inside the namespace", |v| {
        v["event"] == "modify" && path_of(v, "file") == inside.to_str().unwrap()
    });
    for ev in [&opened, &modified] {
        let (p, f) = (&ev["process"], &ev["file"]);
        assert_eq!(p["mnt_ns"], truth.mnt_ns, "{ev}");
        assert_eq!(p["pid_ns"], truth.pid_ns, "{ev}");
        assert_ne!(
            p["mnt_ns"],
            fs::metadata("/proc/self/ns/mnt").unwrap().ino()
        );
        assert_eq!(p["cgroup"].as_str(), Some(truth.cgroup.as_str()), "{ev}");
        assert_eq!(p["cgroup"].as_str(), Some(cgroup_name.as_str()), "{ev}");
        assert_eq!(p["cgroup_id"], cgroup_ino, "{ev}");
        // The file: its path in the namespace, on the host, its mount.
        assert_eq!(f["inode"], truth.inode, "{ev}");
        assert_eq!(f["inode"], ino(&on_host), "{ev}");
        assert_eq!(f["host_path"].as_str(), on_host.to_str(), "{ev}");
        assert_eq!(f["mount_id"], truth.mount_id, "{ev}");
        assert_eq!(
            f["mount_point"].as_str(),
            Some(truth.mount_point.as_str()),
            "{ev}"
        );
        assert!(
            src.to_str().unwrap().ends_with(&truth.mount_root),
            "the bind mount's root ({}) is src inside its file system",
            truth.mount_root
        );
        // The shell's executable, on the namespace's copy of the root mount.
        let exe = &p["exe"];
        assert_eq!(exe["path"].as_str(), Some(truth.exe.as_str()), "{ev}");
        assert_eq!(exe["host_path"].as_str(), Some(truth.exe.as_str()), "{ev}");
        assert_eq!(exe["inode"], ino(Path::new(&truth.exe)), "{ev}");
        assert_eq!(exe["mount_point"], "/", "{ev}");
    }
    probe.stop();
}

/// Runs `touch file` as a new process in `cgroup`; returns its pid.
fn touch_in(cgroup: &Cgroup, file: &Path) -> u32 {
    let script = format!(
        "echo $$ > {} && exec touch {}",
        cgroup.dir.join("cgroup.procs").display(),
        file.display()
    );
    let mut child = Command::new("sh").arg("-c").arg(&script).spawn().unwrap();
    let pid = child.id();
    assert!(child.wait().unwrap().success(), "{script}");
    pid
}

fn opened<'a>(events: &'a [Value], file: &Path) -> &'a Value {
    events
        .iter()
        .find(|v| v["event"] == "open" && path_of(v, "file") == file.to_str().unwrap())
        .unwrap_or_else(|| panic!("no open of {}:\n{}", file.display(), dump(events)))
}

#[test]
fn a_reused_pid_in_another_cgroup_gets_the_new_context() {
    let dir = Scratch::new("outlived-pid");
    let probe = watch(&dir.path, &[]);
    let a = Cgroup::new(&format!("fsprobe-reuse-a-{}", pid()));
    let b = Cgroup::new(&format!("fsprobe-reuse-b-{}", pid()));
    let name = |c: &Cgroup| format!("/{}", c.dir.file_name().unwrap().to_str().unwrap());
    let (a_name, b_name) = (name(&a), name(&b));
    let (a_ino, b_ino) = (ino(&a.dir), ino(&b.dir));

    probe.signal(libc::SIGSTOP);
    // The second process gets the first one's pid: ns_last_pid makes the
    // kernel hand out that number next (kernel/pid.c alloc_pid()), unless
    // another fork on the host takes it first, hence the tries.
    let mut reused = None;
    for attempt in 0..50 {
        let (first, second) = (
            dir.join(format!("first-{attempt}")),
            dir.join(format!("second-{attempt}")),
        );
        let first_pid = touch_in(&a, &first);
        fs::write("/proc/sys/kernel/ns_last_pid", (first_pid - 1).to_string()).unwrap();
        if touch_in(&b, &second) == first_pid {
            reused = Some((first_pid, first, second));
            break;
        }
    }
    let (reused_pid, first, second) = reused.expect("a pid reused in 50 tries");
    drop((a, b));
    probe.signal(libc::SIGCONT);

    probe.wait_for("the second open", |v| {
        v["event"] == "open" && path_of(v, "file") == second.to_str().unwrap()
    });
    let events = probe.events();
    let (one, two) = (opened(&events, &first), opened(&events, &second));
    assert_eq!(one["process"]["pid"], reused_pid, "{one}");
    assert_eq!(two["process"]["pid"], reused_pid, "{two}");
    assert_ne!(
        one["process"]["start_time_ns"], two["process"]["start_time_ns"],
        "two processes"
    );
    assert_eq!(one["process"]["cgroup_id"], a_ino, "{one}");
    assert_eq!(two["process"]["cgroup_id"], b_ino, "{two}");
    assert_eq!(
        one["process"]["cgroup"].as_str(),
        Some(a_name.as_str()),
        "{one}"
    );
    assert_eq!(
        two["process"]["cgroup"].as_str(),
        Some(b_name.as_str()),
        "{two}"
    );
    probe.stop();
}

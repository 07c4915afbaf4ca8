//! A real Docker container (host only: the VM guests have no engine).
//!
//! The test starts its own dockerd (Debian's docker.io, scripts/setup.sh),
//! builds an image offline from the static busybox on this machine
//! (`docker import`, no registry), and runs `docker run --rm` with a bind
//! mount of one watched directory and a named volume that is the other.
//! Every event of the container carries the container id, its view of
//! the path, the host path, the mount point, the cgroup path and the
//! overlay executable, checked against `docker inspect`, the container's
//! own /proc and `stat`.
mod common;
mod servers;

use std::fs;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;
use serde_json::Value;
use servers::DockerEngine;

const IMAGE: &str = "fsprobe-it-busybox";
const VOLUME: &str = "fsprobe-it-volume";

/// An image with only /bin/busybox (static) and the applets the test uses.
fn import_image(engine: &DockerEngine, dir: &Path) {
    let root = dir.join("rootfs");
    fs::create_dir_all(root.join("bin")).unwrap();
    for d in ["data", "vol", "proc", "sys", "dev", "etc"] {
        fs::create_dir_all(root.join(d)).unwrap();
    }
    let busybox = ["/bin/busybox", "/usr/bin/busybox"]
        .into_iter()
        .find(|p| Path::new(p).exists())
        .expect("busybox (scripts/setup.sh installs busybox-static)");
    fs::copy(busybox, root.join("bin/busybox")).unwrap();
    for applet in ["sh", "echo", "sleep", "test", "[", "cat", "grep"] {
        std::os::unix::fs::symlink("busybox", root.join("bin").join(applet)).unwrap();
    }
    let import = format!(
        "tar -C {} -c . | {} import - {IMAGE}",
        root.display(),
        engine.cli()
    );
    let status = Command::new("sh").arg("-c").arg(&import).status().unwrap();
    assert!(status.success(), "{import}");
}

/// `docker run --rm` of the image with no network, `bound` at /data and
/// the volume at /vol, running `script`; `options` before the image.
fn run_container(engine: &DockerEngine, options: &[&str], bound: &Path, script: &str) -> String {
    let data = format!("{}:/data", bound.display());
    let vol = format!("{VOLUME}:/vol");
    let mut args = vec!["run", "--rm", "--network", "none", "-v", &data, "-v", &vol];
    args.extend_from_slice(options);
    args.extend_from_slice(&[IMAGE, "/bin/sh", "-c", script]);
    engine.ok(&args)
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("{e}: {s}"))
}

#[test]
fn a_container_s_events_carry_its_id_both_paths_its_cgroup_and_its_executable() {
    let dir = Scratch::new("docker");
    let engine_dir = std::env::temp_dir().join(format!("fsprobe-dockerd-{}", pid()));
    let _ = fs::remove_dir_all(&engine_dir);
    fs::create_dir_all(&engine_dir).unwrap();
    let engine = DockerEngine::start(&engine_dir);
    import_image(&engine, &engine_dir);
    engine.ok(&["volume", "create", VOLUME]);
    let volume = engine.ok(&["volume", "inspect", "-f", "{{.Mountpoint}}", VOLUME]);
    let bound = dir.join("bound");
    fs::create_dir(&bound).unwrap();
    let probe = watch(
        Path::new(&volume),
        &["-e", "open", "-e", "modify", bound.to_str().unwrap()],
    );

    // The container writes into both, then waits for the host to say go:
    // it is inspected while it runs, and removed (--rm) once it exits.
    let script = "echo bound > /data/fromcontainer && echo volume > /vol/fromcontainer && \
                  while [ ! -e /data/go ]; do sleep 0.05; done";
    let id = run_container(&engine, &["-d"], &bound, script);
    fn written(p: &'static str) -> impl Fn(&Value) -> bool {
        move |v| v["event"] == "modify" && path_of(v, "file") == p
    }
    probe.wait_for(
        "the write to the bind mount",
        written("/data/fromcontainer"),
    );
    probe.wait_for("the write to the volume", written("/vol/fromcontainer"));
    let inspect = json(&engine.ok(&["inspect", &id]));
    let c = &inspect[0];
    let merged = c["GraphDriver"]["Data"]["MergedDir"]
        .as_str()
        .unwrap()
        .to_owned();
    let init_pid = c["State"]["Pid"].as_u64().unwrap();
    let cgroup = fs::read_to_string(format!("/proc/{init_pid}/cgroup")).unwrap();
    let cgroup = cgroup
        .lines()
        .find_map(|l| l.strip_prefix("0::"))
        .expect("a cgroup v2 line")
        .to_owned();
    // The overlay is mounted only while the container runs.
    let exe_on_host = Path::new(&merged).join("bin/busybox");
    let exe_ino = ino(&exe_on_host);
    let mounts = c["Mounts"].as_array().unwrap().clone();
    let source_of = |dest: &str| {
        mounts
            .iter()
            .find(|m| m["Destination"] == dest)
            .and_then(|m| m["Source"].as_str())
            .unwrap_or_else(|| panic!("no mount at {dest}: {inspect}"))
            .to_owned()
    };
    fs::write(bound.join("go"), "").unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.docker(&["inspect", &id]).status.success() {
        assert!(Instant::now() < deadline, "the container did not exit");
        std::thread::sleep(Duration::from_millis(100));
    }

    let events = probe.events();
    for dest in ["/data", "/vol"] {
        let inside = format!("{dest}/fromcontainer");
        let on_host = Path::new(&source_of(dest)).join("fromcontainer");
        for kind in ["open", "modify"] {
            let ev = events
                .iter()
                .find(|v| v["event"] == kind && path_of(v, "file") == inside)
                .unwrap_or_else(|| panic!("no {kind} of {inside}:\n{}", dump(&events)));
            let (p, f) = (&ev["process"], &ev["file"]);
            assert_eq!(p["container"]["runtime"], "docker", "{ev}");
            assert_eq!(p["container"]["id"].as_str(), Some(id.as_str()), "{ev}");
            assert_eq!(p["cgroup"].as_str(), Some(cgroup.as_str()), "{ev}");
            assert_eq!(f["host_path"].as_str(), on_host.to_str(), "{ev}");
            assert_eq!(f["inode"], ino(&on_host), "{ev}");
            assert_eq!(f["mount_point"].as_str(), Some(dest), "{ev}");
            let exe = &p["exe"];
            assert_eq!(exe["path"], "/bin/busybox", "{ev}");
            assert_eq!(exe["fstype"], "overlay", "{ev}");
            assert_eq!(exe["mount_point"], "/", "{ev}");
            assert_eq!(exe["host_path"].as_str(), exe_on_host.to_str(), "{ev}");
            assert_eq!(exe["inode"], exe_ino, "{ev}");
        }
    }
    gone_before_fsprobe_reads(&engine, &probe, &bound, Path::new(&volume), &engine_dir);
    probe.stop();
    let _ = engine.docker(&["volume", "rm", VOLUME]);
    drop(engine);
    let _ = fs::remove_dir_all(&engine_dir);
}

/// `docker run --rm` that writes and exits at once, while fsprobe is
/// stopped: the container, its namespaces, its cgroup and its overlay are
/// gone before fsprobe reads its records. The ground truth: the id from
/// --cidfile, the container's own /proc/self/cgroup, stat on the host.
fn gone_before_fsprobe_reads(
    engine: &DockerEngine,
    probe: &Probe,
    bound: &Path,
    volume: &Path,
    engine_dir: &Path,
) {
    let cidfile = engine_dir.join("gone.cid");
    let script = "echo bound > /data/gone && echo volume > /vol/gone && \
                  grep ^0:: /proc/self/cgroup > /data/gone.cgroup";
    probe.signal(libc::SIGSTOP);
    run_container(
        engine,
        &["--cidfile", cidfile.to_str().unwrap()],
        bound,
        script,
    );
    assert!(
        !engine.docker(&["inspect", "gone"]).status.success()
            && engine.ok(&["ps", "-aq"]).is_empty(),
        "the container is removed before fsprobe reads"
    );
    probe.signal(libc::SIGCONT);
    let id = fs::read_to_string(&cidfile).unwrap().trim().to_owned();
    let cgroup = fs::read_to_string(bound.join("gone.cgroup")).unwrap();
    let cgroup = cgroup.trim().strip_prefix("0::").unwrap().to_owned();
    for (inside, on_host, point) in [
        ("/data/gone", bound.join("gone"), "/data"),
        ("/vol/gone", volume.join("gone"), "/vol"),
    ] {
        let ev = probe.wait_for("a write of the container that is gone", |v| {
            v["event"] == "modify" && path_of(v, "file") == inside
        });
        let (p, f) = (&ev["process"], &ev["file"]);
        assert_eq!(p["container"]["id"].as_str(), Some(id.as_str()), "{ev}");
        assert!(p["cgroup"].as_str().unwrap().ends_with(&id), "{ev}");
        if cgroup != "/" {
            // The host's cgroup namespace (cgroup v1 hosts): the same path.
            assert_eq!(p["cgroup"].as_str(), Some(cgroup.as_str()), "{ev}");
        }
        assert_eq!(f["host_path"].as_str(), on_host.to_str(), "{ev}");
        assert_eq!(f["inode"], ino(&on_host), "{ev}");
        assert_eq!(f["mount_point"], point, "{ev}");
        assert_eq!(p["exe"]["path"], "/bin/busybox", "{ev}");
        assert_eq!(p["exe"]["fstype"], "overlay", "{ev}");
        assert_eq!(p["exe"]["mount_point"], "/", "{ev}");
    }
}

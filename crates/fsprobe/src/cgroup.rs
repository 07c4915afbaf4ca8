//! cgroup v2 ids → cgroup paths → container ids.
//!
//! The kernel gives each event the task's cgroup v2 id
//! (bpf_get_current_cgroup_id()), which is the inode number of the
//! cgroup's directory in the cgroup2 file system (a kernfs node id). User
//! space maps it to a path by walking that file system, and recognises the
//! usual container runtimes' naming in the path.
use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::event::ContainerId;

/// A cgroup the resolver has seen.
#[derive(Debug, Clone)]
pub(crate) struct CgroupInfo {
    pub path: Arc<str>,
    pub container: Option<ContainerId>,
}

/// Least time between two walks of the cgroup tree for unknown ids.
const RESCAN_INTERVAL: Duration = Duration::from_millis(100);

/// Resolves cgroup ids, walking the cgroup2 tree again when an id is new.
#[derive(Debug)]
pub(crate) struct CgroupPaths {
    root: Option<PathBuf>,
    known: HashMap<u64, CgroupInfo>,
    last_scan: Option<Instant>,
}

/// The cgroup2 mount point, from /proc/self/mountinfo.
fn cgroup2_mount() -> Option<PathBuf> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    crate::mounts::parse(&info)
        .into_iter()
        .find(|m| m.fstype == "cgroup2")
        .map(|m| m.point.to_path_buf())
}

impl CgroupPaths {
    pub(crate) fn new() -> Self {
        CgroupPaths {
            root: cgroup2_mount(),
            known: HashMap::new(),
            last_scan: None,
        }
    }

    /// The cgroup with id `id`, if it exists (or existed at the last walk).
    pub(crate) fn get(&mut self, id: u64) -> Option<&CgroupInfo> {
        if !self.known.contains_key(&id) && self.may_rescan() {
            self.rescan();
        }
        self.known.get(&id)
    }

    fn may_rescan(&self) -> bool {
        self.root.is_some()
            && self
                .last_scan
                .is_none_or(|t| t.elapsed() >= RESCAN_INTERVAL)
    }

    fn rescan(&mut self) {
        self.last_scan = Some(Instant::now());
        let Some(root) = self.root.clone() else {
            return;
        };
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let Ok(meta) = std::fs::metadata(&dir) else {
                continue;
            };
            let rel = Path::new("/").join(dir.strip_prefix(&root).unwrap_or(Path::new("")));
            let path: Arc<str> = rel.to_string_lossy().into();
            self.known.entry(meta.ino()).or_insert_with(|| CgroupInfo {
                container: container_id(&path),
                path,
            });
            if let Ok(entries) = std::fs::read_dir(&dir) {
                stack.extend(
                    entries
                        .flatten()
                        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
                        .map(|e| e.path()),
                );
            }
        }
    }
}

fn is_hex64(s: &str) -> bool {
    s.len() == 64
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// systemd's unit-name escaping: `\x2d` → `-`.
fn unescape(name: &str) -> String {
    let mut out = String::new();
    let mut rest = name;
    while let Some(i) = rest.find("\\x") {
        out.push_str(&rest[..i]);
        let code = rest
            .get(i + 2..i + 4)
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match code {
            Some(b) => {
                out.push(b as char);
                rest = &rest[i + 4..];
            }
            None => {
                out.push_str("\\x");
                rest = &rest[i + 2..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// The container one path component names, if any.
fn component_container(c: &str) -> Option<ContainerId> {
    let id = |runtime: &'static str, id: &str| ContainerId {
        runtime,
        id: id.into(),
    };
    let scope = |prefix: &str| {
        c.strip_prefix(prefix)
            .and_then(|r| r.strip_suffix(".scope"))
            .filter(|h| is_hex64(h))
    };
    if let Some(h) = scope("docker-") {
        return Some(id("docker", h));
    }
    if let Some(h) = scope("cri-containerd-") {
        return Some(id("containerd", h));
    }
    if let Some(h) = scope("crio-") {
        return Some(id("cri-o", h));
    }
    if let Some(h) = scope("libpod-") {
        return Some(id("podman", h));
    }
    if let Some(name) = c
        .strip_prefix("systemd-nspawn@")
        .and_then(|r| r.strip_suffix(".service"))
    {
        return Some(id("systemd-nspawn", &unescape(name)));
    }
    if let Some(name) = c
        .strip_prefix("machine-")
        .and_then(|r| r.strip_suffix(".scope"))
    {
        return Some(id("systemd-nspawn", &unescape(name)));
    }
    if let Some(name) = c.strip_prefix("lxc.payload.") {
        return Some(id("lxc", name));
    }
    None
}

/// The container a cgroup path belongs to: the innermost component that
/// follows a runtime's naming (docker, containerd/CRI, CRI-O, podman,
/// systemd-nspawn, LXC), or a bare 64-hex component under /docker/ or
/// /kubepods/ (cgroupfs driver).
pub(crate) fn container_id(path: &str) -> Option<ContainerId> {
    let parts: Vec<&str> = path.split('/').filter(|c| !c.is_empty()).collect();
    for (i, c) in parts.iter().enumerate().rev() {
        if let Some(found) = component_container(c) {
            return Some(found);
        }
        if is_hex64(c) {
            let under = |p: &str| parts[..i].contains(&p);
            if under("docker") {
                return Some(ContainerId {
                    runtime: "docker",
                    id: (*c).into(),
                });
            }
            if parts[..i].iter().any(|p| p.starts_with("kubepods")) {
                return Some(ContainerId {
                    runtime: "containerd",
                    id: (*c).into(),
                });
            }
        }
        if i > 0 && parts[i - 1] == "lxc" {
            return Some(ContainerId {
                runtime: "lxc",
                id: (*c).into(),
            });
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID: &str = "3f9c0c1d2e3f405162738495a6b7c8d9eafb0c1d2e3f405162738495a6b7c8e1";

    fn found(path: &str) -> Option<(&'static str, String)> {
        container_id(path).map(|c| (c.runtime, c.id.to_string()))
    }

    #[test]
    fn recognises_the_runtimes() {
        for (path, runtime, id) in [
            (
                format!("/system.slice/docker-{ID}.scope"),
                "docker",
                ID.to_owned(),
            ),
            (format!("/docker/{ID}"), "docker", ID.to_owned()),
            (
                format!(
                    "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod1.slice/cri-containerd-{ID}.scope"
                ),
                "containerd",
                ID.to_owned(),
            ),
            (
                format!("/kubepods/besteffort/pod1234/{ID}"),
                "containerd",
                ID.to_owned(),
            ),
            (
                format!("/kubepods.slice/crio-{ID}.scope"),
                "cri-o",
                ID.to_owned(),
            ),
            (
                format!("/machine.slice/libpod-{ID}.scope/container"),
                "podman",
                ID.to_owned(),
            ),
            (
                "/machine.slice/systemd-nspawn@web.service".into(),
                "systemd-nspawn",
                "web".into(),
            ),
            (
                "/machine.slice/machine-my\\x2dbox.scope".into(),
                "systemd-nspawn",
                "my-box".into(),
            ),
            ("/lxc.payload.db1".into(), "lxc", "db1".into()),
            ("/lxc/db2".into(), "lxc", "db2".into()),
        ] {
            assert_eq!(found(&path), Some((runtime, id)), "{path}");
        }
    }

    #[test]
    fn ignores_what_is_not_a_container() {
        for path in [
            "/",
            "/init.scope",
            "/user.slice/user-1000.slice/session-2.scope",
            "/system.slice/docker.service",
            "/machine.slice/libpod-conmon-3f9c.scope",
            "/system.slice/crio-conmon-3f9c.scope",
        ] {
            assert_eq!(found(path), None, "{path}");
        }
        // Not 64 lowercase hex digits.
        assert_eq!(
            found(&format!("/system.slice/docker-{}.scope", &ID[1..])),
            None
        );
        assert_eq!(found(&format!("/docker/{}", ID.to_uppercase())), None);
    }

    #[test]
    fn resolves_a_fresh_cgroup_by_its_inode() {
        let mut paths = CgroupPaths::new();
        let Some(root) = paths.root.clone() else {
            panic!("no cgroup2 mount: the host and the VM guests both have one");
        };
        let name = format!("fsprobe-unit-{}", std::process::id());
        let dir = root.join(&name);
        std::fs::create_dir(&dir).unwrap();
        let ino = std::fs::metadata(&dir).unwrap().ino();
        let got = paths.get(ino).map(|c| c.path.to_string());
        std::fs::remove_dir(&dir).unwrap();
        assert_eq!(got, Some(format!("/{name}")));
        assert_eq!(paths.get(1 << 62).map(|c| c.path.to_string()), None);
    }
}

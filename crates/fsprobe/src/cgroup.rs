//! cgroup paths → container ids.
//!
//! The kernel resolves each process's cgroup v2 path itself, from the
//! cgroup's kernfs node (bpf/record/process.h), so the path is right even
//! when the cgroup is removed right after; this recognises the usual
//! container runtimes' naming in it.
use crate::event::ContainerId;

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
}

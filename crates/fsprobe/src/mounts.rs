//! Mount ids → mount points, and paths seen from another mount namespace
//! → the same files' paths on the host.
//!
//! The kernel resolves a path up to the root of the mount namespace of
//! the mount it was reached through, which is how a task of that
//! namespace sees it. A mount table gives, for a mount id, its mount
//! point in its namespace and its root inside the file system: fsprobe's
//! own namespace's is /proc/self/mountinfo; a mount of another namespace
//! is described by the kernel itself (FSP_MOUNT_DEF records) before the
//! first record that uses it. A file in another namespace maps to the host
//! through its file-system-relative path: a host mount of the same device
//! whose root contains that path, and whose mount point is not hidden by
//! a later mount.
//!
//! The own table is read again when a record carries a newer mount
//! generation (bpf/resolve/cache.h: mount_gen, bumped by mount, umount2,
//! move_mount, pivot_root, and clone/unshare with CLONE_NEWNS), so a
//! mount id reused after an umount is not mistaken for the old mount.
use std::collections::HashMap;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// One line of mountinfo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Mount {
    pub id: u32,
    /// Device of the file system, `(major, minor)`.
    pub dev: (u32, u32),
    /// The mount's root inside its file system (raw bytes).
    pub root: Vec<u8>,
    /// Where it is mounted, in its namespace.
    pub point: Arc<Path>,
    /// The file system's type (after the optional fields and " - ").
    pub fstype: String,
}

/// Undoes mountinfo's octal escapes (`\040` for a space, fs/proc_namespace.c
/// show_mountinfo() → seq_path_root() with " \t\n\\").
fn unescape(field: &str) -> Vec<u8> {
    let b = field.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let octal = b
            .get(i + 1..i + 4)
            .filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') << 6 | (d[1] - b'0') << 3 | (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    out
}

/// Parses one mountinfo line (proc(5)).
fn parse_line(line: &str) -> Option<Mount> {
    let mut fields = line.split(' ');
    let id = fields.next()?.parse().ok()?;
    let _parent = fields.next()?;
    let (major, minor) = fields.next()?.split_once(':')?;
    let root = unescape(fields.next()?);
    let point = unescape(fields.next()?);
    let fstype = fields.skip_while(|f| *f != "-").nth(1)?.to_owned();
    Some(Mount {
        id,
        dev: (major.parse().ok()?, minor.parse().ok()?),
        root,
        point: Arc::from(Path::new(std::ffi::OsStr::from_bytes(&point))),
        fstype,
    })
}

/// All mounts of a mountinfo text, in mount order.
pub(crate) fn parse(text: &str) -> Vec<Mount> {
    text.lines().filter_map(parse_line).collect()
}

/// `path` below `dir`, component-wise: the rest (empty or starting with
/// '/'), or None when `dir` does not contain `path`.
fn below<'a>(path: &'a [u8], dir: &[u8]) -> Option<&'a [u8]> {
    if path == dir {
        return Some(b"");
    }
    let dir = if dir == b"/" { &b""[..] } else { dir };
    let rest = path.strip_prefix(dir)?;
    (rest.is_empty() || rest[0] == b'/').then_some(rest)
}

/// The mount a host path falls in: the last mounted of those whose mount
/// point is the deepest prefix of the path (ignoring symlinks).
fn covering(mounts: &[Mount], path: &[u8]) -> Option<usize> {
    let mut best: Option<(usize, usize)> = None;
    for (i, m) in mounts.iter().enumerate() {
        let point = m.point.as_os_str().as_bytes();
        if below(path, point).is_some() {
            let depth = if point == b"/" { 0 } else { point.len() };
            if best.is_none_or(|(d, _)| depth >= d) {
                best = Some((depth, i));
            }
        }
    }
    best.map(|(_, i)| i)
}

/// The host path of the file at `fs_path` (relative to its file system's
/// root) on device `dev`: the shortest visible one, if any.
pub(crate) fn host_path(host: &[Mount], dev: (u32, u32), fs_path: &[u8]) -> Option<PathBuf> {
    let mut found: Option<Vec<u8>> = None;
    for (i, m) in host.iter().enumerate() {
        if m.dev != dev {
            continue;
        }
        let Some(rest) = below(fs_path, &m.root) else {
            continue;
        };
        let point = m.point.as_os_str().as_bytes();
        let mut candidate = if point == b"/" && !rest.is_empty() {
            Vec::new()
        } else {
            point.to_vec()
        };
        candidate.extend_from_slice(rest);
        if covering(host, &candidate) == Some(i)
            && found.as_ref().is_none_or(|f| candidate.len() < f.len())
        {
            found = Some(candidate);
        }
    }
    found.map(|p| PathBuf::from(std::ffi::OsString::from_vec(p)))
}

/// Least time between two reads of one namespace's table for a mount id
/// it lacks (at the same generation).
const MISS_REREAD: Duration = Duration::from_millis(100);

/// One mount namespace's table.
#[derive(Debug)]
struct Table {
    mounts: Vec<Mount>,
    by_id: HashMap<u32, usize>,
    /// The newest mount generation seen when it was read.
    generation: u32,
    read_at: Instant,
}

impl Table {
    fn read(source: &Path, generation: u32) -> Option<Table> {
        let text = std::fs::read_to_string(source).ok()?;
        let mounts = parse(&text);
        let by_id = mounts.iter().enumerate().map(|(i, m)| (m.id, i)).collect();
        Some(Table {
            mounts,
            by_id,
            generation,
            read_at: Instant::now(),
        })
    }

    fn empty(generation: u32) -> Table {
        Table {
            mounts: Vec::new(),
            by_id: HashMap::new(),
            generation,
            read_at: Instant::now(),
        }
    }

    fn get(&self, id: u32) -> Option<&Mount> {
        self.by_id.get(&id).map(|&i| &self.mounts[i])
    }
}

/// Is generation `a` newer than `b` (wrapping)?
fn newer(a: u32, b: u32) -> bool {
    (a.wrapping_sub(b) as i32) > 0
}

/// A mount of another namespace, as the kernel described it (an
/// FSP_MOUNT_DEF record, bpf/record/mounts.h).
#[derive(Debug, Clone)]
struct Defined {
    mount: Mount,
    /// The mount generation it was described at.
    generation: u32,
}

/// Mount tables: fsprobe's own namespace's, read on demand, and the
/// mounts of other namespaces as the kernel described them.
///
/// Another namespace's mounts come only from the kernel: a namespace can
/// be gone (its last task exited) before its first record is decoded, and
/// /proc/PID/mountinfo of a live task may already show a newer table than
/// the event saw. The definitions are kept by mount id, the newest one
/// replacing the older: ids are reused (the lowest free one is handed
/// out), so their number stays bounded by the mounts that exist at once.
#[derive(Debug)]
pub(crate) struct MountTables {
    /// fsprobe's own mount namespace: the host view.
    pub own_ns: u32,
    own: Option<Table>,
    defined: HashMap<u32, Defined>,
}

/// The inode number of this process's mount namespace.
pub(crate) fn own_mount_ns() -> u32 {
    std::fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino() as u32)
}

impl MountTables {
    pub(crate) fn new() -> Self {
        MountTables {
            own_ns: own_mount_ns(),
            own: None,
            defined: HashMap::new(),
        }
    }

    /// fsprobe's own table, fresh enough for a record of generation
    /// `generation` (that names mount `id`, if any).
    fn own_table(&mut self, generation: u32, id: Option<u32>) -> Option<&Table> {
        let stale = match &self.own {
            None => true,
            Some(t) => {
                let missing = id.is_some_and(|id| t.get(id).is_none());
                newer(generation, t.generation) || (missing && t.read_at.elapsed() >= MISS_REREAD)
            }
        };
        if stale {
            let seen = self.own.as_ref().map_or(generation, |t| {
                if newer(generation, t.generation) {
                    generation
                } else {
                    t.generation
                }
            });
            match Table::read(Path::new("/proc/self/mountinfo"), seen) {
                Some(t) => self.own = Some(t),
                None => {
                    let t = self.own.get_or_insert_with(|| Table::empty(seen));
                    t.read_at = Instant::now();
                }
            }
        }
        self.own.as_ref()
    }

    /// Learns a mount of another namespace (an FSP_MOUNT_DEF record).
    pub(crate) fn define(&mut self, mount: Mount, generation: u32) {
        let keep_old = self
            .defined
            .get(&mount.id)
            .is_some_and(|d| newer(d.generation, generation));
        if !keep_old {
            self.defined.insert(mount.id, Defined { mount, generation });
        }
    }

    /// Is mount `id` of another namespace described for a record of
    /// generation `generation`? (The kernel sends a definition at a
    /// generation at least that of the records that use it.)
    pub(crate) fn knows_foreign(&self, id: u32, generation: u32) -> bool {
        self.defined
            .get(&id)
            .is_some_and(|d| !newer(generation, d.generation))
    }

    /// The mount point of mount `id`: in its own namespace's table when
    /// `foreign` (the kernel described it), else in fsprobe's.
    pub(crate) fn mount_point(
        &mut self,
        foreign: bool,
        generation: u32,
        id: u32,
    ) -> Option<Arc<Path>> {
        if foreign {
            return self.defined.get(&id).map(|d| Arc::clone(&d.mount.point));
        }
        let m = self.own_table(generation, Some(id))?.get(id)?;
        Some(Arc::clone(&m.point))
    }

    /// The host path of `path`, reached through mount `id` of another
    /// namespace; None when that file system is not visible on the host.
    pub(crate) fn host_path_of(
        &mut self,
        generation: u32,
        id: u32,
        path: &Path,
    ) -> Option<PathBuf> {
        let m = &self.defined.get(&id)?.mount;
        let rest = below(path.as_os_str().as_bytes(), m.point.as_os_str().as_bytes())?;
        let mut fs_path = if m.root == b"/" {
            Vec::new()
        } else {
            m.root.clone()
        };
        fs_path.extend_from_slice(rest);
        if fs_path.is_empty() {
            fs_path.push(b'/');
        }
        let dev = m.dev;
        let host = self.own_table(generation, None)?;
        host_path(&host.mounts, dev, &fs_path)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HOST: &str = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
23 22 0:21 / /proc rw shared:2 - proc proc rw
30 22 8:1 /home /mnt/home\\040copy rw shared:1 - ext4 /dev/sda1 rw
31 22 0:40 / /var/lib/docker/overlay2/abc/merged rw - overlay overlay rw
32 22 0:41 / /srv rw - tmpfs tmpfs rw
33 32 8:1 /data /srv/data rw - ext4 /dev/sda1 rw
34 22 0:42 / /srv/data rw - tmpfs tmpfs rw";

    #[test]
    fn parses_fields_and_octal_escapes() {
        let m = parse(HOST);
        assert_eq!(m.len(), 7);
        assert_eq!(m[2].id, 30);
        assert_eq!(m[2].dev, (8, 1));
        assert_eq!(m[2].root, b"/home");
        assert_eq!(&*m[2].point, Path::new("/mnt/home copy"));
        assert_eq!(m[2].fstype, "ext4");
        assert_eq!(m[5].fstype, "ext4");
        assert_eq!(m[6].fstype, "tmpfs");
        assert_eq!(unescape("a\\134b\\012c\\0"), b"a\\b\nc\\0");
    }

    #[test]
    fn maps_a_file_system_path_to_the_shortest_visible_host_path() {
        let m = parse(HOST);
        let host = |dev, p: &str| host_path(&m, dev, p.as_bytes()).map(|p| p.display().to_string());
        // Visible through / and through the bind mount: the shorter wins.
        assert_eq!(host((8, 1), "/home/u/f").as_deref(), Some("/home/u/f"));
        assert_eq!(
            host((0, 40), "/etc/passwd").as_deref(),
            Some("/var/lib/docker/overlay2/abc/merged/etc/passwd")
        );
        assert_eq!(
            host((0, 40), "/").as_deref(),
            Some("/var/lib/docker/overlay2/abc/merged")
        );
        // /srv/data is over-mounted by tmpfs 0:42: /data is visible only
        // through /data on the root file system.
        assert_eq!(host((8, 1), "/data/x").as_deref(), Some("/data/x"));
        assert_eq!(host((0, 99), "/x"), None);
    }

    #[test]
    fn a_hidden_mount_gives_no_host_path() {
        let m = parse(
            "1 0 8:1 / / rw - ext4 a rw\n2 1 0:5 / /srv rw - tmpfs t rw\n3 1 0:6 / /srv rw - tmpfs u rw",
        );
        assert_eq!(host_path(&m, (0, 5), b"/f"), None);
        assert_eq!(host_path(&m, (0, 6), b"/f"), Some(PathBuf::from("/srv/f")));
    }

    #[test]
    fn containment_is_by_component() {
        assert_eq!(below(b"/srvx/f", b"/srv"), None);
        assert_eq!(below(b"/srv/f", b"/srv"), Some(&b"/f"[..]));
        assert_eq!(below(b"/srv", b"/srv"), Some(&b""[..]));
        assert_eq!(below(b"/f", b"/"), Some(&b"/f"[..]));
        assert_eq!(below(b"/", b"/"), Some(&b""[..]));
    }

    fn defined(id: u32, root: &str, point: &str) -> Mount {
        Mount {
            id,
            dev: (8, 1),
            root: root.as_bytes().to_vec(),
            point: Arc::from(Path::new(point)),
            fstype: "ext4".into(),
        }
    }

    #[test]
    fn a_described_mount_places_its_files_and_a_newer_description_wins() {
        let mut t = MountTables::new();
        t.own = Some(Table {
            mounts: parse(HOST),
            by_id: HashMap::new(),
            generation: 7,
            read_at: Instant::now(),
        });
        assert!(!t.knows_foreign(90, 7));
        t.define(defined(90, "/home/u", "/data"), 7);
        assert!(t.knows_foreign(90, 7));
        assert!(t.knows_foreign(90, 6));
        assert!(
            !t.knows_foreign(90, 8),
            "a record of a newer generation waits"
        );
        assert_eq!(
            t.mount_point(true, 7, 90).as_deref(),
            Some(Path::new("/data"))
        );
        assert_eq!(
            t.host_path_of(7, 90, Path::new("/data/f")),
            Some(PathBuf::from("/home/u/f"))
        );
        assert_eq!(t.host_path_of(7, 90, Path::new("/elsewhere/f")), None);
        // An older description (another CPU's, read late) does not replace it.
        t.define(defined(90, "/", "/old"), 6);
        assert_eq!(
            t.mount_point(true, 7, 90).as_deref(),
            Some(Path::new("/data"))
        );
        t.define(defined(90, "/", "/new"), 9);
        assert_eq!(
            t.host_path_of(7, 90, Path::new("/new/etc/x")),
            Some(PathBuf::from("/etc/x"))
        );
    }

    #[test]
    fn generations_compare_across_wrap() {
        assert!(newer(1, 0));
        assert!(newer(0, u32::MAX));
        assert!(!newer(5, 5));
        assert!(!newer(4, 5));
    }
}

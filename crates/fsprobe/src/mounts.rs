//! Mount ids → mount points, and paths seen from another mount namespace
//! → the same files' paths on the host.
//!
//! The kernel resolves a path up to the root of the acting task's mount
//! namespace, which is how that task sees it. Each mount namespace has
//! its own mount table (`/proc/PID/mountinfo` of any task in it), giving,
//! for a mount id, its mount point in that namespace and its root inside
//! the file system. A file in another namespace maps to the host through
//! its file-system-relative path: a host mount of the same device whose
//! root contains that path, and whose mount point is not hidden by a
//! later mount.
//!
//! Tables are read again when a record carries a newer mount generation
//! (bpf/resolve/cache.h: mount_gen, bumped by mount, umount2, move_mount,
//! pivot_root, and clone/unshare with CLONE_NEWNS), so a mount id reused
//! after an umount is not mistaken for the old mount.
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

/// The task an event came from: its table is read through it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Task {
    pub pid: u32,
    pub ppid: u32,
}

/// Mount tables by mount namespace, read on demand.
#[derive(Debug)]
pub(crate) struct MountTables {
    /// fsprobe's own mount namespace: the host view.
    pub own_ns: u32,
    tables: HashMap<u32, Table>,
}

/// The inode number of this process's mount namespace.
fn own_mount_ns() -> u32 {
    std::fs::metadata("/proc/self/ns/mnt").map_or(0, |m| m.ino() as u32)
}

impl MountTables {
    pub(crate) fn new() -> Self {
        MountTables {
            own_ns: own_mount_ns(),
            tables: HashMap::new(),
        }
    }

    /// Namespace `ns`'s table, fresh enough for a record of generation
    /// `generation` (that names mount `id`, if any). Another namespace's
    /// table is read through the acting task, else its parent, else any
    /// task still in that namespace.
    fn table(&mut self, ns: u32, task: Task, generation: u32, id: Option<u32>) -> Option<&Table> {
        let stale = match self.tables.get(&ns) {
            None => true,
            Some(t) => {
                let missing = id.is_some_and(|id| t.get(id).is_none());
                newer(generation, t.generation) || (missing && t.read_at.elapsed() >= MISS_REREAD)
            }
        };
        if stale {
            let seen = self.tables.get(&ns).map_or(generation, |t| {
                if newer(generation, t.generation) {
                    generation
                } else {
                    t.generation
                }
            });
            let read = if ns == self.own_ns {
                Table::read(Path::new("/proc/self/mountinfo"), seen)
            } else {
                self.read_foreign(ns, task, seen)
            };
            match read {
                Some(t) => {
                    self.tables.insert(ns, t);
                }
                // Nobody left in that namespace: keep what we had, and
                // do not try again before MISS_REREAD.
                None => {
                    self.tables
                        .entry(ns)
                        .and_modify(|t| t.read_at = Instant::now())
                        .or_insert_with(|| Table::empty(seen));
                }
            }
        }
        self.tables.get(&ns)
    }

    /// Reads namespace `ns`'s mountinfo through a task that is (still) in it.
    fn read_foreign(&self, ns: u32, task: Task, generation: u32) -> Option<Table> {
        let in_ns = |pid: u32| {
            std::fs::metadata(format!("/proc/{pid}/ns/mnt")).is_ok_and(|m| m.ino() as u32 == ns)
        };
        let read = |pid: u32| {
            let t = Table::read(Path::new(&format!("/proc/{pid}/mountinfo")), generation)?;
            // The task may have exited, its pid been reused, or moved
            // namespace (setns) while we read: check after reading.
            in_ns(pid).then_some(t)
        };
        if let Some(t) = [task.pid, task.ppid]
            .into_iter()
            .filter(|&p| p != 0)
            .find_map(read)
        {
            return Some(t);
        }
        std::fs::read_dir("/proc")
            .ok()?
            .flatten()
            .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
            .filter(|&p| in_ns(p))
            .find_map(read)
    }

    /// The namespace whose table holds mount `id`, used by a task of
    /// namespace `ns`. Usually `ns` itself; but a task keeps files opened
    /// before it changed namespace (its executable, inherited fds), and
    /// their mounts stay in the old one. Mount ids are unique across
    /// namespaces (one IDA in fs/namespace.c), so any table may be asked.
    fn holder(&mut self, ns: u32, task: Task, generation: u32, id: u32) -> Option<u32> {
        let own = self.own_ns;
        let has = |t: Option<&Table>| t.is_some_and(|t| t.get(id).is_some());
        // First as the tables are (read again only for a newer generation),
        // then reading the two likely ones again if the id is missing.
        for reread in [None, Some(id)] {
            if has(self.table(ns, task, generation, reread)) {
                return Some(ns);
            }
            if has(self.table(own, task, generation, reread)) {
                return Some(own);
            }
            if let Some((&holder, _)) = self.tables.iter().find(|(_, t)| t.get(id).is_some()) {
                return Some(holder);
            }
        }
        None
    }

    /// The mount point of mount `id`, used by a task of namespace `ns`, in
    /// the namespace that holds it.
    pub(crate) fn mount_point(
        &mut self,
        ns: u32,
        task: Task,
        generation: u32,
        id: u32,
    ) -> Option<Arc<Path>> {
        let holder = self.holder(ns, task, generation, id)?;
        let m = self.tables.get(&holder)?.get(id)?;
        Some(Arc::clone(&m.point))
    }

    /// The host path of `path`, reached by a task of namespace `ns`
    /// through mount `id`; None when that file system is not visible on
    /// the host.
    pub(crate) fn host_path_of(
        &mut self,
        ns: u32,
        task: Task,
        generation: u32,
        id: u32,
        path: &Path,
    ) -> Option<PathBuf> {
        let holder = self.holder(ns, task, generation, id)?;
        if holder == self.own_ns {
            // A host mount: the kernel walked the host's tree.
            return Some(path.to_owned());
        }
        let m = self.tables.get(&holder)?.get(id)?.clone();
        let rest = below(path.as_os_str().as_bytes(), m.point.as_os_str().as_bytes())?;
        let mut fs_path = if m.root == b"/" { Vec::new() } else { m.root };
        fs_path.extend_from_slice(rest);
        if fs_path.is_empty() {
            fs_path.push(b'/');
        }
        let own = self.own_ns;
        let host = self.table(own, task, generation, None)?;
        host_path(&host.mounts, m.dev, &fs_path)
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

    #[test]
    fn generations_compare_across_wrap() {
        assert!(newer(1, 0));
        assert!(newer(0, u32::MAX));
        assert!(!newer(5, 5));
        assert!(!newer(4, 5));
    }
}

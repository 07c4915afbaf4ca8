//! A seeded random file-system workload that knows, for every operation,
//! the exact event fsprobe must report: kind, path (and target path) and
//! inode. It mixes what breaks path caches: renames of files and of whole
//! directories across directories, hard links, unlink and rmdir followed by
//! re-creation (reused inode numbers), 255-byte names, names with spaces,
//! newlines and bytes that are not UTF-8, and nesting close to PATH_MAX.
use std::ffi::OsStr;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

/// Longest absolute path the workload makes, leaving room below PATH_MAX
/// (4096 with its NUL) for the kernel to accept every call.
const MAX_PATH: usize = 4000;
/// How often a new directory goes into the deepest one (so that paths
/// reach PATH_MAX), and other new entries (which then get long paths too).
const DEEP_MKDIR: u64 = 40;
const DEEP_OTHERS: u64 = 5;
/// Entries kept around: enough for cache pressure, small enough that
/// renaming a directory (which rewrites its descendants) stays cheap.
const TARGET_ENTRIES: usize = 400;

/// splitmix64: tiny, seedable, the same on every platform and version.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// What fsprobe must report for one operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expected {
    pub kind: &'static str,
    pub path: Vec<u8>,
    pub target: Option<Vec<u8>>,
    pub inode: u64,
}

#[derive(Debug, Clone)]
struct Entry {
    path: Vec<u8>,
    dir: bool,
}

pub struct Workload {
    rng: Rng,
    root: Vec<u8>,
    entries: Vec<Entry>,
    /// Paths removed recently: re-created to reuse their inode numbers.
    removed: Vec<Vec<u8>>,
    serial: u64,
    longest: usize,
}

fn as_path(bytes: &[u8]) -> &Path {
    Path::new(OsStr::from_bytes(bytes))
}

fn inode(bytes: &[u8]) -> u64 {
    std::fs::symlink_metadata(as_path(bytes))
        .unwrap_or_else(|e| panic!("stat {:?}: {e}", as_path(bytes)))
        .ino()
}

fn join(dir: &[u8], name: &[u8]) -> Vec<u8> {
    let mut p = dir.to_vec();
    p.push(b'/');
    p.extend_from_slice(name);
    p
}

fn parent_of(path: &[u8]) -> &[u8] {
    let cut = path
        .iter()
        .rposition(|&b| b == b'/')
        .expect("absolute path");
    &path[..cut]
}

fn is_under(path: &[u8], dir: &[u8]) -> bool {
    path.len() > dir.len() && path.starts_with(dir) && path[dir.len()] == b'/'
}

fn check(result: std::io::Result<()>, what: &str, path: &[u8]) {
    if let Err(e) = result {
        panic!("workload: {what} {:?}: {e}", as_path(path));
    }
}

impl Workload {
    pub fn new(root: &Path, seed: u64) -> Workload {
        Workload {
            rng: Rng::new(seed),
            root: root.as_os_str().as_bytes().to_vec(),
            entries: Vec::new(),
            removed: Vec::new(),
            serial: 0,
            longest: 0,
        }
    }

    /// A fresh name: mostly short, sometimes 255 bytes, with spaces and a
    /// newline, or with bytes that are not UTF-8. A serial number keeps
    /// names unique.
    fn name(&mut self) -> Vec<u8> {
        self.serial += 1;
        let serial = format!("{}", self.serial).into_bytes();
        let mut name = match self.rng.below(10) {
            0 => {
                let mut n = vec![b'L'; 255 - serial.len()];
                for b in n.iter_mut() {
                    *b = b'a' + (self.rng.below(26) as u8);
                }
                n
            }
            1 => b"with space\nand newline ".to_vec(),
            2 => vec![b'x', 0xff, 0xfe, b' ', 0xc3, 0x28, b'-'],
            _ => {
                let len = 1 + self.rng.below(12);
                (0..len)
                    .map(|_| b"abcdefghijklmnopqrstuvwxyz0123456789._-"[self.rng.below(39)])
                    .collect()
            }
        };
        name.extend_from_slice(&serial);
        name
    }

    fn dirs(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter().filter(|e| e.dir)
    }

    /// A directory to create in: the root, any directory, or (`deep`
    /// percent of the time) the deepest one, so paths grow close to PATH_MAX.
    fn some_dir(&mut self, deep: u64) -> Vec<u8> {
        let n = self.dirs().count();
        if n == 0 || self.rng.chance(10) {
            return self.root.clone();
        }
        if self.rng.chance(deep) {
            return self
                .dirs()
                .max_by_key(|e| e.path.len())
                .map(|e| e.path.clone())
                .expect("a directory");
        }
        let pick = self.rng.below(n);
        self.dirs().nth(pick).expect("in range").path.clone()
    }

    fn some_entry(&mut self, dir: bool) -> Option<usize> {
        let candidates: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].dir == dir)
            .collect();
        (!candidates.is_empty()).then(|| candidates[self.rng.below(candidates.len())])
    }

    fn some_path(&mut self, dir: bool) -> Option<Vec<u8>> {
        let i = self.some_entry(dir)?;
        Some(self.entries[i].path.clone())
    }

    /// A new path in some directory, short enough for PATH_MAX.
    fn new_path(&mut self, deep: u64) -> Option<Vec<u8>> {
        let dir = self.some_dir(deep);
        let name = self.name();
        let path = join(&dir, &name);
        if path.len() > MAX_PATH {
            return None;
        }
        self.longest = self.longest.max(path.len());
        Some(path)
    }

    /// Performs one random operation; returns what fsprobe must report.
    pub fn step(&mut self) -> Vec<Expected> {
        loop {
            let grow = self.entries.len() < TARGET_ENTRIES;
            let pick = self.rng.below(100);
            let done = match pick {
                0..=11 => self.mkdir(),
                12..=27 if grow || pick.is_multiple_of(2) => self.create(),
                28..=37 => self.write(),
                38..=45 => self.chmod(),
                46..=55 => self.rename_file(),
                56..=62 => self.rename_dir(),
                63..=68 => self.link(),
                69..=80 => self.unlink(),
                81..=87 => self.rmdir(),
                88..=93 => self.recreate(),
                _ => self.read(),
            };
            if let Some(expected) = done {
                return expected;
            }
        }
    }

    fn mkdir(&mut self) -> Option<Vec<Expected>> {
        let path = self.new_path(DEEP_MKDIR)?;
        check(std::fs::create_dir(as_path(&path)), "mkdir", &path);
        let inode = inode(&path);
        self.entries.push(Entry {
            path: path.clone(),
            dir: true,
        });
        Some(vec![Expected {
            kind: "mkdir",
            path,
            target: None,
            inode,
        }])
    }

    fn create_at(&mut self, path: Vec<u8>) -> Vec<Expected> {
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(as_path(&path))
            .map(drop);
        check(created, "create", &path);
        let inode = inode(&path);
        self.entries.push(Entry {
            path: path.clone(),
            dir: false,
        });
        vec![Expected {
            kind: "open",
            path,
            target: None,
            inode,
        }]
    }

    fn create(&mut self) -> Option<Vec<Expected>> {
        let path = self.new_path(DEEP_OTHERS)?;
        Some(self.create_at(path))
    }

    /// Re-creates a removed name whose directory still exists: a new inode,
    /// often with the number the removed one had.
    fn recreate(&mut self) -> Option<Vec<Expected>> {
        let i = (!self.removed.is_empty()).then(|| self.rng.below(self.removed.len()))?;
        let path = self.removed.swap_remove(i);
        let parent = parent_of(&path);
        let parent_ok = parent == self.root.as_slice() || self.dirs().any(|e| e.path == parent);
        let free = !self.entries.iter().any(|e| e.path == path);
        (parent_ok && free).then(|| self.create_at(path))
    }

    fn write(&mut self) -> Option<Vec<Expected>> {
        use std::io::Write;
        let path = self.some_path(false)?;
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(as_path(&path))
            .unwrap_or_else(|e| panic!("open {:?}: {e}", as_path(&path)));
        f.write_all(b"0123456789abcdef")
            .unwrap_or_else(|e| panic!("write {:?}: {e}", as_path(&path)));
        drop(f);
        let inode = inode(&path);
        let open = Expected {
            kind: "open",
            path: path.clone(),
            target: None,
            inode,
        };
        let modify = Expected {
            kind: "modify",
            ..open.clone()
        };
        Some(vec![open, modify])
    }

    fn read(&mut self) -> Option<Vec<Expected>> {
        let path = self.some_path(false)?;
        let f = std::fs::File::open(as_path(&path));
        check(f.map(drop), "open", &path);
        Some(vec![Expected {
            kind: "open",
            inode: inode(&path),
            path,
            target: None,
        }])
    }

    fn chmod(&mut self) -> Option<Vec<Expected>> {
        use std::os::unix::fs::PermissionsExt;
        let dir = self.rng.chance(30);
        let path = self.some_path(dir)?;
        let mode = if dir {
            0o755 - (self.rng.below(2) as u32 * 0o50)
        } else {
            0o600 + (self.rng.below(8) as u32 * 0o10)
        };
        let set = std::fs::set_permissions(as_path(&path), std::fs::Permissions::from_mode(mode));
        check(set, "chmod", &path);
        Some(vec![Expected {
            kind: "setattr",
            inode: inode(&path),
            path,
            target: None,
        }])
    }

    fn rename_file(&mut self) -> Option<Vec<Expected>> {
        let i = self.some_entry(false)?;
        let old = self.entries[i].path.clone();
        let new = self.new_path(DEEP_OTHERS)?;
        let inode = inode(&old);
        check(
            std::fs::rename(as_path(&old), as_path(&new)),
            "rename",
            &old,
        );
        self.entries[i].path = new.clone();
        Some(vec![Expected {
            kind: "rename",
            path: old,
            target: Some(new),
            inode,
        }])
    }

    /// Moves a directory with everything in it to another directory.
    fn rename_dir(&mut self) -> Option<Vec<Expected>> {
        let i = self.some_entry(true)?;
        let old = self.entries[i].path.clone();
        let dest_dir = self.some_dir(DEEP_OTHERS);
        if dest_dir == old || is_under(&dest_dir, &old) {
            return None;
        }
        let new = join(&dest_dir, &self.name());
        let deepest = self
            .entries
            .iter()
            .filter(|e| is_under(&e.path, &old))
            .map(|e| e.path.len())
            .max()
            .unwrap_or(old.len());
        if deepest - old.len() + new.len() > MAX_PATH {
            return None;
        }
        self.longest = self.longest.max(deepest - old.len() + new.len());
        let inode = inode(&old);
        check(
            std::fs::rename(as_path(&old), as_path(&new)),
            "rename",
            &old,
        );
        for e in self.entries.iter_mut() {
            if e.path == old || is_under(&e.path, &old) {
                let mut moved = new.clone();
                moved.extend_from_slice(&e.path[old.len()..]);
                e.path = moved;
            }
        }
        Some(vec![Expected {
            kind: "rename",
            path: old,
            target: Some(new),
            inode,
        }])
    }

    fn link(&mut self) -> Option<Vec<Expected>> {
        let existing = self.some_path(false)?;
        let new = self.new_path(DEEP_OTHERS)?;
        check(
            std::fs::hard_link(as_path(&existing), as_path(&new)),
            "link",
            &existing,
        );
        let inode = inode(&new);
        self.entries.push(Entry {
            path: new.clone(),
            dir: false,
        });
        Some(vec![Expected {
            kind: "link",
            path: existing,
            target: Some(new),
            inode,
        }])
    }

    fn unlink(&mut self) -> Option<Vec<Expected>> {
        if self.entries.len() < TARGET_ENTRIES / 4 {
            return None;
        }
        let i = self.some_entry(false)?;
        let path = self.entries.swap_remove(i).path;
        let inode = inode(&path);
        check(std::fs::remove_file(as_path(&path)), "unlink", &path);
        self.removed.push(path.clone());
        Some(vec![Expected {
            kind: "unlink",
            path,
            target: None,
            inode,
        }])
    }

    fn rmdir(&mut self) -> Option<Vec<Expected>> {
        let parents: std::collections::HashSet<&[u8]> =
            self.entries.iter().map(|e| parent_of(&e.path)).collect();
        let empty: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].dir && !parents.contains(self.entries[i].path.as_slice()))
            .collect();
        if empty.is_empty() {
            return None;
        }
        let i = empty[self.rng.below(empty.len())];
        let path = self.entries.swap_remove(i).path;
        let inode = inode(&path);
        check(std::fs::remove_dir(as_path(&path)), "rmdir", &path);
        self.removed.push(path.clone());
        Some(vec![Expected {
            kind: "rmdir",
            path,
            target: None,
            inode,
        }])
    }

    /// Longest path made so far (to show that PATH_MAX was approached).
    pub fn longest_path(&self) -> usize {
        self.longest
    }
}

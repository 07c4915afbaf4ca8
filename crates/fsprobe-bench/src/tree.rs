//! The seed's six scenarios and the trees they are run on.
//!
//! Every name is 10 random alphanumerics from a fixed-seed RNG, so two runs
//! build the same tree. "depth" is the number of directory levels in each
//! chain, "breadth" the number of independent chains (leaf folders), and
//! the files are spread evenly over the leaf folders.
use std::ffi::CString;
use std::fs;
use std::io;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use rand::distr::{Alphanumeric, SampleString};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

/// The file opened (by name, relative to the root) to check that a peer is
/// listening; it is not one of the scenario's files.
pub const SENTINEL: &str = "fsb-sentinel";
const _: () = assert!(crate::workload::SENTINEL_C.to_bytes().len() == SENTINEL.len());

#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Scenario {
    pub id: u8,
    pub depth: usize,
    pub breadth: usize,
    pub files: usize,
}

/// The seed's table, in its order.
pub const SCENARIOS: [Scenario; 6] = [
    Scenario {
        id: 1,
        depth: 10,
        breadth: 1,
        files: 1,
    },
    Scenario {
        id: 2,
        depth: 60,
        breadth: 1,
        files: 1,
    },
    Scenario {
        id: 3,
        depth: 10,
        breadth: 1,
        files: 120_000,
    },
    Scenario {
        id: 4,
        depth: 10,
        breadth: 4_000,
        files: 80_000,
    },
    Scenario {
        id: 5,
        depth: 60,
        breadth: 1_000,
        files: 60_000,
    },
    Scenario {
        id: 6,
        depth: 5,
        breadth: 8_000,
        files: 80_000,
    },
];

impl Scenario {
    pub fn dirs(&self) -> usize {
        self.depth * self.breadth
    }

    pub fn label(&self) -> String {
        format!(
            "{}: depth {}, breadth {}, {} files",
            self.id, self.depth, self.breadth, self.files
        )
    }
}

/// A built tree: its root and every file, ready for open(2).
pub struct Tree {
    pub root: PathBuf,
    /// The root, held open so that handshakes open only the sentinel.
    pub root_dir: fs::File,
    pub files: Vec<CString>,
    /// Bytes of the longest file path (the walk the probe does per event).
    pub max_path: usize,
}

fn name(rng: &mut StdRng) -> String {
    Alphanumeric.sample_string(rng, 10)
}

/// Creates a fresh directory under `dir` with a random (collision-checked) name.
fn new_dir(dir: &Path, rng: &mut StdRng) -> io::Result<PathBuf> {
    loop {
        let path = dir.join(name(rng));
        match fs::create_dir(&path) {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other.map(|()| path),
        }
    }
}

fn new_file(dir: &Path, rng: &mut StdRng) -> io::Result<PathBuf> {
    loop {
        let path = dir.join(name(rng));
        let created = fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match created {
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            other => return other.map(|_| path),
        }
    }
}

/// Builds the scenario's tree under `root` (which must not exist yet).
pub fn build(s: &Scenario, root: &Path, seed: u64) -> io::Result<Tree> {
    let mut rng = StdRng::seed_from_u64(seed ^ u64::from(s.id));
    fs::create_dir_all(root)?;
    fs::write(root.join(SENTINEL), b"")?;
    let mut leaves = Vec::with_capacity(s.breadth);
    for _ in 0..s.breadth {
        let mut dir = root.to_path_buf();
        for _ in 0..s.depth {
            dir = new_dir(&dir, &mut rng)?;
        }
        leaves.push(dir);
    }
    let mut files = Vec::with_capacity(s.files);
    let mut max_path = 0;
    for i in 0..s.files {
        let path = new_file(&leaves[i % leaves.len()], &mut rng)?;
        max_path = max_path.max(path.as_os_str().len());
        files.push(CString::new(path.as_os_str().as_bytes()).expect("no NUL in names"));
    }
    Ok(Tree {
        root: root.to_path_buf(),
        root_dir: fs::File::open(root)?,
        files,
        max_path,
    })
}

/// The file indices to open, the same sequence for every run of a scenario.
pub fn sequence(len: usize, files: usize, seed: u64) -> Vec<u32> {
    let mut rng = StdRng::seed_from_u64(seed.rotate_left(17));
    (0..len)
        .map(|_| rng.random_range(0..files as u32))
        .collect()
}

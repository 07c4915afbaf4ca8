//! The in-kernel filter's set grows with what it holds (src/watched.rs),
//! instead of taking its buckets for `--max-watches` entries at start, and
//! no watch is lost when it is replaced by a larger one: entries user
//! space seeded before a resize and entries the kernel added before and
//! after one keep their directories reported.
mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// Directories at start: more than half of the first set (65,536 entries),
/// so seeding grows it.
const SEEDED: usize = 40_000;
/// Directories made after start: the kernel's inserts grow it again.
const CREATED: usize = 40_000;
/// The default --max-watches.
const LIMIT: u64 = 1 << 20;

/// max_entries of each watched set fsprobe process `pid` holds: the hash
/// maps of struct fsp_inode_key (16 bytes) to flags (4), not preallocated.
fn watched_sets(pid: u32) -> Vec<u64> {
    let mut sets = Vec::new();
    for fd in std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .flatten()
    {
        let is_map = std::fs::read_link(fd.path())
            .map(|l| l.as_os_str() == "anon_inode:bpf-map")
            .unwrap_or(false);
        if !is_map {
            continue;
        }
        let Ok(info) = std::fs::read_to_string(format!(
            "/proc/{pid}/fdinfo/{}",
            fd.file_name().to_string_lossy()
        )) else {
            continue;
        };
        let field = |name: &str| {
            info.lines()
                .find_map(|l| l.strip_prefix(name)?.strip_prefix(':'))
                .map(|v| v.trim().to_string())
                .unwrap_or_default()
        };
        let hash_of_keys = field("map_type") == "1"
            && field("key_size") == "16"
            && field("value_size") == "4"
            && field("map_flags") == "0x1";
        if hash_of_keys {
            sets.push(field("max_entries").parse().unwrap());
        }
    }
    sets
}

fn make_dirs(base: &Path, n: usize) {
    std::fs::create_dir(base).unwrap();
    for i in 0..n {
        std::fs::create_dir(base.join(format!("d-{i}"))).unwrap();
    }
}

/// Creates and reads `dir/f`: the probe must report both opens, with the
/// file's exact path and inode.
fn touch_and_read(probe: &Probe, dir: &Path) {
    let file = dir.join("f");
    std::fs::write(&file, b"x").unwrap();
    assert_eq!(std::fs::read(&file).unwrap(), b"x");
    let inode = ino(&file);
    for (what, flag) in [("create", "O_CREAT"), ("read", "O_RDONLY")] {
        let v = probe.wait_for(&format!("the {what} of {}", file.display()), |v| {
            is(v, "open", &file)
                && v["open"]["flags"]
                    .as_array()
                    .is_some_and(|f| f.iter().any(|f| f == flag))
        });
        assert_eq!(v["file"]["inode"], inode, "{v}");
        assert_eq!(v["retval"].as_i64().map(|fd| fd >= 0), Some(true), "{v}");
        assert_by_me(&v);
    }
}

#[test]
fn the_watched_set_grows_with_the_tree_and_keeps_every_watch() {
    let dir = Scratch::new("watched-set");
    make_dirs(&dir.join("seeded"), SEEDED);
    let probe = watch(&dir.path, &[]);
    let sets = watched_sets(probe.pid());
    assert_eq!(sets.len(), 1, "one watched set at a time: {sets:?}");
    assert!(
        sets[0] >= 2 * SEEDED as u64 && sets[0] < LIMIT,
        "the set after seeding {SEEDED} directories: {} entries",
        sets[0]
    );
    let seeded_size = sets[0];

    make_dirs(&dir.join("created"), CREATED);
    let held = (SEEDED + CREATED) as u64;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let sets = watched_sets(probe.pid());
        if sets.len() == 1 && sets[0] >= 2 * held {
            assert!(sets[0] > seeded_size && sets[0] < LIMIT, "{sets:?}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the set did not grow past {seeded_size} with {held} entries: {sets:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }

    // Seeded before the first resize, added by the kernel before and after the second.
    for d in [
        dir.join("seeded/d-0"),
        dir.join(format!("seeded/d-{}", SEEDED - 1)),
        dir.join("created/d-0"),
        dir.join(format!("created/d-{}", CREATED - 1)),
    ] {
        touch_and_read(&probe, &d);
    }
    let finished = probe.stop();
    let summary = finished.stderr.lines().last().unwrap_or_default();
    assert!(summary.contains("watch limit hits: 0,"), "{summary}");
    let unwatched: Vec<_> = finished
        .events
        .iter()
        .filter(|v| v["event"] == "unwatched")
        .collect();
    assert!(unwatched.is_empty(), "{unwatched:?}");
}

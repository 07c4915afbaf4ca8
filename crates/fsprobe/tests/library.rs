//! The library API, in-process: typed events from a probe started with the
//! builder. Runs as root with the real BPF programs.
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant};

use fsprobe::{BackendKind, EventKind, Probe, Record};

#[test]
fn builder_delivers_typed_events_and_a_summary() {
    let dir = std::env::temp_dir().join(format!("fsprobe-lib-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();

    let probe = Probe::builder()
        .path(&dir)
        .events([EventKind::Mkdir, EventKind::Rename])
        // The test is the process doing the file operations.
        .exclude_own_process(false)
        .start()
        .expect("start the probe (root needed)");
    assert_eq!(probe.ready().backend, BackendKind::Tracepoint);
    assert_eq!(probe.ready().watched_inodes, 1);

    let made = dir.join("made");
    let moved = dir.join("moved");
    std::fs::create_dir(&made).unwrap();
    let inode = std::fs::metadata(&made).unwrap().ino();
    std::fs::rename(&made, &moved).unwrap();

    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = Vec::new();
    while seen.len() < 2 && Instant::now() < deadline {
        if let Ok(Record::Event(e)) = probe.records().recv_timeout(Duration::from_millis(200)) {
            seen.push(*e);
        }
    }
    let summary = probe.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(seen.len(), 2, "{seen:#?}");
    assert_eq!(seen[0].kind, EventKind::Mkdir);
    assert_eq!(seen[0].file.path, made);
    assert_eq!(seen[0].file.inode, inode);
    assert_eq!(seen[0].process.pid, std::process::id());
    assert!(seen[0].file.is_kernel_resolved());
    assert_eq!(seen[1].kind, EventKind::Rename);
    assert_eq!(seen[1].target_path(), Some(moved.as_path()));
    assert_eq!(seen[1].target.as_ref().unwrap().inode, inode);
    assert_eq!(summary.lost(), 0);
    assert!(summary.events >= 2);
}

#[test]
fn a_long_walk_reports_its_progress_before_start_returns() {
    const FILES: u64 = 20_000;
    let dir = std::env::temp_dir().join(format!("fsprobe-lib-walk-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..FILES {
        std::fs::File::create(dir.join(format!("f-{i}"))).unwrap();
    }
    let reports = std::sync::Arc::new(std::sync::Mutex::new(Vec::<fsprobe::WalkProgress>::new()));
    let sink = std::sync::Arc::clone(&reports);
    let probe = Probe::builder()
        .path(&dir)
        // Each of 20,000 entries costs a stat at least: many milliseconds.
        .on_walk_progress(Duration::from_millis(1), move |p| {
            sink.lock().unwrap().push(*p)
        })
        .start()
        .expect("start the probe (root needed)");
    let reports = reports.lock().unwrap().clone();
    let watched = probe.ready().watched_inodes;
    probe.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);

    assert_eq!(watched, FILES + 1, "the files and their directory");
    let (last, during) = reports
        .split_last()
        .expect("a report at the end of the walk");
    assert!(last.done, "{last:?}");
    assert_eq!(last.entries, watched);
    assert!(!during.is_empty(), "no report while walking: {reports:?}");
    assert!(
        during.iter().all(|p| !p.done && p.entries < watched),
        "{reports:?}"
    );
    for pair in reports.windows(2) {
        assert!(
            pair[0].entries < pair[1].entries && pair[0].elapsed <= pair[1].elapsed,
            "{pair:?}"
        );
    }
}

/// A directory made during the initial walk is watched with what it
/// holds, whichever side of the walk it falls on: the walk puts each
/// directory in the filter before it reads its names (src/seed.rs), so a
/// directory made in one already read is watched by the kernel, and one
/// made in a directory not yet read is read by the walk. When directories
/// waited in a batch while their names were read, the late ones made in
/// the directories read so far were watched by neither.
#[test]
fn a_directory_made_during_the_walk_is_watched_with_its_contents() {
    // The top of the tree is read breadth first by the thread that reports
    // the progress (src/seed_threads.rs): the root, then `a` and `b`, 155
    // entries each. The report after 256 entries comes while `b` is read:
    // `a` and `b` are read, their subdirectories not yet.
    const FILES: usize = 150;
    let dir = std::env::temp_dir().join(format!("fsprobe-lib-race-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let mut dirs = Vec::new();
    for top in ["a", "b"] {
        dirs.push(top.to_owned());
        for sub in 0..4 {
            dirs.push(format!("{top}/s{sub}"));
        }
    }
    for d in &dirs {
        std::fs::create_dir_all(dir.join(d)).unwrap();
        for f in 0..if d.contains('/') { 2 } else { FILES } {
            std::fs::File::create(dir.join(format!("{d}/f{f}"))).unwrap();
        }
    }
    let dir = std::fs::canonicalize(&dir).unwrap();
    let late: Vec<std::path::PathBuf> = dirs.iter().map(|d| dir.join(d).join("late")).collect();
    let made = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let made_at = std::sync::Arc::clone(&made);
    let to_make = late.clone();
    let probe = Probe::builder()
        .path(&dir)
        .events([EventKind::Open])
        .exclude_own_process(false)
        // Called by the walking thread itself, every 256 entries.
        .on_walk_progress(Duration::ZERO, move |p| {
            if p.done || made_at.load(std::sync::atomic::Ordering::SeqCst) != 0 {
                return;
            }
            made_at.store(p.entries, std::sync::atomic::Ordering::SeqCst);
            for late in &to_make {
                std::fs::create_dir(late).unwrap();
                std::fs::File::create(late.join("f")).unwrap();
            }
        })
        .start()
        .expect("start the probe (root needed)");
    let made_at = made.load(std::sync::atomic::Ordering::SeqCst);
    assert!(
        (156..311).contains(&made_at),
        "the report came after {made_at} entries, not while b was read"
    );
    for late in &late {
        std::fs::File::open(late.join("f")).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < late.len() && Instant::now() < deadline {
        if let Ok(Record::Event(e)) = probe.records().recv_timeout(Duration::from_millis(200))
            && e.kind == EventKind::Open
            && e.process.pid == std::process::id()
            && e.file.path.file_name() == Some(std::ffi::OsStr::new("f"))
        {
            seen.insert(e.file.path.parent().unwrap().to_owned());
        }
    }
    probe.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let missed: Vec<_> = late.iter().filter(|p| !seen.contains(*p)).collect();
    assert!(missed.is_empty(), "opens in these not reported: {missed:?}");
}

/// A tree wide enough to be shared out over the walk's threads
/// (src/seed_threads.rs: 64 subtrees, more than 8 per thread) is walked
/// whole and once: every entry counted once, every directory in the
/// filter, whichever thread walked it. The root also holds 190 files, so
/// that the reporting thread's first report (after 256 entries) comes at
/// its first subtree: it stops there for a while, and a helper walks
/// nearly all the others, whose counts must be merged.
#[test]
fn a_wide_tree_is_walked_whole_and_once_over_the_threads() {
    const SUBTREES: usize = 64;
    const FILES: usize = 3;
    const ROOT_FILES: u64 = 190;
    let dir = std::env::temp_dir().join(format!("fsprobe-lib-wide-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();
    for f in 0..ROOT_FILES {
        std::fs::File::create(dir.join(format!("r{f}"))).unwrap();
    }
    let mut deepest = Vec::new();
    for t in 0..SUBTREES {
        let leaf = dir.join(format!("t{t}/mid/leaf"));
        std::fs::create_dir_all(&leaf).unwrap();
        for f in 0..FILES {
            std::fs::File::create(leaf.join(format!("f{f}"))).unwrap();
        }
        deepest.push(leaf.join("f0"));
    }
    let paused = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let pause_once = std::sync::Arc::clone(&paused);
    let probe = Probe::builder()
        .path(&dir)
        .events([EventKind::Open])
        .exclude_own_process(false)
        .on_walk_progress(Duration::ZERO, move |p| {
            if !p.done && !pause_once.swap(true, std::sync::atomic::Ordering::SeqCst) {
                std::thread::sleep(Duration::from_millis(300));
            }
        })
        .start()
        .expect("start the probe (root needed)");
    let (watched, entries) = (probe.ready().watched_inodes, probe.ready().filter_entries);
    for path in &deepest {
        std::fs::File::open(path).unwrap();
    }
    let deadline = Instant::now() + Duration::from_secs(15);
    let mut seen = std::collections::BTreeSet::new();
    while seen.len() < deepest.len() && Instant::now() < deadline {
        if let Ok(Record::Event(e)) = probe.records().recv_timeout(Duration::from_millis(200))
            && e.kind == EventKind::Open
            && e.process.pid == std::process::id()
            && deepest.contains(&e.file.path)
        {
            seen.insert(e.file.path.clone());
        }
    }
    probe.join().unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    // The root and its files, three directories and three files per subtree.
    assert_eq!(
        watched,
        1 + ROOT_FILES + SUBTREES as u64 * (3 + FILES as u64)
    );
    // The root's entry, each directory's, and the root's name's directory.
    assert_eq!(entries, 1 + SUBTREES as u64 * 3 + 1);
    let missed: Vec<_> = deepest.iter().filter(|p| !seen.contains(*p)).collect();
    assert!(missed.is_empty(), "opens not reported: {missed:?}");
}

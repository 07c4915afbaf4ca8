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

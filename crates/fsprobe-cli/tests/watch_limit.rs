//! New directories that the full in-kernel filter cannot take are reported
//! in the stream when it happens, not only in the exit summary, and the two
//! counts agree. (A new regular file needs no entry of its own: its watched
//! directory covers it. A directory does, for what it will hold.)
mod common;

use std::time::{Duration, Instant};

use common::*;

/// The filter holds the scratch directory, its parent (the directory the
/// watched path is a name in: FSP_WATCH_NAMES) and two more.
const MAX_WATCHES: u64 = 4;
/// Entries taken at start.
const AT_START: u64 = 2;
const MKDIRS: u64 = 10;

#[test]
fn directories_past_the_watch_limit_are_reported_in_the_stream_as_they_come() {
    let dir = Scratch::new("watch-limit");
    let probe = watch(&dir.path, &["--max-watches", &MAX_WATCHES.to_string()]);
    for i in 0..MKDIRS {
        std::fs::create_dir(dir.join(format!("new-{i}"))).unwrap();
    }
    // Two entries were taken at start; two new directories fit.
    let unwatched = MKDIRS - (MAX_WATCHES - AT_START);
    let reported = |events: &[serde_json::Value]| -> u64 {
        events
            .iter()
            .filter(|v| v["event"] == "unwatched")
            .map(|v| v["count"].as_u64().unwrap())
            .sum()
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while reported(&probe.events()) < unwatched {
        assert!(
            Instant::now() < deadline,
            "no unwatched record while running: {}",
            dump(&probe.events())
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let finished = probe.stop();
    let records: Vec<_> = finished
        .events
        .iter()
        .filter(|v| v["event"] == "unwatched")
        .collect();
    for r in &records {
        let fields: Vec<&String> = r.as_object().unwrap().keys().collect();
        assert_eq!(fields, ["count", "event", "reason"], "{r}");
        assert_eq!(r["reason"], "watch_limit", "{r}");
    }
    assert_eq!(
        reported(&finished.events),
        unwatched,
        "{}",
        dump(&finished.events)
    );
    // Every mkdir is still an event: the scratch directory is watched.
    let mkdirs = finished
        .events
        .iter()
        .filter(|v| v["event"] == "mkdir" && v["process"]["tid"] == tid())
        .count() as u64;
    assert_eq!(mkdirs, MKDIRS);
    let summary = finished.stderr.lines().last().unwrap_or_default();
    assert!(
        summary.contains(&format!("watch limit hits: {unwatched},")),
        "{summary}"
    );
}

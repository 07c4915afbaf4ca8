//! SIGHUP reopens the `-o` file, as logrotate needs: after the file is
//! renamed and fsprobe gets SIGHUP, new events go to a new file at the old
//! name, and every event is in one of the two files.
mod common;

use std::fs;
use std::path::Path;
use std::time::{Duration, Instant};

use common::*;

/// The events of the complete lines of `path`: fsprobe may be writing the
/// last one while the test reads (its writer flushes in blocks).
fn events_in(path: &Path) -> Vec<serde_json::Value> {
    let text = fs::read_to_string(path).unwrap_or_default();
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("NDJSON ({e}): {l}")))
        .collect()
}

fn wait_until(what: &str, cond: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(15);
    while !cond() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn opened(events: &[serde_json::Value], dir: &Path, prefix: &str) -> Vec<String> {
    let mut paths: Vec<String> = events
        .iter()
        .filter(|v| v["event"] == "open" && v["process"]["pid"] == pid())
        .map(|v| path_of(v, "file"))
        .filter(|p| {
            Path::new(p).parent() == Some(dir)
                && Path::new(p)
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
        })
        .collect();
    paths.sort();
    paths
}

#[test]
fn sighup_reopens_the_output_file_and_loses_nothing() {
    let dir = Scratch::new("reopen");
    let logs = Scratch::new("reopen-logs");
    let out = logs.join("events.ndjson");
    let rotated = logs.join("events.ndjson.1");
    let probe = watch(&dir.path, &["-e", "open", "-o", out.to_str().unwrap()]);
    let names = |prefix: &str| -> Vec<String> {
        let mut v: Vec<String> = (0..50)
            .map(|i| dir.join(format!("{prefix}{i:02}")).display().to_string())
            .collect();
        v.sort();
        v
    };
    for i in 0..50 {
        fs::File::create(dir.join(format!("a{i:02}"))).unwrap();
    }
    wait_until("the first events in the file", || {
        opened(&events_in(&out), &dir.path, "a").len() == 50
    });
    fs::rename(&out, &rotated).unwrap();
    probe.signal(libc::SIGHUP);
    wait_until("the reopen log line", || {
        probe.stderr().contains("SIGHUP: reopened")
    });
    assert!(out.exists(), "no new file at the old name");
    for i in 0..50 {
        fs::File::create(dir.join(format!("b{i:02}"))).unwrap();
    }
    wait_until("the later events in the new file", || {
        opened(&events_in(&out), &dir.path, "b").len() == 50
    });
    let finished = probe.stop();
    assert!(finished.status.success(), "{}", finished.stderr);
    let (old, new) = (events_in(&rotated), events_in(&out));
    assert_eq!(opened(&old, &dir.path, "a"), names("a"));
    assert_eq!(opened(&old, &dir.path, "b"), Vec::<String>::new());
    assert_eq!(opened(&new, &dir.path, "a"), Vec::<String>::new());
    assert_eq!(opened(&new, &dir.path, "b"), names("b"));
    assert!(
        finished
            .stderr
            .contains(&format!("fsprobe: SIGHUP: reopened {}", out.display())),
        "{}",
        finished.stderr
    );
}

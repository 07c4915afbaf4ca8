//! The tokio feature, in-process, as root with the real BPF programs: the
//! start does not block the runtime, the stream yields the events of the
//! test's own operations, counts what it hands out, and ends after stop.
use std::os::unix::fs::MetadataExt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use fsprobe::{EventKind, Probe, Record};

#[tokio::test(flavor = "current_thread")]
async fn the_stream_yields_the_operations_events_and_ends_after_stop() {
    let dir = std::env::temp_dir().join(format!("fsprobe-stream-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let dir = std::fs::canonicalize(&dir).unwrap();

    // One thread runs the runtime: if the start blocked it, this task
    // would not tick until the start returned.
    let ticks = Arc::new(AtomicU64::new(0));
    let ticker = {
        let ticks = Arc::clone(&ticks);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_millis(1)).await;
                ticks.fetch_add(1, Ordering::SeqCst);
            }
        })
    };
    tokio::task::yield_now().await;
    let before = ticks.load(Ordering::SeqCst);
    let probe = Probe::builder()
        .path(&dir)
        .events([EventKind::Mkdir, EventKind::Unlink])
        .exclude_own_process(false)
        .start_async()
        .await
        .expect("start the probe (root needed)");
    let during = ticks.load(Ordering::SeqCst) - before;
    ticker.abort();
    assert!(
        during > 0,
        "the runtime did not run while the probe started"
    );

    let mut stream = probe.into_stream();
    assert_eq!(stream.ready().watched_inodes, 1);
    let made = dir.join("made");
    let file = dir.join("file");
    std::fs::create_dir(&made).unwrap();
    let made_ino = std::fs::metadata(&made).unwrap().ino();
    std::fs::write(&file, b"x").unwrap();
    let file_ino = std::fs::metadata(&file).unwrap().ino();
    std::fs::remove_file(&file).unwrap();

    let mut seen = Vec::new();
    while seen.len() < 2 {
        let next = tokio::time::timeout(Duration::from_secs(15), stream.next()).await;
        match next
            .expect("an event within 15 s")
            .expect("the stream goes on")
        {
            Record::Event(e) if e.process.pid == std::process::id() => seen.push(*e),
            // Its memory holds a later event.
            other => stream.recycle(other),
        }
    }
    assert_eq!(seen[0].kind, EventKind::Mkdir);
    assert_eq!(seen[0].file.path, made);
    assert_eq!(seen[0].file.inode, made_ino);
    assert_eq!(seen[1].kind, EventKind::Unlink);
    assert_eq!(seen[1].file.path, file);
    assert_eq!(seen[1].file.inode, file_ino);
    let stats = stream.stats();
    assert_eq!(stats.events_total(), 2, "{stats:?}");
    assert_eq!(stats.consumer_lag, 0, "everything handed out was taken");

    stream.stop();
    let end = tokio::time::timeout(Duration::from_secs(15), stream.next()).await;
    assert!(
        matches!(end, Ok(None)),
        "the stream ends after stop: {end:?}"
    );
    let summary = stream.join().await.unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(summary.events, 2);
    assert_eq!(summary.lost(), 0);
}

//! Watches a directory from a tokio program until Ctrl-C: the probe starts
//! on the blocking pool (the runtime goes on meanwhile) and its records
//! come as a `Stream`.
//!
//! ```sh
//! sudo cargo run -p fsprobe --features tokio --example async_watch -- /etc
//! ```
use std::sync::atomic::Ordering;

use fsprobe::{Probe, Record};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let probe = Probe::builder().path(&dir).start_async().await?;
    eprintln!(
        "watching {dir} ({} inodes) with the {} backend",
        probe.ready().watched_inodes,
        probe.ready().backend
    );
    let mut records = probe.into_stream();
    // Ctrl-C stops the probe; the stream ends once it has drained.
    let stop = records.stop_flag();
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            stop.store(true, Ordering::SeqCst);
        }
    });
    while let Some(record) = records.next().await {
        match &record {
            Record::Event(e) => println!(
                "{:<8} {:>6} {:<15} {}",
                e.kind,
                e.process.pid,
                e.process.comm,
                e.file.path.display()
            ),
            Record::Lost { count, reason, .. } => eprintln!("lost {count} events ({reason:?})"),
            // Records of later versions.
            _ => {}
        }
        // Its memory holds a later event: no allocation per event.
        records.recycle(record);
    }
    let summary = records.join().await?;
    eprintln!("{} events, {} lost", summary.events, summary.lost());
    Ok(())
}

//! Watches a directory and prints who touches what, until Ctrl-C.
//!
//! ```sh
//! sudo cargo run -p fsprobe --example watch -- /etc
//! ```
use fsprobe::{EventKind, Probe, Record};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::env::args().nth(1).unwrap_or_else(|| "/tmp".into());
    let probe = Probe::builder().path(&dir).events(EventKind::ALL).start()?;
    // Ctrl-C stops the probe; the loop below ends once it has drained.
    signal_hook::flag::register(signal_hook::consts::SIGINT, probe.stop_flag())?;
    eprintln!(
        "watching {dir} ({} inodes) with the {} backend",
        probe.ready().watched_inodes,
        probe.ready().backend
    );
    let records = probe.records();
    for record in records {
        match &record {
            Record::Event(e) => {
                let target = e
                    .target_path()
                    .map(|t| format!(" -> {}", t.display()))
                    .unwrap_or_default();
                println!(
                    "{:<8} {:>6} {:<15} {}{target} (inode {}, ret {})",
                    e.kind,
                    e.process.pid,
                    e.process.comm,
                    e.file.path.display(),
                    e.file.inode,
                    e.retval
                );
            }
            Record::Lost { count, reason, .. } => {
                eprintln!("lost {count} events ({})", reason.description())
            }
            Record::Unwatched { count, reason, .. } => {
                eprintln!(
                    "{count} files could not be watched ({})",
                    reason.description()
                )
            }
            other => eprintln!("{other:?}"),
        }
        // Its memory holds a later event: no allocation per event.
        records.recycle(record);
    }
    let summary = probe.join()?;
    eprintln!("{} events, {} lost", summary.events, summary.lost());
    Ok(())
}

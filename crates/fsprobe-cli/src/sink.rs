//! Where records go: aligned table, NDJSON, or nowhere.
use std::io;
use std::os::unix::ffi::OsStrExt;

use fsprobe::{Event, FileRef, Record};

use crate::escape::{self, Field, escape};
use crate::output::file::Reopen;

/// One output format.
pub trait Sink {
    /// Writes a record; `json` is its NDJSON object when the outputs need
    /// it (serialized once for all of them), else empty.
    fn write(&mut self, record: &Record, json: &[u8]) -> io::Result<()>;
    fn flush(&mut self) -> io::Result<()>;
    /// Opens the output file again (SIGHUP).
    fn reopen(&mut self) -> io::Result<()>;
}

/// One JSON object per line.
pub struct JsonSink<W: Reopen>(pub W);

impl<W: Reopen> Sink for JsonSink<W> {
    fn write(&mut self, _record: &Record, json: &[u8]) -> io::Result<()> {
        self.0.write_all(json)?;
        self.0.write_all(b"\n")
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.0.reopen()
    }
}

/// Discards records (the probe still counts them).
pub struct NoSink;

impl Sink for NoSink {
    fn write(&mut self, _record: &Record, _json: &[u8]) -> io::Result<()> {
        Ok(())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }

    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Aligned columns, like the seed's output: one line per record, every
/// name escaped (src/escape.rs), so that no file name or comm can move the
/// cursor or add a row.
pub struct TableSink<W: Reopen> {
    out: W,
    header_written: bool,
}

impl<W: Reopen> TableSink<W> {
    pub fn new(out: W) -> Self {
        TableSink {
            out,
            header_written: false,
        }
    }
}

const HEADER: &str = "EVT      TIME                           PID     TID     UID    GID    COMM             INODE      MOUNTID RET    PATH";

fn display_path(f: &FileRef) -> String {
    let s = escape(f.path_bytes(), Field::Path);
    if f.truncated { format!("...{s}") } else { s }
}

fn event_line(e: &Event) -> String {
    let mut path = display_path(&e.file);
    if let Some(t) = &e.target {
        path.push_str(" -> ");
        path.push_str(&display_path(t));
    }
    format!(
        "{:<8} {:<30} {:<7} {:<7} {:<6} {:<6} {:<16} {:<10} {:<7} {:<6} {}",
        e.kind.name(),
        e.time_rfc3339(),
        e.process.pid,
        e.process.tid,
        e.process.uid,
        e.process.gid,
        escape(e.process.comm.as_bytes(), Field::Word),
        e.file.inode,
        e.file.mount_id,
        e.retval,
        path
    )
}

impl<W: Reopen> Sink for TableSink<W> {
    fn write(&mut self, record: &Record, _json: &[u8]) -> io::Result<()> {
        if !self.header_written {
            writeln!(self.out, "{HEADER}")?;
            self.header_written = true;
        }
        match record {
            Record::Event(e) => writeln!(self.out, "{}", event_line(e)),
            Record::Lost { count, reason, cpu } => {
                let at = cpu.map(|c| format!(" on CPU {c}")).unwrap_or_default();
                writeln!(
                    self.out,
                    "{:<8} {count} events lost{at} ({}: {})",
                    "LOST",
                    reason.name(),
                    reason.description()
                )
            }
            Record::Unwatched {
                count,
                reason,
                path,
            } => {
                let under = path
                    .as_ref()
                    .map(|p| format!(" under {}", escape(p.as_os_str().as_bytes(), Field::Path)))
                    .unwrap_or_default();
                writeln!(
                    self.out,
                    "{:<8} {count} files not watched{under} ({}: {})",
                    "UNWATCHED",
                    reason.name(),
                    reason.description()
                )
            }
            // A notice this table does not know yet: shown as the library prints it.
            other => writeln!(
                self.out,
                "{:<8} {}",
                "NOTICE",
                escape::line(&format!("{other:?}"))
            ),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        self.out.flush()
    }

    fn reopen(&mut self) -> io::Result<()> {
        self.out.reopen()?;
        // A new file gets its own header.
        self.header_written = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fsprobe::{LossReason, UnwatchedReason};

    fn table(records: &[Record]) -> String {
        let mut sink = TableSink::new(Vec::new());
        for r in records {
            sink.write(r, &[]).unwrap();
        }
        String::from_utf8(sink.out).unwrap()
    }

    #[test]
    fn notices_name_their_reason_as_json_does() {
        let text = table(&[
            Record::Lost {
                count: 12,
                reason: LossReason::BufferFull,
                cpu: Some(1),
            },
            Record::Lost {
                count: 3,
                reason: LossReason::TooManyInFlight,
                cpu: None,
            },
            Record::Unwatched {
                count: 7,
                reason: UnwatchedReason::WatchLimit,
                path: None,
            },
            Record::Unwatched {
                count: 2,
                reason: UnwatchedReason::Unreadable,
                path: Some("/w/moved\nin".into()),
            },
        ]);
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "LOST     12 events lost on CPU 1 (buffer_full: the kernel buffer was full)",
                "LOST     3 events lost (too_many_in_flight: too many syscalls were in flight)",
                "UNWATCHED 7 files not watched (watch_limit: the watch limit was reached)",
                "UNWATCHED 2 files not watched under /w/moved\\x0ain (unreadable: their directory could not be read)",
            ]
        );
    }
}

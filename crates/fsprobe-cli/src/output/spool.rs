//! The NATS output's spool: records that overflow the memory buffer while
//! the server is unreachable wait in a file, oldest first, up to a size.
//!
//! One line per record: `e` (event) or `l` (loss record), a tab, the
//! record's message id, a tab, its NDJSON object. NDJSON never holds a raw
//! tab or newline (serde_json escapes control characters). What a run
//! could not publish before it stopped stays in the file, and the next run
//! publishes it first, with the same message ids: JetStream drops those it
//! already stored within its duplicate window. After a crash the whole file
//! is sent again, with the same effect.
use std::fs::{File, OpenOptions};
use std::io::{self, BufRead, BufReader, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use bytes::Bytes;

use super::queue::Item;

pub struct Spool {
    path: PathBuf,
    file: File,
    /// Where the oldest unsent record starts.
    read_pos: u64,
    /// The end of the file.
    write_pos: u64,
    /// Records between the two.
    records: u64,
    limit: u64,
}

impl Spool {
    /// Opens (or creates) the spool; what a previous run left is kept.
    pub fn open(path: &Path, limit: u64) -> io::Result<Spool> {
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let mut records = 0;
        for line in BufReader::new(&file).split(b'\n') {
            line?;
            records += 1;
        }
        let write_pos = file.metadata()?.len();
        Ok(Spool {
            path: path.to_owned(),
            file,
            read_pos: 0,
            write_pos,
            records,
            limit,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    pub fn pending_records(&self) -> u64 {
        self.records
    }

    pub fn pending_bytes(&self) -> u64 {
        self.write_pos - self.read_pos
    }

    fn line(item: &Item) -> Vec<u8> {
        let mut line = Vec::with_capacity(item.id.len() + item.bytes.len() + 4);
        line.extend_from_slice(if item.is_event { b"e\t" } else { b"l\t" });
        line.extend_from_slice(item.id.as_bytes());
        line.push(b'\t');
        line.extend_from_slice(&item.bytes);
        line.push(b'\n');
        line
    }

    /// Appends a record; false when it would pass the size limit.
    pub fn append(&mut self, item: &Item) -> io::Result<bool> {
        let line = Self::line(item);
        if self.pending_bytes() + line.len() as u64 > self.limit {
            return Ok(false);
        }
        self.file.seek(SeekFrom::Start(self.write_pos))?;
        self.file.write_all(&line)?;
        self.write_pos += line.len() as u64;
        self.records += 1;
        Ok(true)
    }

    /// Takes up to `max` of the oldest records out of the spool. Once all
    /// are out, the file is emptied.
    pub fn take(&mut self, max: usize) -> io::Result<Vec<Item>> {
        let mut items = Vec::new();
        if self.is_empty() {
            return Ok(items);
        }
        self.file.seek(SeekFrom::Start(self.read_pos))?;
        let mut reader = BufReader::new(&self.file);
        let mut line = Vec::new();
        while items.len() < max && self.records > 0 {
            line.clear();
            let n = reader.read_until(b'\n', &mut line)?;
            if n == 0 {
                return Err(io::Error::new(
                    io::ErrorKind::UnexpectedEof,
                    "the spool is shorter than counted",
                ));
            }
            self.read_pos += n as u64;
            self.records -= 1;
            items.push(parse(&line)?);
        }
        if self.records == 0 {
            self.clear();
        }
        Ok(items)
    }

    /// Forgets everything (after the last record was taken, or on a read error).
    pub fn clear(&mut self) {
        let _ = self.file.set_len(0);
        self.read_pos = 0;
        self.write_pos = 0;
        self.records = 0;
    }

    /// At exit: rewrites the file as `front` (records taken but not sent)
    /// followed by what is still spooled, for the next run.
    pub fn keep_in_front(&mut self, front: &[Item]) -> io::Result<()> {
        let rest = self.take(usize::MAX)?;
        let tmp = self.path.with_extension("tmp");
        let mut out = io::BufWriter::new(File::create(&tmp)?);
        for item in front.iter().chain(&rest) {
            out.write_all(&Self::line(item))?;
        }
        out.into_inner().map_err(|e| e.into_error())?.sync_all()?;
        std::fs::rename(&tmp, &self.path)?;
        *self = Spool::open(&self.path.clone(), self.limit)?;
        Ok(())
    }
}

fn parse(line: &[u8]) -> io::Result<Item> {
    let bad = || io::Error::new(io::ErrorKind::InvalidData, "a spool line is malformed");
    let line = line.strip_suffix(b"\n").ok_or_else(bad)?;
    let mut fields = line.splitn(3, |b| *b == b'\t');
    let (kind, id, json) = match (fields.next(), fields.next(), fields.next()) {
        (Some(k), Some(i), Some(j)) => (k, i, j),
        _ => return Err(bad()),
    };
    Ok(Item {
        id: String::from_utf8(id.to_vec()).map_err(|_| bad())?,
        bytes: Bytes::copy_from_slice(json),
        is_event: kind == b"e",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(n: u64, is_event: bool) -> Item {
        Item {
            id: format!("host/run/{n}"),
            bytes: Bytes::from(format!("{{\"n\":{n}}}")),
            is_event,
        }
    }

    #[test]
    fn records_come_back_in_order_and_survive_a_restart() {
        let dir = std::env::temp_dir().join(format!("fsprobe-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spool");
        let _ = std::fs::remove_file(&path);
        let mut spool = Spool::open(&path, 1 << 20).unwrap();
        for n in 0..5 {
            assert!(spool.append(&item(n, n != 2)).unwrap());
        }
        assert_eq!(spool.take(2).unwrap(), [item(0, true), item(1, true)]);
        // Stopped with #1 unsent: it goes back in front of #2..#4.
        spool.keep_in_front(&[item(1, true)]).unwrap();
        drop(spool);
        let mut again = Spool::open(&path, 1 << 20).unwrap();
        assert_eq!(again.pending_records(), 4);
        let all = again.take(10).unwrap();
        assert_eq!(
            all,
            [item(1, true), item(2, false), item(3, true), item(4, true)]
        );
        assert!(again.is_empty());
        assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn the_size_limit_is_kept() {
        let dir = std::env::temp_dir().join(format!("fsprobe-spool-limit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("spool");
        let mut spool = Spool::open(&path, 40).unwrap();
        assert!(spool.append(&item(1, true)).unwrap());
        assert!(!spool.append(&item(2, true)).unwrap());
        assert_eq!(spool.pending_records(), 1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

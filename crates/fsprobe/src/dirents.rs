//! The names in a directory, read from its descriptor with getdents64(2)
//! into a buffer the walk reuses: two syscalls for most directories, where
//! fdopendir()/readdir()/closedir() on a duplicate took six (dup, fstat,
//! fcntl, getdents64 twice, close), each paying the syscall hooks of the
//! probe that is being seeded.
use std::ffi::CString;
use std::os::fd::{AsRawFd, BorrowedFd};

/// Bytes asked of each getdents64: a directory of a few hundred entries
/// is read in one call.
const BUFFER_BYTES: usize = 32 * 1024;

/// struct linux_dirent64 (include/linux/dirent.h): d_ino, d_off, d_reclen,
/// d_type, then the NUL-terminated name.
const RECLEN_AT: usize = 16;
const TYPE_AT: usize = 18;
const NAME_AT: usize = 19;

/// Reads directories; holds the buffer between them.
pub(crate) struct DirReader {
    buf: Vec<u8>,
}

impl DirReader {
    pub(crate) fn new() -> Self {
        DirReader {
            buf: vec![0; BUFFER_BYTES],
        }
    }

    /// The names in `dir` (without "." and ".."), each with whether it may
    /// be a directory (d_type DT_DIR or DT_UNKNOWN). Reads from the
    /// descriptor's offset: give it a directory opened for this.
    pub(crate) fn read(&mut self, dir: BorrowedFd<'_>) -> std::io::Result<Vec<(CString, bool)>> {
        let mut names = Vec::new();
        loop {
            // SAFETY: buf is writable for its length; the kernel writes at
            // most that many bytes of whole records.
            let n = unsafe {
                libc::syscall(
                    libc::SYS_getdents64,
                    dir.as_raw_fd(),
                    self.buf.as_mut_ptr(),
                    self.buf.len(),
                )
            };
            if n < 0 {
                return Err(std::io::Error::last_os_error());
            }
            if n == 0 {
                return Ok(names);
            }
            parse_records(&self.buf[..n as usize], &mut names)?;
        }
    }
}

/// Appends the names of the records in `bytes` to `names`.
fn parse_records(mut bytes: &[u8], names: &mut Vec<(CString, bool)>) -> std::io::Result<()> {
    let malformed = || std::io::Error::new(std::io::ErrorKind::InvalidData, "malformed dirent");
    while !bytes.is_empty() {
        let reclen = bytes
            .get(RECLEN_AT..RECLEN_AT + 2)
            .map(|b| u16::from_ne_bytes([b[0], b[1]]) as usize)
            .ok_or_else(malformed)?;
        if reclen <= NAME_AT || reclen > bytes.len() {
            return Err(malformed());
        }
        let record = &bytes[..reclen];
        let d_type = record[TYPE_AT];
        let name = &record[NAME_AT..];
        let len = name.iter().position(|&b| b == 0).ok_or_else(malformed)?;
        let name = &name[..len];
        if name != b"." && name != b".." {
            names.push((
                CString::new(name).map_err(|_| malformed())?,
                d_type == libc::DT_DIR || d_type == libc::DT_UNKNOWN,
            ));
        }
        bytes = &bytes[reclen..];
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::fd::AsFd;

    /// A record as the kernel lays it out, padded to 8 bytes.
    fn record(name: &[u8], d_type: u8) -> Vec<u8> {
        let reclen = (NAME_AT + name.len() + 1).next_multiple_of(8);
        let mut r = vec![0u8; reclen];
        r[RECLEN_AT..RECLEN_AT + 2].copy_from_slice(&(reclen as u16).to_ne_bytes());
        r[TYPE_AT] = d_type;
        r[NAME_AT..NAME_AT + name.len()].copy_from_slice(name);
        r
    }

    #[test]
    fn parses_records_and_skips_the_dot_entries() {
        let mut bytes = record(b".", libc::DT_DIR);
        bytes.extend(record(b"..", libc::DT_DIR));
        bytes.extend(record(b"sub", libc::DT_DIR));
        bytes.extend(record(b"file.txt", libc::DT_REG));
        bytes.extend(record(b"odd", libc::DT_UNKNOWN));
        let mut names = Vec::new();
        parse_records(&bytes, &mut names).unwrap();
        let got: Vec<(&[u8], bool)> = names.iter().map(|(n, d)| (n.as_bytes(), *d)).collect();
        assert_eq!(
            got,
            [
                (&b"sub"[..], true),
                (&b"file.txt"[..], false),
                (&b"odd"[..], true)
            ]
        );
    }

    #[test]
    fn refuses_a_record_longer_than_the_buffer() {
        let mut bytes = record(b"name", libc::DT_REG);
        bytes.truncate(bytes.len() - 8);
        assert!(parse_records(&bytes, &mut Vec::new()).is_err());
    }

    #[test]
    fn reads_a_directory_larger_than_the_buffer() {
        let base = std::env::temp_dir().join(format!("fsprobe-dirents-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&base);
        std::fs::create_dir_all(base.join("d")).unwrap();
        // 2,000 names of 40 bytes: about 120 KiB of records, four reads.
        for i in 0..2000 {
            std::fs::write(base.join(format!("{i:040}")), b"").unwrap();
        }
        let dir = std::fs::File::open(&base).unwrap();
        let mut names = DirReader::new().read(dir.as_fd()).unwrap();
        names.sort();
        assert_eq!(names.len(), 2001);
        assert_eq!(names[0].0.as_bytes(), format!("{:040}", 0).as_bytes());
        assert!(!names[0].1);
        assert_eq!(names[2000], (CString::new("d").unwrap(), true));
        std::fs::remove_dir_all(&base).unwrap();
    }
}

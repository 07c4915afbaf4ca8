//! The main sink's destination: stdout, or the `-o` file, which SIGHUP
//! reopens (for logrotate: rename the file, send SIGHUP, and fsprobe goes on
//! in a new file at the old name; nothing buffered is lost, since the
//! buffer is flushed into the old file first).
use std::fs::{File, OpenOptions};
use std::io::{self, BufWriter, Stdout, Write};
use std::path::{Path, PathBuf};

/// Where the main sink writes.
pub enum Target {
    Stdout(Stdout),
    File { path: PathBuf, file: File },
}

impl Target {
    /// The `-o` file, created or truncated.
    pub fn create(path: &Path) -> io::Result<Target> {
        Ok(Target::File {
            path: path.to_owned(),
            file: File::create(path)?,
        })
    }

    /// Opens the file at its path again (appending: after a rename it is
    /// new; if nobody moved it, nothing is erased). Stdout stays as it is.
    fn reopen(&mut self) -> io::Result<()> {
        if let Target::File { path, file } = self {
            *file = OpenOptions::new().create(true).append(true).open(&*path)?;
        }
        Ok(())
    }
}

impl Write for Target {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Target::Stdout(out) => out.write(buf),
            Target::File { file, .. } => file.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Target::Stdout(out) => out.flush(),
            Target::File { file, .. } => file.flush(),
        }
    }
}

/// A writer whose destination can be opened again.
pub trait Reopen: Write {
    fn reopen(&mut self) -> io::Result<()>;
}

impl Reopen for BufWriter<Target> {
    fn reopen(&mut self) -> io::Result<()> {
        self.flush()?;
        self.get_mut().reopen()
    }
}

/// In memory (the sinks' unit tests): nothing to reopen.
impl Reopen for Vec<u8> {
    fn reopen(&mut self) -> io::Result<()> {
        Ok(())
    }
}

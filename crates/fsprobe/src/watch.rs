//! Seeds the in-kernel filter with the identities of the watched trees.
//!
//! Runs after the probes are attached, so a file created during the walk
//! is caught either by the walk or by the probes (which add new children
//! of watched directories themselves). A directory is inserted before its
//! entries are read, which closes the gap in between.
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use libbpf_rs::{MapCore, MapFlags};

use crate::error::{Error, Result};

/// enum fsp_watch in bpf/abi/events.h.
const WATCH_SELF: u32 = 1;
const WATCH_CHILDREN: u32 = 2;

/// glibc's st_dev → the kernel's s_dev encoding (major << 20 | minor).
pub(crate) fn kernel_dev(st_dev: u64) -> u32 {
    (libc::major(st_dev) << 20) | libc::minor(st_dev)
}

/// struct fsp_inode_key as bytes.
pub(crate) fn inode_key(dev: u32, ino: u64) -> [u8; 16] {
    let mut key = [0u8; 16];
    key[..4].copy_from_slice(&dev.to_ne_bytes());
    key[8..].copy_from_slice(&ino.to_ne_bytes());
    key
}

pub(crate) struct Seeder<'a, M: MapCore> {
    map: &'a M,
    limit: u32,
    recursive: bool,
    pub(crate) inserted: u64,
    /// Entries that could not be read during the walk, and the first error.
    pub(crate) skipped: u64,
    pub(crate) first_skip: Option<String>,
}

impl<'a, M: MapCore> Seeder<'a, M> {
    pub(crate) fn new(map: &'a M, limit: u32, recursive: bool) -> Self {
        Seeder {
            map,
            limit,
            recursive,
            inserted: 0,
            skipped: 0,
            first_skip: None,
        }
    }

    fn insert(&mut self, meta: &std::fs::Metadata, flags: u32) -> Result<()> {
        let key = inode_key(kernel_dev(meta.dev()), meta.ino());
        match self.map.update(&key, &flags.to_ne_bytes(), MapFlags::ANY) {
            Ok(()) => {
                self.inserted += 1;
                Ok(())
            }
            Err(e) if e.kind() == libbpf_rs::ErrorKind::TooBig => {
                Err(Error::TooManyWatches(self.limit))
            }
            Err(source) => Err(Error::Bpf {
                what: "adding a watched inode".into(),
                source,
            }),
        }
    }

    /// Watches `root`: a file, or a directory and (recursively) its tree.
    pub(crate) fn seed(&mut self, root: &Path) -> Result<()> {
        let meta = std::fs::symlink_metadata(root).map_err(|source| Error::Watch {
            path: root.to_owned(),
            source,
        })?;
        if !meta.is_dir() {
            return self.insert(&meta, WATCH_SELF);
        }
        let max_depth = if self.recursive { usize::MAX } else { 1 };
        // Symbolic links are not traversed; other mounts are crossed.
        for entry in walkdir::WalkDir::new(root).max_depth(max_depth) {
            // Entries that cannot be read (permissions, paths beyond
            // PATH_MAX) are counted and reported, not silently dropped.
            let meta = entry.and_then(|e| e.metadata().map(|m| (e, m)));
            let (entry, meta) = match meta {
                Ok(found) => found,
                Err(e) => {
                    self.skipped += 1;
                    self.first_skip.get_or_insert_with(|| e.to_string());
                    continue;
                }
            };
            let watches_children = meta.is_dir() && (self.recursive || entry.depth() == 0);
            let flags = WATCH_SELF | if watches_children { WATCH_CHILDREN } else { 0 };
            self.insert(&meta, flags)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn converts_user_dev_to_kernel_dev() {
        let st_dev = libc::makedev(259, 3);
        assert_eq!(kernel_dev(st_dev), (259 << 20) | 3);
        let key = inode_key(5, 0x1_0000_0001);
        assert_eq!(&key[..4], &5u32.to_ne_bytes());
        assert_eq!(&key[4..8], &[0; 4]);
        assert_eq!(&key[8..], &0x1_0000_0001u64.to_ne_bytes());
    }
}

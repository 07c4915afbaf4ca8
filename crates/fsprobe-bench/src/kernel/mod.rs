//! What a listener costs inside the kernel, read from the outside: the BPF
//! programs and maps a process holds (found through /proc/PID/fdinfo, so
//! nothing depends on the library's internals), their run-time statistics
//! and their memory.
//!
//! Every object is reopened by its id (`bpf_*_get_fd_by_id`): an fd number
//! read from fdinfo may be closed, and reused, by its owner at any time.
pub mod maps;
pub mod progs;
pub mod stats;

use std::os::fd::{FromRawFd, OwnedFd};

/// The BPF objects one process holds open.
#[derive(Debug, Default)]
pub struct Held {
    /// Program ids, from program fds and from link fds (which name the
    /// program they attach), without duplicates.
    pub progs: Vec<u32>,
    /// Map ids, without duplicates.
    pub maps: Vec<u32>,
}

fn fdinfo_dir(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/fdinfo"),
        None => "/proc/self/fdinfo".into(),
    }
}

/// One `key:\tvalue` field of an fdinfo text.
fn field(text: &str, key: &str) -> Option<u64> {
    text.lines().find_map(|l| {
        let (k, v) = l.split_once(':')?;
        (k == key).then(|| v.trim().parse().ok())?
    })
}

/// The BPF programs and maps process `pid` (this one for `None`) holds.
pub fn held(pid: Option<u32>) -> Held {
    let mut out = Held::default();
    let Ok(dir) = std::fs::read_dir(fdinfo_dir(pid)) else {
        return out;
    };
    for entry in dir.flatten() {
        // The fd may be gone already: skip it.
        let Ok(text) = std::fs::read_to_string(entry.path()) else {
            continue;
        };
        let (list, id) = match (field(&text, "map_id"), field(&text, "prog_id")) {
            (Some(id), _) => (&mut out.maps, id),
            (None, Some(id)) => (&mut out.progs, id),
            (None, None) => continue,
        };
        let id = id as u32;
        if !list.contains(&id) {
            list.push(id);
        }
    }
    out.progs.sort_unstable();
    out.maps.sort_unstable();
    out
}

/// A libbpf call's fd (negative: an error) as an owned fd.
fn owned(fd: i32) -> Option<OwnedFd> {
    // SAFETY: a non-negative return of a libbpf fd call is a fresh fd that
    // nothing else owns.
    (fd >= 0).then(|| unsafe { OwnedFd::from_raw_fd(fd) })
}

/// A C name field (NUL-padded) as text.
fn c_name(raw: &[std::os::raw::c_char]) -> String {
    let bytes: Vec<u8> = raw
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    String::from_utf8_lossy(&bytes).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_of_an_fdinfo_text() {
        let text = "pos:\t0\nflags:\t02000002\nprog_type:\t5\nmemlock:\t4096\nprog_id:\t125\nrun_time_ns:\t17\n";
        assert_eq!(field(text, "prog_id"), Some(125));
        assert_eq!(field(text, "memlock"), Some(4096));
        assert_eq!(field(text, "map_id"), None);
        assert_eq!(c_name(&[102, 115, 0, 0]), "fs");
    }
}

//! Small readings from /proc: resident memory, a process's I/O and CPU
//! ticks, the dentry count.

/// Resident memory of a process, from /proc/PID/status (bytes).
#[derive(Debug, Clone, Copy, Default, serde::Serialize, serde::Deserialize)]
pub struct Rss {
    /// VmRSS: everything resident.
    pub total: u64,
    /// RssAnon: heap, stacks and other private memory.
    pub anon: u64,
    /// RssFile: mapped files (the binary and its libraries).
    pub file: u64,
    /// RssShmem: shared memory, e.g. mapped BPF ring buffers.
    pub shmem: u64,
}

fn status_path(pid: Option<u32>) -> String {
    match pid {
        Some(pid) => format!("/proc/{pid}/status"),
        None => "/proc/self/status".into(),
    }
}

/// The process's resident memory (this one for `None`); None once it is gone.
pub fn rss(pid: Option<u32>) -> Option<Rss> {
    let text = std::fs::read_to_string(status_path(pid)).ok()?;
    let kib = |key: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(key))?;
        let value = line[key.len()..].split_whitespace().next()?;
        Some(value.parse::<u64>().ok()? * 1024)
    };
    Some(Rss {
        total: kib("VmRSS:")?,
        anon: kib("RssAnon:").unwrap_or(0),
        file: kib("RssFile:").unwrap_or(0),
        shmem: kib("RssShmem:").unwrap_or(0),
    })
}

/// The resident part of a process's mappings of BPF maps (this one for
/// `None`): the ring buffer, the mmapped arrays. Their pages are the maps'
/// own, so they are in the maps' memlock too. From /proc/PID/smaps, whose
/// mappings of BPF maps are named "anon_inode:bpf-map"; None once it is gone.
pub fn bpf_map_resident(pid: Option<u32>) -> Option<u64> {
    let path = match pid {
        Some(pid) => format!("/proc/{pid}/smaps"),
        None => "/proc/self/smaps".into(),
    };
    let text = std::fs::read_to_string(path).ok()?;
    let mut in_bpf_map = false;
    let mut kib = 0;
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        let first = fields.next().unwrap_or("");
        if first == "Rss:" {
            if in_bpf_map {
                kib += fields
                    .next()
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(0);
            }
        } else if first.contains('-') && !first.ends_with(':') {
            // A mapping's first line: range, perms, offset, dev, inode, name.
            in_bpf_map = fields
                .nth(4)
                .is_some_and(|name| name.starts_with("anon_inode:bpf"));
        }
    }
    Some(kib * 1024)
}

/// Bytes the process passed to write(2) and friends (`wchar` in /proc/PID/io).
pub fn written_bytes(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/io")).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("wchar:"))
        .and_then(|v| v.trim().parse().ok())
}

/// User and system CPU time of a process (all threads), in clock ticks,
/// from /proc/PID/stat (fields 14 and 15).
pub fn cpu_ticks(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count from its ')'.
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let user = fields.next()?.parse().ok()?;
    let sys = fields.next()?.parse().ok()?;
    Some((user, sys))
}

/// Dentries the kernel holds (first field of /proc/sys/fs/dentry-state).
pub fn dentries() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/fs/dentry-state").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = rss(None).expect("own status");
        assert!(me.total > 0 && me.anon > 0);
        let pid = std::process::id();
        assert!(cpu_ticks(pid).is_some());
        assert!(written_bytes(pid).is_some());
    }
}

//! The memory of a listener's BPF maps: `memlock` (what the kernel charges
//! for the map, from fdinfo) and, for hash maps, how many entries they hold.
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

/// One map at one moment.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct MapInfo {
    pub name: String,
    pub id: u32,
    /// "hash", "lru_hash", "array", "ringbuf", … (the kernel's type number
    /// when it is not one of these).
    pub map_type: String,
    pub max_entries: u32,
    /// Bytes charged for the map (fdinfo's `memlock`).
    pub memlock: u64,
    /// Entries in use: counted for hash maps only (arrays are always full).
    pub entries: Option<u64>,
}

const HASH: u32 = 1;
const PERCPU_HASH: u32 = 5;
const LRU_HASH: u32 = 9;
const LRU_PERCPU_HASH: u32 = 10;

fn type_name(t: u32) -> String {
    let name = match t {
        HASH => "hash",
        2 => "array",
        3 => "prog_array",
        4 => "perf_event_array",
        PERCPU_HASH => "percpu_hash",
        6 => "percpu_array",
        LRU_HASH => "lru_hash",
        LRU_PERCPU_HASH => "lru_percpu_hash",
        27 => "ringbuf",
        _ => return format!("type {t}"),
    };
    name.into()
}

fn is_hash(t: u32) -> bool {
    matches!(t, HASH | PERCPU_HASH | LRU_HASH | LRU_PERCPU_HASH)
}

fn open(id: u32) -> Option<OwnedFd> {
    // SAFETY: a plain syscall wrapper; a stale id makes it fail.
    super::owned(unsafe { libbpf_sys::bpf_map_get_fd_by_id(id) })
}

fn info(fd: &OwnedFd) -> Option<libbpf_sys::bpf_map_info> {
    // SAFETY: bpf_map_info is plain data; all-zero is valid.
    let mut info: libbpf_sys::bpf_map_info = unsafe { std::mem::zeroed() };
    let mut len = std::mem::size_of_val(&info) as u32;
    // SAFETY: info and len describe a writable buffer of len bytes.
    let rc = unsafe { libbpf_sys::bpf_map_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len) };
    (rc == 0).then_some(info)
}

/// `memlock` of a map we hold, from our own fdinfo of it.
fn memlock(fd: &OwnedFd) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/self/fdinfo/{}", fd.as_raw_fd()));
    text.ok()
        .and_then(|t| super::field(&t, "memlock"))
        .unwrap_or(0)
}

/// Entries of a hash map, by batched lookups (`BPF_MAP_LOOKUP_BATCH`, whose
/// cursor is a bucket index, so entries deleted meanwhile do not restart
/// the count as `get_next_key` would). None if the kernel refuses.
fn count_entries(fd: &OwnedFd, info: &libbpf_sys::bpf_map_info) -> Option<u64> {
    let percpu = matches!(info.type_, PERCPU_HASH | LRU_PERCPU_HASH);
    let value_size = if percpu {
        // SAFETY: no preconditions.
        let cpus = unsafe { libbpf_sys::libbpf_num_possible_cpus() }.max(1) as usize;
        (info.value_size as usize).div_ceil(8) * 8 * cpus
    } else {
        info.value_size as usize
    };
    // Up to 4 MiB of buffer, 1024 entries at most per call.
    let mut batch = (4 << 20) / (info.key_size as usize + value_size).max(1);
    batch = batch.clamp(16, 1024);
    let opts = libbpf_sys::bpf_map_batch_opts {
        sz: std::mem::size_of::<libbpf_sys::bpf_map_batch_opts>() as _,
        ..Default::default()
    };
    let mut cursor = [0u64; 8];
    let mut next = [0u64; 8];
    let mut total = 0u64;
    let mut first = true;
    let (mut keys, mut values) = (Vec::new(), Vec::new());
    loop {
        keys.resize(batch * info.key_size as usize, 0u8);
        values.resize(batch * value_size, 0u8);
        let mut count = batch as u32;
        let in_batch = if first {
            std::ptr::null_mut()
        } else {
            cursor.as_mut_ptr().cast()
        };
        // SAFETY: keys and values hold `count` keys and values of the
        // map's sizes; the cursors are 64 bytes, more than a hash map's
        // u32 bucket index; opts is a valid, sized options struct.
        let rc = unsafe {
            libbpf_sys::bpf_map_lookup_batch(
                fd.as_raw_fd(),
                in_batch,
                next.as_mut_ptr().cast(),
                keys.as_mut_ptr().cast(),
                values.as_mut_ptr().cast(),
                &mut count,
                &opts,
            )
        };
        let errno = if rc < 0 { -rc } else { 0 };
        match errno {
            0 | libc::ENOENT => total += u64::from(count),
            // One bucket holds more than a batch: try again, larger.
            libc::ENOSPC if batch < 1 << 16 => {
                batch *= 4;
                continue;
            }
            _ => return None,
        }
        if errno == libc::ENOENT {
            return Some(total);
        }
        cursor = next;
        first = false;
    }
}

/// Every map process `pid` (this one for `None`) holds; entries counted
/// when `entries` (it walks each hash map: a few ms per 100,000 entries).
pub fn of(pid: Option<u32>, entries: bool) -> Vec<MapInfo> {
    let mut out: Vec<MapInfo> = super::held(pid)
        .maps
        .into_iter()
        .filter_map(|id| {
            let fd = open(id)?;
            let info = info(&fd)?;
            Some(MapInfo {
                name: super::c_name(&info.name),
                id,
                map_type: type_name(info.type_),
                max_entries: info.max_entries,
                memlock: memlock(&fd),
                entries: (entries && is_hash(info.type_))
                    .then(|| count_entries(&fd, &info))
                    .flatten(),
            })
        })
        .collect();
    out.sort_by(|a, b| b.memlock.cmp(&a.memlock).then(a.name.cmp(&b.name)));
    out
}

/// The sum of `memlock` over the maps process `pid` holds (bytes).
pub fn memlock_total(pid: Option<u32>) -> u64 {
    super::held(pid)
        .maps
        .into_iter()
        .filter_map(open)
        .map(|fd| memlock(&fd))
        .sum()
}

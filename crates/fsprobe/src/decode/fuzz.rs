//! Bounded fuzzing of the decoder, as a plain test on stable Rust: real
//! records (the fixtures of tests.rs) mutated at random, and arbitrary
//! bytes, go through `Decoder::decode`, alone and in sequences. The
//! decoder must never panic, and never produce a path that the records
//! did not carry: every component of every path it reports occurs in the
//! bytes it was given. `FSPROBE_FUZZ_SEED` and `FSPROBE_FUZZ_CASES`
//! replay or lengthen a run (the seed is printed when a case fails).
use std::mem::size_of;

use super::tests::{header, record};
use super::*;
use crate::skel::types::{fsp_cache_def, fsp_dir_key};
use crate::test_rng::Rng;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn def(ino: u64, end: u16, name_len: u16) -> Vec<u8> {
    let d = fsp_cache_def {
        key: fsp_dir_key {
            mnt_id: 21,
            dev: 8,
            ino,
            generation: 7,
            ..Default::default()
        },
        end,
        name_len,
        ..Default::default()
    };
    // SAFETY: fsp_cache_def is plain data; viewing it as bytes is sound.
    unsafe {
        std::slice::from_raw_parts(
            (&d as *const fsp_cache_def).cast::<u8>(),
            size_of::<fsp_cache_def>(),
        )
    }
    .to_vec()
}

/// Well-formed records of every shape the kernel sends.
fn corpus() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut h = header(EventKind::Rename);
    (h.op, h.file.path_len, h.target.path_len) = (316, 6, 7);
    out.push(record(&h, b"/a/old/b/new2"));
    let mut h = header(EventKind::Open);
    (h.op, h.n_defs, h.file.path_len, h.file.cache_gen) = (257, 2, 15, 5);
    out.push([record(&h, b"/srv/data/a.txt"), def(30, 9, 4), def(20, 4, 3)].concat());
    let mut h = header(EventKind::Open);
    (h.op, h.file.path_len, h.file.cache_gen) = (257, 6, 5);
    h.file.prefix = fsp_dir_key {
        mnt_id: 21,
        dev: 8,
        ino: 30,
        generation: 7,
        ..Default::default()
    };
    out.push(record(&h, b"/b.txt"));
    let mut h = header(EventKind::Open);
    (h.file.path_len, h.proc_start, h.rflags) = (2, 777, raw::REC_PROCESS);
    (h.proc.exe.path_len, h.proc.cgroup_len) = (8, 20);
    out.push(record(&h, b"/a/usr/bin/x/system.slice/cron.svc"));
    let mut h = header(EventKind::Symlink);
    (h.file.path_len, h.extra_len, h.rflags) = (5, 9, raw::REC_EXTRA_USER);
    out.push(record(&h, b"/w/ln../target"));
    let mut h = header(EventKind::Unlink);
    (h.file.path_len, h.file.flags, h.file.user_len) = (4, raw::PATH_USER_SUFFIX, 2);
    out.push(record(&h, b"/a\xff\xfe"));
    let mut h = header(EventKind::Open);
    h.kind = crate::skel::types::fsp_kind::FSP_SUBTREE.0 as u8;
    h.file.path_len = 4;
    out.push(record(&h, b"/sub"));
    out
}

/// One mutation of a record: bytes, lengths, counts, flags, size.
fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let hdr = size_of::<fsp_event>();
    match rng.index(6) {
        0 => {
            let i = rng.index(bytes.len());
            bytes[i] ^= 1 << rng.index(8);
        }
        1 => {
            let i = rng.index(bytes.len());
            bytes[i] = rng.next() as u8;
        }
        2 => bytes.truncate(rng.index(bytes.len() + 1)),
        3 => {
            let n = rng.index(64);
            bytes.extend((0..n).map(|_| rng.next() as u8));
        }
        // A header field overwritten with a small or extreme value: the
        // lengths, counts and flags are where a decoder goes wrong.
        4 if bytes.len() >= hdr => {
            let at = rng.index(hdr / 2) * 2;
            let v: u16 = match rng.index(4) {
                0 => rng.index(8) as u16,
                1 => u16::MAX,
                2 => rng.index(512) as u16,
                _ => rng.next() as u16,
            };
            bytes[at..at + 2].copy_from_slice(&v.to_ne_bytes());
        }
        _ => {
            // A def's end or name length past its path.
            if bytes.len() > hdr + 4 {
                let at = hdr + rng.index(bytes.len() - hdr - 2);
                bytes[at..at + 2].copy_from_slice(&(rng.next() as u16).to_ne_bytes());
            }
        }
    }
}

/// Does every component of `path` occur in one of `given`? ("..." is the
/// decoder's mark of a cgroup path cut at its start.)
fn components_given(path: &[u8], given: &[Vec<u8>]) -> bool {
    path.split(|&b| b == b'/')
        .filter(|c| !c.is_empty() && *c != b"...")
        .all(|c| given.iter().any(|g| g.windows(c.len()).any(|w| w == c)))
}

/// The paths an outcome reports, as bytes; and its cgroup path, a String
/// (bytes that are not UTF-8 are replaced, as from_utf8_lossy does).
fn paths_of(d: &Decoded) -> (Vec<Vec<u8>>, Option<String>) {
    let mut out = Vec::new();
    let mut cgroup = None;
    match d {
        Decoded::Event(e) => {
            out.push(e.file.path_bytes().to_vec());
            if let Some(t) = &e.target {
                out.push(t.path_bytes().to_vec());
            }
            if let Some(x) = &e.process.exe {
                out.push(x.path_bytes().to_vec());
            }
            cgroup = e.process.cgroup.as_deref().map(str::to_owned);
        }
        Decoded::Subtree(s) => out.push(s.path.as_os_str().as_encoded_bytes().to_vec()),
        Decoded::Notice => {}
    }
    (out, cgroup)
}

fn check(seed: u64, case: u64, d: &Decoded, given: &[Vec<u8>]) {
    let (paths, cgroup) = paths_of(d);
    for p in paths {
        assert!(
            components_given(&p, given),
            "seed {seed} case {case}: {:?} was in no record given",
            String::from_utf8_lossy(&p)
        );
    }
    if let Some(c) = cgroup {
        // Each run of bytes between replacement characters was given.
        let runs = c.replace('\u{fffd}', "/");
        assert!(
            components_given(runs.as_bytes(), given),
            "seed {seed} case {case}: cgroup {c:?} was in no record given"
        );
    }
}

#[test]
fn mutated_and_random_records_never_panic_or_invent_a_path() {
    let seed = env_u64("FSPROBE_FUZZ_SEED", 0x5eed_f5b0_7e57_0001);
    let cases = env_u64("FSPROBE_FUZZ_CASES", 100_000);
    let corpus = corpus();
    let mut rng = Rng(seed | 1);
    let modes = [
        ResolutionMode::PerfBuffer,
        ResolutionMode::Fragments,
        ResolutionMode::SingleFragment,
    ];
    let mut decoded = 0u64;
    for case in 0..cases {
        let mode = modes[rng.index(3)];
        // A fresh decoder: its paths may come from this record only.
        let mut bytes = if rng.index(10) == 0 {
            (0..rng.index(600)).map(|_| rng.next() as u8).collect()
        } else {
            corpus[rng.index(corpus.len())].clone()
        };
        for _ in 0..=rng.index(4) {
            if !bytes.is_empty() {
                mutate(&mut rng, &mut bytes);
            }
        }
        let mut d = Decoder::new(BootClock::now(), mode, 16, false);
        let given = [bytes.clone()];
        if let Ok(r) = d.decode(&bytes) {
            decoded += 1;
            check(seed, case, &r.what, &given);
        }
    }
    // The mutations must leave enough records valid to reach the decoder's depths.
    assert!(decoded > cases / 20, "only {decoded} of {cases} decoded");
}

#[test]
fn sequences_of_mutated_records_never_panic_or_invent_a_path() {
    let seed = env_u64("FSPROBE_FUZZ_SEED", 0x5eed_f5b0_7e57_0002);
    let cases = env_u64("FSPROBE_FUZZ_CASES", 100_000) / 50;
    let corpus = corpus();
    let mut rng = Rng(seed | 1);
    for case in 0..cases {
        // A decoder that keeps state (caches, processes) across 50 records;
        // a tiny cache limit forces its flushes too.
        let mode = [ResolutionMode::PerfBuffer, ResolutionMode::Fragments][rng.index(2)];
        let mut d = Decoder::new(BootClock::now(), mode, 4, true);
        let mut given: Vec<Vec<u8>> = Vec::new();
        // Each event is recycled into a later one, as the worker does for
        // a consumer that hands them back: none may keep a byte of another.
        let mut spare = None;
        for _ in 0..50 {
            let mut bytes = corpus[rng.index(corpus.len())].clone();
            if rng.index(3) > 0 {
                mutate(&mut rng, &mut bytes);
            }
            given.push(bytes.clone());
            let _ = d.prefixes_known(&bytes);
            if let Ok(r) = d.decode_reusing(&bytes, &mut spare) {
                check(seed, case, &r.what, &given);
                if let Decoded::Event(e) = r.what {
                    spare = Some(e);
                }
            }
        }
    }
}

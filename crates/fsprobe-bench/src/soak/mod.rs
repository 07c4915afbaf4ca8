//! The soak test (`--soak`, not in CI): a sustained rate of churn on a
//! watched tree for many minutes, with the library in this process, sampled
//! at a fixed interval: resident size, heap in use, the BPF maps' memory
//! and entries, events and losses. It ends with three verdicts: flat RSS,
//! no loss, bounded maps (see verdict.rs).
//!
//! The library in-process measures the product faithfully here because the
//! bench's own memory is bounded: the tree's file list is built before the
//! probe starts, the consumer keeps counters only, and the sampler keeps one
//! small record per sample. The heap in use is tracked by the counting
//! allocator, so a leak shows apart from RSS noise.
mod churn;
mod report;
mod verdict;

use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fsprobe::{EventKind, Probe, Record};
use serde::{Deserialize, Serialize};

use crate::kernel::maps::{self, MapInfo};
use crate::kernel::progs::{self, Progs};
use crate::procfs::{self, Rss};
use crate::tree::{self, SCENARIOS};
use churn::Churn;

/// The watched tree: scenario 6's.
const SCENARIO: u8 = 6;
/// After the churn ended, how long the stream may stay silent.
const DRAIN_IDLE: Duration = Duration::from_millis(1500);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Config {
    pub minutes: u64,
    /// Steps (events) per second asked of the churn.
    pub rate: u64,
    pub sample_secs: u64,
    pub scenario: u8,
    pub watched_inodes: u64,
    pub cycle: String,
}

/// One sample.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Sample {
    pub t_s: f64,
    /// Churn steps done, and failed (each done step is one event).
    pub steps: u64,
    pub failed: u64,
    pub delivered: u64,
    /// Losses announced in the stream so far.
    pub lost: u64,
    /// Events per second delivered since the previous sample.
    pub events_per_s: f64,
    pub rss: Rss,
    /// Heap in use now minus when the probe was started.
    pub heap_live_bytes: i64,
    /// `memlock` of every map, added up.
    pub map_bytes: u64,
    pub maps: Vec<MapInfo>,
    /// In-kernel time of the probe's programs per delivered event since
    /// the previous sample.
    pub bpf_ns_per_event: Option<f64>,
    /// This process's CPU per delivered event since the previous sample.
    pub cpu_ns_per_event: Option<f64>,
}

/// Written, never read back (the library's Summary is Serialize only).
#[derive(Debug, Clone, Serialize)]
pub struct SoakResults {
    pub benchmark: String,
    pub started: String,
    pub wall_s: f64,
    pub machine: crate::machine::Machine,
    pub config: Config,
    /// The churn's achieved steps per second.
    pub achieved_rate: f64,
    pub samples: Vec<Sample>,
    pub expected: u64,
    pub delivered: u64,
    pub other_events: u64,
    /// The first event of another process in the tree (none expected).
    pub first_other: Option<String>,
    /// Files and directories the probe announced it could not watch.
    pub unwatched: u64,
    pub summary: Option<fsprobe::Summary>,
    pub verdicts: Vec<verdict::Verdict>,
    pub failures: Vec<String>,
    pub notes: Vec<String>,
}

/// What the consumer has counted, for the sampler.
#[derive(Default)]
struct Counts {
    delivered: AtomicU64,
    lost: AtomicU64,
}

/// Samples every `every` until `done`, and once more at the end.
fn sampler(
    churn: &Churn,
    probe_progs: &Progs,
    counts: &Counts,
    every: Duration,
    done: &AtomicBool,
    t0: Instant,
) -> Vec<Sample> {
    let mut out: Vec<Sample> = Vec::new();
    let mut prev = (
        Instant::now(),
        0u64,
        probe_progs.sample(),
        crate::cpu::process_cpu_ns(),
    );
    let mut next = t0;
    loop {
        let last = done.load(Ordering::SeqCst);
        if !last && Instant::now() < next {
            std::thread::sleep(Duration::from_millis(50));
            continue;
        }
        // The closing sample, unless one was just taken: its per-second
        // figures would be over too short a time.
        if last && !out.is_empty() && prev.0.elapsed() < every / 5 {
            return out;
        }
        next += every;
        let progress = churn.progress();
        let delivered = counts.delivered.load(Ordering::SeqCst);
        let (now, bpf, cpu) = (
            Instant::now(),
            probe_progs.sample(),
            crate::cpu::process_cpu_ns(),
        );
        let events = delivered - prev.1;
        let per_event = |x: u64| (events > 0).then(|| x as f64 / events as f64);
        let bpf_ns: u64 = progs::delta(&prev.2, &bpf)
            .iter()
            .map(|p| p.run_time_ns)
            .sum();
        let maps = maps::of(None, true);
        let sample = Sample {
            t_s: (now - t0).as_secs_f64(),
            steps: progress.steps,
            failed: progress.failed,
            delivered,
            lost: counts.lost.load(Ordering::SeqCst),
            events_per_s: events as f64 / (now - prev.0).as_secs_f64().max(1e-9),
            rss: procfs::rss(None).unwrap_or_default(),
            heap_live_bytes: crate::alloc::live_since_tracking(),
            map_bytes: maps.iter().map(|m| m.memlock).sum(),
            maps,
            bpf_ns_per_event: per_event(bpf_ns).filter(|_| !probe_progs.is_empty()),
            cpu_ns_per_event: per_event(cpu - prev.3),
        };
        say!(
            "  soak {:6.0} s: {:.0} events/s, {} lost, RSS {:.1} MiB, heap {:+.1} MiB, maps {:.1} MiB",
            sample.t_s,
            sample.events_per_s,
            sample.lost,
            sample.rss.total as f64 / 1048576.0,
            sample.heap_live_bytes as f64 / 1048576.0,
            sample.map_bytes as f64 / 1048576.0
        );
        out.push(sample);
        prev = (now, delivered, bpf, cpu);
        if last {
            return out;
        }
    }
}

/// What the consumer received, besides the losses.
struct Consumed {
    /// The churn's events.
    delivered: u64,
    /// Events of other processes in the tree, and the first of them.
    others: u64,
    first_other: Option<String>,
    /// Files and directories announced as not watched (`Record::Unwatched`).
    unwatched: u64,
}

/// Receives records until the churn is over and drained (or a stop is
/// requested); returns the workload's events and the others.
fn consume(probe: &Probe, churn: &Churn, counts: &Counts) -> Consumed {
    let pid = churn.pid();
    let (mut delivered, mut lost, mut others, mut unwatched) = (0u64, 0u64, 0u64, 0u64);
    let mut first_other = None;
    let mut idle_since: Option<Instant> = None;
    loop {
        match probe.records().recv_timeout(Duration::from_millis(20)) {
            Ok(Record::Event(e)) if e.process.pid == pid => {
                delivered += 1;
                idle_since = None;
                counts.delivered.store(delivered, Ordering::Relaxed);
            }
            Ok(Record::Event(e)) => {
                others += 1;
                first_other.get_or_insert_with(|| {
                    let (kind, path) = (e.kind, e.file.path.display());
                    format!(
                        "{kind} {path} by {} (pid {})",
                        e.process.comm, e.process.pid
                    )
                });
            }
            Ok(Record::Lost { count, .. }) => {
                lost += count;
                counts.lost.store(lost, Ordering::Relaxed);
            }
            Ok(Record::Unwatched { count, .. }) => unwatched += count,
            Ok(_) => {}
            Err(fsprobe::RecvError::Timeout) => {
                idle_since.get_or_insert_with(Instant::now);
            }
            Err(_) => break,
        }
        let p = churn.progress();
        let all_in = delivered + lost >= p.steps - p.failed;
        let idle = idle_since.is_some_and(|t| t.elapsed() > DRAIN_IDLE);
        if crate::stop::requested() || (p.ended && (all_in || idle)) {
            break;
        }
    }
    Consumed {
        delivered,
        others,
        first_other,
        unwatched,
    }
}

/// The whole soak test; the exit code.
pub fn run(
    args: &crate::Args,
    out: &Path,
    scratch_parent: &Path,
    workload_cpu: usize,
) -> std::process::ExitCode {
    let started = fsprobe::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128),
    );
    let t_start = Instant::now();
    let out = out.join("soak");
    let s = SCENARIOS
        .iter()
        .find(|s| s.id == SCENARIO)
        .expect("scenario 6");
    let scratch = scratch_parent.join(format!("fsprobe-soak-{}", std::process::id()));
    let root = scratch.join(format!("s{}", s.id));
    let mut failures = Vec::new();
    say!("soak: building scenario {}'s tree", s.id);
    let result = tree::build(s, &root, args.seed).map_err(|e| format!("building the tree: {e}"));
    let secs = args.soak_minutes * 60;
    let mut res = SoakResults {
        benchmark: "fsprobe-bench --soak".into(),
        started,
        wall_s: 0.0,
        machine: crate::machine::Machine::probe(scratch_parent),
        config: Config {
            minutes: args.soak_minutes,
            rate: args.soak_rate,
            sample_secs: args.soak_sample_secs,
            scenario: s.id,
            watched_inodes: 0,
            cycle: "create (open O_CREAT), 10 writes, rename to another leaf dir, 85 × open+close of an existing file, unlink, mkdir, rmdir: one event each, 100 steps".into(),
        },
        achieved_rate: 0.0,
        samples: Vec::new(),
        expected: 0,
        delivered: 0,
        other_events: 0,
        first_other: None,
        unwatched: 0,
        summary: None,
        verdicts: Vec::new(),
        failures: Vec::new(),
        notes: args.note.clone(),
    };
    match result.and_then(|tree| soak(&tree, args, secs, workload_cpu, &mut res)) {
        Ok(()) => {}
        Err(e) => failures.push(e),
    }
    let _ = std::fs::remove_dir_all(&scratch);
    if crate::stop::requested() {
        failures.push("interrupted: the results are partial".into());
    }
    res.failures = failures;
    res.verdicts = verdict::all(&res);
    res.wall_s = t_start.elapsed().as_secs_f64();
    if let Err(e) = report::write(&res, &out) {
        eprintln!("fsprobe-bench: writing the soak results: {e}");
        return std::process::ExitCode::FAILURE;
    }
    for v in &res.verdicts {
        eprintln!(
            "fsprobe-bench: soak verdict: {}: {} ({})",
            v.name,
            if v.ok { "yes" } else { "NO" },
            v.detail
        );
    }
    say!("soak done; results in {}", out.display());
    for f in &res.failures {
        eprintln!("fsprobe-bench: FAILED: {f}");
    }
    match res.failures.is_empty() {
        true => std::process::ExitCode::SUCCESS,
        false => std::process::ExitCode::FAILURE,
    }
}

fn soak(
    tree: &tree::Tree,
    args: &crate::Args,
    secs: u64,
    workload_cpu: usize,
    res: &mut SoakResults,
) -> Result<(), String> {
    let seq = tree::sequence(100_000, tree.files.len(), args.seed);
    crate::alloc::track_live();
    let probe = Probe::builder()
        .path(&tree.root)
        .events(EventKind::ALL)
        .start()
        .map_err(|e| format!("starting the probe: {e}"))?;
    res.config.watched_inodes = probe.ready().watched_inodes;
    let probe_progs = Progs::of(None);
    let churn = Churn::start(&tree.files, &seq, args.soak_rate, secs, workload_cpu)
        .map_err(|e| format!("starting the churn: {e}"))?;
    say!(
        "soak: {} min at {} events/s, a sample every {} s",
        args.soak_minutes,
        args.soak_rate,
        args.soak_sample_secs
    );
    let counts = Counts::default();
    let done = AtomicBool::new(false);
    let samples = Mutex::new(Vec::new());
    let t0 = Instant::now();
    let every = Duration::from_secs(args.soak_sample_secs.max(1));
    let got = std::thread::scope(|s| {
        let sampling = s.spawn(|| {
            *samples.lock().expect("samples") =
                sampler(&churn, &probe_progs, &counts, every, &done, t0);
        });
        let got = consume(&probe, &churn, &counts);
        done.store(true, Ordering::SeqCst);
        let _ = sampling.join();
        got
    });
    churn.stop();
    let progress = churn.progress();
    res.achieved_rate = churn.rate();
    res.expected = progress.steps - progress.failed;
    res.delivered = got.delivered;
    res.other_events = got.others;
    res.first_other = got.first_other;
    res.unwatched = got.unwatched;
    res.samples = samples.into_inner().expect("samples");
    if progress.failed > 0 {
        res.notes.push(format!(
            "{} churn steps failed (no event expected for them)",
            progress.failed
        ));
    }
    drop(probe_progs);
    res.summary = Some(
        probe
            .join()
            .map_err(|e| format!("stopping the probe: {e}"))?,
    );
    Ok(())
}

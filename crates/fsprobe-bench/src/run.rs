//! One measured run: the workload process on its CPU, and on the consumer
//! CPU whatever listens (nothing, the fsprobe library, or a peer tool).
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc::Heap;
use crate::cpu;
use crate::kernel::progs::{self, ProgRun, Progs};
use crate::workload::{Done, Pace, Workload};

/// Which CPU does what.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Cpus {
    pub workload: usize,
    pub consumer: usize,
}

/// What one run measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct RunResult {
    pub ns_per_op: f64,
    pub ops: u64,
    /// Operations per second actually achieved (all producers together).
    pub achieved_rate: f64,
    pub delivered: u64,
    /// Losses the listener counted and reported (None: it cannot tell).
    pub lost: Option<u64>,
    /// Heap allocated in this process during the run (workload start to drain).
    pub heap_bytes: u64,
    pub heap_allocs: u64,
    /// CPU time spent consuming events: this process's (fsprobe: the
    /// library's worker and the consuming thread), or the peer's processes.
    pub consumer_cpu_ns: Option<u64>,
    pub workload_cpu_ns: u64,
    pub open_errors: u64,
    /// Seconds to start the listener (load, attach, seed), not timed.
    pub setup_s: Option<f64>,
    /// Seconds to stop it (fsprobe: `Probe::join`, i.e. detaching), not timed.
    pub teardown_s: Option<f64>,
    /// The listener's BPF programs (workload start to end) over the
    /// statistics pass where there is one (`stats_pass`), else over the
    /// run; empty without statistics or without BPF.
    #[serde(default)]
    pub bpf: Vec<ProgRun>,
    /// `memlock` of the listener's BPF maps at the end of the run.
    #[serde(default)]
    pub kernel_map_bytes: Option<u64>,
    /// Resident memory of the listener's process at the end of the run
    /// (fsprobe: the bench process, which holds the library).
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    /// fsprobe's path walks over the run (`Summary::walks_full`, `walks_cached`).
    #[serde(default)]
    pub walks_full: Option<u64>,
    #[serde(default)]
    pub walks_cached: Option<u64>,
    /// The baseline's ns/op in the same round, for a paired ratio.
    #[serde(default)]
    pub round_baseline_ns: Option<f64>,
    /// The achieved rate of a side load (the unrelated rename loop), per second.
    #[serde(default)]
    pub side_load_rate: Option<f64>,
    /// fsprobe: the same operations again on the same probe.
    #[serde(default)]
    pub warm: Option<WarmPass>,
    /// Listeners with BPF programs: the same operations once more, with
    /// BPF statistics on (kernel/stats.rs); `bpf` comes from it. Its time
    /// shows what the statistics themselves cost.
    #[serde(default)]
    pub stats_pass: Option<WarmPass>,
}

/// The workload's operations run again on the same probe (the warm pass,
/// and the statistics pass): every
/// directory is then known to the path caches, so the time and the heap
/// are what an event costs in steady state (the first pass also fills the
/// caches, once per directory: a walk to the first known directory, a
/// record that teaches it, an allocation in user space).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct WarmPass {
    /// Its time per operation: the steady state's, every directory already
    /// known to the path caches (the first pass teaches them once).
    #[serde(default)]
    pub ns_per_op: f64,
    #[serde(default)]
    pub ops: u64,
    /// The listener's BPF programs over this pass (empty when it ran
    /// without statistics).
    #[serde(default)]
    pub bpf: Vec<ProgRun>,
    pub delivered: u64,
    /// Losses announced in the stream during the warm pass.
    #[serde(default)]
    pub lost: u64,
    pub heap_bytes: u64,
    pub heap_allocs: u64,
    pub consumer_cpu_ns: Option<u64>,
}

impl RunResult {
    /// The passes after the first (warm, statistics) that ran.
    pub fn later_passes(&self) -> impl Iterator<Item = &WarmPass> {
        [&self.warm, &self.stats_pass].into_iter().flatten()
    }
}

/// Everything a consumer learns while the workload runs.
pub struct Consumed {
    pub delivered: u64,
    pub lost: Option<u64>,
}

/// The workloads' reports, added up.
fn combine(done: &[Done]) -> Done {
    let mut total = Done::default();
    for d in done {
        total.ops += d.ops;
        total.elapsed_ns = total.elapsed_ns.max(d.elapsed_ns);
        total.cpu_ns += d.cpu_ns;
        total.errors += d.errors;
    }
    total
}

/// Starts the run on every workload of `ws`, runs `consume` on this (the
/// consumer) thread and returns when it has drained. `consume` gets a flag
/// raised when every workload is over, and the expected number of
/// operations. `progs` (the listener's BPF programs) are sampled just
/// before the workloads start and as soon as the last one ends.
pub fn measure(
    ws: &[&Workload],
    pace: Pace,
    progs: &Progs,
    consume: impl FnOnce(&AtomicBool, u64) -> Consumed,
) -> std::io::Result<RunResult> {
    let finished = AtomicBool::new(false);
    let running = AtomicUsize::new(ws.len());
    let at_end = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        // Wait for the workloads' reports; spawned (and so allocated)
        // before the heap is sampled.
        let waiters: Vec<_> = ws
            .iter()
            .map(|w| {
                let (finished, running, at_end) = (&finished, &running, &at_end);
                s.spawn(move || {
                    let done = w.wait();
                    if running.fetch_sub(1, Ordering::SeqCst) == 1 {
                        *at_end.lock().expect("samples") = progs.sample();
                        finished.store(true, Ordering::SeqCst);
                    }
                    done
                })
            })
            .collect();
        let at_start = progs.sample();
        let heap0 = Heap::now();
        let cpu0 = cpu::process_cpu_ns();
        for w in ws {
            if let Err(e) = w.start(pace) {
                finished.store(true, Ordering::SeqCst);
                return Err(e);
            }
        }
        let consumed = consume(&finished, pace.ops() * ws.len() as u64);
        let consumer_cpu = cpu::process_cpu_ns() - cpu0;
        let heap = Heap::now().since(heap0);
        let mut done = Vec::new();
        for w in waiters {
            done.push(w.join().expect("a waiter thread panicked")?);
        }
        let ns_per_op = done.iter().map(Done::ns_per_op).sum::<f64>() / done.len().max(1) as f64;
        let achieved_rate = done
            .iter()
            .map(|d| d.ops as f64 * 1e9 / d.elapsed_ns.max(1) as f64)
            .sum();
        let done = combine(&done);
        let bpf = progs::delta(&at_start, &at_end.lock().expect("samples"));
        Ok(RunResult {
            ns_per_op,
            ops: done.ops,
            achieved_rate,
            delivered: consumed.delivered,
            lost: consumed.lost,
            heap_bytes: heap.bytes,
            heap_allocs: heap.allocs,
            consumer_cpu_ns: Some(consumer_cpu),
            workload_cpu_ns: done.cpu_ns,
            open_errors: done.errors,
            bpf,
            ..RunResult::default()
        })
    })
}

/// No listener: waits for the workload (sleeping, so it costs nothing).
pub fn baseline(w: &Workload, pace: Pace) -> std::io::Result<RunResult> {
    let mut r = measure(&[w], pace, &Progs::none(), |finished, _| {
        while !finished.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(2));
        }
        Consumed {
            delivered: 0,
            lost: None,
        }
    })?;
    r.consumer_cpu_ns = None;
    Ok(r)
}

/// Waits, after the workload finished, until `progress()` reaches `ops` or
/// stops moving for `idle`; returns the last value.
pub fn drain(finished: &AtomicBool, ops: u64, idle: Duration, progress: impl Fn() -> u64) -> u64 {
    let mut last = (progress(), Instant::now());
    loop {
        std::thread::sleep(Duration::from_millis(5));
        let now = progress();
        if now != last.0 {
            last = (now, Instant::now());
        }
        if finished.load(Ordering::SeqCst) && (now >= ops || last.1.elapsed() > idle) {
            return now;
        }
    }
}

//! One measured run: the workload process on its CPU, and on the consumer
//! CPU whatever listens (nothing, the fsprobe library, or a peer tool).
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::alloc::Heap;
use crate::cpu;
use crate::workload::{Pace, Workload};

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
    /// Operations per second actually achieved.
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
}

/// Everything a consumer learns while the workload runs.
pub struct Consumed {
    pub delivered: u64,
    pub lost: Option<u64>,
}

/// Starts the run on `w`, runs `consume` on this (the consumer) thread and
/// returns when it has drained. `consume` gets a flag raised when the
/// workload is over, and the expected number of operations.
pub fn measure(
    w: &Workload,
    pace: Pace,
    consume: impl FnOnce(&AtomicBool, u64) -> Consumed,
) -> std::io::Result<RunResult> {
    let finished = AtomicBool::new(false);
    std::thread::scope(|s| {
        // Waits for the workload's report; spawned (and so allocated)
        // before the heap is sampled.
        let waiter = s.spawn(|| {
            let done = w.wait();
            finished.store(true, Ordering::SeqCst);
            done
        });
        let heap0 = Heap::now();
        let cpu0 = cpu::process_cpu_ns();
        if let Err(e) = w.start(pace) {
            finished.store(true, Ordering::SeqCst);
            return Err(e);
        }
        let consumed = consume(&finished, pace.ops());
        let consumer_cpu = cpu::process_cpu_ns() - cpu0;
        let heap = Heap::now().since(heap0);
        let done = waiter.join().expect("the waiter thread panicked")?;
        Ok(RunResult {
            ns_per_op: done.ns_per_op(),
            ops: done.ops,
            achieved_rate: done.ops as f64 * 1e9 / done.elapsed_ns.max(1) as f64,
            delivered: consumed.delivered,
            lost: consumed.lost,
            heap_bytes: heap.bytes,
            heap_allocs: heap.allocs,
            consumer_cpu_ns: Some(consumer_cpu),
            workload_cpu_ns: done.cpu_ns,
            open_errors: done.errors,
            setup_s: None,
            teardown_s: None,
        })
    })
}

/// No listener: waits for the workload (sleeping, so it costs nothing).
pub fn baseline(w: &Workload, pace: Pace) -> std::io::Result<RunResult> {
    let mut r = measure(w, pace, |finished, _| {
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

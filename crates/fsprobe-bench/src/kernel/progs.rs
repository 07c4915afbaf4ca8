//! Run-time statistics of a listener's BPF programs: `run_time_ns` and
//! `run_cnt` of `bpf_prog_info`, which the kernel keeps while statistics
//! are enabled (see stats.rs). A run's figures are the change between a
//! sample taken just before the workload starts and one taken when it ends.
//!
//! The syscall hooks run on every syscall of every task, so a run's counts
//! include the runs caused by other processes meanwhile: "runs per
//! operation" shows how many there were.
use std::os::fd::{AsRawFd, OwnedFd};

use serde::{Deserialize, Serialize};

/// One program's counters at one moment.
#[derive(Debug, Clone)]
pub struct Sample {
    pub id: u32,
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// What one program did during a run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct ProgRun {
    pub name: String,
    pub run_time_ns: u64,
    pub run_cnt: u64,
}

/// The programs of one listener, held open by id for as long as it runs.
#[derive(Debug, Default)]
pub struct Progs {
    fds: Vec<(u32, OwnedFd)>,
}

impl Progs {
    /// No programs (a baseline run, or a tool without BPF).
    pub fn none() -> Progs {
        Progs::default()
    }

    /// The programs process `pid` (this one for `None`) holds now.
    pub fn of(pid: Option<u32>) -> Progs {
        let fds = super::held(pid)
            .progs
            .into_iter()
            .filter_map(|id| {
                // SAFETY: a plain syscall wrapper; the id may be stale, then
                // it fails.
                let fd = unsafe { libbpf_sys::bpf_prog_get_fd_by_id(id) };
                Some((id, super::owned(fd)?))
            })
            .collect();
        Progs { fds }
    }

    pub fn is_empty(&self) -> bool {
        self.fds.is_empty()
    }

    /// The counters of every program now.
    pub fn sample(&self) -> Vec<Sample> {
        self.fds
            .iter()
            .filter_map(|(id, fd)| {
                // SAFETY: bpf_prog_info is plain data; all-zero is valid.
                let mut info: libbpf_sys::bpf_prog_info = unsafe { std::mem::zeroed() };
                let mut len = std::mem::size_of_val(&info) as u32;
                // SAFETY: info and len describe a writable buffer of len bytes.
                let rc = unsafe {
                    libbpf_sys::bpf_prog_get_info_by_fd(fd.as_raw_fd(), &mut info, &mut len)
                };
                (rc == 0).then(|| Sample {
                    id: *id,
                    name: super::c_name(&info.name),
                    run_time_ns: info.run_time_ns,
                    run_cnt: info.run_cnt,
                })
            })
            .collect()
    }
}

/// Per program, the change from `before` to `after`; programs that did
/// not run are left out.
pub fn delta(before: &[Sample], after: &[Sample]) -> Vec<ProgRun> {
    after
        .iter()
        .filter_map(|a| {
            let b = before.iter().find(|b| b.id == a.id)?;
            let run_cnt = a.run_cnt.saturating_sub(b.run_cnt);
            (run_cnt > 0).then(|| ProgRun {
                name: a.name.clone(),
                run_time_ns: a.run_time_ns.saturating_sub(b.run_time_ns),
                run_cnt,
            })
        })
        .collect()
}

/// One program's figures over a listener's runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProgFigure {
    pub name: String,
    /// In-kernel time of the program over the runs, per operation.
    pub ns_per_op: f64,
    /// How often it ran per operation.
    pub runs_per_op: f64,
    /// Its mean time per run.
    pub ns_per_run: f64,
}

/// Per program name (a name may stand for several programs, e.g. one per
/// probe started), the totals of `runs` over `ops` operations; sorted by
/// time, largest first.
pub fn figures<'a>(runs: impl IntoIterator<Item = &'a ProgRun>, ops: u64) -> Vec<ProgFigure> {
    let mut totals: Vec<(String, u64, u64)> = Vec::new();
    for r in runs {
        match totals.iter_mut().find(|t| t.0 == r.name) {
            Some(t) => (t.1, t.2) = (t.1 + r.run_time_ns, t.2 + r.run_cnt),
            None => totals.push((r.name.clone(), r.run_time_ns, r.run_cnt)),
        }
    }
    let ops = ops.max(1) as f64;
    let mut out: Vec<ProgFigure> = totals
        .into_iter()
        .map(|(name, ns, cnt)| ProgFigure {
            name,
            ns_per_op: ns as f64 / ops,
            runs_per_op: cnt as f64 / ops,
            ns_per_run: ns as f64 / cnt.max(1) as f64,
        })
        .collect();
    out.sort_by(|a, b| b.ns_per_op.total_cmp(&a.ns_per_op));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(id: u32, name: &str, ns: u64, cnt: u64) -> Sample {
        Sample {
            id,
            name: name.into(),
            run_time_ns: ns,
            run_cnt: cnt,
        }
    }

    #[test]
    fn deltas_leave_out_idle_programs_and_figures_add_up_by_name() {
        let before = [
            sample(1, "enter", 100, 10),
            sample(2, "exit", 50, 5),
            sample(3, "idle", 0, 0),
        ];
        let after = [
            sample(1, "enter", 1100, 30),
            sample(2, "exit", 450, 25),
            sample(3, "idle", 0, 0),
        ];
        let d = delta(&before, &after);
        assert_eq!(d.len(), 2);
        assert_eq!((d[0].run_time_ns, d[0].run_cnt), (1000, 20));
        // Two probes' runs of the same program name add up.
        let f = figures(d.iter().chain(&d), 10);
        assert_eq!(f[0].name, "enter");
        assert_eq!(
            (f[0].ns_per_op, f[0].runs_per_op, f[0].ns_per_run),
            (200.0, 4.0, 50.0)
        );
        assert_eq!(
            (f[1].ns_per_op, f[1].runs_per_op, f[1].ns_per_run),
            (80.0, 4.0, 20.0)
        );
    }
}

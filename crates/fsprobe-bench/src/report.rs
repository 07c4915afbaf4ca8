//! The results: one JSON document, and the same figures as Markdown.
use fsprobe::Transport;
use serde::{Deserialize, Serialize};

use crate::cli_output::CliRun;
use crate::kernel::progs::{self, ProgFigure};
use crate::machine::Machine;
use crate::rate::RateResult;
use crate::run::{Cpus, RunResult, WarmPass};
use crate::startup::Startup;
use crate::stats::Spread;
use crate::tree::Scenario;

#[derive(Debug, Serialize, Deserialize)]
pub struct Method {
    pub iterations: u64,
    pub repetitions: usize,
    pub peer_repetitions: usize,
    pub seed: u64,
    pub cpus: Cpus,
    pub default_buffer_pages: usize,
    pub sweep_pages: Vec<usize>,
    /// Perf buffer sizes (pages per CPU); none before it was swept.
    #[serde(default)]
    pub sweep_pages_perf: Vec<usize>,
    pub sweep_repetitions: usize,
    pub rate_step_secs: f64,
    pub rate_pages: Vec<usize>,
    pub rate_scenarios: Vec<u8>,
    pub backend: String,
    /// BPF run-time statistics: how they were enabled, or why not.
    #[serde(default)]
    pub bpf_stats: String,
    /// Parts of the benchmark left out (`--skip`, or quick mode).
    #[serde(default)]
    pub skipped: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Results {
    pub benchmark: String,
    pub fsprobe_version: String,
    pub quick: bool,
    pub started: String,
    pub wall_s: f64,
    pub machine: Machine,
    pub method: Method,
    pub notes: Vec<String>,
    pub peers_unavailable: Vec<(String, String)>,
    pub scenarios: Vec<ScenarioResult>,
    /// Kernel-to-user transports and whether they were measured.
    pub transports: Vec<(String, String)>,
    pub max_rate: Vec<RateResult>,
    /// The highest clean rate with one and with two producer processes.
    #[serde(default)]
    pub producers: Vec<RateResult>,
    /// The benchmark was broken (a probe or a workload did not start, an
    /// open failed): the exit code is 1.
    pub failures: Vec<String>,
    /// Findings about the library (events neither delivered nor counted
    /// as lost, in-stream notices that disagree with the summary). They
    /// are results, not failures: the exit code stays 0.
    #[serde(default)]
    pub problems: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct ScenarioResult {
    pub scenario: Scenario,
    pub dirs: usize,
    pub build_s: f64,
    pub max_path_bytes: usize,
    pub watched_inodes: Option<u64>,
    /// Baseline, fsprobe per mode, peers.
    pub rows: Vec<Row>,
    /// fsprobe (default mode) per buffer size, ring buffer then perf
    /// buffer (see `Row::transport`).
    pub sweep: Vec<Row>,
    /// With the ring buffer, the smallest size from which every larger
    /// size lost nothing.
    pub drop_limit_pages: Option<usize>,
    /// The same with the perf buffer (pages per CPU); none in results
    /// from before the perf buffer was swept.
    #[serde(default)]
    pub drop_limit_pages_perf: Option<usize>,
    /// Time to ready and memory with the whole tree watched, warm and cold
    /// (scenario 4), next to inotifywait.
    #[serde(default)]
    pub startup: Option<Startup>,
    /// The CLI binary's output cost (scenario 6).
    #[serde(default)]
    pub cli_output: Vec<CliRun>,
}

fn ring_buffer() -> String {
    Transport::RingBuffer.name().into()
}

/// One listener (or one buffer size) over its repeated runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Row {
    pub tool: String,
    pub mode: String,
    /// fsprobe's kernel-to-user transport: ring_buffer but in the perf
    /// buffer rows of the sweep (and in results from before it had one).
    #[serde(default = "ring_buffer")]
    pub transport: String,
    pub buffer_pages: Option<usize>,
    /// "ok", "not runnable: …" (a peer that is not installed or did not
    /// start), "accounting: …" or "failed: …".
    pub status: String,
    pub ns_per_op: Option<Spread>,
    pub ratio_to_baseline: Option<f64>,
    pub expected: u64,
    pub delivered: u64,
    pub lost: Option<u64>,
    pub bytes_per_event: Option<f64>,
    pub allocs_per_event: Option<f64>,
    /// The same over the warm passes (run::WarmPass): the steady state.
    #[serde(default)]
    pub warm_bytes_per_event: Option<f64>,
    #[serde(default)]
    pub warm_allocs_per_event: Option<f64>,
    pub consumer_cpu_ns_per_event: Option<f64>,
    /// The warm passes' ns/op, their median over the baseline's median,
    /// each over its own round's baseline, and their BPF ns/op: the steady
    /// state, every directory already taught.
    #[serde(default)]
    pub warm_ns_per_op: Option<Spread>,
    #[serde(default)]
    pub warm_ratio_to_baseline: Option<f64>,
    #[serde(default)]
    pub warm_ratio_spread: Option<Spread>,
    #[serde(default)]
    pub warm_bpf_ns_per_op: Option<f64>,
    /// The statistics passes' ns/op (run::RunResult::stats_pass): the
    /// steady state with BPF statistics on, which `bpf_ns_per_op` then
    /// comes from (`bpf_in_stats_pass()`). Before they existed, the first
    /// pass was timed with statistics on, and gave `bpf_ns_per_op`.
    #[serde(default)]
    pub stats_ns_per_op: Option<Spread>,
    /// Per round, ns/op over the same round's baseline (min–max, median).
    #[serde(default)]
    pub ratio_spread: Option<Spread>,
    /// In-kernel time of the listener's BPF programs per operation (all
    /// programs), and per program.
    #[serde(default)]
    pub bpf_ns_per_op: Option<f64>,
    #[serde(default)]
    pub bpf_programs: Vec<ProgFigure>,
    /// fsprobe's path walks over the runs: to the root, and cut short by
    /// a cache.
    #[serde(default)]
    pub walks_full: Option<u64>,
    #[serde(default)]
    pub walks_cached: Option<u64>,
    /// The largest `memlock` of the listener's BPF maps and resident size
    /// of its process over the runs.
    #[serde(default)]
    pub kernel_map_bytes: Option<u64>,
    #[serde(default)]
    pub rss_bytes: Option<u64>,
    pub note: Option<String>,
    pub runs: Vec<RunResult>,
}

impl Row {
    pub fn status(tool: &str, mode: &str, pages: Option<usize>, status: String) -> Row {
        Row {
            tool: tool.into(),
            mode: mode.into(),
            transport: ring_buffer(),
            buffer_pages: pages,
            status,
            ns_per_op: None,
            ratio_to_baseline: None,
            expected: 0,
            delivered: 0,
            lost: None,
            bytes_per_event: None,
            allocs_per_event: None,
            warm_bytes_per_event: None,
            warm_allocs_per_event: None,
            warm_ns_per_op: None,
            warm_ratio_to_baseline: None,
            warm_ratio_spread: None,
            warm_bpf_ns_per_op: None,
            stats_ns_per_op: None,
            consumer_cpu_ns_per_event: None,
            ratio_spread: None,
            bpf_ns_per_op: None,
            bpf_programs: Vec::new(),
            walks_full: None,
            walks_cached: None,
            kernel_map_bytes: None,
            rss_bytes: None,
            note: None,
            runs: Vec::new(),
        }
    }

    /// Totals over the runs; per-event figures are totals over delivered
    /// events. `heap` is false for peers (their heap is not ours).
    pub fn finish(&mut self, baseline: Option<f64>, heap: bool) {
        let runs = &self.runs;
        let ns: Vec<f64> = runs.iter().map(|r| r.ns_per_op).collect();
        self.ns_per_op = Spread::of(&ns);
        self.ratio_to_baseline = over_baseline(self.ns_per_op, baseline);
        self.expected = runs.iter().map(|r| r.ops).sum();
        self.delivered = runs.iter().map(|r| r.delivered).sum();
        self.lost = match runs.is_empty() {
            true => None,
            false => runs.iter().map(|r| r.lost).sum(),
        };
        let per_event = |x: u64| (self.delivered > 0).then(|| x as f64 / self.delivered as f64);
        if heap {
            self.bytes_per_event = per_event(runs.iter().map(|r| r.heap_bytes).sum());
            self.allocs_per_event = per_event(runs.iter().map(|r| r.heap_allocs).sum());
            let warm: Vec<_> = runs.iter().filter_map(|r| r.warm.as_ref()).collect();
            let events: u64 = warm.iter().map(|w| w.delivered).sum();
            let per_warm_event = |x: u64| (events > 0).then(|| x as f64 / events as f64);
            self.warm_bytes_per_event = per_warm_event(warm.iter().map(|w| w.heap_bytes).sum());
            self.warm_allocs_per_event = per_warm_event(warm.iter().map(|w| w.heap_allocs).sum());
        }
        let cpu: Option<u64> = runs.iter().map(|r| r.consumer_cpu_ns).sum();
        self.consumer_cpu_ns_per_event = cpu.and_then(per_event);
        let paired: Vec<f64> = runs
            .iter()
            .filter_map(|r| Some(r.ns_per_op / r.round_baseline_ns.filter(|&b| b > 0.0)?))
            .collect();
        self.ratio_spread = Spread::of(&paired);
        let with_bpf = || runs.iter().filter(|r| !r.bpf.is_empty());
        let bpf_ops = with_bpf().map(|r| r.ops).sum();
        self.bpf_programs = progs::figures(with_bpf().flat_map(|r| &r.bpf), bpf_ops);
        self.bpf_ns_per_op = (!self.bpf_programs.is_empty())
            .then(|| self.bpf_programs.iter().map(|p| p.ns_per_op).sum());
        if !runs.is_empty() {
            self.walks_full = runs.iter().map(|r| r.walks_full).sum();
            self.walks_cached = runs.iter().map(|r| r.walks_cached).sum();
        }
        self.kernel_map_bytes = runs.iter().filter_map(|r| r.kernel_map_bytes).max();
        self.rss_bytes = runs.iter().filter_map(|r| r.rss_bytes).max();
        if self.status.is_empty() {
            self.status = "ok".into();
        }
        let stats: Vec<f64> = (runs.iter())
            .filter_map(|r| Some(r.stats_pass.as_ref()?.ns_per_op))
            .collect();
        self.stats_ns_per_op = Spread::of(&stats);
        self.finish_warm(baseline);
    }

    /// Whether `bpf_ns_per_op` comes from statistics passes (the steady
    /// state), not from the first pass.
    pub fn bpf_in_stats_pass(&self) -> bool {
        self.stats_ns_per_op.is_some()
    }

    /// The warm passes' time and BPF time (`finish`).
    fn finish_warm(&mut self, baseline: Option<f64>) {
        let warm: Vec<(&RunResult, &WarmPass)> = (self.runs.iter())
            .filter_map(|r| Some((r, r.warm.as_ref().filter(|w| w.ns_per_op > 0.0)?)))
            .collect();
        let ns: Vec<f64> = warm.iter().map(|(_, w)| w.ns_per_op).collect();
        self.warm_ns_per_op = Spread::of(&ns);
        self.warm_ratio_to_baseline = over_baseline(self.warm_ns_per_op, baseline);
        let paired: Vec<f64> = (warm.iter())
            .filter_map(|(r, w)| Some(w.ns_per_op / r.round_baseline_ns.filter(|&b| b > 0.0)?))
            .collect();
        self.warm_ratio_spread = Spread::of(&paired);
        let with_bpf = || warm.iter().filter(|(_, w)| !w.bpf.is_empty());
        let ops = with_bpf().map(|(_, w)| w.ops).sum();
        let programs = progs::figures(with_bpf().flat_map(|(_, w)| &w.bpf), ops);
        self.warm_bpf_ns_per_op =
            (!programs.is_empty()).then(|| programs.iter().map(|p| p.ns_per_op).sum());
    }
}

/// The median of `ns` over the baseline's median.
fn over_baseline(ns: Option<Spread>, baseline: Option<f64>) -> Option<f64> {
    match (ns, baseline) {
        (Some(s), Some(b)) if b > 0.0 => Some(s.median / b),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::progs::ProgRun;

    fn run(ns: f64, round_base: f64, warm_ns: f64, warm_bpf_ns: u64) -> RunResult {
        let prog = |run_time_ns| ProgRun {
            name: "fsp_sys_exit".into(),
            run_time_ns,
            run_cnt: 2_000,
        };
        RunResult {
            ns_per_op: ns,
            ops: 1_000,
            round_baseline_ns: Some(round_base),
            bpf: vec![prog(3_000_000)],
            warm: Some(WarmPass {
                ns_per_op: warm_ns,
                ops: 1_000,
                bpf: vec![prog(warm_bpf_ns)],
                delivered: 1_000,
                ..WarmPass::default()
            }),
            ..RunResult::default()
        }
    }

    #[test]
    fn the_warm_passes_have_their_own_time_ratio_and_bpf_time() {
        let mut row = Row::status("fsprobe", "perf_buffer", Some(128), String::new());
        row.runs = vec![
            run(6_000.0, 4_000.0, 5_000.0, 1_000_000),
            run(7_000.0, 5_000.0, 5_500.0, 1_400_000),
        ];
        row.finish(Some(4_000.0), true);
        // The first passes' figures are untouched by the warm passes'.
        assert_eq!(row.ns_per_op.map(|s| s.median), Some(6_500.0));
        assert_eq!(row.bpf_ns_per_op, Some(3_000.0));
        let warm = row.warm_ns_per_op.expect("warm passes");
        assert_eq!(
            (warm.min, warm.median, warm.max),
            (5_000.0, 5_250.0, 5_500.0)
        );
        assert_eq!(row.warm_ratio_to_baseline, Some(5_250.0 / 4_000.0));
        let per_round = row.warm_ratio_spread.expect("paired ratios");
        assert_eq!(
            (per_round.min, per_round.max),
            (5_500.0 / 5_000.0, 5_000.0 / 4_000.0)
        );
        // 2.4 ms of BPF time over 2,000 warm operations.
        assert_eq!(row.warm_bpf_ns_per_op, Some(1_200.0));
    }

    #[test]
    fn the_statistics_passes_give_the_bpf_time_and_their_own_ns_per_op() {
        let mut row = Row::status("fsprobe", "perf_buffer", Some(128), String::new());
        row.runs = [(5_800.0, 800_000), (6_200.0, 1_200_000)]
            .into_iter()
            .map(|(stats_ns, bpf_ns)| {
                let mut r = run(6_000.0, 4_000.0, 5_000.0, 0);
                r.warm.as_mut().expect("warm").bpf.clear();
                r.bpf = vec![ProgRun {
                    name: "fsp_sys_exit".into(),
                    run_time_ns: bpf_ns,
                    run_cnt: 2_000,
                }];
                r.stats_pass = Some(WarmPass {
                    ns_per_op: stats_ns,
                    ops: 1_000,
                    ..WarmPass::default()
                });
                r
            })
            .collect();
        row.finish(Some(4_000.0), true);
        assert!(row.bpf_in_stats_pass());
        assert_eq!(row.stats_ns_per_op.map(|s| s.median), Some(6_000.0));
        // 2 ms of BPF time over 2,000 operations; none in the warm passes.
        assert_eq!(row.bpf_ns_per_op, Some(1_000.0));
        assert_eq!(row.warm_bpf_ns_per_op, None);
        // The timed passes are the same as without statistics passes.
        assert_eq!(row.ns_per_op.map(|s| s.median), Some(6_000.0));
        assert_eq!(row.warm_ns_per_op.map(|s| s.median), Some(5_000.0));
    }

    #[test]
    fn results_from_before_the_warm_time_have_no_warm_figures() {
        let mut row = Row::status("fsprobe", "perf_buffer", Some(128), String::new());
        let mut old = run(6_000.0, 4_000.0, 0.0, 0);
        old.warm.as_mut().expect("warm").bpf.clear();
        row.runs = vec![old];
        row.finish(Some(4_000.0), true);
        assert!(row.warm_ns_per_op.is_none());
        assert_eq!(row.warm_ratio_to_baseline, None);
        assert_eq!(row.warm_bpf_ns_per_op, None);
    }
}

//! How much to run: the full benchmark or the quick CI check.
use std::path::PathBuf;

use fsprobe::{ResolutionMode, Transport};

use crate::Args;
use crate::peers::PeerKind;
use crate::rate::Search;
use crate::scenario::MODES;
use crate::startup;
use crate::tree::{SCENARIOS, Scenario};

/// The library's (and the seed's) default ring buffer size.
pub const DEFAULT_PAGES: usize = 128;

/// The scenario of the rename loop, the CLI output cost and the producer
/// scaling (the seed's "most interesting" one).
pub const SIDE_SCENARIO: u8 = 6;
/// The scenario of time to ready and memory: 40,000 dirs + 80,000 files.
pub const STARTUP_SCENARIO: u8 = 4;

/// Parts of the benchmark that `--skip` can leave out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Part {
    /// The buffer size sweep (both transports).
    Sweep,
    /// The highest clean rate per resolution mode.
    MaxRate,
    /// The highest clean rate with one and with two producer processes.
    Producers,
    /// Scenario 6 with the unrelated rename loop.
    RenameLoop,
    /// The CLI binary's JSON output cost.
    CliOutput,
    /// Time to ready and memory on scenario 4's tree, warm and cold.
    Startup,
}

impl Part {
    pub fn name(self) -> &'static str {
        match self {
            Part::Sweep => "sweep",
            Part::MaxRate => "max-rate",
            Part::Producers => "producers",
            Part::RenameLoop => "rename-loop",
            Part::CliOutput => "cli-output",
            Part::Startup => "startup",
        }
    }
}

pub struct Plan {
    pub scenarios: Vec<Scenario>,
    pub iterations: u64,
    /// B P B P … rounds per scenario.
    pub reps: usize,
    /// Of those rounds, how many also run the peers.
    pub peer_reps: usize,
    /// Ring buffer sizes of the sweep.
    pub sweep_pages: Vec<usize>,
    /// Perf buffer sizes of the sweep (pages per CPU).
    pub sweep_pages_perf: Vec<usize>,
    pub sweep_reps: usize,
    /// Step length, start and bisections; `pages` is set per size.
    pub rate: Search,
    /// Ring buffer sizes the rate search runs with.
    pub rate_pages: Vec<usize>,
    pub rate_scenarios: Vec<u8>,
    /// Producer counts of the scaling search, and its template.
    pub producers: Vec<usize>,
    pub producer_search: Search,
    /// Resolution modes also run with the rename loop, every round.
    pub rename_modes: Vec<ResolutionMode>,
    pub startup: startup::Counts,
    pub skip: Vec<Part>,
    /// Turn on BPF run-time statistics for the run.
    pub bpf_stats: bool,
    /// The CLI binary (for its output cost and time to ready).
    pub fsprobe_bin: PathBuf,
    pub peers: Vec<PeerKind>,
    pub install: bool,
    pub seed: u64,
    pub out: PathBuf,
}

impl Plan {
    pub fn new(args: &Args) -> Plan {
        let ids: Vec<u8> = match (&args.scenarios[..], args.quick) {
            ([], true) => vec![6],
            ([], false) => SCENARIOS.iter().map(|s| s.id).collect(),
            (ids, _) => ids.to_vec(),
        };
        let scenarios = SCENARIOS
            .iter()
            .filter(|s| ids.contains(&s.id))
            .copied()
            .collect();
        let all_pages: Vec<usize> = (3..=12).map(|p| 1 << p).collect();
        // Quick mode: no installs, and no auditd (enabling audit changes
        // the machine until reboot; see peers/audit.rs).
        let peers = match (args.no_peers, args.quick) {
            (true, _) => Vec::new(),
            _ if !args.peers.is_empty() => args.peers.clone(),
            (false, true) => PeerKind::ALL
                .into_iter()
                .filter(|p| *p != PeerKind::Auditd)
                .collect(),
            (false, false) => PeerKind::ALL.to_vec(),
        };
        // The workspace's folders, wherever the bench is started from.
        let manifest = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
        let workspace = manifest.ancestors().nth(2).unwrap_or(manifest);
        let out = args.out.clone().unwrap_or_else(|| {
            if args.quick {
                std::env::var_os("CARGO_TARGET_DIR")
                    .map_or_else(|| workspace.join("target"), PathBuf::from)
                    .join("fsprobe-bench-quick")
            } else {
                workspace.join("bench-results")
            }
        });
        // Part of the wall time is fixed cost per probe: each run starts a
        // fresh one (load, attach, seed the tree). So the plans count probes.
        let mut plan = if args.quick {
            // Scenario 6, 2 rounds: ~14 probes, about 2.5 minutes.
            Plan {
                scenarios,
                iterations: 20_000,
                reps: 2,
                peer_reps: 1,
                // 128 is the default size: its runs are reused. The perf
                // buffer runs every size (~8 s each): two keep the quick
                // run well under 3 minutes.
                sweep_pages: vec![8, DEFAULT_PAGES, 4096],
                sweep_pages_perf: vec![8, 4096],
                sweep_reps: 1,
                rate: Search {
                    secs: 1.0,
                    start_rate: 50_000,
                    bisections: 1,
                    pages: DEFAULT_PAGES,
                    producers: 1,
                    ticked: false,
                },
                rate_pages: vec![DEFAULT_PAGES],
                rate_scenarios: vec![6],
                producers: vec![1, 2],
                producer_search: Search {
                    secs: 1.0,
                    start_rate: 50_000,
                    bisections: 0,
                    pages: DEFAULT_PAGES,
                    producers: 1,
                    ticked: true,
                },
                // The default mode only: two runs.
                rename_modes: vec![ResolutionMode::default()],
                startup: startup::Counts { warm: 1, cold: 1 },
                skip: Vec::new(),
                bpf_stats: !args.no_bpf_stats,
                fsprobe_bin: crate::cli_output::locate(args.fsprobe_bin.as_deref()),
                peers,
                install: false,
                seed: args.seed,
                out,
            }
        } else {
            Plan {
                scenarios,
                iterations: 120_000,
                // B + each mode, 3 times; the first round also runs
                // fsprobe hooks-only and every peer.
                reps: 3,
                peer_reps: 1,
                sweep_pages: all_pages.clone(),
                sweep_pages_perf: all_pages,
                sweep_reps: 1,
                rate: Search {
                    secs: 10.0,
                    start_rate: 20_000,
                    bisections: 3,
                    pages: DEFAULT_PAGES,
                    producers: 1,
                    ticked: false,
                },
                rate_pages: vec![DEFAULT_PAGES],
                rate_scenarios: vec![6],
                producers: vec![1, 2],
                producer_search: Search {
                    secs: 10.0,
                    start_rate: 20_000,
                    bisections: 3,
                    pages: DEFAULT_PAGES,
                    producers: 1,
                    ticked: true,
                },
                rename_modes: MODES.to_vec(),
                startup: startup::Counts { warm: 3, cold: 2 },
                skip: Vec::new(),
                bpf_stats: !args.no_bpf_stats,
                fsprobe_bin: crate::cli_output::locate(args.fsprobe_bin.as_deref()),
                peers,
                install: !args.no_install,
                seed: args.seed,
                out,
            }
        };
        if let Some(n) = args.iterations {
            plan.iterations = n.max(1);
        }
        plan.skip.extend(args.skip.iter().copied());
        plan
    }

    /// Whether `part` runs.
    pub fn runs(&self, part: Part) -> bool {
        !self.skip.contains(&part)
    }

    /// The sweep's sizes for `transport`.
    pub fn sizes(&self, transport: Transport) -> &[usize] {
        match transport {
            Transport::RingBuffer => &self.sweep_pages,
            Transport::PerfBuffer => &self.sweep_pages_perf,
        }
    }
}

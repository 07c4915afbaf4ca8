//! How much to run: the full benchmark or the quick CI check.
use std::path::PathBuf;

use fsprobe::Transport;

use crate::Args;
use crate::peers::PeerKind;
use crate::rate::Search;
use crate::tree::{SCENARIOS, Scenario};

/// The library's (and the seed's) default ring buffer size.
pub const DEFAULT_PAGES: usize = 128;

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
            (false, true) => vec![PeerKind::Inotifywait, PeerKind::Fatrace, PeerKind::Bpftrace],
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
                },
                rate_pages: vec![DEFAULT_PAGES],
                rate_scenarios: vec![6],
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
                },
                rate_pages: vec![DEFAULT_PAGES],
                rate_scenarios: vec![6],
                peers,
                install: !args.no_install,
                seed: args.seed,
                out,
            }
        };
        if let Some(n) = args.iterations {
            plan.iterations = n.max(1);
        }
        plan
    }

    /// The sweep's sizes for `transport`.
    pub fn sizes(&self, transport: Transport) -> &[usize] {
        match transport {
            Transport::RingBuffer => &self.sweep_pages,
            Transport::PerfBuffer => &self.sweep_pages_perf,
        }
    }
}

//! fsprobe-bench: the seed's benchmark (six trees, 120,000 open+close of a
//! random file), reproduced on the fsprobe library and extended with heap
//! and CPU per event, a buffer size sweep per transport (ring buffer, perf
//! buffer), the highest clean rate, and peer tools. See README.md.
/// Progress on stderr, with the time since the start.
macro_rules! say {
    ($($t:tt)*) => {
        eprintln!("fsprobe-bench [{:6.1} s] {}", crate::START.get_or_init(std::time::Instant::now).elapsed().as_secs_f64(), format!($($t)*))
    };
}

mod alloc;
mod charts;
mod cli_output;
mod cpu;
mod kernel;
mod machine;
mod markdown;
mod peers;
mod plan;
mod probe_run;
mod procfs;
mod rate;
mod rename_loop;
mod report;
mod run;
mod scenario;
mod soak;
mod startup;
mod stats;
mod stop;
mod tree;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use clap::Parser;

use peers::Peers;
use plan::Plan;
use report::{Method, Results};
use run::Cpus;

static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();

#[global_allocator]
static ALLOC: alloc::Counting = alloc::Counting;

/// Benchmarks fsprobe the way the seed (FSProbe) did, plus peers.
#[derive(Debug, Parser)]
#[command(name = "fsprobe-bench")]
pub struct Args {
    /// A short run (under 3 minutes) that checks the benchmark still works:
    /// scenario 6, 20,000 operations, 2 rounds, 3 ring buffer sizes and 2
    /// perf buffer sizes, 1 s rate steps, installed peers but auditd. Fails
    /// only when the benchmark is broken, never on a timing or a loss.
    #[arg(long)]
    pub quick: bool,
    /// Where results.json, results.md and the charts go
    /// [default: the workspace's bench-results, or with --quick
    /// $CARGO_TARGET_DIR/fsprobe-bench-quick (target/fsprobe-bench-quick)].
    #[arg(long)]
    pub out: Option<PathBuf>,
    /// Parent directory of the scratch trees [default: the temp dir].
    #[arg(long)]
    pub scratch: Option<PathBuf>,
    /// Scenarios to run, e.g. 1,6 [default: all; quick: 6].
    #[arg(long, value_delimiter = ',')]
    pub scenarios: Vec<u8>,
    /// Leave out the peer tools.
    #[arg(long)]
    pub no_peers: bool,
    /// Peer tools to run [default: all; quick: all but auditd].
    #[arg(long, value_delimiter = ',', value_enum)]
    pub peers: Vec<peers::PeerKind>,
    /// Do not apt-get install missing peer tools.
    #[arg(long)]
    pub no_install: bool,
    /// Operations per run [default: 120,000; quick: 20,000].
    #[arg(long)]
    pub iterations: Option<u64>,
    /// Seed of the tree names and of the file sequence.
    #[arg(long, default_value_t = 0x5eed)]
    pub seed: u64,
    /// Only redraw results.md and the charts from DIR/results.json (into
    /// --out, default DIR); runs nothing.
    #[arg(long, value_name = "DIR")]
    pub render: Option<PathBuf>,
    /// A remark to record with the results (e.g. what else ran).
    #[arg(long)]
    pub note: Vec<String>,
    /// Leave out parts: sweep, max-rate, producers, rename-loop,
    /// cli-output, startup.
    #[arg(long, value_delimiter = ',', value_enum)]
    pub skip: Vec<plan::Part>,
    /// Leave BPF run-time statistics off: no in-kernel ns per program
    /// (with them on, every BPF program run pays for two clock reads).
    #[arg(long)]
    pub no_bpf_stats: bool,
    /// The fsprobe CLI binary, for its output cost and time to ready
    /// [default: $FSPROBE_BIN, else `fsprobe` next to this executable].
    #[arg(long, value_name = "PATH")]
    pub fsprobe_bin: Option<PathBuf>,
    /// Run only the soak test (not in CI): a sustained rate of churn on a
    /// watched tree, sampled every --soak-sample-secs; results in
    /// <out>/soak/.
    #[arg(long)]
    pub soak: bool,
    /// Length of the soak test, in minutes.
    #[arg(long, default_value_t = 30)]
    pub soak_minutes: u64,
    /// Events per second of the soak test's churn.
    #[arg(long, default_value_t = 50_000)]
    pub soak_rate: u64,
    /// Seconds between two samples of the soak test.
    #[arg(long, default_value_t = 60)]
    pub soak_sample_secs: u64,
}

fn load_average() -> String {
    let text = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    text.split_whitespace()
        .take(3)
        .collect::<Vec<_>>()
        .join(" ")
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(dir) = &args.render {
        return render(dir, args.out.as_deref().unwrap_or(dir));
    }
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("fsprobe-bench: loading BPF programs needs root");
        return ExitCode::from(2);
    }
    let t0 = *START.get_or_init(Instant::now);
    let started = fsprobe::rfc3339(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as i128),
    );
    let plan = Plan::new(&args);
    stop::install();
    if args.soak {
        return soak_run(&args, &plan);
    }
    // On only for the passes that read them (kernel/stats.rs).
    let bpf_stats = kernel::stats::init(plan.bpf_stats);
    say!("BPF run-time statistics: {}", bpf_stats.describe());
    let n = cpu::cpu_count();
    let cpus = Cpus {
        workload: 0,
        consumer: usize::from(n > 1),
    };
    // Everything started from here (the probe's worker, peer tools)
    // inherits the consumer CPU.
    if let Err(e) = cpu::pin_current_thread(cpus.consumer) {
        eprintln!("fsprobe-bench: cannot pin to CPU {}: {e}", cpus.consumer);
    }
    let scratch_parent = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    let scratch = scratch_parent.join(format!("fsprobe-bench-{}", std::process::id()));
    let mut notes = args.note.clone();
    notes.push(format!("Load average at start: {}.", load_average()));
    let mut peers = Peers::setup(&plan.peers, plan.install);
    let mut failures = Vec::new();
    let mut problems = Vec::new();
    let mut scenarios = Vec::new();
    let mut max_rate = Vec::new();
    let mut producers = Vec::new();
    let mut backend = String::from("unknown");
    for s in &plan.scenarios {
        if stop::requested() {
            break;
        }
        say!("scenario {}", s.label());
        let ctx = scenario::Ctx {
            plan: &plan,
            cpus,
            scratch: &scratch,
            peers: &mut peers,
            failures: &mut failures,
            problems: &mut problems,
            backend: &mut backend,
            watched: None,
        };
        if let Some(outcome) = scenario::run(s, ctx) {
            scenarios.push(outcome.result);
            max_rate.extend(outcome.max_rate);
            producers.extend(outcome.producers);
        }
    }
    if stop::requested() {
        failures.push("interrupted: the results are partial".into());
    }
    let _ = std::fs::remove_dir_all(&scratch);
    notes.push(format!("Load average at end: {}.", load_average()));
    if peers.available.contains(&peers::PeerKind::Auditd) {
        notes.push("auditd peer: audit was enabled for its runs only, with `-a never,task` between them so that later tasks skip syscall auditing; the previous audit state (enabled flag, backlog, rules) was restored at the end.".into());
    }
    let peers_unavailable = peers
        .unavailable
        .iter()
        .map(|(p, why)| (p.label().to_string(), why.clone()))
        .collect();
    drop(peers);
    let results = Results {
        benchmark: "fsprobe-bench".into(),
        fsprobe_version: env!("CARGO_PKG_VERSION").into(),
        quick: args.quick,
        started,
        wall_s: t0.elapsed().as_secs_f64(),
        machine: machine::Machine::probe(&scratch_parent),
        method: Method {
            iterations: plan.iterations,
            repetitions: plan.reps,
            peer_repetitions: plan.peer_reps,
            seed: args.seed,
            cpus,
            default_buffer_pages: plan::DEFAULT_PAGES,
            sweep_pages: plan.sweep_pages.clone(),
            sweep_pages_perf: plan.sweep_pages_perf.clone(),
            sweep_repetitions: plan.sweep_reps,
            rate_step_secs: plan.rate.secs,
            rate_pages: plan.rate_pages.clone(),
            rate_scenarios: plan.rate_scenarios.clone(),
            backend,
            bpf_stats: bpf_stats.describe(),
            skipped: plan.skip.iter().map(|p| p.name().to_string()).collect(),
        },
        notes,
        peers_unavailable,
        scenarios,
        transports: vec![
            (
                "BPF ring buffer (ring_buffer, the default)".into(),
                "measured: one buffer of that many pages shared by all CPUs, a wakeup per quarter buffer pending".into(),
            ),
            (
                "BPF perf buffer, a perf event array (perf_buffer)".into(),
                "measured: one buffer of that many pages per CPU, a wakeup per record".into(),
            ),
        ],
        max_rate,
        producers,
        failures,
        problems,
    };
    if let Err(e) = write_outputs(&results, &plan.out) {
        eprintln!("fsprobe-bench: writing the results: {e}");
        return ExitCode::FAILURE;
    }
    say!("done; results in {}", plan.out.display());
    for p in &results.problems {
        eprintln!("fsprobe-bench: problem (reported, not a failure): {p}");
    }
    if results.failures.is_empty() {
        ExitCode::SUCCESS
    } else {
        for f in &results.failures {
            eprintln!("fsprobe-bench: FAILED: {f}");
        }
        ExitCode::FAILURE
    }
}

/// The soak test alone, with statistics on and the consumer pinned like
/// the benchmark's.
fn soak_run(args: &Args, plan: &Plan) -> ExitCode {
    let stats = kernel::stats::init(plan.bpf_stats);
    say!("BPF run-time statistics: {}", stats.describe());
    // The soak reads them all along.
    let _on = kernel::stats::on();
    let consumer = usize::from(cpu::cpu_count() > 1);
    if let Err(e) = cpu::pin_current_thread(consumer) {
        eprintln!("fsprobe-bench: cannot pin to CPU {consumer}: {e}");
    }
    let scratch = args.scratch.clone().unwrap_or_else(std::env::temp_dir);
    soak::run(args, &plan.out, &scratch, 0)
}

fn render(from: &std::path::Path, to: &std::path::Path) -> ExitCode {
    let read = std::fs::read_to_string(from.join("results.json"))
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Results>(&text).map_err(|e| e.to_string()));
    let written = read.and_then(|r| write_outputs(&r, to).map_err(|e| e.to_string()));
    match written {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fsprobe-bench: rendering {}: {e}", from.display());
            ExitCode::FAILURE
        }
    }
}

fn write_outputs(r: &Results, dir: &std::path::Path) -> Result<(), Box<dyn std::error::Error>> {
    std::fs::create_dir_all(dir)?;
    std::fs::write(
        dir.join("results.json"),
        serde_json::to_string_pretty(r)? + "\n",
    )?;
    std::fs::write(dir.join("results.md"), markdown::render(r))?;
    charts::write_all(r, dir)
}

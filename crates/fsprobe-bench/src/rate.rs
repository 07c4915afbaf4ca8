//! The highest event rate sustained for a fixed time with zero loss: the
//! rate doubles until a step loses events (or the workload thread cannot
//! go faster), then bisects between the last clean rate and the first lossy.
use fsprobe::{ResolutionMode, Transport};
use serde::{Deserialize, Serialize};

use crate::probe_run::{Session, Watch};
use crate::run::Cpus;
use crate::tree::Tree;
use crate::workload::{Pace, Workload};

/// Below this share of the asked rate, the producer is the limit.
const PRODUCER_SLACK: f64 = 0.97;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Step {
    pub rate: u64,
    pub achieved: f64,
    pub ops: u64,
    pub delivered: u64,
    pub lost: u64,
    pub ok: bool,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateResult {
    pub scenario: u8,
    pub mode: String,
    pub buffer_pages: usize,
    pub step_secs: f64,
    pub status: String,
    /// The highest clean rate found (events/s).
    pub max_rate: Option<f64>,
    /// The workload thread could not go faster: the real limit is higher.
    pub producer_bound: bool,
    /// Workload processes sharing the rate (1: CPU 0; 2: CPUs 0 and 1).
    #[serde(default = "one")]
    pub producers: usize,
    /// "spin" (`Pace::Rate`) or "ticked" (`Pace::Ticked`).
    #[serde(default = "spin")]
    pub pacing: String,
    pub steps: Vec<Step>,
}

fn one() -> usize {
    1
}

fn spin() -> String {
    "spin".into()
}

#[derive(Debug, Clone, Copy)]
pub struct Search {
    pub secs: f64,
    pub start_rate: u64,
    pub bisections: u32,
    pub pages: usize,
    /// Workload processes, on CPUs 0, 1, …; each takes an equal share.
    pub producers: usize,
    /// Sleep between millisecond batches (`Pace::Ticked`) instead of
    /// spinning between operations (`Pace::Rate`).
    pub ticked: bool,
}

impl Search {
    fn pace(&self, rate: u64) -> Pace {
        let (rate, secs) = (rate / self.producers.max(1) as u64, self.secs);
        match self.ticked {
            true => Pace::Ticked { rate, secs },
            false => Pace::Rate { rate, secs },
        }
    }
}

impl RateResult {
    /// A mode that could not run, with the reason.
    pub fn not_run(scenario: u8, mode: ResolutionMode, plan: &Search, status: String) -> Self {
        RateResult {
            scenario,
            mode: mode.name().into(),
            buffer_pages: plan.pages,
            step_secs: plan.secs,
            status,
            max_rate: None,
            producer_bound: false,
            producers: plan.producers,
            pacing: if plan.ticked { "ticked" } else { "spin" }.into(),
            steps: Vec::new(),
        }
    }
}

/// One probe for the whole search; a fresh workload process per step.
/// An `Err` is a broken benchmark (the probe or the workload did not
/// start); losses and accounting mismatches are in the result.
pub fn search(
    tree: &Tree,
    seq: &[u32],
    cpus: Cpus,
    scenario: u8,
    mode: ResolutionMode,
    plan: &Search,
) -> fsprobe::Result<RateResult> {
    let mut out = RateResult::not_run(scenario, mode, plan, "ok".into());
    let ring = Transport::RingBuffer;
    let mut session = Session::start(tree, Watch::Tree, mode, ring, plan.pages)?;
    let mut problems = Vec::new();
    let n = crate::cpu::cpu_count();
    let mut step = |rate: u64, out: &mut RateResult| -> fsprobe::Result<Step> {
        let pace = plan.pace(rate);
        let mut ws = Vec::new();
        for k in 0..plan.producers.max(1) {
            let cpu = (cpus.workload + k) % n;
            let w = Workload::spawn(tree, seq, cpu).map_err(|source| fsprobe::Error::Io {
                what: "starting the workload".into(),
                source,
            })?;
            ws.push(w);
        }
        let refs: Vec<&Workload> = ws.iter().collect();
        let run = session.run(&refs, pace)?;
        let r = &run.result;
        if r.open_errors > 0 {
            return Err(fsprobe::Error::Io {
                what: format!("{} opens failed at {rate}/s", r.open_errors),
                source: std::io::Error::other("the workload could not open its files"),
            });
        }
        if r.delivered + run.lost != r.ops {
            problems.push(format!(
                "at {rate}/s: delivered {} + lost {} != {} operations",
                r.delivered, run.lost, r.ops
            ));
        }
        let s = Step {
            rate,
            achieved: r.achieved_rate,
            ops: r.ops,
            delivered: r.delivered,
            lost: run.lost,
            ok: run.lost == 0 && r.delivered == r.ops,
        };
        say!(
            "  rate {rate}/s ({} producer(s)): achieved {:.0}/s, lost {}",
            plan.producers,
            s.achieved,
            s.lost
        );
        out.steps.push(s.clone());
        Ok(s)
    };
    let searched = (|| {
        let (mut lo, mut hi) = (0u64, None);
        let mut rate = plan.start_rate;
        while rate <= 20_000_000 && !crate::stop::requested() {
            let s = step(rate, &mut out)?;
            if !s.ok {
                hi = Some(rate);
                break;
            }
            if s.achieved < PRODUCER_SLACK * rate as f64 {
                out.producer_bound = true;
                out.max_rate = Some(s.achieved);
                return Ok(());
            }
            lo = rate;
            rate *= 2;
        }
        if let Some(mut hi) = hi {
            for _ in 0..plan.bisections {
                if crate::stop::requested() {
                    break;
                }
                let mid = (lo + hi) / 2;
                if step(mid, &mut out)?.ok {
                    lo = mid;
                } else {
                    hi = mid;
                }
            }
        }
        out.max_rate = (lo > 0).then_some(lo as f64);
        Ok(())
    })();
    let finished = session.finish();
    searched?;
    if let Some(e) = finished?.stream_error() {
        problems.push(e);
    }
    if !problems.is_empty() {
        out.status = format!("accounting: {}", problems.join("; "));
    }
    Ok(out)
}

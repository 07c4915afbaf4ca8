//! Keeps libbpf's recent warnings, so that a failed load can say why
//! (the verifier's last lines) in its error rather than on stderr.
use std::collections::VecDeque;
use std::sync::Mutex;

use libbpf_rs::PrintLevel;

const KEEP: usize = 12;
static RECENT: Mutex<VecDeque<String>> = Mutex::new(VecDeque::new());

fn record(_level: PrintLevel, msg: String) {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    for line in msg.lines().filter(|l| !l.trim().is_empty()) {
        if recent.len() == KEEP {
            recent.pop_front();
        }
        recent.push_back(line.trim_end().to_owned());
    }
}

/// Developers' setting: print each program's verifier statistics (its
/// verification time, instructions processed, states) at load.
const STATS_ENV: &str = "FSPROBE_VERIFIER_STATS";
/// The verifier's BPF_LOG_STATS level.
pub(crate) const VERIFIER_STATS: u32 = 4;

pub(crate) fn verifier_stats_wanted() -> bool {
    std::env::var_os(STATS_ENV).is_some()
}

/// libbpf prints a successful load's verifier log at debug level, after
/// the program's name: keep the lines that are statistics.
fn print_stats(level: PrintLevel, msg: String) {
    if msg.contains("prog '") && msg.contains("BEGIN PROG LOAD LOG") {
        let name = msg.split('\'').nth(1).unwrap_or("?");
        for line in msg
            .lines()
            .filter(|l| l.starts_with("verification time") || l.starts_with("processed"))
        {
            eprintln!("fsprobe: verifier: {name}: {line}");
        }
    }
    if level != PrintLevel::Debug {
        record(level, msg);
    }
}

/// Routes libbpf's output here instead of stderr.
pub(crate) fn install() {
    if verifier_stats_wanted() {
        libbpf_rs::set_print(Some((PrintLevel::Debug, print_stats)));
    } else {
        libbpf_rs::set_print(Some((PrintLevel::Warn, record)));
    }
}

/// The kept lines, joined, and forgets them.
pub(crate) fn take() -> String {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    let lines: Vec<String> = recent.drain(..).collect();
    lines.join(" | ")
}

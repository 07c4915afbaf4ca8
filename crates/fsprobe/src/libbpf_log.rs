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

/// Routes libbpf's output here instead of stderr.
pub(crate) fn install() {
    libbpf_rs::set_print(Some((PrintLevel::Warn, record)));
}

/// The kept lines, joined, and forgets them.
pub(crate) fn take() -> String {
    let mut recent = RECENT.lock().unwrap_or_else(|p| p.into_inner());
    let lines: Vec<String> = recent.drain(..).collect();
    lines.join(" | ")
}

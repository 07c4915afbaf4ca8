//! BPF run-time statistics (`run_time_ns`, `run_cnt`) for the length of the
//! benchmark. The kernel only counts them while they are enabled, and then
//! every program run pays for two clock reads, so they are off by default.
//!
//! The preferred switch is `BPF_ENABLE_STATS` (Linux 5.8): statistics stay
//! on while the returned fd is open, so they are turned off again however
//! the benchmark ends, and the `kernel.bpf_stats_enabled` sysctl is left as
//! it was. Failing that, the sysctl is set to 1 and restored on drop.
use std::os::fd::OwnedFd;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

pub enum Stats {
    /// On while this fd is open.
    Fd { _held: OwnedFd },
    /// The sysctl was set to 1; `prior` is what it held.
    Sysctl { prior: String },
    /// They were already on (the sysctl is 1): nothing to undo.
    AlreadyOn,
    /// Off: turned off by the user, or no way to enable them.
    Off(String),
}

impl Stats {
    pub fn enable() -> Stats {
        let prior = std::fs::read_to_string(SYSCTL).unwrap_or_default();
        if prior.trim() == "1" {
            return Stats::AlreadyOn;
        }
        // SAFETY: a plain syscall wrapper.
        let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
        if let Some(fd) = super::owned(fd) {
            return Stats::Fd { _held: fd };
        }
        let by_fd = std::io::Error::from_raw_os_error(-fd);
        match std::fs::write(SYSCTL, "1") {
            Ok(()) => Stats::Sysctl { prior },
            Err(e) => Stats::Off(format!(
                "cannot enable them (BPF_ENABLE_STATS: {by_fd}; {SYSCTL}: {e})"
            )),
        }
    }

    /// How they were enabled, for the results.
    pub fn describe(&self) -> String {
        match self {
            Stats::Fd { .. } => {
                "on for this run (BPF_ENABLE_STATS; kernel.bpf_stats_enabled left as it was)".into()
            }
            Stats::Sysctl { prior } => format!(
                "on for this run (kernel.bpf_stats_enabled=1, restored to {} at the end)",
                prior.trim()
            ),
            Stats::AlreadyOn => "on (kernel.bpf_stats_enabled was already 1)".into(),
            Stats::Off(why) => format!("off: {why}"),
        }
    }
}

impl Drop for Stats {
    fn drop(&mut self) {
        if let Stats::Sysctl { prior } = self
            && let Err(e) = std::fs::write(SYSCTL, prior.trim())
        {
            eprintln!("fsprobe-bench: restoring {SYSCTL}: {e}");
        }
    }
}

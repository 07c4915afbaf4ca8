//! BPF run-time statistics (`run_time_ns`, `run_cnt`), on only while a
//! pass that reads them runs. With them on, every run of every BPF program
//! pays for two clock reads and a per-CPU update
//! (`__bpf_prog_run_save_cb()`/`bpf_prog_run()` with
//! `bpf_stats_enabled_key`, include/linux/filter.h), and the syscall hooks
//! run four times per open+close: measured on scenario 6, the loop took
//! about 480 ns/op longer with them on (5,756 against 5,237 ns/op, 4
//! interleaved rounds). So the timed passes run without them, as a listener
//! runs in production, and the in-kernel figures come from a pass of their
//! own (probe_run.rs, peers/mod.rs).
//!
//! The preferred switch is `BPF_ENABLE_STATS` (Linux 5.8): statistics stay
//! on while the returned fd is open, so they go off again however the
//! benchmark ends, and the `kernel.bpf_stats_enabled` sysctl is left as it
//! was. Failing that, the sysctl is set to 1 for the pass and restored.
//! When the sysctl already holds 1, they are on throughout, timed passes
//! included, and the results say so.
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

const SYSCTL: &str = "/proc/sys/kernel/bpf_stats_enabled";

/// How statistics are turned on for a pass.
#[derive(Debug)]
pub enum Stats {
    /// By holding a `BPF_ENABLE_STATS` fd.
    Fd,
    /// By setting the sysctl to 1; `prior` is what it held.
    Sysctl { prior: String },
    /// They are on throughout (the sysctl is 1): nothing to switch.
    AlreadyOn,
    /// Never: turned off by the user, or no way to enable them.
    Off(String),
}

static STATS: OnceLock<Stats> = OnceLock::new();

/// Statistics on for as long as this lives.
pub struct On {
    _held: Option<OwnedFd>,
    restore: Option<String>,
}

impl Drop for On {
    fn drop(&mut self) {
        if let Some(prior) = &self.restore
            && let Err(e) = std::fs::write(SYSCTL, prior.trim())
        {
            eprintln!("fsprobe-bench: restoring {SYSCTL}: {e}");
        }
    }
}

/// Finds how statistics can be turned on (`wanted`: not --no-bpf-stats),
/// once for the whole benchmark; what it found.
pub fn init(wanted: bool) -> &'static Stats {
    STATS.get_or_init(|| match wanted {
        true => Stats::find(),
        false => Stats::Off("--no-bpf-stats".into()),
    })
}

/// Statistics on until the guard drops (nothing when they cannot be, or
/// are on throughout).
pub fn on() -> On {
    let off = On {
        _held: None,
        restore: None,
    };
    match STATS.get() {
        Some(Stats::Fd) => On {
            _held: enable_by_fd().ok(),
            restore: None,
        },
        Some(Stats::Sysctl { prior }) => match std::fs::write(SYSCTL, "1") {
            Ok(()) => On {
                _held: None,
                restore: Some(prior.clone()),
            },
            Err(_) => off,
        },
        _ => off,
    }
}

fn enable_by_fd() -> Result<OwnedFd, std::io::Error> {
    // SAFETY: a plain syscall wrapper.
    let fd = unsafe { libbpf_sys::bpf_enable_stats(libbpf_sys::BPF_STATS_RUN_TIME) };
    super::owned(fd).ok_or_else(|| std::io::Error::from_raw_os_error(-fd))
}

impl Stats {
    fn find() -> Stats {
        let prior = std::fs::read_to_string(SYSCTL).unwrap_or_default();
        if prior.trim() == "1" {
            return Stats::AlreadyOn;
        }
        let by_fd = match enable_by_fd() {
            Ok(_closed_at_once) => return Stats::Fd,
            Err(e) => e,
        };
        // The sysctl is tried, and put back at once.
        match std::fs::write(SYSCTL, "1").and_then(|()| std::fs::write(SYSCTL, prior.trim())) {
            Ok(()) => Stats::Sysctl { prior },
            Err(e) => Stats::Off(format!(
                "cannot enable them (BPF_ENABLE_STATS: {by_fd}; {SYSCTL}: {e})"
            )),
        }
    }

    /// How they were enabled, for the results.
    pub fn describe(&self) -> String {
        match self {
            Stats::Fd => "on for the statistics passes only, off while timing \
                 (BPF_ENABLE_STATS; kernel.bpf_stats_enabled left as it was)"
                .into(),
            Stats::Sysctl { prior } => format!(
                "on for the statistics passes only, off while timing \
                 (kernel.bpf_stats_enabled=1 for each, restored to {} after)",
                prior.trim()
            ),
            Stats::AlreadyOn => "on throughout, timed passes included \
                 (kernel.bpf_stats_enabled was already 1)"
                .into(),
            Stats::Off(why) => format!("off: {why}"),
        }
    }
}

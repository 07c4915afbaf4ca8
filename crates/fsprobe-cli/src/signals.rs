//! SIGINT and SIGTERM stop fsprobe cleanly, however it was started; SIGHUP
//! asks it to reopen its `-o` file (logrotate).
//!
//! A shell starts a background job of a non-interactive script with SIGINT
//! ignored, and a parent may leave signals blocked. signal-hook installs
//! its handler whatever the inherited disposition was (it only skips
//! chaining to SIG_IGN), and unblock() clears an inherited mask. Signals
//! are caught from before the probe starts, so one that arrives while it
//! loads and walks the trees is not ignored, nor fatal: it stops fsprobe
//! as soon as it is ready.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::Context;
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

/// Unblocks SIGINT, SIGTERM and SIGHUP; call it before any thread starts, so that
/// every thread inherits the mask.
pub fn unblock() {
    // SAFETY: sigset_t is plain data, initialised by sigemptyset before
    // use; pthread_sigmask only reads it.
    unsafe {
        let mut set: libc::sigset_t = std::mem::zeroed();
        libc::sigemptyset(&mut set);
        libc::sigaddset(&mut set, SIGINT);
        libc::sigaddset(&mut set, SIGTERM);
        libc::sigaddset(&mut set, SIGHUP);
        libc::pthread_sigmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
    }
}

/// Signals caught before the probe existed.
pub struct Signals {
    early: Arc<AtomicBool>,
    hup: Arc<AtomicBool>,
}

impl Signals {
    pub fn catch() -> anyhow::Result<Signals> {
        let early = Arc::new(AtomicBool::new(false));
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register(signal, Arc::clone(&early))
                .context("installing the signal handler")?;
        }
        let hup = Arc::new(AtomicBool::new(false));
        signal_hook::flag::register(SIGHUP, Arc::clone(&hup))
            .context("installing the signal handler")?;
        Ok(Signals { early, hup })
    }

    /// Set by SIGHUP; the output loop clears it when it reopened the file.
    pub fn hup(&self) -> &AtomicBool {
        &self.hup
    }

    /// From now on a signal stops `probe`; one caught earlier stops it now.
    pub fn stop(&self, probe: &fsprobe::Probe) -> anyhow::Result<()> {
        for signal in [SIGINT, SIGTERM] {
            signal_hook::flag::register(signal, probe.stop_flag())
                .context("installing the signal handler")?;
        }
        if self.early.load(Ordering::SeqCst) {
            probe.stop();
        }
        Ok(())
    }
}

//! SIGINT/SIGTERM stop the run between measurements, so that the cleanup
//! (scratch trees, audit rules, auditd) still happens and partial results
//! are written.
use std::sync::atomic::{AtomicBool, Ordering};

static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

pub fn install() {
    for sig in [libc::SIGINT, libc::SIGTERM] {
        // SAFETY: the handler only stores to an atomic, which is
        // async-signal-safe.
        unsafe { libc::signal(sig, on_signal as *const () as libc::sighandler_t) };
    }
}

pub fn requested() -> bool {
    STOP.load(Ordering::SeqCst)
}

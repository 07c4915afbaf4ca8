//! CPU pinning and CPU-time clocks.
use std::io;

/// Pins the calling thread to one CPU. Threads it creates afterwards
/// inherit the mask (this is how the probe's worker lands on the consumer CPU).
pub fn pin_current_thread(cpu: usize) -> io::Result<()> {
    // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
    let mut set: libc::cpu_set_t = unsafe { std::mem::zeroed() };
    // SAFETY: CPU_SET writes one bit inside the set for cpu < CPU_SETSIZE.
    unsafe { libc::CPU_SET(cpu, &mut set) };
    // SAFETY: pid 0 is the calling thread; set is valid for its size.
    let rc = unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&set), &set) };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The calling thread's CPU mask, widened to every online CPU until it is
/// dropped; threads and processes started meanwhile inherit the wide mask.
pub struct AllCpus {
    before: libc::cpu_set_t,
}

impl AllCpus {
    pub fn widen() -> io::Result<AllCpus> {
        // SAFETY: cpu_set_t is plain bits; all-zero is the empty set.
        let mut before: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        // SAFETY: pid 0 is the calling thread; before is writable for its size.
        if unsafe { libc::sched_getaffinity(0, std::mem::size_of_val(&before), &mut before) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: as above.
        let mut all: libc::cpu_set_t = unsafe { std::mem::zeroed() };
        for cpu in 0..cpu_count().min(libc::CPU_SETSIZE as usize) {
            // SAFETY: cpu < CPU_SETSIZE.
            unsafe { libc::CPU_SET(cpu, &mut all) };
        }
        // SAFETY: pid 0 is the calling thread; all is valid for its size.
        if unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&all), &all) } != 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(AllCpus { before })
    }
}

impl Drop for AllCpus {
    fn drop(&mut self) {
        // SAFETY: pid 0 is the calling thread; the mask is the one it had.
        unsafe { libc::sched_setaffinity(0, std::mem::size_of_val(&self.before), &self.before) };
    }
}

fn clock_ns(clock: libc::clockid_t) -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid out-pointer; these clocks always exist on Linux.
    unsafe { libc::clock_gettime(clock, &mut ts) };
    ts.tv_sec as u64 * 1_000_000_000 + ts.tv_nsec as u64
}

/// CPU time of the whole process (all threads, live and exited), in ns.
pub fn process_cpu_ns() -> u64 {
    clock_ns(libc::CLOCK_PROCESS_CPUTIME_ID)
}

/// On-CPU time of another process, all its threads, from
/// /proc/PID/task/*/schedstat (ns, first field); None once it is gone.
pub fn pid_cpu_ns(pid: u32) -> Option<u64> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
        total += stat
            .split_whitespace()
            .next()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
    }
    Some(total)
}

/// Online CPUs (not the affinity mask, which pinning narrows).
pub fn cpu_count() -> usize {
    // SAFETY: sysconf has no preconditions.
    let n = unsafe { libc::sysconf(libc::_SC_NPROCESSORS_ONLN) };
    n.max(1) as usize
}

//! The user-space half of process contexts (bpf/record/process.h): the
//! kernel sends a process's stable context (executable, namespaces,
//! cgroup) once, in the first record that needs it; later records name the
//! process by (pid, start time), and this table supplies the rest. Entries
//! go when the process exits (an FSP_PROC_EXIT notice), a grace period
//! after, since a record of another CPU's buffer may still name it; and all
//! at once at an epoch flush (the kernel then sends every context again).
use std::collections::HashMap;
use std::sync::Arc;

use crate::event::{ContainerId, FileRef};

/// A process's context as its definition gave it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProcessInfo {
    pub exe: Option<Arc<FileRef>>,
    pub mnt_ns: u32,
    pub pid_ns: u32,
    pub cgroup_id: u64,
    pub cgroup: Option<Arc<str>>,
    pub container: Option<ContainerId>,
}

/// (pid, start time): a process's identity, whatever pid reuse does.
pub(crate) type ProcessKey = (u32, u64);

/// How long after its exit notice a process may still be named by a record.
const EXIT_GRACE_NS: u64 = 1_000_000_000;

/// How long after an epoch flush records may still name a process
/// defined before it (as for the path caches, src/cache.rs).
const FLUSH_GRACE_NS: u64 = 1_000_000_000;

#[derive(Debug, Default)]
pub(crate) struct Processes {
    known: HashMap<ProcessKey, Arc<ProcessInfo>>,
    /// The table before the last epoch flush, kept until records stamped
    /// FLUSH_GRACE_NS after it arrive.
    previous: HashMap<ProcessKey, Arc<ProcessInfo>>,
    purge_previous_after: Option<u64>,
    /// Processes whose exit notice came, with the notice's time.
    exited: Vec<(ProcessKey, u64)>,
    /// Records that named a process this table did not know (a bug if
    /// ever non-zero): reported without its context.
    pub(crate) unknown: u64,
}

impl Processes {
    /// A record defined the process `key`.
    pub(crate) fn define(&mut self, key: ProcessKey, info: ProcessInfo) -> Arc<ProcessInfo> {
        if let Some(old) = self.known.get(&key)
            && **old == info
        {
            return Arc::clone(old);
        }
        let info = Arc::new(info);
        self.known.insert(key, Arc::clone(&info));
        info
    }

    pub(crate) fn get(&mut self, key: ProcessKey) -> Option<Arc<ProcessInfo>> {
        let found = self
            .known
            .get(&key)
            .or_else(|| self.previous.get(&key))
            .cloned();
        if found.is_none() {
            self.unknown += 1;
        }
        found
    }

    pub(crate) fn knows(&self, key: ProcessKey) -> bool {
        self.known.contains_key(&key) || self.previous.contains_key(&key)
    }

    /// The process exited (at boot time ts_ns); forget it after the grace period.
    pub(crate) fn exited(&mut self, key: ProcessKey, ts_ns: u64) {
        self.exited.push((key, ts_ns));
    }

    /// Records up to boot time now_ns have arrived: drop what exited well
    /// before, and the table of before a flush once its grace is over.
    pub(crate) fn expire(&mut self, now_ns: u64) {
        if self.purge_previous_after.is_some_and(|t| now_ns > t) {
            self.previous.clear();
            self.purge_previous_after = None;
        }
        let (known, previous) = (&mut self.known, &mut self.previous);
        self.exited.retain(|&(key, at)| {
            let keep = now_ns < at.saturating_add(EXIT_GRACE_NS);
            if !keep {
                known.remove(&key);
                previous.remove(&key);
            }
            keep
        });
    }

    /// An epoch flush at boot time now_ns: the kernel sends every context
    /// again; the old ones serve the records already on their way.
    pub(crate) fn flush(&mut self, now_ns: u64) {
        self.previous = std::mem::take(&mut self.known);
        self.purge_previous_after = Some(now_ns.saturating_add(FLUSH_GRACE_NS));
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.known.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn info(ns: u32) -> ProcessInfo {
        ProcessInfo {
            exe: None,
            mnt_ns: ns,
            pid_ns: 1,
            cgroup_id: 2,
            cgroup: None,
            container: None,
        }
    }

    #[test]
    fn a_reused_pid_is_another_process() {
        let mut p = Processes::default();
        p.define((10, 100), info(7));
        assert_eq!(p.get((10, 100)).unwrap().mnt_ns, 7);
        assert!(p.get((10, 200)).is_none(), "same pid, later start");
        assert_eq!(p.unknown, 1);
        p.define((10, 200), info(8));
        assert_eq!(p.get((10, 200)).unwrap().mnt_ns, 8);
        assert_eq!(p.get((10, 100)).unwrap().mnt_ns, 7);
    }

    #[test]
    fn a_flush_keeps_the_old_contexts_through_its_grace_period() {
        let mut p = Processes::default();
        p.define((10, 100), info(7));
        p.flush(1_000);
        assert!(p.get((10, 100)).is_some(), "a record sent before the flush");
        p.expire(1_000 + FLUSH_GRACE_NS);
        assert!(p.knows((10, 100)));
        p.expire(1_001 + FLUSH_GRACE_NS);
        assert!(!p.knows((10, 100)));
    }

    #[test]
    fn an_exited_process_stays_for_the_grace_period() {
        let mut p = Processes::default();
        p.define((10, 100), info(7));
        p.exited((10, 100), 5_000);
        p.expire(5_000 + EXIT_GRACE_NS - 1);
        assert!(p.knows((10, 100)));
        p.expire(5_000 + EXIT_GRACE_NS);
        assert!(!p.knows((10, 100)));
        assert_eq!(p.len(), 0);
    }
}

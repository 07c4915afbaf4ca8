//! Perf buffer transport: records whose cached prefix is not known yet.
//!
//! With one perf buffer per CPU, records of different CPUs are not read in
//! the order they were sent. A record can therefore use a directory that a
//! record on another CPU taught (bpf/resolve/cache.h inserts it only once that
//! record is in its buffer) before user space has read the teacher. Such a
//! record waits here, and every later record of its CPU waits behind it so
//! that each CPU's records stay in order (loss accounting relies on it).
//!
//! The teacher was in its buffer before the waiting record was written, so
//! a read of every buffer that starts after the waiting record was read
//! finds it. Reads are numbered ("rounds"): a record read in round r whose
//! prefix is still unknown after round r + 1 never will be (a bug; it is
//! then decoded as truncated and counted).

/// Records put aside, in the order they were read.
#[derive(Debug, Default)]
pub(crate) struct Waiting {
    entries: Vec<Entry>,
    /// The read of every buffer now under way, or last done.
    round: u64,
}

#[derive(Debug)]
struct Entry {
    cpu: Option<u32>,
    round: u64,
    data: Vec<u8>,
}

impl Waiting {
    /// A read of every buffer starts.
    pub(crate) fn next_round(&mut self) {
        self.round += 1;
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Must a record of `cpu` wait behind an earlier one of the same CPU?
    pub(crate) fn holds(&self, cpu: Option<u32>) -> bool {
        self.entries.iter().any(|e| e.cpu == cpu)
    }

    /// Forgets every waiting record (at a stop whose time is up).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
    }

    pub(crate) fn push(&mut self, cpu: Option<u32>, data: &[u8]) {
        self.entries.push(Entry {
            cpu,
            round: self.round,
            data: data.to_vec(),
        });
    }

    /// The next record that may be decoded: the first waiting one of its
    /// CPU whose prefixes are `known`; failing that, with `give_up`, or
    /// when a whole round was read after it (call this between rounds),
    /// the first one that is first of its CPU.
    pub(crate) fn take_ready(
        &mut self,
        known: impl Fn(&[u8]) -> bool,
        give_up: bool,
    ) -> Option<Vec<u8>> {
        // One pass (a few CPUs, maybe thousands of records): a stop under
        // load drains them all, one call each.
        let mut cpus_seen = Vec::new();
        let firsts: Vec<usize> = (0..self.entries.len())
            .filter(|&i| {
                let cpu = self.entries[i].cpu;
                let first = !cpus_seen.contains(&cpu);
                if first {
                    cpus_seen.push(cpu);
                }
                first
            })
            .collect();
        let pick = firsts
            .iter()
            .copied()
            .find(|&i| known(&self.entries[i].data))
            .or_else(|| {
                firsts
                    .iter()
                    .copied()
                    .find(|&i| give_up || self.entries[i].round < self.round)
            })?;
        Some(self.entries.remove(pick).data)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cpu_keeps_its_order_and_known_records_go_first() {
        let mut w = Waiting::default();
        w.next_round();
        w.push(Some(1), b"a1");
        assert!(w.holds(Some(1)) && !w.holds(Some(0)));
        w.push(Some(1), b"a2");
        w.push(Some(0), b"b1");
        // a1 is unknown: b1, first of CPU 0, goes; a2 waits behind a1.
        let known = |d: &[u8]| d != b"a1";
        assert_eq!(w.take_ready(known, false).as_deref(), Some(&b"b1"[..]));
        assert_eq!(w.take_ready(known, false), None);
        // Once a whole round has been read after it, a1 is given up on.
        w.next_round();
        assert_eq!(w.take_ready(known, false).as_deref(), Some(&b"a1"[..]));
        assert_eq!(w.take_ready(known, false).as_deref(), Some(&b"a2"[..]));
        assert!(w.is_empty());
    }

    #[test]
    fn giving_up_drains_in_order() {
        let mut w = Waiting::default();
        w.push(Some(0), b"x");
        w.push(Some(0), b"y");
        let none = |_: &[u8]| false;
        assert_eq!(w.take_ready(none, true).as_deref(), Some(&b"x"[..]));
        assert_eq!(w.take_ready(none, true).as_deref(), Some(&b"y"[..]));
        assert_eq!(w.take_ready(none, true), None);
    }
}

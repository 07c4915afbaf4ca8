//! Verifying on two CPUs. The kernel verifies a program in the thread that
//! loads it, and libbpf loads an object's programs one after another
//! (bpf_object__load_progs()): the verifier is most of the time to ready
//! (0.4 s of about 1 s on 6.18). So the plan's programs are split in two
//! halves of about equal size, and the skeleton is opened twice: the first
//! object is prepared (bpf_object__prepare(): CO-RE relocations, the maps
//! created), the second reuses every one of its maps (bpf_map__reuse_fd()),
//! and each object loads its half on a thread of its own. Both halves then
//! share one set of maps, exactly as one object's programs do.
//!
//! The halves are weighed by each program's instructions with the
//! functions it calls, which libbpf appends to it
//! (bpf_object__relocate_calls()) and the verifier reads: build.rs counts
//! them in the object (build_calls.rs). A program's own section is a
//! fraction of that (fsp_sys_exit: 2,983 of 17,965 instructions); weighed
//! by their sections, the halves were fsp_sys_exit against fsp_sys_enter
//! and both io_uring programs: 270 ms of verifying on one CPU while the
//! other waited.
use std::collections::BTreeSet;
use std::os::fd::BorrowedFd;

use libbpf_rs::skel::OpenSkel;
use libbpf_rs::{AsRawLibbpf, OpenObject};

use crate::error::{BpfContext, Error, Result};
use crate::libbpf_log;
use crate::skel::{FsprobeSkel, OpenFsprobeSkel};

include!(concat!(env!("OUT_DIR"), "/fsprobe_program_sizes.rs"));

/// The programs each object loads.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Halves {
    pub(crate) first: BTreeSet<String>,
    pub(crate) second: BTreeSet<String>,
}

/// Splits `programs` (name, instructions) in two: largest first, each to
/// the half with fewer instructions so far. The verifier's time grows with
/// a program's size, so the halves take about as long. The first half is
/// the larger: the second object is prepared on its loading thread first.
pub(crate) fn split(programs: &[(String, usize)]) -> Halves {
    let mut sorted: Vec<&(String, usize)> = programs.iter().collect();
    sorted.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    let mut halves = Halves::default();
    let (mut first_size, mut second_size) = (0, 0);
    for (name, size) in sorted {
        if first_size <= second_size {
            first_size += size;
            halves.first.insert(name.clone());
        } else {
            second_size += size;
            halves.second.insert(name.clone());
        }
    }
    if second_size > first_size {
        std::mem::swap(&mut halves.first, &mut halves.second);
    }
    halves
}

/// The plan's programs in `object`, each with its instructions and those
/// of the functions it calls; its own section's alone when the build had
/// no llvm-objdump to count them.
pub(crate) fn planned(object: &mut OpenObject, plan: &BTreeSet<&str>) -> Vec<(String, usize)> {
    object
        .progs_mut()
        .map(|p| (p.name().to_string_lossy().into_owned(), p.insn_cnt()))
        .filter(|(name, _)| plan.contains(name.as_str()))
        .map(|(name, own)| {
            let size = PROGRAM_SIZES
                .iter()
                .find(|(n, _)| *n == name)
                .map_or(own, |&(_, size)| size);
            (name, size)
        })
        .collect()
}

/// Loads the programs named in `half` in `object`, nothing else; with the
/// verifier's statistics when asked.
pub(crate) fn select(object: &mut OpenObject, half: &BTreeSet<String>) {
    let stats = libbpf_log::verifier_stats_wanted();
    for mut prog in object.progs_mut() {
        let name = prog.name().to_string_lossy();
        let load = half.contains(name.as_ref());
        prog.set_autoload(load);
        if stats && load {
            prog.set_log_level(libbpf_log::VERIFIER_STATS);
        }
    }
}

/// bpf_object__prepare(): everything of the load but the programs'.
pub(crate) fn prepare(object: &mut OpenObject) -> Result<()> {
    // SAFETY: the pointer is the open object's own, and it is not loaded yet.
    let rc =
        unsafe { libbpf_rs::libbpf_sys::bpf_object__prepare(object.as_libbpf_object().as_ptr()) };
    if rc != 0 {
        return Err(Error::Bpf {
            what: format!("preparing the BPF object ({})", libbpf_log::take()),
            source: libbpf_rs::Error::from_raw_os_error(-rc).into(),
        });
    }
    Ok(())
}

/// Makes every map of `second` the same kernel map as the prepared
/// `first`'s map of that name.
pub(crate) fn share_maps(first: &mut OpenObject, second: &mut OpenObject) -> Result<()> {
    let fds: Vec<(String, i32)> = first
        .maps_mut()
        .map(|m| {
            // SAFETY: the map belongs to a prepared object: it has its fd.
            let fd = unsafe { libbpf_rs::libbpf_sys::bpf_map__fd(m.as_libbpf_object().as_ptr()) };
            (m.name().to_string_lossy().into_owned(), fd)
        })
        .collect();
    for mut map in second.maps_mut() {
        let name = map.name().to_string_lossy().into_owned();
        let fd = fds
            .iter()
            .find(|(n, _)| *n == name)
            .map(|&(_, fd)| fd)
            .filter(|&fd| fd >= 0)
            .ok_or_else(|| Error::Bpf {
                what: format!("sharing map {name}: the first object has none"),
                source: libbpf_rs::Error::from(std::io::Error::from(std::io::ErrorKind::NotFound))
                    .into(),
            })?;
        // SAFETY: fd is the first object's map, open for as long as that
        // object; reuse_fd duplicates it.
        let fd = unsafe { BorrowedFd::borrow_raw(fd) };
        map.reuse_fd(fd)
            .context(format!("sharing map {name} with the second object"))?;
    }
    Ok(())
}

/// A value moved to the thread that loads it.
struct OnOtherThread<T>(T);

// SAFETY: a libbpf object is used by one thread at a time here: the second
// object is moved to its loading thread and back when it is joined. libbpf
// keeps nothing of an object in shared state (its kernel-feature cache is
// written with WRITE_ONCE, and the same answers from either thread; the
// print callback, libbpf_log, takes a mutex).
unsafe impl<T> Send for OnOtherThread<T> {}

impl<T> OnOtherThread<T> {
    fn into_inner(self) -> T {
        self.0
    }
}

/// Loads the two objects at once, the second on a thread of its own.
pub(crate) fn load<'obj>(
    first: OpenFsprobeSkel<'obj>,
    second: Option<OpenFsprobeSkel<'obj>>,
) -> Result<(FsprobeSkel<'obj>, Option<FsprobeSkel<'obj>>)> {
    let failed = |source: libbpf_rs::Error| Error::Bpf {
        what: format!("loading the BPF programs ({})", libbpf_log::take()),
        source: source.into(),
    };
    std::thread::scope(|scope| {
        let other = second.map(|open| {
            let open = OnOtherThread(open);
            std::thread::Builder::new()
                .name("fsprobe-load".into())
                .spawn_scoped(scope, move || OnOtherThread(open.into_inner().load()))
        });
        let first = first.load();
        let second = match other {
            None => None,
            Some(Err(e)) => {
                return Err(Error::Io {
                    what: "starting the loading thread".into(),
                    source: e,
                });
            }
            Some(Ok(handle)) => match handle.join() {
                Ok(loaded) => Some(loaded.into_inner()),
                Err(panic) => std::panic::resume_unwind(panic),
            },
        };
        let first = first.map_err(failed)?;
        let second = second.transpose().map_err(failed)?;
        Ok((first, second))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn programs(list: &[(&str, usize)]) -> Vec<(String, usize)> {
        list.iter().map(|&(n, s)| (n.to_owned(), s)).collect()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|&n| n.to_owned()).collect()
    }

    #[test]
    fn the_halves_balance_the_instructions() {
        let halves = split(&programs(&[
            ("exit", 900),
            ("enter", 300),
            ("submit", 700),
            ("complete", 600),
            ("proc_exit", 10),
        ]));
        // 700 + 600 against 900 + 300 + 10: the larger half first.
        assert_eq!(halves.first, names(&["submit", "complete"]));
        assert_eq!(halves.second, names(&["exit", "enter", "proc_exit"]));
    }

    #[test]
    fn the_first_half_is_the_larger() {
        // 900 + 100 against 800 + 300: the second is swapped to first.
        let halves = split(&programs(&[("a", 900), ("b", 800), ("c", 300), ("d", 100)]));
        assert_eq!(halves.first, names(&["b", "c"]));
        assert_eq!(halves.second, names(&["a", "d"]));
    }

    #[test]
    fn the_build_sized_the_programs_with_their_calls() {
        // Empty when build.rs found no llvm-objdump (scripts/setup.sh
        // installs llvm-19): the halves are then weighed by their sections.
        let size = |name: &str| {
            PROGRAM_SIZES
                .iter()
                .find(|(n, _)| *n == name)
                .map(|s| s.1)
                .unwrap_or_else(|| panic!("no size for {name}: was llvm-objdump installed?"))
        };
        let (exit, proc_exit) = (size("fsp_sys_exit"), size("fsp_proc_exit"));
        // fsp_sys_exit resolves paths (thousands of instructions in .text);
        // fsp_proc_exit calls nothing of that.
        assert!(exit > 10_000, "fsp_sys_exit: {exit}");
        assert!(proc_exit < 1_000, "fsp_proc_exit: {proc_exit}");
    }

    #[test]
    fn one_program_leaves_the_second_half_empty() {
        let halves = split(&programs(&[("only", 5)]));
        assert_eq!(halves.first, names(&["only"]));
        assert!(halves.second.is_empty());
    }
}

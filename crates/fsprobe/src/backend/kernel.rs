//! What the running kernel offers, found before anything is loaded: its
//! BTF (function prototypes, tracepoint prototypes), whether fentry
//! programs load (a two-instruction probe), whether it has kprobes, which
//! syscalls it has (tracefs), which symbols can be attached to
//! (/proc/kallsyms). The backend and its programs are chosen from this.
use std::collections::{HashMap, HashSet};
use std::ffi::CString;
use std::os::fd::{FromRawFd, OwnedFd};
use std::path::{Path, PathBuf};

use libbpf_rs::btf::types::{Func, FuncProto, Typedef};
use libbpf_rs::btf::{Btf, BtfKind, BtfType, ReferencesType};

use crate::error::{Error, Result};
use crate::tracefs;

/// A function's prototype, as this kernel's BTF has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Proto {
    /// Parameter names (None when the BTF has none).
    pub params: Vec<Option<String>>,
    /// It returns a pointer (rather than an integer or nothing).
    pub returns_pointer: bool,
}

impl Proto {
    /// The position of the parameter called `name`.
    pub(crate) fn position(&self, name: &str) -> Option<u8> {
        self.params
            .iter()
            .position(|p| p.as_deref() == Some(name))
            .map(|i| i as u8)
    }
}

#[derive(Default)]
struct Symbols {
    names: HashSet<String>,
    cloned: HashMap<String, String>,
}

/// Clones GCC makes that callers may call instead of the function itself
/// (partial inlining, interprocedural scalar replacement, constant
/// propagation); `.cold` parts are only the function's own cold code.
const BYPASSING_CLONES: [&str; 3] = [".part.", ".isra.", ".constprop."];

fn read_symbols() -> Symbols {
    let Ok(text) = std::fs::read_to_string("/proc/kallsyms") else {
        return Symbols::default();
    };
    let mut symbols = Symbols::default();
    for name in text.lines().filter_map(|l| l.split_whitespace().nth(2)) {
        if let Some(clone) = BYPASSING_CLONES.iter().find(|c| name.contains(**c)) {
            let base = name.split(clone).next().unwrap_or(name);
            symbols.cloned.insert(base.to_owned(), name.to_owned());
        }
        symbols.names.insert(name.to_owned());
    }
    symbols
}

pub(crate) struct Kernel {
    /// `uname -r`.
    pub release: String,
    btf: Btf<'static>,
    /// The kernel has kprobes (CONFIG_KPROBES: the kprobe PMU exists).
    pub kprobes: bool,
    tracefs: PathBuf,
    /// The names of /proc/kallsyms, read when a VFS backend is considered,
    /// and the functions that also have compiler clones there.
    symbols: Option<Symbols>,
}

/// The running kernel's release.
fn release() -> String {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return "unknown".into();
    }
    // SAFETY: uname NUL-terminates release.
    unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }
        .to_string_lossy()
        .into_owned()
}

fn proto_of(btf: &BtfType) -> Option<Proto> {
    let proto = FuncProto::try_from(btf.skip_mods_and_typedefs()).ok()?;
    let params = proto
        .iter()
        .map(|p| p.name.map(|n| n.to_string_lossy().into_owned()))
        .collect();
    let ret = proto.referenced_type().skip_mods_and_typedefs();
    Some(Proto {
        params,
        returns_pointer: ret.kind() == BtfKind::Ptr,
    })
}

impl Kernel {
    /// Reads what the kernel offers; `btf`: a BTF file instead of the kernel's.
    pub(crate) fn probe(btf: Option<&Path>) -> Result<Kernel> {
        let path = btf.unwrap_or(Path::new(crate::config::KERNEL_BTF));
        let btf = Btf::from_path(path).map_err(|source| Error::Bpf {
            what: format!("reading the BTF at {}", path.display()),
            source: source.into(),
        })?;
        Ok(Kernel {
            release: release(),
            btf,
            kprobes: Path::new("/sys/bus/event_source/devices/kprobe").exists(),
            tracefs: tracefs::ensure_mounted()?,
            symbols: None,
        })
    }

    /// The prototype of kernel function `name`, if it has one in BTF.
    pub(crate) fn func(&self, name: &str) -> Option<Proto> {
        let f = self.btf.type_by_name::<Func>(name)?;
        proto_of(&f.referenced_type())
    }

    /// The arguments of BTF tracepoint `name` (its btf_trace_<name>
    /// typedef, without the leading data pointer), if it has one.
    pub(crate) fn tracepoint(&self, name: &str) -> Option<Proto> {
        let t = self
            .btf
            .type_by_name::<Typedef>(&format!("btf_trace_{name}"))?;
        let ptr = t.referenced_type().skip_mods_and_typedefs();
        let mut proto = proto_of(&ptr.next_type()?)?;
        if !proto.params.is_empty() {
            proto.params.remove(0);
        }
        Some(proto)
    }

    /// Does this kernel have syscall `tracefs_name` (its tracefs events)?
    pub(crate) fn has_syscall(&self, tracefs_name: &str) -> bool {
        tracefs::has_syscall(&self.tracefs, tracefs_name)
    }

    /// Can fentry/kprobe attach to `name` by that name, and see every call?
    /// Some BTF functions exist only as clones, or are inlined; some are
    /// also partly inlined into their callers (Debian's 5.10 has a
    /// `vfs_rmdir.part.0`, which do_rmdir() calls instead).
    pub(crate) fn attachable(&mut self, name: &str) -> std::result::Result<(), String> {
        let symbols = self.symbols.get_or_insert_with(read_symbols);
        if symbols.names.is_empty() {
            return Ok(()); // no kallsyms to check: let the attach decide
        }
        if !symbols.names.contains(name) {
            return Err(format!(
                "{name} has no symbol of that name (inlined or renamed)"
            ));
        }
        if let Some(clone) = symbols.cloned.get(name) {
            return Err(format!(
                "{name} is partly inlined into its callers ({clone}): its exit is not seen on every call"
            ));
        }
        Ok(())
    }

    /// Does the kernel load fentry programs on `func`? A two-instruction
    /// program is loaded and dropped: some kernels refuse tracing programs
    /// (EPERM under lockdown or a hardening policy), and before 6.1 those
    /// on functions with struct arguments (e.g. security_path_chown()'s
    /// kuid_t; commit "bpf: Support struct argument for trampoline base
    /// progs").
    pub(crate) fn fentry_loads(&self, func: &str) -> std::result::Result<(), String> {
        let Some(f) = self.btf.type_by_name::<Func>(func) else {
            return Err(format!("{func} is not in the kernel's BTF"));
        };
        // r0 = 0; exit
        // SAFETY: bpf_insn is plain data, zero is a valid value.
        let mut insns: [libbpf_sys::bpf_insn; 2] = unsafe { std::mem::zeroed() };
        insns[0].code = (libbpf_sys::BPF_ALU64 | libbpf_sys::BPF_MOV | libbpf_sys::BPF_K) as u8;
        insns[1].code = (libbpf_sys::BPF_JMP | libbpf_sys::BPF_EXIT) as u8;
        let opts = libbpf_sys::bpf_prog_load_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_prog_load_opts>() as libbpf_sys::size_t,
            expected_attach_type: libbpf_sys::BPF_TRACE_FENTRY,
            attach_btf_id: u32::from(f.type_id()),
            ..Default::default()
        };
        let name = CString::new("fsp_probe").expect("no NUL");
        let license = CString::new("GPL").expect("no NUL");
        let mut opts = opts;
        // SAFETY: the name, license, instructions and options outlive the call.
        let fd = unsafe {
            libbpf_sys::bpf_prog_load(
                libbpf_sys::BPF_PROG_TYPE_TRACING,
                name.as_ptr(),
                license.as_ptr(),
                insns.as_ptr(),
                insns.len() as libbpf_sys::size_t,
                &mut opts,
            )
        };
        if fd < 0 {
            let errno = match -fd {
                libc::EPERM => "EPERM".to_owned(),
                libc::EINVAL => "EINVAL".to_owned(),
                libc::E2BIG => "E2BIG".to_owned(),
                524 => "ENOTSUPP".to_owned(),
                e => std::io::Error::from_raw_os_error(e).to_string(),
            };
            return Err(format!(
                "the kernel refused an fentry program on {func} ({errno})"
            ));
        }
        // SAFETY: fd is a program fd we own; dropping it closes it.
        drop(unsafe { OwnedFd::from_raw_fd(fd) });
        Ok(())
    }
}

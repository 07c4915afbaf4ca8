//! The tracepoint backend (bpf/tracepoint.bpf.c): one entry and one exit
//! program, attached to the syscall tracepoints of the selected events.
use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use libbpf_rs::skel::{OpenSkel, SkelBuilder};
use libbpf_rs::{Link, MapCore, OpenObject, TracepointCategory};

use crate::config::Config;
use crate::error::{BpfContext, Error, Result};
use crate::event::EventKind;
use crate::libbpf_log;
use crate::skel::{TracepointSkel, TracepointSkelBuilder};
use crate::tracefs;

/// The syscalls behind each kind of event.
pub(crate) fn syscalls(kind: EventKind) -> &'static [&'static str] {
    match kind {
        EventKind::Open => &["open", "openat", "openat2", "creat"],
        EventKind::Mkdir => &["mkdir", "mkdirat"],
        EventKind::Link => &["link", "linkat"],
        EventKind::Rename => &["rename", "renameat", "renameat2"],
        EventKind::Setattr => &[
            "chmod",
            "fchmod",
            "fchmodat",
            "fchmodat2",
            "chown",
            "fchown",
            "lchown",
            "fchownat",
            "truncate",
            "ftruncate",
            "utime",
            "utimes",
            "futimesat",
            "utimensat",
        ],
        EventKind::Unlink => &["unlink", "unlinkat"],
        EventKind::Rmdir => &["rmdir", "unlinkat"],
        EventKind::Modify => &["write", "pwrite64", "writev", "pwritev", "pwritev2"],
    }
}

pub(crate) struct TracepointBackend<'obj> {
    pub(crate) skel: TracepointSkel<'obj>,
    links: Vec<Link>,
    /// Syscalls hooked, and those this kernel does not have.
    pub(crate) attached: Vec<&'static str>,
    pub(crate) missing: Vec<&'static str>,
}

impl<'obj> TracepointBackend<'obj> {
    /// Opens, configures and loads the programs (nothing attached yet).
    pub(crate) fn load(
        config: &Config,
        storage: &'obj mut MaybeUninit<OpenObject>,
    ) -> Result<Self> {
        libbpf_log::install();
        let btf_path = match &config.btf {
            Some(p) => Some(CString::new(p.as_os_str().as_bytes()).map_err(|_| {
                Error::InvalidOption(format!("BTF path {} contains a NUL byte", p.display()))
            })?),
            None => None,
        };
        let opts = libbpf_sys::bpf_object_open_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as libbpf_sys::size_t,
            btf_custom_path: btf_path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            ..Default::default()
        };
        // libbpf reads btf_custom_path during open only; btf_path outlives the call.
        let mut open = TracepointSkelBuilder::default()
            .open_opts(opts, storage)
            .context("opening the BPF object")?;
        let ro = open
            .maps
            .rodata_data
            .as_deref_mut()
            .expect("libbpf mmaps .rodata before load");
        ro.cfg_self_tgid = if config.exclude_own_process {
            std::process::id()
        } else {
            0
        };
        ro.cfg_paths_filtering = config.paths_filtering;
        ro.cfg_recursive = config.recursive;
        ro.cfg_follow = config.follow;
        ro.cfg_event_mask = config.event_mask();
        // Wake the consumer only when a quarter of the ring is pending; it
        // also polls every 100 ms (see PERFORMANCE-NOTES: a wakeup per
        // event costs more than resolving the path).
        ro.cfg_wakeup_watermark = (config.buffer_bytes / 4) as u64;
        open.maps
            .events
            .set_max_entries(config.buffer_bytes as u32)
            .context("sizing the ring buffer")?;
        open.maps
            .watched
            .set_max_entries(config.max_watches)
            .context("sizing the watched map")?;
        let skel = open.load().map_err(|source| Error::Bpf {
            what: format!("loading the BPF programs ({})", libbpf_log::take()),
            source,
        })?;
        Ok(TracepointBackend {
            skel,
            links: Vec::new(),
            attached: Vec::new(),
            missing: Vec::new(),
        })
    }

    /// Attaches to the entry and exit tracepoints of every selected syscall.
    pub(crate) fn attach(&mut self, config: &Config) -> Result<()> {
        let tracefs = tracefs::ensure_mounted()?;
        let mut names: Vec<&'static str> = config
            .events
            .iter()
            .flat_map(|k| syscalls(*k).iter().copied())
            .collect();
        names.sort_unstable();
        names.dedup();
        for name in names {
            if !tracefs::has_syscall(&tracefs, name) {
                self.missing.push(name);
                continue;
            }
            self.attach_one(&tracefs, name)?;
            self.attached.push(name);
        }
        Ok(())
    }

    fn attach_one(&mut self, _tracefs: &Path, name: &str) -> Result<()> {
        let progs = &self.skel.progs;
        let enter = progs
            .fsp_sys_enter
            .attach_tracepoint(TracepointCategory::Syscalls, format!("sys_enter_{name}"))
            .context(format!("attaching to syscalls/sys_enter_{name}"))?;
        let exit = progs
            .fsp_sys_exit
            .attach_tracepoint(TracepointCategory::Syscalls, format!("sys_exit_{name}"))
            .context(format!("attaching to syscalls/sys_exit_{name}"))?;
        self.links.push(enter);
        self.links.push(exit);
        Ok(())
    }

    pub(crate) fn watched_map(&self) -> &impl MapCore {
        &self.skel.maps.watched
    }
}

//! Backends: how the probes hook into the kernel.
//!
//! Every backend attaches the syscall tracepoint programs (arguments and
//! return values). The fentry and kprobe backends also attach their
//! flavour of the VFS hooks (bpf/hooks/vfs.h), which hand each event the
//! dentry and mount the kernel really used. Path resolution, filtering
//! and the record layout are shared C headers; a backend is only a set of
//! programs to load and attach.
pub(crate) mod syscalls;

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, OpenObject};

use crate::config::{BackendKind, Config, ResolutionMode, Transport};
use crate::error::{BpfContext, Error, Result};
use crate::libbpf_log;
use crate::skel::{FsprobeSkel, FsprobeSkelBuilder};
use crate::tracefs;

/// The order `auto` tries backends in: the VFS hooks first.
const AUTO_ORDER: [BackendKind; 3] = [
    BackendKind::Fentry,
    BackendKind::Kprobe,
    BackendKind::Tracepoint,
];

/// Name prefix of a backend's VFS-hook programs (hooks_vfs.h), if it has any.
fn vfs_prefix(kind: BackendKind) -> Option<&'static str> {
    match kind {
        BackendKind::Fentry => Some("fentry_"),
        BackendKind::Kprobe => Some("kprobe_"),
        BackendKind::Tracepoint | BackendKind::Auto => None,
    }
}

/// The running kernel's (major, minor) version.
fn kernel_release() -> (u32, u32) {
    // SAFETY: uname fills the zeroed struct it is given.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: uts is a valid, writable utsname.
    if unsafe { libc::uname(&mut uts) } != 0 {
        return (0, 0);
    }
    // SAFETY: uname NUL-terminates release.
    let release = unsafe { std::ffi::CStr::from_ptr(uts.release.as_ptr()) }.to_string_lossy();
    let mut parts = release
        .split(|c: char| !c.is_ascii_digit())
        .filter_map(|p| p.parse().ok());
    (parts.next().unwrap_or(0), parts.next().unwrap_or(0))
}

/// Can this kernel load the VFS-hook program `name`?
///
/// fentry programs on functions with struct arguments need 6.1 (commit
/// "bpf: Support struct argument for trampoline base progs");
/// security_path_chown() takes kuid_t and kgid_t, which are structs. On
/// older kernels a chown by name resolves through the dcache lookup.
fn supported(name: &str, release: (u32, u32)) -> bool {
    name != "fentry_path_chown" || release >= (6, 1)
}

/// A loaded and attached backend.
pub(crate) struct Backend<'obj> {
    pub(crate) skel: FsprobeSkel<'obj>,
    links: Vec<Link>,
    pub(crate) kind: BackendKind,
    /// Syscalls hooked, and those this kernel does not have.
    pub(crate) attached: Vec<&'static str>,
    pub(crate) missing: Vec<&'static str>,
}

/// Starts the requested backend; `auto` takes the first that works, in
/// AUTO_ORDER. Each attempt needs storage of its own.
pub(crate) fn start<'obj>(
    config: &Config,
    storages: &'obj mut [MaybeUninit<OpenObject>; 3],
) -> Result<Backend<'obj>> {
    let [first, second, third] = storages;
    if config.backend != BackendKind::Auto {
        if let Some(reason) = precheck(config.backend) {
            return Err(Error::BackendUnavailable {
                backend: config.backend.name(),
                reason: reason.into(),
            });
        }
        return Backend::start(config, config.backend, first)
            .map_err(|e| unavailable(config.backend, e));
    }
    let mut refusals = Vec::new();
    for (kind, storage) in AUTO_ORDER.into_iter().zip([first, second, third]) {
        if let Some(reason) = precheck(kind) {
            refusals.push(format!("{}: {reason}", kind.name()));
            continue;
        }
        match Backend::start(config, kind, storage) {
            Ok(backend) => return Ok(backend),
            Err(e @ (Error::Watch { .. } | Error::TooManyWatches(_))) => return Err(e),
            Err(e) => refusals.push(format!("{}: {e}", kind.name())),
        }
    }
    Err(Error::BackendUnavailable {
        backend: "auto",
        reason: format!("no backend could start ({})", refusals.join("; ")),
    })
}

/// Why `kind` cannot run here, when that is known without loading it.
///
/// Without kprobes (CONFIG_KPROBES unset) the kprobe programs load but
/// cannot attach; a backend that fails after attaching part of its links
/// has, in practice, left the next attempt's object unusable (its
/// descriptors were closed), so auto never starts one that cannot attach.
fn precheck(kind: BackendKind) -> Option<&'static str> {
    let has_kprobe_pmu = std::path::Path::new("/sys/bus/event_source/devices/kprobe").exists();
    (kind == BackendKind::Kprobe && !has_kprobe_pmu)
        .then_some("the kernel has no kprobes (CONFIG_KPROBES)")
}

/// Names the backend in errors that come from loading or attaching it.
fn unavailable(kind: BackendKind, e: Error) -> Error {
    match e {
        // EPERM from BPF_PROG_LOAD as root: the kernel does not allow this
        // program type (e.g. fentry under some lockdown or hardening
        // policies); libbpf's hint about `ulimit -l` does not apply.
        Error::Bpf { source, .. } if source.kind() == libbpf_rs::ErrorKind::PermissionDenied => {
            Error::BackendUnavailable {
                backend: kind.name(),
                reason: "the kernel refused the programs (EPERM)".into(),
            }
        }
        Error::Bpf { what, source } => Error::BackendUnavailable {
            backend: kind.name(),
            reason: format!("{what}: {source}"),
        },
        other => other,
    }
}

impl<'obj> Backend<'obj> {
    fn start(
        config: &Config,
        kind: BackendKind,
        storage: &'obj mut MaybeUninit<OpenObject>,
    ) -> Result<Self> {
        let mut backend = Backend::load(config, kind, storage)?;
        backend.fill_process_filters(config)?;
        backend.attach_syscalls(config)?;
        backend.attach_vfs_hooks()?;
        Ok(backend)
    }

    /// Opens, configures and loads the programs of `kind` (nothing attached yet).
    fn load(
        config: &Config,
        kind: BackendKind,
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
        let mut open = FsprobeSkelBuilder::default()
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
        ro.cfg_vfs_hooks = vfs_prefix(kind).is_some();
        // Wake the consumer only when a quarter of the ring is pending; it
        // also polls every 100 ms (see PERFORMANCE-NOTES: a wakeup per
        // event costs more than resolving the path).
        ro.cfg_wakeup_watermark = (config.buffer_bytes / 4) as u64;
        ro.cfg_resolution = config.resolution_mode.raw();
        ro.cfg_transport = config.transport.raw();
        ro.cfg_pid_filter = config.pids.raw();
        ro.cfg_uid_filter = config.uids.raw();
        ro.cfg_comm_filter = config.comms.raw();
        // Only the mode's own cache gets memory.
        let (dirs, paths) = match config.resolution_mode {
            ResolutionMode::SingleFragment => (1, config.cache_size),
            _ => (config.cache_size, 1),
        };
        open.maps
            .dir_cache
            .set_max_entries(dirs)
            .context("sizing the directory cache")?;
        open.maps
            .path_cache
            .set_max_entries(paths)
            .context("sizing the path cache")?;
        // The unused transport gets the least memory it can have.
        let ring_bytes = match config.transport {
            Transport::RingBuffer => config.buffer_bytes as u32,
            Transport::PerfBuffer => 4096,
        };
        open.maps
            .events
            .set_max_entries(ring_bytes)
            .context("sizing the ring buffer")?;
        open.maps
            .watched
            .set_max_entries(config.max_watches)
            .context("sizing the watched map")?;
        let wanted = vfs_prefix(kind);
        let release = kernel_release();
        for mut prog in open.open_object_mut().progs_mut() {
            let name = prog.name().to_string_lossy();
            let is_vfs = name.starts_with("fentry_") || name.starts_with("kprobe_");
            let keep = !is_vfs
                || (wanted.is_some_and(|p| name.starts_with(p)) && supported(&name, release));
            prog.set_autoload(keep);
        }
        let skel = open.load().map_err(|source| Error::Bpf {
            what: format!("loading the BPF programs ({})", libbpf_log::take()),
            source,
        })?;
        Ok(Backend {
            skel,
            links: Vec::new(),
            kind,
            attached: Vec::new(),
            missing: Vec::new(),
        })
    }

    /// The values of --pid, --uid and --comm, before anything is attached.
    fn fill_process_filters(&self, config: &Config) -> Result<()> {
        let maps = &self.skel.maps;
        let one = [1u8];
        for pid in config.pids.values() {
            maps.pid_filter
                .update(&pid.to_ne_bytes(), &one, MapFlags::ANY)
                .context("filling the pid filter")?;
        }
        for uid in config.uids.values() {
            maps.uid_filter
                .update(&uid.to_ne_bytes(), &one, MapFlags::ANY)
                .context("filling the uid filter")?;
        }
        for comm in config.comms.values() {
            let mut key = [0u8; 16];
            key[..comm.len()].copy_from_slice(comm.as_bytes());
            maps.comm_filter
                .update(&key, &one, MapFlags::ANY)
                .context("filling the comm filter")?;
        }
        Ok(())
    }

    /// Marks every selected syscall in `hooked_syscalls`, then attaches the
    /// two raw tracepoints, raw_syscalls:sys_enter and sys_exit (see
    /// bpf/hooks/syscalls.h for why not one event per syscall).
    fn attach_syscalls(&mut self, config: &Config) -> Result<()> {
        let tracefs = tracefs::ensure_mounted()?;
        let on = [1u8];
        for name in syscalls::hooked(&config.events) {
            // This kernel's syscalls are those with an event in tracefs
            // (fchmodat2 is new in 6.6, for one).
            if !tracefs::has_syscall(&tracefs, name) {
                self.missing.push(name);
                continue;
            }
            let nr = syscalls::number(name);
            self.skel
                .maps
                .hooked_syscalls
                .update(&nr.to_ne_bytes(), &on, MapFlags::ANY)
                .context(format!("hooking syscall {name} ({nr})"))?;
            self.attached.push(name);
        }
        let progs = &self.skel.progs;
        for (prog, tp) in [
            (&progs.fsp_sys_enter, "sys_enter"),
            (&progs.fsp_sys_exit, "sys_exit"),
        ] {
            let link = prog
                .attach_raw_tracepoint(tp)
                .context(format!("attaching to raw_syscalls/{tp}"))?;
            self.links.push(link);
        }
        Ok(())
    }

    /// Attaches the VFS hooks of this backend's flavour, if any.
    fn attach_vfs_hooks(&mut self) -> Result<()> {
        let Some(prefix) = vfs_prefix(self.kind) else {
            return Ok(());
        };
        let release = kernel_release();
        for prog in self.skel.object().progs_mut() {
            let name = prog.name().to_string_lossy().into_owned();
            if !name.starts_with(prefix) || !supported(&name, release) {
                continue;
            }
            let link = prog.attach().map_err(|source| Error::Bpf {
                what: format!("attaching {name} ({})", libbpf_log::take()),
                source,
            })?;
            self.links.push(link);
        }
        Ok(())
    }

    pub(crate) fn watched_map(&self) -> &impl MapCore {
        &self.skel.maps.watched
    }
}

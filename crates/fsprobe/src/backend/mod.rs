//! Backends: how the probes hook into the kernel.
//!
//! Every backend attaches the syscall hooks (bpf/hooks/syscalls.h), the
//! io_uring hooks (bpf/hooks/io_uring.h) and the process-exit hook. The
//! fentry and kprobe backends also attach their flavour of the VFS hooks
//! (bpf/hooks/vfs.h), which report the operations that reach the VFS
//! whatever their origin. What a backend loads on this kernel is decided
//! before load, from the kernel's BTF and a few probes (kernel.rs, plan.rs);
//! path resolution, filtering and the record layout are shared C headers.
mod halves;
pub(crate) mod kernel;
pub(crate) mod plan;
pub(crate) mod syscalls;

use std::ffi::CString;
use std::mem::MaybeUninit;
use std::os::unix::ffi::OsStrExt;
use std::ptr::NonNull;
use std::sync::Arc;
use std::sync::atomic::AtomicU32;

use libbpf_rs::skel::{OpenSkel, Skel, SkelBuilder};
use libbpf_rs::{Link, MapCore, MapFlags, MapHandle, OpenObject};

use crate::config::{BackendKind, Config, ResolutionMode, Transport};
use crate::error::{BpfContext, Error, Result};
use crate::libbpf_log;
use crate::skel::{FsprobeSkel, FsprobeSkelBuilder};
use crate::watched::Watched;
use kernel::Kernel;
use plan::Plan;

/// The order `auto` tries backends in: the VFS hooks first.
const AUTO_ORDER: [BackendKind; 3] = [
    BackendKind::Fentry,
    BackendKind::Kprobe,
    BackendKind::Tracepoint,
];

/// Storage for the two objects one attempt loads (halves.rs).
pub(crate) type Storage = [MaybeUninit<OpenObject>; 2];

/// A loaded and attached backend.
pub(crate) struct Backend<'obj> {
    pub(crate) skel: FsprobeSkel<'obj>,
    /// The object that loaded the other half of the programs, on the
    /// first's maps (halves.rs), until they are attached.
    second_half: Option<FsprobeSkel<'obj>>,
    links: Vec<Link>,
    pub(crate) kind: BackendKind,
    pub(crate) plan: Plan,
    /// The running kernel's release.
    pub(crate) release: String,
    /// The filter's storage (src/watched.rs), shared with the threads that add to it.
    pub(crate) watched: Arc<Watched>,
    /// consumer_sleep in the mmapped .bss (bpf/core/maps.h).
    consumer_sleep: NonNull<u32>,
}

/// Why `kind` cannot run here, when that is known without loading it.
fn precheck(kernel: &Kernel, kind: BackendKind) -> Option<String> {
    match kind {
        BackendKind::Kprobe if !kernel.kprobes => {
            Some("the kernel has no kprobes (CONFIG_KPROBES)".into())
        }
        BackendKind::Fentry => kernel.fentry_loads("vfs_open").err(),
        _ => None,
    }
}

/// Starts the requested backend; `auto` takes the first that works, in
/// AUTO_ORDER. Each attempt needs storage of its own.
pub(crate) fn start<'obj>(
    config: &Config,
    storages: &'obj mut [Storage; 3],
) -> Result<Backend<'obj>> {
    let mut kernel = Kernel::probe(config.btf.as_deref())?;
    let [first, second, third] = storages;
    if config.backend != BackendKind::Auto {
        if let Some(reason) = precheck(&kernel, config.backend) {
            return Err(Error::BackendUnavailable {
                backend: config.backend.name(),
                reason,
            });
        }
        return Backend::start(config, &mut kernel, config.backend, first)
            .map_err(|e| unavailable(config.backend, e));
    }
    let mut refusals = Vec::new();
    for (kind, storage) in AUTO_ORDER.into_iter().zip([first, second, third]) {
        if let Some(reason) = precheck(&kernel, kind) {
            refusals.push(format!("{}: {reason}", kind.name()));
            continue;
        }
        match Backend::start(config, &mut kernel, kind, storage) {
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

/// Names the backend in errors that come from loading or attaching it.
fn unavailable(kind: BackendKind, e: Error) -> Error {
    match e {
        // EPERM from BPF_PROG_LOAD as root: the kernel does not allow this
        // program type (e.g. fentry under some lockdown or hardening
        // policies); libbpf's hint about `ulimit -l` does not apply.
        Error::Bpf { what, source } if source.kind() == libbpf_rs::ErrorKind::PermissionDenied => {
            Error::BackendUnavailable {
                backend: kind.name(),
                reason: format!("the kernel refused the programs (EPERM): {what}"),
            }
        }
        Error::Bpf { what, source } => Error::BackendUnavailable {
            backend: kind.name(),
            reason: format!("{what}: {source}"),
        },
        other => other,
    }
}

/// The load-time constants of a plan, into the skeleton's .rodata.
fn set_constants(ro: &mut crate::skel::types::rodata, plan: &Plan) {
    let c = &plan.constants;
    ro.cfg_sys_enter = c.sys_enter;
    ro.cfg_sys_exit = c.sys_exit;
    ro.cfg_ia32_enter = c.ia32_enter;
    ro.cfg_ia32_exit = c.ia32_exit;
    ro.cfg_vfs_syscalls = c.vfs_syscalls;
    ro.cfg_vfs_hooks = c.vfs_hooks;
    ro.cfg_io_reported = c.io_reported;
    let l = &c.layout;
    let v = &mut ro.cfg_vfs;
    (v.mkdir_dentry, v.mkdir_ret, v.mkdir_ret_dentry) =
        (l.mkdir_dentry, l.mkdir_ret, l.mkdir_ret_dentry as u8);
    (v.rmdir_dentry, v.rmdir_ret) = (l.rmdir_dentry, l.rmdir_ret);
    (v.unlink_dentry, v.unlink_ret) = (l.unlink_dentry, l.unlink_ret);
    (v.link_dentry, v.link_ret) = (l.link_dentry, l.link_ret);
    (v.symlink_dentry, v.symlink_ret) = (l.symlink_dentry, l.symlink_ret);
    (v.mknod_dentry, v.mknod_ret) = (l.mknod_dentry, l.mknod_ret);
    (v.notify_dentry, v.notify_attr, v.notify_ret) = (l.notify_dentry, l.notify_attr, l.notify_ret);
    v.rename_ret = l.rename_ret;
}

impl<'obj> Backend<'obj> {
    fn start(
        config: &Config,
        kernel: &mut Kernel,
        kind: BackendKind,
        storage: &'obj mut Storage,
    ) -> Result<Self> {
        let plan = plan::plan(kernel, kind, config);
        let mut backend = Backend::load(config, kind, plan, storage)?;
        backend.release = kernel.release.clone();
        backend.fill_process_filters(config)?;
        backend.attach()?;
        // Its programs live on in their links, on the first object's maps:
        // its instructions and BTF (about 1 MB) are not needed any more.
        backend.second_half = None;
        Ok(backend)
    }

    /// Opens, configures and loads the programs of the plan (nothing attached yet).
    fn load(
        config: &Config,
        kind: BackendKind,
        plan: Plan,
        storage: &'obj mut Storage,
    ) -> Result<Self> {
        libbpf_log::install();
        let btf_path = match &config.btf {
            Some(p) => Some(CString::new(p.as_os_str().as_bytes()).map_err(|_| {
                Error::InvalidOption(crate::error::InvalidOption::BtfPathNul(p.clone()))
            })?),
            None => None,
        };
        let opts = libbpf_sys::bpf_object_open_opts {
            sz: std::mem::size_of::<libbpf_sys::bpf_object_open_opts>() as libbpf_sys::size_t,
            btf_custom_path: btf_path.as_ref().map_or(std::ptr::null(), |p| p.as_ptr()),
            ..Default::default()
        };
        let [first_storage, second_storage] = storage;
        // libbpf reads btf_custom_path during open only; btf_path outlives the call.
        let mut open = FsprobeSkelBuilder::default()
            .open_opts(opts, first_storage)
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
        ro.cfg_own_mnt_ns = crate::mounts::own_mount_ns();
        ro.cfg_paths_filtering = config.paths_filtering;
        ro.cfg_recursive = config.recursive;
        ro.cfg_follow = config.follow;
        ro.cfg_event_mask = config.event_mask();
        ro.cfg_wakeup_watermark = config.wakeup_watermark();
        ro.cfg_resolution = config.resolution_mode.raw();
        ro.cfg_transport = config.transport.raw();
        ro.cfg_pid_filter = config.pids.raw();
        ro.cfg_uid_filter = config.uids.raw();
        ro.cfg_comm_filter = config.comms.raw();
        set_constants(ro, &plan);
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
        // Only the kprobe backend's vfs_open pair uses it (hooks/vfs.h).
        if kind != BackendKind::Kprobe {
            open.maps
                .opening
                .set_max_entries(1)
                .context("sizing the kprobe backend's map")?;
        }
        // Only the VFS hooks use these (hooks/origin.h, hooks/syscalls.h):
        // elsewhere they get the least memory they can have.
        if !plan.constants.vfs_hooks {
            for map in [
                &mut open.maps.io_issuing,
                &mut open.maps.io_unreported,
                &mut open.maps.vfs_failed,
            ] {
                map.set_max_entries(1)
                    .context("sizing the VFS backends' maps")?;
            }
        }
        let planned = halves::planned(open.open_object_mut(), &plan.programs);
        let halves = halves::split(&planned);
        halves::select(open.open_object_mut(), &halves.first);
        halves::prepare(open.open_object_mut())?;
        let second = if halves.second.is_empty() {
            None
        } else {
            let mut second = FsprobeSkelBuilder::default()
                .open_opts(opts, second_storage)
                .context("opening the BPF object again")?;
            halves::select(second.open_object_mut(), &halves.second);
            halves::share_maps(open.open_object_mut(), second.open_object_mut())?;
            Some(second)
        };
        let (mut skel, second_half) = halves::load(open, second)?;
        let bss = skel
            .maps
            .bss_data
            .as_deref_mut()
            .expect("libbpf mmaps .bss after load");
        let consumer_sleep = NonNull::from(&mut bss.consumer_sleep);
        // The filter's first set, in place before anything is attached.
        let watched = Arc::new(Watched::new(
            MapHandle::try_from(&skel.maps.watched).context("sharing the watched map")?,
            MapHandle::try_from(&skel.maps.counters).context("sharing the counters")?,
            crate::hints::Hints::map(&skel.maps.watch_hints)?,
            config.max_watches,
        )?);
        Ok(Backend {
            skel,
            second_half,
            links: Vec::new(),
            kind,
            plan,
            release: String::new(),
            watched,
            consumer_sleep,
        })
    }

    /// The count the ring buffer's consumer makes odd while it sleeps
    /// (record/record.h: transport_send()).
    pub(crate) fn consumer_sleep(&self) -> &AtomicU32 {
        // SAFETY: the pointer is into .bss, mapped by libbpf for as long as
        // the skeleton (so self) lives, aligned for a u32, and user space
        // only ever accesses it through this atomic.
        unsafe { AtomicU32::from_ptr(self.consumer_sleep.as_ptr()) }
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

    /// Attaches every loaded program, of either half, where its section
    /// says (tp_btf, fentry/fexit, kprobe/kretprobe).
    fn attach(&mut self) -> Result<()> {
        let objects = std::iter::once(&self.skel).chain(self.second_half.as_ref());
        for object in objects.map(|skel| skel.object()) {
            for prog in object.progs_mut() {
                // Not in the plan, or the other half's.
                if !prog.autoload() {
                    continue;
                }
                let name = prog.name().to_string_lossy().into_owned();
                let link = prog.attach().map_err(|source| Error::Bpf {
                    what: format!("attaching {name} ({})", libbpf_log::take()),
                    source: source.into(),
                })?;
                self.links.push(link);
            }
        }
        Ok(())
    }
}

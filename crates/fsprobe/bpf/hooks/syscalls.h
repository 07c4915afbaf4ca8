/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Syscall entry and exit, on every backend.
 *
 * Two BTF raw tracepoints, tp_btf/sys_enter and tp_btf/sys_exit, see
 * every syscall of the system, and return after one load unless the
 * syscall's bit is set in cfg_sys_enter / cfg_sys_exit, which user space
 * fills from the selected events and the backend (abi/syscalls.def).
 *
 * Most syscalls are handled at exit only: the x86-64 argument registers
 * are still in pt_regs then (the kernel does not write them back), and
 * the object exists (an open's fd, a mkdir's new directory). Only
 * unlink, rmdir and rename are looked at on entry too, on the tracepoint
 * backend, to resolve their source while it still has its name; and
 * umount, to note what it unmounts. The syscalls that can change cached
 * paths bump the caches' generation at entry and at exit (resolve/cache.h).
 *
 * On the VFS backends the VFS hooks (hooks/vfs.h) report the operations
 * that reach the VFS whatever their origin; these hooks then report only
 * what the VFS hooks cannot: opens and writes (with the fd or byte count
 * the syscall returned), xattrs, mounts, and the failures that ended a
 * syscall before it reached the VFS.
 *
 * Why not the per-syscall sys_enter_<name> events: each is a perf event,
 * and closing one ends in perf_trace_event_unreg(), which waits for an
 * RCU grace period under event_mutex; with 70 of them, stopping took
 * about 5 s.
 */
#ifndef FSP_HOOKS_SYSCALLS_H
#define FSP_HOOKS_SYSCALLS_H

#include "record/emit.h"
#include "abi/syscalls.h"
#include <bpf/bpf_tracing.h>

#define FSP_CLONE_NEWNS 0x00020000
#define FSP_CREAT_FLAGS (0100 | 01 | 01000) /* O_CREAT | O_WRONLY | O_TRUNC */

/* Is syscall nr's bit set (cfg_sys_enter or cfg_sys_exit)? */
static __always_inline bool sys_bit(const volatile __u64 *bits, long nr)
{
	if ((unsigned long)nr >= FSP_NR_SYSCALLS)
		return false;
	return (bits[(nr >> 6) & 7] >> (nr & 63)) & 1;
}

/*
 * Is the task in a 32-bit (ia32) syscall? in_ia32_syscall(): TS_COMPAT in
 * thread_info.status, set on entry through int 0x80 or sysenter/syscall
 * from 32-bit code, whatever the process's own bitness.
 */
static __always_inline bool in_compat_syscall(void)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf))
		return bpf_get_current_task_btf()->thread_info.status & FSP_TS_COMPAT;
	return BPF_CORE_READ((struct task_struct *)bpf_get_current_task(), thread_info.status) &
	       FSP_TS_COMPAT;
}

/*
 * The syscall a hook is in, by x86-64 number. An ia32 syscall is handled
 * as its x86-64 twin (abi/syscalls_ia32.def): its number, in orig_ax, is
 * another table's, and its arguments are in other registers.
 */
struct sys_call {
	long nr;      /* x86-64 number */
	long ia32_nr; /* the ia32 number; -1 for an x86-64 syscall */
	__u8 shape;   /* enum fsp_ia32_shape */
};

/* Is raw (orig_ax) a syscall to handle, by bits / ia32_bits? Fills c. */
static __always_inline bool which_syscall(long raw, const volatile __u64 *bits,
					  const volatile __u64 *ia32_bits, struct sys_call *c)
{
	bool native = sys_bit(bits, raw), ia32 = sys_bit(ia32_bits, raw);

	if (!native && !ia32)
		return false;
	c->shape = IA32_SAME;
	if (!in_compat_syscall()) {
		c->nr = raw, c->ia32_nr = -1;
		return native;
	}
	if (!ia32)
		return false;
	c->nr = ia32_native(raw, &c->shape), c->ia32_nr = raw;
	return c->nr >= 0;
}

static __always_inline void set_attr(struct op *p, __u32 mask)
{
	p->kind = FSP_SETATTR;
	p->attr_mask = mask;
}

/* Directory fds and fds are ints: an ia32 AT_FDCWD is 0xffffff9c in its register. */
static __always_inline void set_name(struct op *p, int dirfd, unsigned long path)
{
	p->dirfd = dirfd;
	p->path = (const char *)path;
}

static __always_inline void set_name2(struct op *p, int dirfd, unsigned long path)
{
	p->dirfd2 = dirfd;
	p->path2 = (const char *)path;
}

static __always_inline void set_owner(struct op *p, unsigned long uid, unsigned long gid)
{
	__u32 mask = 0;

	p->attr_uid = uid;
	p->attr_gid = gid;
	if ((__u32)uid != (__u32)-1)
		mask |= FSP_ATTR_UID;
	if ((__u32)gid != (__u32)-1)
		mask |= FSP_ATTR_GID;
	set_attr(p, mask);
}

static __always_inline void set_xattr(struct op *p, __u8 kind, unsigned long name,
				      unsigned long size, unsigned long flags)
{
	p->kind = kind;
	p->extra = (const char *)name;
	p->attr_size = size;
	p->attr_mask = flags;
}

/* include/uapi/linux/xattr.h: setxattrat()'s struct xattr_args. */
struct fsp_xattr_args {
	__u64 value;
	__u32 size;
	__u32 flags;
};

/* Fill p from the syscall's arguments; false for calls that report nothing. */
static __always_inline bool decode_args(struct op *p, long nr, unsigned long *a)
{
	switch (nr) {
	case NR_open:
		p->kind = FSP_OPEN, set_name(p, FSP_AT_FDCWD, a[0]);
		p->open_flags = a[1], p->mode = a[2];
		return true;
	case NR_creat:
		p->kind = FSP_OPEN, set_name(p, FSP_AT_FDCWD, a[0]);
		p->open_flags = FSP_CREAT_FLAGS, p->mode = a[1];
		return true;
	case NR_openat:
		p->kind = FSP_OPEN, set_name(p, a[0], a[1]);
		p->open_flags = a[2], p->mode = a[3];
		return true;
	case NR_openat2: {
		struct open_how how = {};

		bpf_probe_read_user(&how, sizeof(how), (void *)a[2]);
		p->kind = FSP_OPEN, set_name(p, a[0], a[1]);
		p->open_flags = how.flags, p->mode = how.mode;
		return true;
	}
	case NR_open_by_handle_at:
		/* No name at all: the returned fd is the only way to the file. */
		p->kind = FSP_OPEN, p->open_flags = a[2];
		return true;
	case NR_mkdir:
		p->kind = FSP_MKDIR, set_name(p, FSP_AT_FDCWD, a[0]), p->mode = a[1];
		return true;
	case NR_mkdirat:
		p->kind = FSP_MKDIR, set_name(p, a[0], a[1]), p->mode = a[2];
		return true;
	case NR_mknod:
		p->kind = FSP_MKNOD, set_name(p, FSP_AT_FDCWD, a[0]), p->mode = a[1], p->rdev = a[2];
		return true;
	case NR_mknodat:
		p->kind = FSP_MKNOD, set_name(p, a[0], a[1]), p->mode = a[2], p->rdev = a[3];
		return true;
	case NR_symlink:
		p->kind = FSP_SYMLINK, p->extra = (const char *)a[0];
		set_name(p, FSP_AT_FDCWD, a[1]);
		return true;
	case NR_symlinkat:
		p->kind = FSP_SYMLINK, p->extra = (const char *)a[0];
		set_name(p, a[1], a[2]);
		return true;
	case NR_link:
	case NR_rename:
		p->kind = nr == NR_link ? FSP_LINK : FSP_RENAME;
		set_name(p, FSP_AT_FDCWD, a[0]), set_name2(p, FSP_AT_FDCWD, a[1]);
		return true;
	case NR_linkat:
	case NR_renameat:
	case NR_renameat2:
		p->kind = nr == NR_linkat ? FSP_LINK : FSP_RENAME;
		set_name(p, a[0], a[1]), set_name2(p, a[2], a[3]);
		return true;
	case NR_chmod:
		set_attr(p, FSP_ATTR_MODE), set_name(p, FSP_AT_FDCWD, a[0]), p->mode = a[1];
		return true;
	case NR_fchmod:
		set_attr(p, FSP_ATTR_MODE), p->fd = a[0], p->mode = a[1];
		return true;
	case NR_fchmodat:
	case NR_fchmodat2:
		set_attr(p, FSP_ATTR_MODE), set_name(p, a[0], a[1]), p->mode = a[2];
		return true;
	case NR_chown:
	case NR_lchown:
		set_owner(p, a[1], a[2]), set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_fchown:
		set_owner(p, a[1], a[2]), p->fd = a[0];
		return true;
	case NR_fchownat:
		set_owner(p, a[2], a[3]), set_name(p, a[0], a[1]);
		return true;
	case NR_truncate:
		set_attr(p, FSP_ATTR_SIZE), set_name(p, FSP_AT_FDCWD, a[0]), p->attr_size = a[1];
		return true;
	case NR_ftruncate:
		set_attr(p, FSP_ATTR_SIZE), p->fd = a[0], p->attr_size = a[1];
		return true;
	case NR_utime:
	case NR_utimes:
		set_attr(p, FSP_ATTR_TIMES), set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_futimesat:
		set_attr(p, FSP_ATTR_TIMES), set_name(p, a[0], a[1]);
		return true;
	case NR_utimensat:
		/* utimensat(fd, NULL, ...) is futimens(fd). */
		set_attr(p, FSP_ATTR_TIMES);
		if (!a[1])
			p->fd = a[0];
		else
			set_name(p, a[0], a[1]);
		return true;
	case NR_setxattr:
	case NR_lsetxattr:
		set_xattr(p, FSP_SETXATTR, a[1], a[3], a[4]), set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_fsetxattr:
		set_xattr(p, FSP_SETXATTR, a[1], a[3], a[4]), p->fd = a[0];
		return true;
	case NR_setxattrat: {
		struct fsp_xattr_args args = {};

		bpf_probe_read_user(&args, sizeof(args), (void *)a[4]);
		set_xattr(p, FSP_SETXATTR, a[3], args.size, args.flags), set_name(p, a[0], a[1]);
		return true;
	}
	case NR_removexattr:
	case NR_lremovexattr:
		set_xattr(p, FSP_REMOVEXATTR, a[1], 0, 0), set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_fremovexattr:
		set_xattr(p, FSP_REMOVEXATTR, a[1], 0, 0), p->fd = a[0];
		return true;
	case NR_removexattrat:
		set_xattr(p, FSP_REMOVEXATTR, a[3], 0, 0), set_name(p, a[0], a[1]);
		return true;
	case NR_unlink:
		p->kind = FSP_UNLINK, set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_rmdir:
		p->kind = FSP_RMDIR, set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_unlinkat:
		p->kind = a[2] & FSP_AT_REMOVEDIR ? FSP_RMDIR : FSP_UNLINK;
		set_name(p, a[0], a[1]);
		return true;
	case NR_write:
	case NR_pwrite64:
	case NR_writev:
	case NR_pwritev:
	case NR_pwritev2:
	case NR_fallocate:
		p->kind = FSP_MODIFY, p->fd = a[0];
		return true;
	case NR_sendfile:
		p->kind = FSP_MODIFY, p->fd = a[0]; /* sendfile(out_fd, in_fd, ...) */
		return true;
	case NR_splice:
	case NR_copy_file_range:
		p->kind = FSP_MODIFY, p->fd = a[2]; /* (fd_in, off_in, fd_out, ...) */
		return true;
	case NR_mount:
		p->kind = FSP_MOUNT, set_name(p, FSP_AT_FDCWD, a[1]);
		p->extra = (const char *)a[0], p->open_flags = a[3];
		return true;
	case NR_move_mount:
		p->kind = FSP_MOUNT, set_name(p, a[2], a[3]);
		return true;
	case NR_pivot_root:
		p->kind = FSP_MOUNT, set_name(p, FSP_AT_FDCWD, a[0]);
		return true;
	case NR_umount2:
		p->kind = FSP_UMOUNT, set_name(p, FSP_AT_FDCWD, a[0]), p->open_flags = a[1];
		return true;
	}
	return false;
}

/*
 * Syscalls after which a cached directory path may be wrong (cache.h):
 * they bump the generation at entry and, through path_changers, at exit.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, __u8);
} path_changers SEC(".maps");

#define FSP_RENAME_EXCHANGE 2

/* What a call makes stale in the path caches (cache.h). */
enum path_change {
	CHANGES_NOTHING = 0,
	CHANGES_PATHS = 1,       /* a directory's path, or a mount: bump_gen() */
	REMOVES_A_DIRECTORY = 2, /* a key may be reused: bump_removed_dirs() */
};

/*
 * Does this call change a cached directory's path or let its key be
 * reused? Renames of directories do; renames of files do not (a file can
 * replace only a file, and only RENAME_EXCHANGE moves the target too). An
 * rmdir frees a key only. A clone or unshare changes paths only with a new
 * mount namespace. p: the call's op with its source resolved, or NULL
 * when unknown.
 */
static __always_inline __u8 changes_paths(long nr, unsigned long *a, struct op *p)
{
	__u64 clone3_flags = 0;
	bool exchange;

	switch (nr) {
	case NR_rmdir:
		return REMOVES_A_DIRECTORY;
	case NR_unlinkat:
		return a[2] & FSP_AT_REMOVEDIR ? REMOVES_A_DIRECTORY : CHANGES_NOTHING;
	case NR_clone:
	case NR_unshare:
		return a[0] & FSP_CLONE_NEWNS ? CHANGES_PATHS : CHANGES_NOTHING;
	case NR_clone3:
		/* struct clone_args starts with its u64 flags. */
		bpf_probe_read_user(&clone3_flags, sizeof(clone3_flags), (void *)a[0]);
		return clone3_flags & FSP_CLONE_NEWNS ? CHANGES_PATHS : CHANGES_NOTHING;
	case NR_rename:
	case NR_renameat:
	case NR_renameat2:
		exchange = nr == NR_renameat2 && (a[4] & FSP_RENAME_EXCHANGE);
		if (exchange || !p || !p->src || (p->src_id.mode & FSP_S_IFMT) == FSP_S_IFDIR)
			return CHANGES_PATHS;
		return CHANGES_NOTHING;
	}
	return CHANGES_PATHS;
}

static __always_inline void bump_for(__u32 traits, __u8 change)
{
	if (change & CHANGES_PATHS)
		bump_gen();
	if (change & REMOVES_A_DIRECTORY)
		bump_removed_dirs();
	if (traits & T_MOUNTS)
		bump_mount_gen();
}

static __always_inline void invalidate_at_entry(long nr, __u32 traits, unsigned long *a, __u32 tid,
					       struct op *p)
{
	__u8 change = changes_paths(nr, a, p);

	if (change == CHANGES_NOTHING)
		return;
	bump_for(traits, change);
	if (bpf_map_update_elem(&path_changers, &tid, &change, BPF_ANY))
		bump_for(traits, change); /* cannot wait for the exit: invalidate twice now */
}

static __always_inline void invalidate_at_exit(__u32 traits, __u32 tid)
{
	__u8 *change = bpf_map_lookup_elem(&path_changers, &tid);

	if (change) {
		bump_for(traits, *change);
		bpf_map_delete_elem(&path_changers, &tid);
	}
}

/*
 * unlink, rmdir, rename: the source will be gone or renamed at exit, so
 * resolve it now. The dentry itself survives (d_delete() keeps its name
 * and parent; d_move() moves it), so exit can still walk from it.
 */
static __always_inline void resolve_source(struct fsp_scratch *s, struct op *p)
{
	long n;

	n = read_name(s, p->path, p->kernel_names);
	if (n <= 0 || !lookup_base(s, p->dirfd))
		return;
	/* A rename's source is looked for anyway: its type decides the invalidation. */
	lookup_path(s, n - 1, p->kind != FSP_RENAME);
	if (s->ls.unwatched) {
		p->unwatched = 1;
		return;
	}
	if (suffix_start(s, s->ls.resolved, n - 1) < n - 1)
		return; /* not in the dcache: exit falls back to the name */
	capture_source(p, s->ls.cur, (struct vfsmount *)&s->ls.mnt->mnt);
}

/*
 * umount: what is unmounted, before it is: the mount's root identity
 * (src_id), the directory it covers and the parent mount (src_parent,
 * src_mnt), and the mount's source (src_name).
 */
static __always_inline void resolve_mount_point(struct fsp_scratch *s, struct op *p)
{
	struct dentry *under;
	struct mount *m, *parent;
	const char *devname;
	long n;

	n = read_name(s, p->path, p->kernel_names);
	if (n <= 0 || !lookup_base(s, p->dirfd))
		return;
	lookup_path(s, n - 1, false);
	if (suffix_start(s, s->ls.resolved, n - 1) < n - 1)
		return;
	m = s->ls.mnt;
	under = BPF_CORE_READ(m, mnt_mountpoint);
	parent = BPF_CORE_READ(m, mnt_parent);
	if (!under || !parent || parent == m)
		return;
	fill_identity(&p->src_id, s->ls.cur, (struct vfsmount *)&m->mnt);
	p->src_parent = under;
	p->src_mnt = (struct vfsmount *)&parent->mnt;
	p->src_matched = object_matches(under);
	devname = BPF_CORE_READ(m, mnt_devname);
	n = bpf_probe_read_kernel_str(p->src_name, sizeof(p->src_name), devname);
	p->src_name_len = n > 1 ? n - 1 : 0;
}

/*
 * The op in op_scratch (new_op()): its source, or for a umount its mount
 * point, resolved before the call. Global, so that the verifier checks the
 * lookup once per program instead of once for every syscall decoded.
 */
__noinline int fsp_resolve_source(void)
{
	struct fsp_scratch *s = get_scratch();
	struct op *p = op_current();

	if (!s || !p)
		return 0;
	if (p->kind == FSP_UMOUNT)
		resolve_mount_point(s, p);
	else
		resolve_source(s, p);
	return 0;
}

/*
 * Kinds whose op is kept from entry to exit (the rest decode at exit): an
 * unlink's, rmdir's or rename's source is resolved before it is gone,
 * unless VFS hooks report that syscall (cfg_vfs_syscalls; not when a VFS
 * function of it cannot be hooked, like Debian 5.10's vfs_rmdir).
 */
static __always_inline bool parks_at_entry(__u8 kind, long nr)
{
	if (kind == FSP_UMOUNT)
		return true;
	return (kind == FSP_UNLINK || kind == FSP_RMDIR || kind == FSP_RENAME) &&
	       !sys_bit(cfg_vfs_syscalls, nr);
}

/*
 * Failures a VFS hook reported during the current syscall (hooks/vfs.h),
 * by thread: the syscall's exit must not report them again.
 */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} vfs_failed SEC(".maps");

static __always_inline bool vfs_saw_failure(__u64 key)
{
	if (!bpf_map_lookup_elem(&vfs_failed, &key))
		return false;
	bpf_map_delete_elem(&vfs_failed, &key);
	return true;
}

/* Is this thread's activity reported (fsprobe itself, --pid, --uid, --comm)? Uncounted. */
static __always_inline bool process_reported(__u64 pid_tgid, __u32 uid)
{
	return (pid_tgid >> 32) != cfg_self_tgid && process_wanted(pid_tgid >> 32, uid);
}

/* The same, counting a call the process filter leaves out. */
static __always_inline bool reported_process(void)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	if ((pid_tgid >> 32) == cfg_self_tgid)
		return false;
	if (!process_wanted(pid_tgid >> 32, (__u32)bpf_get_current_uid_gid())) {
		count(FSP_CNT_FILTERED_PROC);
		return false;
	}
	return true;
}

/* ia32's old 16-bit ids (low2highuid()): 0xffff is -1, "leave it". */
static __always_inline unsigned long ia32_id16(unsigned long id)
{
	return (__u16)id == 0xffff ? (__u32)-1 : (__u16)id;
}

/*
 * The syscall's arguments as its x86-64 twin takes them: di, si, dx,
 * r10, r8, r9; for an ia32 syscall bx, cx, dx, si, di, bp (32 bits
 * each, ia32_sys_call()), reshaped where the twin's differ.
 */
static __always_inline void syscall_args(struct pt_regs *regs, const struct sys_call *c,
					 unsigned long *a)
{
	if (c->ia32_nr < 0) {
		a[0] = regs->di, a[1] = regs->si, a[2] = regs->dx;
		a[3] = regs->r10, a[4] = regs->r8, a[5] = regs->r9;
		return;
	}
	a[0] = (__u32)regs->bx, a[1] = (__u32)regs->cx, a[2] = (__u32)regs->dx;
	a[3] = (__u32)regs->si, a[4] = (__u32)regs->di, a[5] = (__u32)regs->bp;
	switch (c->shape) {
	case IA32_UID16:
		a[1] = ia32_id16(a[1]), a[2] = ia32_id16(a[2]);
		break;
	case IA32_OFF32:
		a[1] = (long)(int)a[1];
		break;
	case IA32_OFF64:
		a[1] = a[1] | (a[2] << 32);
		break;
	case IA32_OLDUMOUNT:
		a[1] = 0;
		break;
	}
}

/* The op of syscall c with arguments a, in per-CPU scratch; NULL: nothing to do. */
static __always_inline struct op *new_syscall_op(const struct sys_call *c, unsigned long *a)
{
	struct op *p = new_op(0, FSP_ORIGIN_SYSCALL, c->nr);

	if (!p || !decode_args(p, c->nr, a))
		return NULL;
	if (c->ia32_nr >= 0) {
		p->origin = FSP_ORIGIN_SYSCALL_IA32;
		p->nr_ia32 = c->ia32_nr;
	}
	return p;
}

/* The op to report at exit, or NULL: nothing to do. */
static __always_inline struct op *decode(const struct sys_call *c, unsigned long *a)
{
	struct op *p = new_syscall_op(c, a);

	/* A kind not asked for is still followed when it keeps the watch current. */
	if (!p || (!event_enabled(p->kind) && !(syscall_traits(c->nr) & T_WATCH)))
		return NULL;
	return p;
}

/* The fd that names a T_FD syscall's object, read from its register. */
static __always_inline long object_fd_of(struct pt_regs *regs, const struct sys_call *c)
{
	bool third = c->nr == NR_splice || c->nr == NR_copy_file_range;

	if (c->ia32_nr < 0)
		return (int)(third ? regs->dx : regs->di);
	return (int)(third ? regs->dx : regs->bx);
}

/*
 * sys_exit's decode into op_scratch, of the arguments sys_exit left in
 * scratch's sys_args; 1 when there is an op to report. A global function,
 * so that the arguments take no room in sys_exit's frame: its builders'
 * call chain must stay within the verifier's 512 bytes of stack. The
 * arguments come through scratch, not as a pointer to the registers: a
 * global function takes only scalars and memory of a known size, and the
 * copy of pt_regs that took (bpf_probe_read_kernel(), twice) cost about
 * 35 ns of each watched open (perf, scenario 6).
 */
__noinline int fsp_decode_exit(__s64 nr, __s64 ia32_nr, __u32 shape)
{
	struct sys_call c = { .nr = nr, .ia32_nr = ia32_nr, .shape = shape };
	struct fsp_scratch *s = get_scratch();
	unsigned long a[6];

	if (!s)
		return 0;
	for (int i = 0; i < 6; i++)
		a[i] = s->sys_args[i];
	return decode(&c, a) != NULL;
}

SEC("tp_btf/sys_enter")
int BPF_PROG(fsp_sys_enter, struct pt_regs *regs, long raw)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid(), traits;
	struct sys_call c;
	bool reported, parks;
	unsigned long a[6];
	struct op *p;
	long nr;

	if (!which_syscall(raw, cfg_sys_enter, cfg_ia32_enter, &c))
		return 0;
	nr = c.nr;
	syscall_args(regs, &c, a);
	traits = syscall_traits(nr);
	p = new_syscall_op(&c, a);
	parks = p && parks_at_entry(p->kind, nr) &&
		(event_enabled(p->kind) || (traits & T_WATCH));
	reported = parks && reported_process();
	/* A rename's source is looked up for every process: its type decides the invalidation. */
	if (p && ((parks && reported) || p->kind == FSP_RENAME))
		fsp_resolve_source();
	if (traits & T_TREE)
		invalidate_at_entry(nr, traits, a, tid, p);
	/* An unwatched source: nothing to report, nothing to forget. */
	if (parks && (p->unwatched || (p->src && !p->src_matched)) &&
	    (p->kind == FSP_UNLINK || p->kind == FSP_RMDIR))
		return 0;
	if (parks && reported)
		op_park(thread_key(), p);
	return 0;
}

SEC("tp_btf/sys_exit")
int BPF_PROG(fsp_sys_exit, struct pt_regs *regs, long ret)
{
	__u64 key = thread_key();
	struct file *file = NULL;
	struct fsp_scratch *s;
	bool missing = false;
	struct sys_call c;
	long nr, fd = -1;
	__u32 traits;
	struct op *p;

	/* The number as syscall_get_nr() reads it. */
	if (!which_syscall(regs->orig_ax, cfg_sys_exit, cfg_ia32_exit, &c))
		return 0;
	nr = c.nr;
	traits = syscall_traits(nr);
	/* Before anything is resolved: this record must see the new paths. */
	if (traits & T_TREE)
		invalidate_at_exit(traits, key);
	if ((traits & T_ENTRY) && sys_bit(cfg_sys_enter, nr)) {
		p = op_find(key);
		if (p) {
			emit(ctx, p, ret);
			op_done(key);
			return 0;
		}
	}
	/* The VFS hooks reported it, unless it failed before reaching the VFS. */
	if (sys_bit(cfg_vfs_syscalls, nr) && (ret >= 0 || vfs_saw_failure(key)))
		return 0;
	/*
	 * Most opens and writes are of unwatched files: decide that from the
	 * file descriptor before anything else, and keep the file.
	 */
	if ((syscall_events(nr) & EV(OPEN)) && ret >= 0)
		fd = ret;
	else if (traits & T_FD)
		fd = object_fd_of(regs, &c);
	if (fd >= 0) {
		file = fd_watched(fd, &missing);
		if (!file && !(missing && !cfg_paths_filtering))
			return 0;
	}
	s = get_scratch();
	if (!s)
		return 0;
	syscall_args(regs, &c, s->sys_args);
	if (!fsp_decode_exit(c.nr, c.ia32_nr, c.shape))
		return 0;
	p = op_current();
	if (!p)
		return 0;
	if (file) {
		p->file = file;
		p->file_matched = 1;
	}
	/* Its entry decided: left out there (or no room to keep it). */
	if (parks_at_entry(p->kind, nr) && sys_bit(cfg_sys_enter, nr))
		return 0;
	if (!reported_process())
		return 0;
	emit_scratch(ctx, ret);
	return 0;
}

#endif /* FSP_HOOKS_SYSCALLS_H */

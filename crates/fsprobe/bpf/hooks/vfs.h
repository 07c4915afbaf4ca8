/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * VFS hooks, for the fentry and kprobe backends: the operations
 * themselves, whoever asked for them (a syscall, io_uring inline or in a
 * worker, or the kernel).
 *
 * Each operation is seen twice. The LSM path hook that the VFS calls just
 * before acting (security_path_mkdir() and its siblings, vfs_utimes())
 * gives the exact dentry and struct path, hence the mount, and for
 * unlink, rmdir and rename the source is resolved there, before it
 * changes. The op is kept per thread until the exit of the VFS function
 * that performs it (vfs_mkdir(), vfs_unlink(), ..., notify_change()),
 * which gives the result and sends the record. No byte of such a path
 * comes from the caller's memory.
 *
 * The LSM path hooks kept their signatures from 5.10 to 6.18. The vfs_*()
 * functions did not: a user_namespace argument (5.12), then a mnt_idmap
 * (6.3), a struct renamedata (5.12; Debian's 5.10 has it too), a dentry
 * return value (vfs_mkdir, 6.15). Their exit programs therefore read the
 * argument they check and the return value at positions user space reads
 * from the running kernel's BTF before load (cfg_vfs; fexit only: a
 * kretprobe sees the return value alone).
 *
 * Opens are seen at vfs_open()'s exit, for the opens no syscall hook
 * reports: the ones of execve(), of in-kernel callers, and of io_uring
 * when its hooks are absent.
 */
#ifndef FSP_HOOKS_VFS_H
#define FSP_HOOKS_VFS_H

#include "hooks/origin.h"
#include "hooks/syscalls.h"
#include <bpf/bpf_tracing.h>

/*
 * Where each vfs_*() exit finds the dentry it acted on and its return
 * value: argument positions in this kernel (fentry/fexit only).
 */
struct fsp_vfs_layout {
	__u8 mkdir_dentry, mkdir_ret, mkdir_ret_dentry; /* 6.15+: returns struct dentry * */
	__u8 rmdir_dentry, rmdir_ret;
	__u8 unlink_dentry, unlink_ret;
	__u8 link_dentry, link_ret; /* the new link */
	__u8 symlink_dentry, symlink_ret;
	__u8 mknod_dentry, mknod_ret;
	__u8 notify_dentry, notify_attr, notify_ret;
	__u8 rename_ret;
	__u8 pad[3];
};
const volatile struct fsp_vfs_layout cfg_vfs = {};

/* io_uring opcodes whose requests the io_uring hooks report (hooks/io_uring.h). */
const volatile __u64 cfg_io_reported = 0;

/* Argument i of an fentry/fexit program (a constant offset into ctx, as the verifier requires). */
static __always_inline __u64 fexit_arg(__u64 *ctx, __u32 i)
{
	switch (i) {
	case 0: return (__u64)untyped((void *)ctx[0]);
	case 1: return (__u64)untyped((void *)ctx[1]);
	case 2: return (__u64)untyped((void *)ctx[2]);
	case 3: return (__u64)untyped((void *)ctx[3]);
	case 4: return (__u64)untyped((void *)ctx[4]);
	case 5: return (__u64)untyped((void *)ctx[5]);
	case 6: return (__u64)untyped((void *)ctx[6]);
	}
	return 0;
}

/* include/linux/err.h */
#define FSP_MAX_ERRNO 4095
static __always_inline bool is_err(__u64 v)
{
	return v >= (__u64)-FSP_MAX_ERRNO;
}

/* include/linux/fs.h: struct iattr.ia_valid */
#define FSP_IA_MODE 1
#define FSP_IA_UID 2
#define FSP_IA_GID 4
#define FSP_IA_SIZE 8
#define FSP_IA_ATIME 16
#define FSP_IA_MTIME 32

/*
 * Is the operation another hook reports? A syscall's exit reports the
 * syscalls the VFS hooks do not cover (cfg_vfs_syscalls), and io_uring's
 * completion the opcodes in cfg_io_reported.
 */
static __always_inline bool reported_elsewhere(struct op *p)
{
	if (p->origin == FSP_ORIGIN_IO_URING)
		return p->nr < 64 && ((cfg_io_reported >> p->nr) & 1);
	if (is_syscall(p) && !sys_bit(cfg_vfs_syscalls, p->nr))
		return sys_bit(cfg_sys_exit, p->nr);
	return false;
}

/*
 * Is the task this operation is done for reported? An io_uring request's
 * submitter, whoever issues it (an io-wq worker: io_issue_begin()).
 */
static __always_inline bool reported_actor(void)
{
	__u64 key = thread_key();
	struct io_issuing *io = bpf_map_lookup_elem(&io_issuing, &key);

	if (io)
		return !io->unreported;
	return reported_process();
}

/*
 * LSM path hook: start op of `kind` on `dentry` reached through `mnt`.
 * Returns it (kept until the VFS function's exit) or NULL.
 */
static __always_inline struct op *vfs_begin(__u8 kind, struct dentry *dentry,
					    struct vfsmount *mnt)
{
	struct op *p;

	if (!reported_actor())
		return NULL;
	p = new_op(kind, 0, 0);
	if (!p)
		return NULL;
	set_origin(p);
	if (reported_elsewhere(p))
		return NULL;
	p->obj = dentry;
	p->obj_mnt = mnt;
	return p;
}

/*
 * The VFS function's exit: report the op this thread began on `dentry`
 * (0: a kretprobe, which cannot tell), with result ret.
 */
static __always_inline void vfs_end(void *ctx, __u8 kind, struct dentry *dentry, long ret)
{
	__u64 key = thread_key();
	struct op *p = op_find(key);
	__u8 one = 1;

	if (!p || p->kind != kind)
		return;
	/* A nested call on another dentry (overlayfs acting on its layers). */
	if (dentry && dentry != p->obj && dentry != p->src)
		return;
	if (ret < 0 && is_syscall(p))
		bpf_map_update_elem(&vfs_failed, &key, &one, BPF_ANY);
	emit_as(ctx, p, ret, kind);
	op_done(key);
}

static __always_inline void on_path_created(__u8 kind, const struct path *dir,
					    struct dentry *dentry, __u32 mode, __u32 dev,
					    const char *target)
{
	struct op *p;

	/* Nothing to report or to keep watched outside the watched trees. */
	if (!child_matches(BPF_CORE_READ(dir, dentry)))
		return;
	p = vfs_begin(kind, dentry, BPF_CORE_READ(dir, mnt));
	if (!p)
		return;
	p->mode = mode;
	p->rdev = dev;
	p->extra = target;
	p->kernel_names = 1;
	op_park(thread_key(), p);
}

/* mknod of a regular file is a file creation (the LSM hook also runs for O_CREAT opens). */
static __always_inline void on_path_mknod(const struct path *dir, struct dentry *dentry,
					  __u32 mode, __u32 dev)
{
	if ((mode & FSP_S_IFMT) == 0 || (mode & FSP_S_IFMT) == 0100000)
		return;
	on_path_created(FSP_MKNOD, dir, dentry, mode, dev, NULL);
}

static __always_inline void on_path_remove(__u8 kind, const struct path *dir, struct dentry *dentry)
{
	struct vfsmount *mnt = BPF_CORE_READ(dir, mnt);
	struct op *p;

	if (object_matches(dentry)) {
		p = vfs_begin(kind, dentry, mnt);
		if (p) {
			capture_source(p, dentry, mnt);
			op_park(thread_key(), p);
		}
	}
	/*
	 * The directory's key may be reused once it is gone. After the
	 * source's walk, as the syscall hooks do: the walk still meets the
	 * cached keys of ancestors that have no i_generation (struct
	 * fsp_dir_key), which the bump makes new.
	 */
	if (kind == FSP_RMDIR)
		bump_removed_dirs();
}

#define FSP_RENAME_EXCHANGE 2

/*
 * Renames that no syscall hook sees (io_uring, nfsd, overlayfs copy-up)
 * invalidate the path caches here, before d_move(), and at vfs_rename()'s
 * exit, after it; a file's rename changes no directory's path.
 */
static __always_inline bool rename_moves_dirs(struct dentry *old, struct dentry *new,
					      unsigned int flags)
{
	umode_t m = BPF_CORE_READ(old, d_inode, i_mode);

	return (m & FSP_S_IFMT) == FSP_S_IFDIR || (flags & FSP_RENAME_EXCHANGE);
}

static __always_inline void on_path_rename(const struct path *old_dir, struct dentry *old_dentry,
					   const struct path *new_dir, struct dentry *new_dentry,
					   unsigned int flags)
{
	struct vfsmount *mnt = BPF_CORE_READ(old_dir, mnt);
	struct op *p;

	if (rename_moves_dirs(old_dentry, new_dentry, flags))
		bump_gen();
	/* Watched as it was, or as it will be (a move into a watched tree). */
	if (!object_matches(old_dentry) && !child_matches(BPF_CORE_READ(new_dir, dentry)))
		return;
	p = vfs_begin(FSP_RENAME, old_dentry, mnt);
	if (!p)
		return;
	capture_source(p, old_dentry, mnt);
	p->obj = NULL; /* the source is src; the target is obj2 */
	p->obj2 = new_dentry;
	p->obj2_mnt = BPF_CORE_READ(new_dir, mnt);
	p->open_flags = flags;
	op_park(thread_key(), p);
}

static __always_inline void on_rename_end(void *ctx, struct renamedata *rd, long ret)
{
	struct dentry *old = rd ? BPF_CORE_READ(rd, old_dentry) : NULL;
	__u64 key = thread_key();
	struct op *p = op_find(key);

	if (!p || p->kind != FSP_RENAME) {
		bump_gen(); /* a rename the LSM hook did not see (overlayfs, nfsd) */
		return;
	}
	if (!old || old == p->src) {
		if ((p->src_id.mode & FSP_S_IFMT) == FSP_S_IFDIR ||
		    (p->open_flags & FSP_RENAME_EXCHANGE))
			bump_gen();
	}
	vfs_end(ctx, FSP_RENAME, old, ret);
}

static __always_inline void on_path_link(struct dentry *old_dentry, const struct path *new_dir,
					 struct dentry *new_dentry)
{
	/* A link never crosses mounts: both names live on new_dir's mount. */
	struct vfsmount *mnt = BPF_CORE_READ(new_dir, mnt);
	struct op *p;

	if (!object_matches(old_dentry) && !child_matches(BPF_CORE_READ(new_dir, dentry)))
		return;
	p = vfs_begin(FSP_LINK, old_dentry, mnt);
	if (!p)
		return;
	p->obj2 = new_dentry;
	p->obj2_mnt = mnt;
	op_park(thread_key(), p);
}

static __always_inline void on_path_setattr(const struct path *path)
{
	struct dentry *d = BPF_CORE_READ(path, dentry);
	struct op *p;

	if (!event_enabled(FSP_SETATTR) || !object_matches(d))
		return;
	p = vfs_begin(FSP_SETATTR, d, BPF_CORE_READ(path, mnt));
	if (p)
		op_park(thread_key(), p);
}

/* notify_change(): what really changed, from struct iattr. */
static __always_inline void on_notify_change(void *ctx, struct dentry *dentry, struct iattr *attr,
					     long ret)
{
	__u64 key = thread_key();
	struct op *p = op_find(key);
	unsigned int valid;

	if (!p || p->kind != FSP_SETATTR)
		return;
	if (attr) {
		valid = BPF_CORE_READ(attr, ia_valid);
		p->attr_mask = 0;
		if (valid & FSP_IA_MODE) {
			p->attr_mask |= FSP_ATTR_MODE;
			p->mode = BPF_CORE_READ(attr, ia_mode);
		}
		if (valid & FSP_IA_UID) {
			p->attr_mask |= FSP_ATTR_UID;
			p->attr_uid = BPF_CORE_READ(attr, ia_uid.val);
		}
		if (valid & FSP_IA_GID) {
			p->attr_mask |= FSP_ATTR_GID;
			p->attr_gid = BPF_CORE_READ(attr, ia_gid.val);
		}
		if (valid & FSP_IA_SIZE) {
			p->attr_mask |= FSP_ATTR_SIZE;
			p->attr_size = BPF_CORE_READ(attr, ia_size);
		}
		if (valid & (FSP_IA_ATIME | FSP_IA_MTIME))
			p->attr_mask |= FSP_ATTR_TIMES;
	}
	vfs_end(ctx, FSP_SETATTR, dentry, ret);
}

/* Is the current thread in an open syscall whose exit reports it (with the fd)? */
static __always_inline bool in_reported_open_syscall(void)
{
	long ia32_nr, nr = current_syscall(&ia32_nr);

	return nr >= 0 && (syscall_events(nr) & EV(OPEN)) && sys_bit(cfg_sys_exit, nr);
}

/* An open no syscall hook reports: execve()'s, an in-kernel caller's, io_uring's. */
static __always_inline void on_vfs_open(void *ctx, struct file *file, long ret)
{
	struct op *p;

	if (!event_enabled(FSP_OPEN) || in_reported_open_syscall())
		return;
	if (!object_matches(BPF_CORE_READ(file, f_path.dentry)) || !reported_actor())
		return;
	p = new_op(FSP_OPEN, 0, 0);
	if (!p)
		return;
	set_origin(p);
	if (p->origin == FSP_ORIGIN_IO_URING && reported_elsewhere(p))
		return;
	p->file = file;
	p->open_flags = BPF_CORE_READ(file, f_flags);
	send_built(ctx, build_kind(FSP_OPEN, ret));
}

/*
 * fentry/fexit: LSM hooks at entry, the vfs_*() functions at exit (their
 * arguments at cfg_vfs positions).
 */
SEC("fentry/security_path_mkdir")
int BPF_PROG(fentry_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	on_path_created(FSP_MKDIR, untyped(dir), untyped(dentry), mode, 0, NULL);
	return 0;
}

SEC("fentry/security_path_mknod")
int BPF_PROG(fentry_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	     unsigned int dev)
{
	on_path_mknod(untyped(dir), untyped(dentry), mode, dev);
	return 0;
}

SEC("fentry/security_path_symlink")
int BPF_PROG(fentry_path_symlink, const struct path *dir, struct dentry *dentry,
	     const char *old_name)
{
	on_path_created(FSP_SYMLINK, untyped(dir), untyped(dentry), 0, 0, untyped(old_name));
	return 0;
}

SEC("fentry/security_path_unlink")
int BPF_PROG(fentry_path_unlink, const struct path *dir, struct dentry *dentry)
{
	on_path_remove(FSP_UNLINK, untyped(dir), untyped(dentry));
	return 0;
}

SEC("fentry/security_path_rmdir")
int BPF_PROG(fentry_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	on_path_remove(FSP_RMDIR, untyped(dir), untyped(dentry));
	return 0;
}

/*
 * security_path_rename()'s flags argument exists on every kernel here,
 * but Debian 5.10's BPF LSM hook list lacks it; fentry reads it from the
 * function's own prototype.
 */
SEC("fentry/security_path_rename")
int BPF_PROG(fentry_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	     const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	on_path_rename(untyped(old_dir), untyped(old_dentry), untyped(new_dir), untyped(new_dentry),
		       flags);
	return 0;
}

SEC("fentry/security_path_link")
int BPF_PROG(fentry_path_link, struct dentry *old_dentry, const struct path *new_dir,
	     struct dentry *new_dentry)
{
	on_path_link(untyped(old_dentry), untyped(new_dir), untyped(new_dentry));
	return 0;
}

SEC("fentry/security_path_chmod")
int BPF_PROG(fentry_path_chmod, const struct path *path)
{
	on_path_setattr(untyped(path));
	return 0;
}

SEC("fentry/security_path_chown")
int BPF_PROG(fentry_path_chown, const struct path *path)
{
	on_path_setattr(untyped(path));
	return 0;
}

SEC("fentry/security_path_truncate")
int BPF_PROG(fentry_path_truncate, const struct path *path)
{
	on_path_setattr(untyped(path));
	return 0;
}

SEC("fentry/vfs_utimes")
int BPF_PROG(fentry_vfs_utimes, const struct path *path)
{
	on_path_setattr(untyped(path));
	return 0;
}

SEC("fexit/vfs_mkdir")
int fexit_vfs_mkdir(__u64 *ctx)
{
	__u64 ret = fexit_arg(ctx, cfg_vfs.mkdir_ret);
	struct dentry *d = (struct dentry *)fexit_arg(ctx, cfg_vfs.mkdir_dentry);
	__u64 key = thread_key();
	struct op *p;

	if (cfg_vfs.mkdir_ret_dentry) {
		/* 6.15+: the new directory's dentry (maybe another one), or an error. */
		if (is_err(ret)) {
			vfs_end(ctx, FSP_MKDIR, d, (long)ret);
			return 0;
		}
		p = op_find(key);
		if (p && p->kind == FSP_MKDIR && p->obj == d && ret)
			p->obj = (struct dentry *)ret;
		vfs_end(ctx, FSP_MKDIR, ret ? (struct dentry *)ret : d, 0);
		return 0;
	}
	vfs_end(ctx, FSP_MKDIR, d, (int)ret);
	return 0;
}

SEC("fexit/vfs_mknod")
int fexit_vfs_mknod(__u64 *ctx)
{
	vfs_end(ctx, FSP_MKNOD, (struct dentry *)fexit_arg(ctx, cfg_vfs.mknod_dentry),
		(int)fexit_arg(ctx, cfg_vfs.mknod_ret));
	return 0;
}

SEC("fexit/vfs_symlink")
int fexit_vfs_symlink(__u64 *ctx)
{
	vfs_end(ctx, FSP_SYMLINK, (struct dentry *)fexit_arg(ctx, cfg_vfs.symlink_dentry),
		(int)fexit_arg(ctx, cfg_vfs.symlink_ret));
	return 0;
}

SEC("fexit/vfs_unlink")
int fexit_vfs_unlink(__u64 *ctx)
{
	vfs_end(ctx, FSP_UNLINK, (struct dentry *)fexit_arg(ctx, cfg_vfs.unlink_dentry),
		(int)fexit_arg(ctx, cfg_vfs.unlink_ret));
	return 0;
}

SEC("fexit/vfs_rmdir")
int fexit_vfs_rmdir(__u64 *ctx)
{
	bump_removed_dirs(); /* after the directory is gone */
	vfs_end(ctx, FSP_RMDIR, (struct dentry *)fexit_arg(ctx, cfg_vfs.rmdir_dentry),
		(int)fexit_arg(ctx, cfg_vfs.rmdir_ret));
	return 0;
}

SEC("fexit/vfs_rename")
int fexit_vfs_rename(__u64 *ctx)
{
	on_rename_end(ctx, (struct renamedata *)fexit_arg(ctx, 0),
		      (int)fexit_arg(ctx, cfg_vfs.rename_ret));
	return 0;
}

SEC("fexit/vfs_link")
int fexit_vfs_link(__u64 *ctx)
{
	__u64 key = thread_key();
	struct op *p = op_find(key);
	struct dentry *link = (struct dentry *)fexit_arg(ctx, cfg_vfs.link_dentry);

	/* The op was begun on the source; the exit names the new link. */
	if (p && p->kind == FSP_LINK && p->obj2 == link)
		vfs_end(ctx, FSP_LINK, 0, (int)fexit_arg(ctx, cfg_vfs.link_ret));
	return 0;
}

SEC("fexit/notify_change")
int fexit_notify_change(__u64 *ctx)
{
	on_notify_change(ctx, (struct dentry *)fexit_arg(ctx, cfg_vfs.notify_dentry),
			 (struct iattr *)fexit_arg(ctx, cfg_vfs.notify_attr),
			 (int)fexit_arg(ctx, cfg_vfs.notify_ret));
	return 0;
}

SEC("fexit/vfs_open")
int BPF_PROG(fexit_vfs_open, const struct path *path, struct file *file, int ret)
{
	on_vfs_open(ctx, untyped(file), ret);
	return 0;
}

/*
 * kprobe/kretprobe: the same LSM hooks at entry; the vfs_*() functions'
 * return values at their kretprobes (which see no arguments, so cannot
 * tell a nested call on another dentry: overlayfs's layers). vfs_rename
 * and notify_change are also probed at entry for what their exits need.
 */
SEC("kprobe/security_path_mkdir")
int BPF_KPROBE(kprobe_path_mkdir, const struct path *dir, struct dentry *dentry, umode_t mode)
{
	on_path_created(FSP_MKDIR, dir, dentry, mode, 0, NULL);
	return 0;
}

SEC("kprobe/security_path_mknod")
int BPF_KPROBE(kprobe_path_mknod, const struct path *dir, struct dentry *dentry, umode_t mode,
	       unsigned int dev)
{
	on_path_mknod(dir, dentry, mode, dev);
	return 0;
}

SEC("kprobe/security_path_symlink")
int BPF_KPROBE(kprobe_path_symlink, const struct path *dir, struct dentry *dentry,
	       const char *old_name)
{
	on_path_created(FSP_SYMLINK, dir, dentry, 0, 0, old_name);
	return 0;
}

SEC("kprobe/security_path_unlink")
int BPF_KPROBE(kprobe_path_unlink, const struct path *dir, struct dentry *dentry)
{
	on_path_remove(FSP_UNLINK, dir, dentry);
	return 0;
}

SEC("kprobe/security_path_rmdir")
int BPF_KPROBE(kprobe_path_rmdir, const struct path *dir, struct dentry *dentry)
{
	on_path_remove(FSP_RMDIR, dir, dentry);
	return 0;
}

SEC("kprobe/security_path_rename")
int BPF_KPROBE(kprobe_path_rename, const struct path *old_dir, struct dentry *old_dentry,
	       const struct path *new_dir, struct dentry *new_dentry, unsigned int flags)
{
	on_path_rename(old_dir, old_dentry, new_dir, new_dentry, flags);
	return 0;
}

SEC("kprobe/security_path_link")
int BPF_KPROBE(kprobe_path_link, struct dentry *old_dentry, const struct path *new_dir,
	       struct dentry *new_dentry)
{
	on_path_link(old_dentry, new_dir, new_dentry);
	return 0;
}

SEC("kprobe/security_path_chmod")
int BPF_KPROBE(kprobe_path_chmod, const struct path *path)
{
	on_path_setattr(path);
	return 0;
}

SEC("kprobe/security_path_chown")
int BPF_KPROBE(kprobe_path_chown, const struct path *path)
{
	on_path_setattr(path);
	return 0;
}

SEC("kprobe/security_path_truncate")
int BPF_KPROBE(kprobe_path_truncate, const struct path *path)
{
	on_path_setattr(path);
	return 0;
}

SEC("kprobe/vfs_utimes")
int BPF_KPROBE(kprobe_vfs_utimes, const struct path *path)
{
	on_path_setattr(path);
	return 0;
}

/*
 * notify_change()'s iattr, read at entry: its argument position moved
 * (5.12), so the kprobe reads it from the register cfg_vfs names.
 */
static __always_inline __u64 kprobe_arg(struct pt_regs *regs, __u32 i)
{
	/* Probe reads: 5.10's verifier refuses a load from a computed ctx offset. */
	switch (i) {
	case 0: return PT_REGS_PARM1_CORE(regs);
	case 1: return PT_REGS_PARM2_CORE(regs);
	case 2: return PT_REGS_PARM3_CORE(regs);
	case 3: return PT_REGS_PARM4_CORE(regs);
	case 4: return PT_REGS_PARM5_CORE(regs);
	}
	return 0;
}

SEC("kprobe/notify_change")
int BPF_KPROBE(kprobe_notify_change)
{
	__u64 key = thread_key();
	struct op *p = op_find(key);
	struct iattr *attr = (struct iattr *)kprobe_arg(ctx, cfg_vfs.notify_attr);
	unsigned int valid;

	if (!p || p->kind != FSP_SETATTR || !attr)
		return 0;
	/* The same bookkeeping as on_notify_change(), kept for the kretprobe. */
	valid = BPF_CORE_READ(attr, ia_valid);
	p->attr_mask = 0;
	if (valid & FSP_IA_MODE) {
		p->attr_mask |= FSP_ATTR_MODE;
		p->mode = BPF_CORE_READ(attr, ia_mode);
	}
	if (valid & FSP_IA_UID) {
		p->attr_mask |= FSP_ATTR_UID;
		p->attr_uid = BPF_CORE_READ(attr, ia_uid.val);
	}
	if (valid & FSP_IA_GID) {
		p->attr_mask |= FSP_ATTR_GID;
		p->attr_gid = BPF_CORE_READ(attr, ia_gid.val);
	}
	if (valid & FSP_IA_SIZE) {
		p->attr_mask |= FSP_ATTR_SIZE;
		p->attr_size = BPF_CORE_READ(attr, ia_size);
	}
	if (valid & (FSP_IA_ATIME | FSP_IA_MTIME))
		p->attr_mask |= FSP_ATTR_TIMES;
	return 0;
}

SEC("kretprobe/vfs_mkdir")
int BPF_KRETPROBE(kretprobe_vfs_mkdir, long ret)
{
	if (cfg_vfs.mkdir_ret_dentry && !is_err(ret)) {
		__u64 key = thread_key();
		struct op *p = op_find(key);

		if (p && p->kind == FSP_MKDIR && ret)
			p->obj = (struct dentry *)ret;
		ret = 0;
	}
	vfs_end(ctx, FSP_MKDIR, 0, cfg_vfs.mkdir_ret_dentry ? ret : (int)ret);
	return 0;
}

SEC("kretprobe/vfs_mknod")
int BPF_KRETPROBE(kretprobe_vfs_mknod, int ret)
{
	vfs_end(ctx, FSP_MKNOD, 0, ret);
	return 0;
}

SEC("kretprobe/vfs_symlink")
int BPF_KRETPROBE(kretprobe_vfs_symlink, int ret)
{
	vfs_end(ctx, FSP_SYMLINK, 0, ret);
	return 0;
}

SEC("kretprobe/vfs_unlink")
int BPF_KRETPROBE(kretprobe_vfs_unlink, int ret)
{
	vfs_end(ctx, FSP_UNLINK, 0, ret);
	return 0;
}

SEC("kretprobe/vfs_rmdir")
int BPF_KRETPROBE(kretprobe_vfs_rmdir, int ret)
{
	bump_removed_dirs();
	vfs_end(ctx, FSP_RMDIR, 0, ret);
	return 0;
}

SEC("kretprobe/vfs_rename")
int BPF_KRETPROBE(kretprobe_vfs_rename, int ret)
{
	on_rename_end(ctx, NULL, ret);
	return 0;
}

SEC("kretprobe/vfs_link")
int BPF_KRETPROBE(kretprobe_vfs_link, int ret)
{
	vfs_end(ctx, FSP_LINK, 0, ret);
	return 0;
}

SEC("kretprobe/notify_change")
int BPF_KRETPROBE(kretprobe_notify_change, int ret)
{
	vfs_end(ctx, FSP_SETATTR, 0, ret);
	return 0;
}

/* vfs_open(): the file is the second argument, kept from entry for the kretprobe. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct file *);
} opening SEC(".maps");

SEC("kprobe/vfs_open")
int BPF_KPROBE(kprobe_vfs_open, const struct path *path, struct file *file)
{
	__u64 key = thread_key();

	bpf_map_update_elem(&opening, &key, &file, BPF_ANY);
	return 0;
}

SEC("kretprobe/vfs_open")
int BPF_KRETPROBE(kretprobe_vfs_open, int ret)
{
	__u64 key = thread_key();
	struct file **file = bpf_map_lookup_elem(&opening, &key);

	if (!file)
		return 0;
	on_vfs_open(ctx, *file, ret);
	bpf_map_delete_elem(&opening, &key);
	return 0;
}

#endif /* FSP_HOOKS_VFS_H */

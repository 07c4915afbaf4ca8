/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Syscall entry and exit: every backend's base.
 *
 * Two raw tracepoint programs, on raw_syscalls:sys_enter and sys_exit,
 * handle every syscall; both return at once unless the syscall number
 * (x86-64) is in hooked_syscalls, which user space fills with the
 * syscalls the selected events need. Entry records the arguments, and for
 * unlink, rmdir and rename resolves the source while it still exists.
 * Exit resolves everything else from kernel objects (the returned or
 * passed file descriptor, or the dcache, see lookup.h) and sends one
 * record with the return value.
 *
 * Why not the per-syscall sys_enter_<name> events: each is a perf event,
 * and closing one ends in perf_trace_event_unreg(), which waits for an
 * RCU grace period under event_mutex; with 70 of them, stopping took
 * about 5 s. The raw tracepoints run for every syscall instead, but
 * return after one array lookup: an open+close A/B showed no difference
 * beyond noise.
 */
#ifndef FSP_HOOKS_SYSCALLS_H
#define FSP_HOOKS_SYSCALLS_H

#include "record/pending.h"

/* x86-64 syscall numbers (arch/x86/entry/syscalls/syscall_64.tbl). */
enum {
	NR_write = 1, NR_open = 2, NR_pwrite64 = 18, NR_writev = 20,
	NR_truncate = 76, NR_ftruncate = 77, NR_rename = 82, NR_mkdir = 83,
	NR_rmdir = 84, NR_creat = 85, NR_link = 86, NR_unlink = 87,
	NR_chmod = 90, NR_fchmod = 91, NR_chown = 92, NR_fchown = 93,
	NR_lchown = 94, NR_utime = 132, NR_utimes = 235, NR_openat = 257,
	NR_mkdirat = 258, NR_fchownat = 260, NR_futimesat = 261,
	NR_unlinkat = 263, NR_renameat = 264, NR_linkat = 265,
	NR_fchmodat = 268, NR_utimensat = 280, NR_pwritev = 296,
	NR_renameat2 = 316, NR_pwritev2 = 328, NR_openat2 = 437, NR_fchmodat2 = 452,
	/* Only for the path caches' generation (cache.h). */
	NR_clone = 56, NR_pivot_root = 155, NR_mount = 165, NR_umount2 = 166,
	NR_unshare = 272, NR_move_mount = 429, NR_clone3 = 435,
};

/* Above every x86-64 syscall number; x32 calls (bit 30 set) fall outside. */
#define FSP_NR_SYSCALLS 512

/* arch/x86/include/asm/thread_info.h: the task is in a 32-bit syscall. */
#define FSP_TS_COMPAT 0x0002

/* Syscalls to handle, by x86-64 number: 1 = hooked (user space fills it). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, FSP_NR_SYSCALLS);
	__type(key, __u32);
	__type(value, __u8);
} hooked_syscalls SEC(".maps");

/*
 * Is syscall nr one to handle? 32-bit (ia32) syscalls have numbers of
 * their own table and are skipped, as the sys_enter_<name> events skip
 * them (trace_get_syscall_nr() returns -1 when in_32bit_syscall()).
 */
static __always_inline bool hooked(long nr)
{
	struct task_struct *task;
	__u32 key = nr;
	__u8 *on;

	if (nr < 0 || nr >= FSP_NR_SYSCALLS)
		return false;
	on = bpf_map_lookup_elem(&hooked_syscalls, &key);
	if (!on || !*on)
		return false;
	task = (struct task_struct *)bpf_get_current_task();
	return !(BPF_CORE_READ(task, thread_info.status) & FSP_TS_COMPAT);
}

#define FSP_CLONE_NEWNS 0x00020000

#define FSP_O_CREAT 0100
#define FSP_CREAT_FLAGS (0100 | 01 | 01000) /* O_CREAT | O_WRONLY | O_TRUNC */
#define FSP_AT_REMOVEDIR 0x200

static __always_inline void set_attr(struct pending *p, __u32 mask)
{
	p->kind = FSP_SETATTR;
	p->attr_mask = mask;
}

static __always_inline void set_name(struct pending *p, long dirfd, unsigned long path)
{
	p->dirfd = dirfd;
	p->path = (const char *)path;
}

static __always_inline void set_name2(struct pending *p, long dirfd, unsigned long path)
{
	p->dirfd2 = dirfd;
	p->path2 = (const char *)path;
}

static __always_inline void set_owner(struct pending *p, unsigned long uid, unsigned long gid)
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

/* Fill p from the syscall's arguments; false for calls fsprobe ignores. */
static __always_inline bool decode_args(struct pending *p, long nr, unsigned long *a)
{
	p->fd = -1;
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
	case NR_mkdir:
		p->kind = FSP_MKDIR, set_name(p, FSP_AT_FDCWD, a[0]), p->mode = a[1];
		return true;
	case NR_mkdirat:
		p->kind = FSP_MKDIR, set_name(p, a[0], a[1]), p->mode = a[2];
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
		p->kind = FSP_MODIFY, p->fd = a[0];
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

static __always_inline bool may_change_paths(long nr)
{
	switch (nr) {
	case NR_rename: case NR_renameat: case NR_renameat2: case NR_rmdir: case NR_unlinkat:
	case NR_mount: case NR_umount2: case NR_move_mount: case NR_pivot_root:
	case NR_clone: case NR_clone3: case NR_unshare:
		return true;
	}
	return false;
}

/* Among those, the ones that change the mount table (user space's mountinfo). */
static __always_inline bool changes_mounts(long nr)
{
	return nr != NR_rename && nr != NR_renameat && nr != NR_renameat2 && nr != NR_rmdir &&
	       nr != NR_unlinkat;
}

static __always_inline bool changes_paths(long nr, unsigned long *a)
{
	__u64 clone3_flags = 0;

	switch (nr) {
	case NR_unlinkat:
		return a[2] & FSP_AT_REMOVEDIR;
	case NR_clone:
	case NR_unshare:
		return a[0] & FSP_CLONE_NEWNS;
	case NR_clone3:
		/* struct clone_args starts with its u64 flags. */
		bpf_probe_read_user(&clone3_flags, sizeof(clone3_flags), (void *)a[0]);
		return clone3_flags & FSP_CLONE_NEWNS;
	}
	return may_change_paths(nr);
}

static __always_inline void invalidate_at_entry(long nr, unsigned long *a, __u32 tid)
{
	__u8 one = 1;

	if (!may_change_paths(nr) || !changes_paths(nr, a))
		return;
	bump_gen();
	if (changes_mounts(nr))
		bump_mount_gen();
	if (bpf_map_update_elem(&path_changers, &tid, &one, BPF_ANY)) {
		/* cannot wait for the exit: invalidate twice now */
		bump_gen();
		if (changes_mounts(nr))
			bump_mount_gen();
	}
}

static __always_inline void invalidate_at_exit(long nr, __u32 tid)
{
	if (!may_change_paths(nr))
		return;
	if (bpf_map_lookup_elem(&path_changers, &tid)) {
		bump_gen();
		if (changes_mounts(nr))
			bump_mount_gen();
		bpf_map_delete_elem(&path_changers, &tid);
	}
}

/*
 * unlink, rmdir, rename: the source will be gone or renamed at exit, so
 * resolve it now. The dentry itself survives (d_delete() keeps its name
 * and parent; d_move() moves it), so exit can still walk from it.
 */
static __always_inline void resolve_source(struct fsp_scratch *s, struct pending *p)
{
	struct vfsmount *mnt;
	struct dentry *d;
	long n;

	n = bpf_probe_read_user_str(s->upath, FSP_PATH_MAX, p->path);
	if (n <= 0 || !lookup_base(s, p->dirfd, &d, &mnt))
		return;
	lookup_path(s, d, mnt, n - 1);
	if (suffix_start(s, s->ls.resolved, n - 1) < n - 1)
		return; /* not in the dcache: exit falls back to the name */
	capture_source(p, s->ls.cur, (struct vfsmount *)&s->ls.mnt->mnt);
}

SEC("raw_tp/sys_enter")
int fsp_sys_enter(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(struct pt_regs *regs, long id) */
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long nr = ctx->args[1];
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid, zero = 0;
	struct fsp_scratch *s;
	struct pending *p;
	unsigned long args[6], regs8[8];
	struct file *f;

	if (!hooked(nr))
		return 0;
	s = get_scratch();
	p = bpf_map_lookup_elem(&pending_scratch, &zero);
	if (!s || !p)
		return 0;
	/*
	 * The x86-64 syscall convention: di, si, dx, r10, r8, r9. struct
	 * pt_regs holds r10, r9, r8, ax, cx, dx, si, di in that order: one
	 * read of those eight words instead of six reads.
	 */
	if (bpf_probe_read_kernel(regs8, sizeof(regs8), &regs->r10))
		return 0;
	args[0] = regs8[7], args[1] = regs8[6], args[2] = regs8[5];
	args[3] = regs8[0], args[4] = regs8[2], args[5] = regs8[1];
	invalidate_at_entry(nr, args, tid);
	if ((pid_tgid >> 32) == cfg_self_tgid)
		return 0;
	if (!process_wanted(pid_tgid >> 32, (__u32)bpf_get_current_uid_gid())) {
		count(FSP_CNT_FILTERED_PROC);
		return 0;
	}
	__builtin_memset(p, 0, sizeof(*p));
	if (!decode_args(p, nr, args) || !event_enabled(p->kind))
		return 0;
	p->nr = nr;
	if (p->fd >= 0) {
		/* The file is known now: skip unwatched ones before any work. */
		f = fd_file(p->fd);
		if (!f || !object_matches(BPF_CORE_READ(f, f_path.dentry)))
			return 0;
	}
	/* With VFS hooks, the hook captures the source from the real dentry. */
	if (!cfg_vfs_hooks &&
	    (p->kind == FSP_UNLINK || p->kind == FSP_RMDIR || p->kind == FSP_RENAME))
		resolve_source(s, p);
	if (bpf_map_update_elem(&pending_calls, &tid, p, BPF_ANY))
		count(FSP_CNT_LOST_PENDING);
	return 0;
}

/* The saved source of unlink/rmdir/rename: its path as it was at entry. */
static __always_inline bool put_source(struct fsp_scratch *s, struct pending *p)
{
	struct fsp_file *f = &s->rec.hdr.file;
	__u32 len, extra, name_len = p->src_name_len & FSP_NAME_MAX;

	*f = p->src_id;
	f->flags = 0;
	len = resolve_path(s, SLOT_FILE, p->src_parent, p->src_mnt);
	bpf_probe_read_kernel(s->upath, name_len, p->src_name);
	extra = append_suffix(s, 0, name_len);
	commit_path(s, SLOT_FILE, len + extra, 0);
	return p->src_matched;
}

/* Would emit_open() send the open that returned fd? */
static __always_inline bool open_matches(long fd)
{
	struct file *f = fd_file(fd);
	struct dentry *d;

	if (!f)
		return true; /* emit_open() reports it as missing */
	d = BPF_CORE_READ(f, f_path.dentry);
	return !d || !BPF_CORE_READ(f, f_path.mnt) || object_matches(d);
}

static __always_inline bool emit_open(struct fsp_scratch *s, struct pending *p, long ret)
{
	struct file *f;
	bool matched;

	if (ret < 0)
		return put_name_if(s, SLOT_FILE, p->dirfd, p->path, false);
	f = fd_file(ret);
	matched = put_file(s, SLOT_FILE, f);
	if (matched && (p->open_flags & FSP_O_CREAT))
		track_placement(BPF_CORE_READ(f, f_path.dentry));
	return matched;
}

static __always_inline bool emit_remove(struct fsp_scratch *s, struct pending *p, long ret)
{
	struct fsp_inode_key key;

	if (!p->src)
		return put_name(s, SLOT_FILE, p->dirfd, p->path);
	if (ret == 0 && (p->kind == FSP_RMDIR || p->src_nlink <= 1)) {
		/* The inode number is free for reuse: forget it. */
		key.dev = p->src_id.dev, key.pad = 0, key.ino = p->src_id.ino;
		unwatch_key(&key);
	}
	return put_source(s, p);
}

static __always_inline bool emit_rename(struct fsp_scratch *s, struct pending *p, long ret)
{
	struct dentry *src = p->src;
	bool matched;

	if (!src) {
		matched = put_name(s, SLOT_FILE, p->dirfd, p->path);
		return put_name(s, SLOT_TARGET, p->dirfd2, p->path2) || matched;
	}
	matched = put_source(s, p);
	if (ret != 0 || BPF_CORE_READ(src, d_inode, i_ino) != p->src_id.ino) {
		if (p->obj2)
			return put_dentry_if(s, SLOT_TARGET, p->obj2, p->obj2_mnt, matched) || matched;
		return put_name_if(s, SLOT_TARGET, p->dirfd2, p->path2, matched) || matched;
	}
	/* d_move() gave the source dentry its new name and parent. */
	matched = put_dentry_if(s, SLOT_TARGET, p->src, p->src_mnt, matched) || matched;
	if (matched)
		track_placement(p->src);
	return matched;
}

/*
 * A name-based object: the dentry a VFS hook saw, else the name looked up
 * in the dcache. Returns whether it is watched; *obj is the dentry when
 * one is known.
 */
static __always_inline bool put_object(struct fsp_scratch *s, enum fsp_slot which,
				       struct dentry *vfs_dentry, struct vfsmount *vfs_mnt,
				       long dirfd, const char *path, struct dentry **obj,
				       bool needed)
{
	bool matched;

	if (vfs_dentry) {
		*obj = vfs_dentry;
		return put_dentry_if(s, which, vfs_dentry, vfs_mnt, needed);
	}
	matched = put_name_if(s, which, dirfd, path, needed);
	*obj = slot(s, which)->flags & FSP_PATH_USER_SUFFIX ? NULL : s->ls.cur;
	return matched;
}

static __always_inline bool emit_created(struct fsp_scratch *s, long ret, enum fsp_slot which,
					 struct dentry *vfs_dentry, struct vfsmount *vfs_mnt,
					 long dirfd, const char *path, bool needed)
{
	struct dentry *obj = NULL;
	bool matched = put_object(s, which, vfs_dentry, vfs_mnt, dirfd, path, &obj, needed);

	if (ret == 0 && matched && obj)
		track_placement(obj);
	return matched;
}

SEC("raw_tp/sys_exit")
int fsp_sys_exit(struct bpf_raw_tracepoint_args *ctx)
{
	/* TP_PROTO(struct pt_regs *regs, long ret); the number as syscall_get_nr() */
	struct pt_regs *regs = (struct pt_regs *)ctx->args[0];
	long ret = ctx->args[1];
	long nr = BPF_CORE_READ(regs, orig_ax);
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct fsp_scratch *s;
	struct pending *p;
	struct dentry *obj = NULL;
	bool matched;

	if (!hooked(nr))
		return 0;
	/* Before anything is resolved: this record must see the new paths. */
	invalidate_at_exit(nr, tid);
	p = bpf_map_lookup_elem(&pending_calls, &tid);
	if (!p)
		return 0;
	/*
	 * Most opens are of unwatched files: decide that from the returned
	 * fd before clearing a record (what emit_open() would decide too).
	 */
	if (p->kind == FSP_OPEN && ret >= 0 && !open_matches(ret))
		goto out;
	s = get_scratch();
	if (!s)
		goto out;
	record_begin(s, p->kind, p->nr, ret);
	s->rec.hdr.open_flags = p->open_flags;
	s->rec.hdr.mode = p->mode;
	s->rec.hdr.attr_mask = p->attr_mask;
	s->rec.hdr.attr_uid = p->attr_uid;
	s->rec.hdr.attr_gid = p->attr_gid;
	s->rec.hdr.attr_size = p->attr_size;

	switch (p->kind) {
	case FSP_OPEN:
		matched = emit_open(s, p, ret);
		break;
	case FSP_MKDIR:
		matched = emit_created(s, ret, SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path,
				       false);
		break;
	case FSP_LINK:
		/* Either name may be the watched one: resolve both. */
		matched = put_object(s, SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path, &obj,
				     true);
		matched = emit_created(s, ret, SLOT_TARGET, p->obj2, p->obj2_mnt, p->dirfd2,
				       p->path2, true) || matched;
		break;
	case FSP_RENAME:
		matched = emit_rename(s, p, ret);
		break;
	case FSP_UNLINK:
	case FSP_RMDIR:
		matched = emit_remove(s, p, ret);
		break;
	default: /* SETATTR, MODIFY */
		if (p->fd >= 0)
			matched = put_file(s, SLOT_FILE, fd_file(p->fd));
		else
			matched = put_object(s, SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path,
					     &obj, false);
	}
	record_send(ctx, s, matched);
out:
	bpf_map_delete_elem(&pending_calls, &tid);
	return 0;
}

#endif /* FSP_HOOKS_SYSCALLS_H */

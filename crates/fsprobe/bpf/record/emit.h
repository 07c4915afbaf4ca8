/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * From an operation (record/op.h) and its result to a record: one emitter
 * per kind of event, shared by every hook that reports (a syscall's exit,
 * a VFS function's exit, an io_uring completion). Each resolves what it
 * names from the most trustworthy source it has: the kernel object a VFS
 * hook saw, else the file descriptor's struct file, else the name looked
 * up in the dcache (the unresolved rest flagged as the caller's bytes).
 */
#ifndef FSP_EMIT_H
#define FSP_EMIT_H

#include "record/op.h"

#define FSP_O_CREAT 0100
#define FSP_AT_REMOVEDIR 0x200

/* The saved source of unlink/rmdir/rename: its path as it was before. */
static __always_inline bool put_source(struct fsp_scratch *s, struct op *p)
{
	struct fsp_file *f = &s->rec.hdr.file;
	__u32 len, extra, name_len = p->src_name_len & FSP_NAME_MAX;

	*f = p->src_id;
	f->flags = 0;
	len = resolve_path(s, FSP_SLOT_FILE, p->src_parent, p->src_mnt);
	bpf_probe_read_kernel(s->upath, name_len, p->src_name);
	extra = append_suffix(s, 0, name_len);
	commit_path(s, FSP_SLOT_FILE, len + extra, 0);
	return p->src_matched;
}

/*
 * The op's object in slot `which`: the dentry a VFS hook saw (vfs), else
 * the name looked up in the dcache. Returns whether it is watched; *obj
 * is the dentry when one is known.
 */
static __always_inline bool put_object(struct fsp_scratch *s, struct op *p, enum fsp_slot which,
				       struct dentry *vfs, struct vfsmount *vfs_mnt, long dirfd,
				       const char *name, struct dentry **obj, bool needed)
{
	bool matched;

	if (vfs) {
		*obj = vfs;
		return put_dentry_if(s, which, vfs, vfs_mnt, needed);
	}
	matched = put_name_if(s, which, dirfd, name, p->kernel_names, needed);
	*obj = slot(s, which)->flags & (FSP_PATH_USER_SUFFIX | FSP_PATH_MISSING) ? NULL : s->ls.cur;
	return matched;
}

/* The op's fd-based object: its struct file, or the fd's. */
static __always_inline bool put_op_file(struct fsp_scratch *s, struct op *p)
{
	if (p->file_matched)
		return put_watched_file(s, FSP_SLOT_FILE, p->file);
	return put_file(s, FSP_SLOT_FILE, p->file ? p->file : fd_file(p->fd));
}

static __always_inline bool emit_open(struct fsp_scratch *s, struct op *p, long ret)
{
	if (p->file_matched)
		return put_watched_file(s, FSP_SLOT_FILE, p->file);
	if (p->file)
		return put_file(s, FSP_SLOT_FILE, p->file);
	if (ret >= 0 && !p->no_fd)
		return put_file(s, FSP_SLOT_FILE, fd_file(ret));
	return put_name_if(s, FSP_SLOT_FILE, p->dirfd, p->path, p->kernel_names, false);
}

/* A notice that user space must walk the directory d, just moved in. */
static __always_inline void send_subtree(void *ctx, struct fsp_scratch *s, struct dentry *d,
					 struct vfsmount *mnt)
{
	notice_begin(s, FSP_SUBTREE);
	describe(s, FSP_SLOT_FILE, d, mnt);
	s->rec.hdr.n_defs = 0; /* a notice teaches no directory */
	record_output(ctx, s, 0);
}

static __always_inline bool emit_remove(struct fsp_scratch *s, struct op *p, long ret)
{
	struct fsp_inode_key key;

	if (!p->src)
		return put_name_if(s, FSP_SLOT_FILE, p->dirfd, p->path, p->kernel_names, false);
	if (!p->src_matched)
		return false;
	if (ret == 0 && (p->kind == FSP_RMDIR || p->src_nlink <= 1)) {
		/* The inode number is free for reuse: forget it. */
		key.dev = p->src_id.dev, key.pad = 0, key.ino = p->src_id.ino;
		unwatch_key(&key);
	}
	return put_source(s, p);
}

/*
 * Rename: the source as it was, the target as it is. Sets *walk when the
 * moved object is a directory that entered the watched trees with its
 * contents (the caller sends the FSP_SUBTREE notice after the record).
 * Nothing is resolved when neither name is watched.
 */
static __always_inline bool emit_rename(struct fsp_scratch *s, struct op *p, long ret,
					bool *walk)
{
	struct dentry *src = p->src, *obj = NULL;
	bool moved, target_watched, matched;

	if (!src) {
		matched = put_name_if(s, FSP_SLOT_FILE, p->dirfd, p->path, p->kernel_names, true);
		return put_object(s, p, FSP_SLOT_TARGET, NULL, NULL, p->dirfd2, p->path2, &obj,
				  true) || matched;
	}
	/* d_move() gave the source dentry its new name and parent. */
	moved = ret == 0 && BPF_CORE_READ(src, d_inode, i_ino) == p->src_id.ino;
	if (moved) {
		target_watched = object_matches(src);
		*walk = track_placement(src, p->src_matched, true);
		if (!p->src_matched && !target_watched)
			return false;
		put_source(s, p);
		put_dentry(s, FSP_SLOT_TARGET, src, p->src_mnt);
		return true;
	}
	obj = p->obj2;
	if (obj && !p->src_matched && !object_matches(obj) &&
	    !child_matches(BPF_CORE_READ(obj, d_parent)))
		return false;
	matched = put_source(s, p);
	return put_object(s, p, FSP_SLOT_TARGET, p->obj2, p->obj2_mnt, p->dirfd2, p->path2, &obj,
			  matched) || matched;
}

/* mkdir, mknod, symlink: the new name, watched like its directory. */
static __always_inline bool emit_created(struct fsp_scratch *s, struct op *p, long ret)
{
	struct dentry *obj = NULL;
	bool matched = put_object(s, p, FSP_SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path,
				  &obj, false);

	if (ret == 0 && matched && obj && p->kind == FSP_MKDIR)
		track_placement(obj, false, false);
	return matched;
}

/* link: either name may be the watched one; the new link follows the inode. */
static __always_inline bool emit_link(struct fsp_scratch *s, struct op *p, long ret)
{
	struct dentry *obj = NULL, *link = NULL;
	bool matched = put_object(s, p, FSP_SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path, &obj,
				  true);

	matched = put_object(s, p, FSP_SLOT_TARGET, p->obj2, p->obj2_mnt, p->dirfd2, p->path2,
			     &link, true) || matched;
	if (ret == 0 && matched && link) {
		track_placement(link, true, false);
		outside_names_add(); /* the inode has another name now */
	}
	return matched;
}

/* setattr, setxattr, removexattr, modify: the object by fd, by VFS dentry, or by name. */
static __always_inline bool emit_attr(struct fsp_scratch *s, struct op *p)
{
	struct dentry *obj = NULL;

	if (p->fd >= 0 || p->file)
		return put_op_file(s, p);
	return put_object(s, p, FSP_SLOT_FILE, p->obj, p->obj_mnt, p->dirfd, p->path, &obj, false);
}

/*
 * mount, move_mount, pivot_root: the mount now at the target, looked up
 * after the call (the lookup crosses onto the new mount's root). Reported
 * when the directory it covers is watched; a watched directory covered by
 * a mount brings the mount's contents into the watched trees.
 */
static __always_inline bool emit_mount(struct fsp_scratch *s, struct op *p, long ret, bool *walk,
				       struct dentry **root, struct vfsmount **root_mnt)
{
	struct dentry *obj = NULL, *under;
	struct mount *m;
	bool matched;

	matched = put_object(s, p, FSP_SLOT_FILE, NULL, NULL, p->dirfd, p->path, &obj, true);
	if (ret != 0 || !obj)
		return matched;
	m = s->ls.mnt;
	under = BPF_CORE_READ(m, mnt_mountpoint);
	if (!under || under == obj)
		return matched;
	matched = object_matches(under);
	if (matched) {
		*walk = watch_subtree(obj);
		/*
		 * The mount's root is reached through the directory it covers,
		 * not through its d_parent (a bind mount's is in the source file
		 * system): a name outside the watched trees (filter.h).
		 */
		outside_names_add();
		*root = obj;
		*root_mnt = (struct vfsmount *)&m->mnt;
	}
	return matched;
}

/*
 * umount: the mount point as it was (the entry hook saved the mount's
 * identity in src_id and the directory it covered in src_parent).
 */
static __always_inline bool emit_umount(struct fsp_scratch *s, struct op *p)
{
	struct fsp_file *f = &s->rec.hdr.file;
	__u32 len;

	if (!p->src_parent)
		return put_name_if(s, FSP_SLOT_FILE, p->dirfd, p->path, p->kernel_names, true);
	*f = p->src_id;
	f->flags = 0;
	len = resolve_path(s, FSP_SLOT_FILE, p->src_parent, p->src_mnt);
	commit_path(s, FSP_SLOT_FILE, len, 0);
	return p->src_matched;
}

/*
 * The record builders: each builds, in scratch, the record of the op in
 * op_scratch, which returned ret, and returns 1 when it is to be sent,
 * | 2 when the directory in cache_scratch.walk_dir entered a watched tree
 * with its contents. Global, one per family of kinds: the verifier checks
 * each once per program, and a program that reports one kind (a VFS
 * hook's) carries only its own.
 */

/* The record's header from op p: what every builder starts with. */
static __always_inline void begin_from_op(struct fsp_scratch *s, struct op *p, long ret)
{
	record_begin(s, p->kind, p->origin,
		     p->origin == FSP_ORIGIN_SYSCALL_IA32 ? p->nr_ia32 : p->nr, ret);
	s->rec.hdr.open_flags = p->open_flags;
	s->rec.hdr.mode = p->mode;
	s->rec.hdr.attr_mask = p->attr_mask;
	s->rec.hdr.attr_uid = p->attr_uid;
	s->rec.hdr.attr_gid = p->attr_gid;
	s->rec.hdr.attr_size = p->attr_size;
	s->rec.hdr.rdev = p->rdev;
	s->rec.hdr.user_data = p->user_data;
	s->rec.hdr.rflags = p->rflags;
}

/* The builders' verdict, with a directory to walk (or none). */
static __always_inline int built(struct fsp_cache_scratch *cs, struct op *p, bool matched,
				 struct dentry *walk_dir, struct vfsmount *walk_mnt)
{
	cs->walk_dir = walk_dir;
	cs->walk_mnt = walk_mnt;
	return (matched && event_enabled(p->kind) ? 1 : 0) | (walk_dir ? 2 : 0);
}

#define FSP_BUILDER(name, ...)                                                    \
	__noinline int name(__u64 ret_u)                                           \
	{                                                                          \
		struct fsp_scratch *s = get_scratch();                             \
		struct fsp_cache_scratch *cs = get_cache_scratch();                \
		long ret = (long)ret_u;                                            \
		__u32 zero = 0;                                                    \
		struct op *p = bpf_map_lookup_elem(&op_scratch, &zero);            \
                                                                                   \
		if (!s || !cs || !p)                                               \
			return 0;                                                  \
		begin_from_op(s, p, ret);                                          \
		__VA_ARGS__                                                        \
	}

FSP_BUILDER(fsp_build_open, {
	return built(cs, p, emit_open(s, p, ret), NULL, NULL);
})

/* mkdir, mknod, symlink (with its target). */
FSP_BUILDER(fsp_build_created, {
	bool matched = emit_created(s, p, ret);

	if (p->kind == FSP_SYMLINK)
		put_extra(s, p->extra, p->kernel_names);
	return built(cs, p, matched, NULL, NULL);
})

FSP_BUILDER(fsp_build_link, {
	return built(cs, p, emit_link(s, p, ret), NULL, NULL);
})

FSP_BUILDER(fsp_build_rename, {
	bool walk = false;
	bool matched = emit_rename(s, p, ret, &walk);

	return built(cs, p, matched, walk ? p->src : NULL, p->src_mnt);
})

/* unlink, rmdir. */
FSP_BUILDER(fsp_build_remove, {
	return built(cs, p, emit_remove(s, p, ret), NULL, NULL);
})

/* setattr, modify, setxattr, removexattr (with the attribute's name). */
FSP_BUILDER(fsp_build_attr, {
	bool matched = emit_attr(s, p);

	if (p->kind == FSP_SETXATTR || p->kind == FSP_REMOVEXATTR)
		put_extra(s, p->extra, p->kernel_names);
	return built(cs, p, matched, NULL, NULL);
})

/* mount, umount. */
FSP_BUILDER(fsp_build_mount, {
	struct dentry *walk_dir = NULL;
	struct vfsmount *walk_mnt = NULL;
	bool walk = false, matched;

	if (p->kind == FSP_UMOUNT) {
		matched = emit_umount(s, p);
		if (p->src_name_len)
			put_extra(s, p->src_name, true);
		return built(cs, p, matched, NULL, NULL);
	}
	matched = emit_mount(s, p, ret, &walk, &walk_dir, &walk_mnt);
	put_extra(s, p->extra, p->kernel_names);
	return built(cs, p, matched, walk ? walk_dir : NULL, walk_mnt);
})

/* The builder of `kind`; a constant kind leaves only its own call. */
static __always_inline int build_kind(__u8 kind, long ret)
{
	switch (kind) {
	case FSP_OPEN:
		return fsp_build_open(ret);
	case FSP_MKDIR:
	case FSP_MKNOD:
	case FSP_SYMLINK:
		return fsp_build_created(ret);
	case FSP_LINK:
		return fsp_build_link(ret);
	case FSP_RENAME:
		return fsp_build_rename(ret);
	case FSP_UNLINK:
	case FSP_RMDIR:
		return fsp_build_remove(ret);
	case FSP_MOUNT:
	case FSP_UMOUNT:
		return fsp_build_mount(ret);
	}
	return fsp_build_attr(ret); /* SETATTR, MODIFY, SETXATTR, REMOVEXATTR */
}

/* Sends what a builder built (and the walk notice it asked for). */
static __always_inline void send_built(void *ctx, int built)
{
	struct fsp_scratch *s = get_scratch();
	struct fsp_cache_scratch *cs;

	if (!s)
		return;
	record_send(ctx, s, built & 1);
	cs = get_cache_scratch();
	if ((built & 2) && cs && cs->walk_dir)
		send_subtree(ctx, s, cs->walk_dir, cs->walk_mnt);
}

/* Reports the op in op_scratch (from new_op()), of any kind, which returned ret. */
static __always_inline void emit_scratch(void *ctx, long ret)
{
	struct op *p = op_current();

	if (p)
		send_built(ctx, build_kind(p->kind, ret));
}

/* Copies op p (kept in a map) into op_scratch. */
static __always_inline bool op_to_scratch(struct op *p)
{
	struct op *o = op_current();

	return o && !bpf_probe_read_kernel(o, sizeof(*o), p);
}

/* Reports op p (kept in a map), of any kind, which returned ret (ctx: for the perf buffer). */
static __always_inline void emit(void *ctx, struct op *p, long ret)
{
	if (op_to_scratch(p))
		emit_scratch(ctx, ret);
}

/* emit() for an op whose kind is the constant `kind`: only its builder is verified. */
static __always_inline void emit_as(void *ctx, struct op *p, long ret, __u8 kind)
{
	if (op_to_scratch(p))
		send_built(ctx, build_kind(kind, ret));
}

#endif /* FSP_EMIT_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * VFS hooks, for the fentry and kprobe backends.
 *
 * The syscall tracepoints give each event its arguments and return value;
 * these hooks, which run in between, give it the objects the kernel really
 * used: the dentry and mount the VFS resolved, so no byte of the path
 * comes from the caller's memory once the operation reached the VFS.
 *
 * The hooks are the LSM path hooks the VFS calls right before
 * vfs_mkdir(), vfs_unlink(), vfs_rmdir(), vfs_rename(), vfs_link() and
 * notify_change(): security_path_*() (CONFIG_SECURITY_PATH, set by every
 * distribution that ships AppArmor or TOMOYO) and vfs_utimes(). Unlike
 * the vfs_*() functions, which gained a user_namespace (5.12), then a
 * mnt_idmap (6.3), a struct renamedata (5.12) and a dentry return value
 * (vfs_mkdir, 6.15), these have kept their signatures from 5.10 to 6.18,
 * and they pass the struct path, hence the mount, which vfs_*() do not.
 */
#ifndef FSP_HOOKS_VFS_H
#define FSP_HOOKS_VFS_H

#include "record/pending.h"
#include <bpf/bpf_tracing.h>

static __always_inline void on_path_mkdir(const struct path *dir, struct dentry *dentry)
{
	struct pending *p = pending_of(FSP_MKDIR, FSP_MKDIR);

	if (!p)
		return;
	p->obj = dentry;
	p->obj_mnt = BPF_CORE_READ(dir, mnt);
}

static __always_inline void on_path_remove(__u8 kind, const struct path *dir, struct dentry *dentry)
{
	struct pending *p = pending_of(kind, kind);

	if (p)
		capture_source(p, dentry, BPF_CORE_READ(dir, mnt));
}

static __always_inline void on_path_rename(const struct path *old_dir, struct dentry *old_dentry,
					   const struct path *new_dir, struct dentry *new_dentry)
{
	struct pending *p = pending_of(FSP_RENAME, FSP_RENAME);

	/*
	 * Renames that no syscall hook saw (io_uring, nfsd, overlayfs copy-up)
	 * still invalidate the path caches, if only before d_move().
	 */
	bump_gen();
	if (!p)
		return;
	capture_source(p, old_dentry, BPF_CORE_READ(old_dir, mnt));
	p->obj2 = new_dentry;
	p->obj2_mnt = BPF_CORE_READ(new_dir, mnt);
}

static __always_inline void on_path_link(struct dentry *old_dentry, const struct path *new_dir,
					 struct dentry *new_dentry)
{
	struct pending *p = pending_of(FSP_LINK, FSP_LINK);

	if (!p)
		return;
	/* A link never crosses mounts: both names live on new_dir's mount. */
	p->obj = old_dentry;
	p->obj_mnt = BPF_CORE_READ(new_dir, mnt);
	p->obj2 = new_dentry;
	p->obj2_mnt = p->obj_mnt;
}

static __always_inline void on_path_setattr(const struct path *path)
{
	struct pending *p = pending_of(FSP_SETATTR, FSP_SETATTR);

	if (!p || p->fd >= 0)
		return;
	p->obj = BPF_CORE_READ(path, dentry);
	p->obj_mnt = BPF_CORE_READ(path, mnt);
}

/* One program per hook and flavour; user space loads one flavour. */
#define FSP_VFS_HOOKS(flavour, SECNAME, PROG)                                              \
	SEC(SECNAME "/security_path_mkdir")                                                \
	int PROG(flavour##_path_mkdir, const struct path *dir, struct dentry *dentry)      \
	{                                                                                  \
		on_path_mkdir(dir, dentry);                                                \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_unlink")                                               \
	int PROG(flavour##_path_unlink, const struct path *dir, struct dentry *dentry)     \
	{                                                                                  \
		on_path_remove(FSP_UNLINK, dir, dentry);                                   \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_rmdir")                                                \
	int PROG(flavour##_path_rmdir, const struct path *dir, struct dentry *dentry)      \
	{                                                                                  \
		on_path_remove(FSP_RMDIR, dir, dentry);                                    \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_rename")                                               \
	int PROG(flavour##_path_rename, const struct path *old_dir, struct dentry *old_dentry, \
		 const struct path *new_dir, struct dentry *new_dentry)                    \
	{                                                                                  \
		on_path_rename(old_dir, old_dentry, new_dir, new_dentry);                  \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_link")                                                 \
	int PROG(flavour##_path_link, struct dentry *old_dentry, const struct path *new_dir, \
		 struct dentry *new_dentry)                                                \
	{                                                                                  \
		on_path_link(old_dentry, new_dir, new_dentry);                             \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_chmod")                                                \
	int PROG(flavour##_path_chmod, const struct path *path)                            \
	{                                                                                  \
		on_path_setattr(path);                                                     \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_chown")                                                \
	int PROG(flavour##_path_chown, const struct path *path)                            \
	{                                                                                  \
		on_path_setattr(path);                                                     \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/security_path_truncate")                                             \
	int PROG(flavour##_path_truncate, const struct path *path)                         \
	{                                                                                  \
		on_path_setattr(path);                                                     \
		return 0;                                                                  \
	}                                                                                  \
	SEC(SECNAME "/vfs_utimes")                                                         \
	int PROG(flavour##_vfs_utimes, const struct path *path)                            \
	{                                                                                  \
		on_path_setattr(path);                                                     \
		return 0;                                                                  \
	}

FSP_VFS_HOOKS(fentry, "fentry", BPF_PROG)
FSP_VFS_HOOKS(kprobe, "kprobe", BPF_KPROBE)

#endif /* FSP_HOOKS_VFS_H */

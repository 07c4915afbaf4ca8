/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Dentry → absolute path, in the kernel.
 *
 * Like the kernel's prepend_path() (fs/d_path.c): walk d_parent up to the
 * root of the dentry's mount, then continue from the mount point in the
 * parent mount, until the root of the mount namespace. Names are written
 * backwards into scratch.walk, so the path ends up contiguous at
 * walk[off .. FSP_PATH_MAX). No component limit: the walk stops only when
 * the path would exceed PATH_MAX - 1 bytes, and then says so with
 * FSP_PATH_TRUNCATED.
 *
 * The loop is split into chunks: fsp_walk_chunk() is a global function,
 * which the verifier checks once on its own (kernel 5.6+), so calling it
 * from a bounded loop costs one call site per iteration rather than one
 * copy of its body. That reaches PATH_MAX without bpf_loop(), which 5.10
 * lacks (added in 5.17; its callbacks need BPF_PSEUDO_FUNC, 5.13).
 */
#ifndef FSP_DENTRY_H
#define FSP_DENTRY_H

#include "resolve/cache.h"

/*
 * 2048 one-letter components fill PATH_MAX, plus mount crossings:
 * FSP_WALK_BLOCKS * FSP_WALK_BLOCK * FSP_WALK_CHUNK = 4352 steps.
 */
#define FSP_WALK_CHUNK 16
#define FSP_WALK_BLOCK 16
#define FSP_WALK_BLOCKS 17

/*
 * Walks that are not for a record slot (struct walk_state.slot above
 * FSP_SLOT_EXE): they neither use nor fill the path caches, and are not
 * counted in the walk counters. record/mounts.h describes mounts with them.
 */
enum walk_purpose {
	/* A mount's root up to its namespace's root: the mount point. */
	FSP_WALK_MOUNT_POINT = 3,
	/* A dentry up to its file system's root, within one mount's super block. */
	FSP_WALK_FS_ROOT = 4,
};

static __always_inline bool walk_for_slot(struct walk_state *w)
{
	return w->slot <= FSP_SLOT_EXE;
}

/* Enter mount m (the walk continues in it): remember what every step needs. */
static __always_inline void walk_enter_mount(struct walk_state *w, struct mount *m)
{
	w->mnt = m;
	w->mnt_root = KREAD(struct mount, m, mnt.mnt_root);
	w->mnt_id = KREAD(struct mount, m, mnt_id);
	w->dev = KREAD(struct mount, m, mnt.mnt_sb, s_dev);
}

/* One step up the tree; non-zero when the walk is over. */
static __always_inline int walk_step(struct fsp_scratch *s)
{
	struct walk_state *w = &s->ws;
	struct dentry *d = w->dentry;
	struct mount *m = w->mnt;
	struct dentry *parent = KREAD(struct dentry, d, d_parent);
	const unsigned char *name;
	__u32 len;

	if (d == w->mnt_root || d == parent) {
		struct mount *mp = KREAD(struct mount, m, mnt_parent);

		if (d != w->mnt_root)
			w->flags |= FSP_PATH_DISCONNECTED;
		if (d != w->mnt_root || mp == m || !mp) {
			w->done = 1;
			return 1;
		}
		w->dentry = KREAD(struct mount, m, mnt_mountpoint);
		walk_enter_mount(w, mp);
		return 0;
	}

	/* Past the first name every dentry is a directory: cacheable. */
	if ((w->steps || w->start_is_dir) && walk_for_slot(w) && cache_visit(s, d)) {
		w->done = 1;
		return 1;
	}
	len = KREAD(struct dentry, d, d_name.len);
	name = KREAD(struct dentry, d, d_name.name);
	if (len > FSP_NAME_MAX || len + 1 >= w->off) {
		w->flags |= FSP_PATH_TRUNCATED;
		w->done = 1;
		return 1;
	}
	w->off -= len;
	bpf_probe_read_kernel(&s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)], FSP_BOUND(len, FSP_NAME_MAX), name);
	w->off -= 1;
	s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)] = '/';
	w->dentry = parent;
	w->steps++;
	return 0;
}

/* Up to FSP_WALK_CHUNK steps of the walk in scratch.ws; 1 when it is over. */
__noinline int fsp_walk_chunk(void)
{
	struct fsp_scratch *s = get_scratch();

	if (!s)
		return 1;
	for (int i = 0; i < FSP_WALK_CHUNK; i++) {
		if (walk_step(s))
			return 1;
	}
	return 0;
}

/* Up to FSP_WALK_BLOCK chunks; 1 when the walk is over. */
__noinline int fsp_walk_block(void)
{
	for (int i = 0; i < FSP_WALK_BLOCK; i++) {
		if (fsp_walk_chunk())
			return 1;
	}
	return 0;
}

/*
 * The walk of a file whose directory fsp_parent_watching() found in
 * dir_cache a moment ago (resolve/cache.h): its name, then that directory
 * as the prefix, without looking it up again. 1 when it did the walk.
 */
__noinline int fsp_walk_known_parent(void)
{
	struct fsp_scratch *s = get_scratch();
	const unsigned char *name;
	struct dentry *d, *parent;
	struct fsp_dir_key key;
	struct walk_state *w;
	__u32 len;

	if (!s)
		return 0;
	w = &s->ws;
	d = w->dentry;
	if (w->start_is_dir || !caches_fragments() || !walk_for_slot(w) || d == w->mnt_root)
		return 0;
	parent = KREAD(struct dentry, d, d_parent);
	if (parent == d || parent != s->known_dentry || w->gen != s->known_gen)
		return 0;
	dir_key(&key, parent, w->mnt_id, w->dev, w->removed_dirs);
	if (!same_dir_key(&key, &s->known_key))
		return 0;
	len = KREAD(struct dentry, d, d_name.len);
	name = KREAD(struct dentry, d, d_name.name);
	if (len > FSP_NAME_MAX || len + 1 >= w->off)
		return 0;
	w->off -= len;
	bpf_probe_read_kernel(&s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)], FSP_BOUND(len, FSP_NAME_MAX), name);
	w->off -= 1;
	s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)] = '/';
	w->steps = 1;
	w->prefix = key;
	w->done = 1;
	return 1;
}

/*
 * Resolve (dentry, vfsmount) into scratch.walk for record slot `slot` (or
 * for an enum walk_purpose); returns the path's length. With a cache hit
 * the path is only what lies below the cached directory (s->ws.prefix),
 * and may be empty. Global (pointers passed as integers), so its loop is
 * verified once for every call site in the programs.
 */
__noinline int fsp_resolve(__u64 dentry, __u64 vmnt, __u32 slot)
{
	struct fsp_scratch *s = get_scratch();
	struct dentry *d = (struct dentry *)dentry;
	struct walk_state *w;

	if (!s)
		return 0;
	w = &s->ws;
	__builtin_memset(w, 0, sizeof(*w));
	w->gen = current_gen();
	w->removed_dirs = removed_dirs();
	w->slot = slot;
	w->dentry = d;
	w->start_is_dir = (KREAD(struct dentry, d, d_inode, i_mode) & FSP_S_IFMT) == FSP_S_IFDIR;
	walk_enter_mount(w, real_mount((struct vfsmount *)vmnt));
	if (slot <= FSP_SLOT_EXE)
		s->slot_mnt[FSP_BOUND(slot, 3)] = w->mnt;
	/* No mount root to stop at: the walk ends where d_parent does. */
	if (slot == FSP_WALK_FS_ROOT)
		w->mnt_root = NULL;
	w->off = FSP_PATH_MAX;
	if (!fsp_walk_known_parent()) {
		for (int i = 0; i < FSP_WALK_BLOCKS; i++) {
			if (fsp_walk_block())
				break;
		}
	}
	if (!w->done)
		w->flags |= FSP_PATH_TRUNCATED;
	if (slot == FSP_WALK_FS_ROOT)
		w->flags &= ~FSP_PATH_DISCONNECTED; /* that root is the goal */
	if (w->off >= FSP_PATH_MAX && !w->prefix.ino) {
		/* The root itself. */
		w->off = FSP_PATH_MAX - 1;
		s->walk[FSP_PATH_MAX - 1] = '/';
	}
	if (walk_for_slot(w)) {
		count(w->prefix.ino || w->n_visit == 2 ? FSP_CNT_WALK_CACHED : FSP_CNT_WALK_FULL);
		cache_after_walk(s);
	}
	return FSP_PATH_MAX - w->off;
}

/*
 * The path of (d, vmnt) in s->walk, starting at s->walk[s->ws.off];
 * s->ws.flags tells whether it is whole. Returns its length.
 */
static __always_inline __u32 resolve_path(struct fsp_scratch *s, __u32 slot, struct dentry *d,
					  struct vfsmount *vmnt)
{
	return fsp_resolve((__u64)d, (__u64)vmnt, slot);
}

static __always_inline __u32 mount_id(struct vfsmount *vmnt)
{
	return KREAD(struct mount, real_mount(vmnt), mnt_id);
}

#endif /* FSP_DENTRY_H */

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

#include "maps.h"

/*
 * 2048 one-letter components fill PATH_MAX, plus mount crossings:
 * FSP_WALK_BLOCKS * FSP_WALK_BLOCK * FSP_WALK_CHUNK = 4352 steps.
 */
#define FSP_WALK_CHUNK 16
#define FSP_WALK_BLOCK 16
#define FSP_WALK_BLOCKS 17

/* One step up the tree; non-zero when the walk is over. */
static __always_inline int walk_step(struct fsp_scratch *s)
{
	struct walk_state *w = &s->ws;
	struct dentry *d = w->dentry;
	struct mount *m = w->mnt;
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	struct dentry *mnt_root = BPF_CORE_READ(m, mnt.mnt_root);
	const unsigned char *name;
	__u32 len;

	if (d == mnt_root || d == parent) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);

		if (d != mnt_root)
			w->flags |= FSP_PATH_DISCONNECTED;
		if (d != mnt_root || mp == m || !mp) {
			w->done = 1;
			return 1;
		}
		w->dentry = BPF_CORE_READ(m, mnt_mountpoint);
		w->mnt = mp;
		return 0;
	}

	len = BPF_CORE_READ(d, d_name.len);
	name = BPF_CORE_READ(d, d_name.name);
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
 * Resolve (dentry, vfsmount) into scratch.walk; returns the path's length.
 * Global (pointers passed as integers), so its loop is verified once for
 * every call site in the programs.
 */
__noinline int fsp_resolve(__u64 dentry, __u64 vmnt)
{
	struct fsp_scratch *s = get_scratch();

	if (!s)
		return 0;
	s->ws.dentry = (struct dentry *)dentry;
	s->ws.mnt = real_mount((struct vfsmount *)vmnt);
	s->ws.off = FSP_PATH_MAX;
	s->ws.flags = 0;
	s->ws.done = 0;
	for (int i = 0; i < FSP_WALK_BLOCKS; i++) {
		if (fsp_walk_block())
			break;
	}
	if (!s->ws.done)
		s->ws.flags |= FSP_PATH_TRUNCATED;
	if (s->ws.off >= FSP_PATH_MAX) {
		/* The root itself. */
		s->ws.off = FSP_PATH_MAX - 1;
		s->walk[FSP_PATH_MAX - 1] = '/';
	}
	return FSP_PATH_MAX - s->ws.off;
}

/*
 * The path of (d, vmnt) in s->walk, starting at s->walk[s->ws.off];
 * s->ws.flags tells whether it is whole. Returns its length.
 */
static __always_inline __u32 resolve_path(struct fsp_scratch *s, struct dentry *d,
					  struct vfsmount *vmnt)
{
	return fsp_resolve((__u64)d, (__u64)vmnt);
}

static __always_inline __u32 mount_id(struct vfsmount *vmnt)
{
	return BPF_CORE_READ(real_mount(vmnt), mnt_id);
}

#endif /* FSP_DENTRY_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A syscall between its entry and exit tracepoints, keyed by thread id.
 * The VFS hooks (hooks_vfs.h) run in between and record the kernel
 * objects the syscall really touched.
 */
#ifndef FSP_PENDING_H
#define FSP_PENDING_H

#include "record/record.h"

/* A syscall between its entry and exit. */
struct pending {
	__u16 nr;
	__u8 kind;
	__u8 src_matched;
	__s32 fd;            /* fd-based calls; -1 otherwise */
	__s64 dirfd;
	const char *path;
	__s64 dirfd2;
	const char *path2;
	__u32 open_flags;
	__u32 mode;
	__u32 attr_mask;
	__u32 attr_uid;
	__u32 attr_gid;
	__u32 src_nlink;
	__s64 attr_size;
	/*
	 * What a VFS hook saw (fentry/kprobe backends): the object and, for
	 * link and rename, the second name. Zero when no hook fired.
	 */
	struct dentry *obj;
	struct vfsmount *obj_mnt;
	struct dentry *obj2;
	struct vfsmount *obj2_mnt;
	/* unlink, rmdir, rename: the source, resolved before it changes. */
	struct dentry *src;
	struct dentry *src_parent;
	struct vfsmount *src_mnt;
	struct fsp_file src_id;
	__u32 src_name_len;
	char src_name[FSP_NAME_MAX + 1];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u32);
	__type(value, struct pending);
} pending_calls SEC(".maps");

/* Entry scratch: struct pending is too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct pending);
} pending_scratch SEC(".maps");

/* Does any VFS hook run (fentry or kprobe backend)? Set before load. */
const volatile bool cfg_vfs_hooks = false;

/* The pending syscall of this thread, if it is of kind a or b. */
static __always_inline struct pending *pending_of(__u8 a, __u8 b)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct pending *p = bpf_map_lookup_elem(&pending_calls, &tid);

	return p && (p->kind == a || p->kind == b) ? p : NULL;
}

/*
 * Record the source of unlink, rmdir or rename while it still has its
 * name: its identity, parent and name, and whether it is watched.
 */
static __always_inline void capture_source(struct pending *p, struct dentry *d,
					   struct vfsmount *mnt)
{
	__u32 name_len = BPF_CORE_READ(d, d_name.len) & FSP_NAME_MAX;

	p->src = d;
	p->src_mnt = mnt;
	p->src_parent = BPF_CORE_READ(d, d_parent);
	p->src_nlink = BPF_CORE_READ(d, d_inode, __i_nlink);
	fill_identity(&p->src_id, d, mnt);
	p->src_matched = object_matches(d);
	p->src_name_len = name_len;
	bpf_probe_read_kernel(p->src_name, name_len, BPF_CORE_READ(d, d_name.name));
}

#endif /* FSP_PENDING_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The in-kernel path filter: a file is reported when its own identity
 * (device, inode) is watched, or when its parent directory watches its
 * children. User space seeds the map with the watched trees; the probes
 * keep it current as files are created, moved and removed.
 */
#ifndef FSP_FILTER_H
#define FSP_FILTER_H

#include "core/maps.h"

#define FSP_E2BIG 7

static __always_inline struct fsp_inode_key dentry_key(struct dentry *d)
{
	struct fsp_inode_key key = {
		.dev = BPF_CORE_READ(d, d_sb, s_dev),
		.pad = 0,
		.ino = BPF_CORE_READ(d, d_inode, i_ino),
	};
	return key;
}

static __always_inline __u32 watch_flags(struct dentry *d)
{
	struct fsp_inode_key key = dentry_key(d);
	__u32 *flags = bpf_map_lookup_elem(&watched, &key);

	return flags ? *flags : 0;
}

/* Is the existing object d watched, directly or through its parent? */
static __always_inline bool object_matches(struct dentry *d)
{
	struct dentry *parent;

	if (!cfg_paths_filtering)
		return true;
	if (watch_flags(d) & FSP_WATCH_SELF)
		return true;
	parent = BPF_CORE_READ(d, d_parent);
	return parent != d && (watch_flags(parent) & FSP_WATCH_CHILDREN);
}

/* Is a name (existing or not) inside directory dir watched? */
static __always_inline bool child_matches(struct dentry *dir)
{
	return !cfg_paths_filtering || (watch_flags(dir) & FSP_WATCH_CHILDREN);
}

/* Start following d, which now lives in a watched directory. */
static __always_inline void watch_new(struct dentry *d)
{
	struct fsp_inode_key key = dentry_key(d);
	umode_t mode = BPF_CORE_READ(d, d_inode, i_mode);
	__u32 flags = FSP_WATCH_SELF;

	if (!cfg_paths_filtering || !key.ino)
		return;
	if (cfg_recursive && (mode & FSP_S_IFMT) == FSP_S_IFDIR)
		flags |= FSP_WATCH_CHILDREN;
	if (bpf_map_update_elem(&watched, &key, &flags, BPF_NOEXIST) == -FSP_E2BIG)
		count(FSP_CNT_WATCH_FULL);
}

static __always_inline void unwatch_key(struct fsp_inode_key *key)
{
	if (cfg_paths_filtering)
		bpf_map_delete_elem(&watched, key);
}

/*
 * After a successful creation, link or rename of d: watch it if its new
 * directory is watched; stop watching it if it left the watched trees and
 * --follow is off.
 */
static __always_inline void track_placement(struct dentry *d)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	bool inside = parent != d && (watch_flags(parent) & FSP_WATCH_CHILDREN);
	struct fsp_inode_key key;

	if (!cfg_paths_filtering)
		return;
	if (inside) {
		watch_new(d);
		return;
	}
	if (!cfg_follow) {
		key = dentry_key(d);
		unwatch_key(&key);
	}
}

/* Is the value listed in a process filter map what its mode wants? */
static __always_inline bool filter_allows(__u32 mode, bool listed)
{
	return mode == FSP_FILTER_OFF || listed == (mode == FSP_FILTER_INCLUDE);
}

/*
 * --pid, --uid, --comm: checked at syscall entry, so the calls of unwanted
 * processes cost no pending entry and no ring-buffer space. uid is the
 * real uid; comm the thread's name (task->comm).
 */
static __always_inline bool process_wanted(__u32 tgid, __u32 uid)
{
	char comm[16] = {};

	/* A helper call is never elided: test the mode before looking up. */
	if (cfg_pid_filter != FSP_FILTER_OFF &&
	    !filter_allows(cfg_pid_filter, bpf_map_lookup_elem(&pid_filter, &tgid)))
		return false;
	if (cfg_uid_filter != FSP_FILTER_OFF &&
	    !filter_allows(cfg_uid_filter, bpf_map_lookup_elem(&uid_filter, &uid)))
		return false;
	if (cfg_comm_filter == FSP_FILTER_OFF)
		return true;
	bpf_get_current_comm(comm, sizeof(comm));
	return filter_allows(cfg_comm_filter, bpf_map_lookup_elem(&comm_filter, comm));
}

#endif /* FSP_FILTER_H */

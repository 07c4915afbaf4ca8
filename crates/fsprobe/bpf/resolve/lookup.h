/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A syscall's path argument → the dentry it names, looked up in the dcache.
 *
 * Syscall tracepoints see only the string a process passed. To report a
 * canonical path and the right inode, each component is matched against
 * the children of the dentry resolved so far (the kernel's own dcache),
 * starting from a kernel object: the task's root for absolute paths, the
 * dirfd's file or the task's cwd otherwise. "." and ".." are applied to
 * dentries, mount points are crossed like follow_mount() does.
 *
 * The lookup stops, leaving the rest unresolved, at a component that is
 * not cached, a symlink that is not the last component, or a name longer
 * than NAME_MAX. Callers then append the unresolved rest and flag it
 * (FSP_PATH_USER_SUFFIX): those bytes came from user memory.
 *
 * A small state machine scans one byte, one child dentry or one child
 * mount per step. Steps run in chunks inside global functions, verified
 * once each (see dentry.h), so no bpf_loop() is needed.
 */
#ifndef FSP_LOOKUP_H
#define FSP_LOOKUP_H

#include "filter/filter.h"

enum {
	LS_BYTES = 0,  /* reading the next component */
	LS_CHILD = 1,  /* scanning cur's children for the component */
	LS_MOUNT = 2,  /* scanning mnt's child mounts for one on cur */
};

/*
 * Bytes, children and mounts scanned, all told, before giving up, in
 * three levels of global functions: each level's loop is short, so the
 * verifier's work (and the programs' load time) stays small, and each
 * stays far under its 8192-jump history limit (BPF_COMPLEXITY_LIMIT_JMP_SEQ).
 */
#define FSP_LOOKUP_CHUNK 16   /* steps per fsp_lookup_chunk() */
#define FSP_LOOKUP_BLOCK 64   /* chunks per fsp_lookup_block() */
#define FSP_LOOKUP_BLOCKS 128 /* blocks per lookup: 131072 steps */

/*
 * The children scan costs a step per child: in a directory of thousands
 * of entries, every rename, unlink, mkdir or rmdir by name below it would
 * spend milliseconds in the kernel (the soak benchmark's tree has 8,000
 * directories in one). A child found after more than FSP_MEMO_AFTER
 * steps is remembered by (parent, name); the next lookup of that name
 * checks the remembered dentry instead of scanning. The check is what
 * d_lookup() relies on: at most one hashed dentry has a given parent and
 * name, so a dentry that is hashed, has that parent and that name is the
 * one (a freed and reused dentry fails it, or is the right one).
 */
#define FSP_MEMO_AFTER 32
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192); /* the soak's largest directory: 8,000 */
	__type(key, struct child_memo_key);
	__type(value, struct dentry *);
} child_memo SEC(".maps");

static __always_inline bool is_dir(struct dentry *d)
{
	umode_t mode = BPF_CORE_READ(d, d_inode, i_mode);

	return (mode & FSP_S_IFMT) == FSP_S_IFDIR;
}

static __always_inline bool is_symlink(struct dentry *d)
{
	umode_t mode = BPF_CORE_READ(d, d_inode, i_mode);

	return (mode & FSP_S_IFMT) == FSP_S_IFLNK;
}

static __always_inline void *first_child(struct lookup_state *l)
{
	struct dentry *d = l->cur;

	if (dentry_has_hlist_children())
		return BPF_CORE_READ(d, d_children.first);
	struct dentry___pre68 *old = (void *)d;

	l->head = (char *)d + bpf_core_field_offset(struct dentry___pre68, d_subdirs);
	return BPF_CORE_READ(old, d_subdirs.next);
}

/* The child dentry that owns list node `node`, or NULL at the end. */
static __always_inline struct dentry *child_of_node(struct lookup_state *l, void *node)
{
	if (dentry_has_hlist_children()) {
		if (!node)
			return NULL;
		return (void *)((char *)node - bpf_core_field_offset(struct dentry, d_sib));
	}
	if (!node || node == l->head)
		return NULL;
	return (void *)((char *)node - bpf_core_field_offset(struct dentry___pre68, d_child));
}

static __always_inline void *next_sibling(void *node)
{
	/* hlist_node and list_head both start with `next`. */
	void *next = NULL;

	bpf_probe_read_kernel(&next, sizeof(next), node);
	return next;
}

/*
 * Is the name at kernel address `name` the component in scratch.comp?
 * Both are len bytes. Inline in fsp_lookup_chunk(), verified once with
 * it: a global of its own would be one frame too many for the verifier's
 * 512 bytes of stack over the lookup's call chain (5.10 rounds each
 * frame up to 32 bytes).
 */
static __always_inline bool same_name(struct fsp_scratch *s, const void *name, __u32 len)
{
	if (bpf_probe_read_kernel(s->cand, FSP_BOUND(len, FSP_NAME_MAX), name))
		return false;
#pragma unroll
	for (int i = 0; i < 32; i++) {
		__u32 left;
		__u64 mask;

		if (i * 8 >= len)
			return true;
		left = len - i * 8;
		mask = left >= 8 ? ~0ULL : (1ULL << (left * 8)) - 1;
		if ((s->comp[i] ^ s->cand[i]) & mask)
			return false;
	}
	return true;
}

/*
 * ".." from cur: leave mount roots first, as follow_dotdot() does.
 * (Kernel pointers are copied to locals before BPF_CORE_READ, which
 * would otherwise try to relocate the access to our own struct too.)
 */
static __always_inline void step_up(struct lookup_state *l)
{
	struct dentry *cur = l->cur;
	struct mount *m = l->mnt;

	for (int i = 0; i < 16; i++) {
		struct mount *mp = BPF_CORE_READ(m, mnt_parent);

		if (cur != BPF_CORE_READ(m, mnt.mnt_root) || mp == m || !mp)
			break;
		cur = BPF_CORE_READ(m, mnt_mountpoint);
		m = mp;
	}
	l->cur = BPF_CORE_READ(cur, d_parent);
	l->mnt = m;
}

static __always_inline void *first_child_mount(struct lookup_state *l)
{
	struct mount *m = l->mnt;

	l->head = (char *)m + bpf_core_field_offset(struct mount, mnt_mounts);
	return BPF_CORE_READ(m, mnt_mounts.next);
}

/* A component ended at l->pos: decide what to do with it. */
static __always_inline long end_component(struct fsp_scratch *s, struct lookup_state *l)
{
	__u32 start = l->comp_start, len = l->pos - l->comp_start;
	char c0 = s->upath[FSP_BOUND(start, FSP_PATH_MAX - 1)];
	char c1 = s->upath[FSP_BOUND(start + 1, FSP_PATH_MAX - 1)];

	l->comp_len = len;
	l->pos++;
	if (len == 0 || (len == 1 && c0 == '.')) {
		l->resolved = l->pos - 1;
		l->comp_start = l->pos;
		return 0;
	}
	if (len == 2 && c0 == '.' && c1 == '.') {
		step_up(l);
		l->resolved = l->pos - 1;
		l->comp_start = l->pos;
		return 0;
	}
	if (len > FSP_NAME_MAX || !is_dir(l->cur)) {
		l->done = 1;
		return 1;
	}
	/*
	 * The last name in a directory nobody watches: whatever it names is
	 * not watched either, so spare the scan of the directory's children
	 * (its cost grows with their number).
	 */
	if (l->only_watched && l->pos > l->len && !child_may_match(l->cur)) {
		l->unwatched = 1;
		l->done = 1;
		return 1;
	}
	__builtin_memset(s->comp, 0, sizeof(s->comp));
	bpf_probe_read_kernel(s->comp, FSP_BOUND(len, FSP_NAME_MAX), &s->upath[FSP_BOUND(start, FSP_PATH_MAX - 1)]);
	s->memo_key.parent = l->cur;
	s->memo_key.name[0] = s->comp[0];
	s->memo_key.name[1] = s->comp[1];
	s->memo_key.name[2] = s->comp[2];
	s->memo_key.len = len;
	s->memo_key.pad = 0;
	l->scanned = 0;
	l->node = first_child(l);
	l->state = LS_CHILD;
	return 0;
}

/* The component was found as `child`: descend, crossing mounts on it. */
static __always_inline long found_child(struct lookup_state *l, struct dentry *child)
{
	bool last = l->pos >= l->len;

	if (is_symlink(child) && !last) {
		/* Following it would take a string from the symlink: stop. */
		l->done = 1;
		return 1;
	}
	l->cur = child;
	l->resolved = l->pos - 1;
	if (l->resolved > l->len)
		l->resolved = l->len;
	l->comp_start = l->pos;
	if (BPF_CORE_READ(child, d_flags) & dcache_mounted_flag()) {
		l->node = first_child_mount(l);
		l->state = LS_MOUNT;
		return 0;
	}
	l->state = LS_BYTES;
	if (last)
		l->done = 1;
	return l->done ? 1 : 0;
}

/* One step of the lookup in scratch.ls; non-zero when it is over. */
static __always_inline int lookup_step(struct fsp_scratch *s)
{
	struct lookup_state *l = &s->ls;

	if (l->state == LS_BYTES) {
		if (l->pos < l->len && s->upath[FSP_BOUND(l->pos, FSP_PATH_MAX - 1)] != '/') {
			l->pos++;
			return 0;
		}
		if (l->pos >= l->len && l->pos == l->comp_start) {
			l->done = 1;
			return 1;
		}
		return end_component(s, l);
	}

	if (l->state == LS_CHILD) {
		struct dentry *child;

		if (l->scanned == 0) {
			/* First step of this component: a remembered child? */
			struct dentry **memo = bpf_map_lookup_elem(&child_memo, &s->memo_key);

			l->scanned = 1;
			child = memo ? *memo : NULL;
			if (child && BPF_CORE_READ(child, d_parent) == l->cur &&
			    BPF_CORE_READ(child, d_name.len) == l->comp_len &&
			    BPF_CORE_READ(child, d_hash.pprev) &&
			    same_name(s, BPF_CORE_READ(child, d_name.name), l->comp_len)) {
				if (!BPF_CORE_READ(child, d_inode)) {
					l->done = 1; /* negative now: the name does not exist */
					return 1;
				}
				return found_child(l, child);
			}
			return 0;
		}
		child = child_of_node(l, l->node);
		if (!child) {
			/* Not in the dcache (or does not exist): stop here. */
			l->done = 1;
			return 1;
		}
		l->node = next_sibling(l->node);
		l->scanned++;
		if (BPF_CORE_READ(child, d_name.len) != l->comp_len ||
		    !BPF_CORE_READ(child, d_hash.pprev))
			return 0;
		if (!same_name(s, BPF_CORE_READ(child, d_name.name), l->comp_len))
			return 0;
		if (!BPF_CORE_READ(child, d_inode)) {
			/* A negative dentry: the name does not exist. */
			l->done = 1;
			return 1;
		}
		if (l->scanned > FSP_MEMO_AFTER) {
			s->memo_child = child;
			bpf_map_update_elem(&child_memo, &s->memo_key, &s->memo_child, BPF_ANY);
		}
		return found_child(l, child);
	}

	/* LS_MOUNT: find the mount whose mount point is l->cur. */
	if (!l->node || l->node == l->head) {
		/* Flagged but nothing mounted in this namespace: stay. */
		l->state = LS_BYTES;
		if (l->pos >= l->len)
			l->done = 1;
		return l->done ? 1 : 0;
	}
	struct mount *child_mnt =
		(void *)((char *)l->node - bpf_core_field_offset(struct mount, mnt_child));

	l->node = next_sibling(l->node);
	if (BPF_CORE_READ(child_mnt, mnt_mountpoint) != l->cur)
		return 0;
	struct dentry *root = BPF_CORE_READ(child_mnt, mnt.mnt_root);

	l->mnt = child_mnt;
	l->cur = root;
	/* Another file system may be mounted on this one's root. */
	if (BPF_CORE_READ(root, d_flags) & dcache_mounted_flag()) {
		l->node = first_child_mount(l);
		return 0;
	}
	l->state = LS_BYTES;
	if (l->pos >= l->len)
		l->done = 1;
	return l->done ? 1 : 0;
}

/* Up to FSP_LOOKUP_CHUNK steps of the lookup; 1 when it is over. */
__noinline int fsp_lookup_chunk(void)
{
	struct fsp_scratch *s = get_scratch();

	if (!s)
		return 1;
	for (int i = 0; i < FSP_LOOKUP_CHUNK; i++) {
		if (lookup_step(s))
			return 1;
	}
	return 0;
}

/* Up to FSP_LOOKUP_BLOCK chunks; 1 when the lookup is over. */
__noinline int fsp_lookup_block(void)
{
	for (int i = 0; i < FSP_LOOKUP_BLOCK; i++) {
		if (fsp_lookup_chunk())
			return 1;
	}
	return 0;
}

/*
 * Looks scratch.upath (len bytes) up from the base lookup_base() left in
 * scratch.ls; with only_watched,
 * stops before a last name whose directory is not watched. On return
 * s->ls.cur and s->ls.mnt are the deepest dentry resolved and
 * s->ls.resolved how many bytes of upath that covers; the rest is the
 * unresolved suffix (s->ls.unwatched: stopped because the object is not
 * watched). Inline: its callers are global functions (fsp_put_name(),
 * fsp_resolve_source()), and a frame of its own would take the lookup's
 * call chain past the verifier's 512 bytes of stack.
 */
static __always_inline void lookup_path(struct fsp_scratch *s, __u32 len, bool only_watched)
{
	struct lookup_state *l = &s->ls;

	/* l->cur and l->mnt: the base, from lookup_base(). */
	l->node = NULL;
	l->head = NULL;
	l->pos = 0;
	l->len = len;
	l->comp_start = 0;
	l->comp_len = 0;
	l->resolved = 0;
	l->state = LS_BYTES;
	l->done = 0;
	l->only_watched = only_watched && cfg_paths_filtering && !may_have_outside_names();
	l->unwatched = 0;
	if (len > 0 && s->upath[0] == '/') {
		l->pos = 1;
		l->comp_start = 1;
		l->resolved = 1;
	}
	for (int i = 0; i < FSP_LOOKUP_BLOCKS; i++) {
		if (fsp_lookup_block())
			break;
	}
	if (l->resolved > len)
		l->resolved = len;
}

#endif /* FSP_LOOKUP_H */

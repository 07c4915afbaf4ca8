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

/* The inner map in slot `slot` of watched (core/maps.h), or NULL. */
static __always_inline void *watched_set(__u32 slot)
{
	return bpf_map_lookup_elem(&watched, &slot);
}

#define FSP_HINT_SLOTS (1u << FSP_HINT_SLOT_BITS)

#define FSP_HINT_SUMMARY_BYTES (FSP_HINT_SLOTS >> FSP_HINT_SUMMARY_SHIFT)

/*
 * The watch hints: a byte for each of FSP_HINT_SLOTS slots, set (by the
 * kernel in watch_with(), by user space in src/hints.rs through the
 * mmapped value) for every identity before it enters the watched set, and
 * never cleared. A clear slot proves the identity is not watched. Most
 * files a host opens are not watched: their check costs a load in a
 * 1 MiB table instead of a hash lookup, whose bucket is a cache miss
 * (the set's buckets take 16 bytes per entry). Bytes, not bits: 5.10 has
 * no atomic OR, and a byte store loses no other slot's mark.
 *
 * The summary is checked first: a byte per 2^FSP_HINT_SUMMARY_SHIFT
 * slots, set with any of them. In 16 KiB it stays in the CPU's cache
 * where the 1 MiB of slots does not (a random slot is a miss, about
 * 100 ns, on a tree of 40,000 directories), so while the watched set is
 * small next to the summary (a few thousand directories), an unwatched
 * file costs no miss at all.
 */
struct fsp_watch_hints {
	__u8 slot[FSP_HINT_SLOTS];
	__u8 summary[FSP_HINT_SUMMARY_BYTES];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fsp_watch_hints);
} watch_hints SEC(".maps");

/* The hint slot of identity (dev, ino): the same function as src/hints.rs. */
static __always_inline __u32 fsp_hint_slot(__u32 dev, __u64 ino)
{
	__u32 h = (__u32)ino * FSP_HINT_MUL_INO + (__u32)(ino >> 32) * FSP_HINT_MUL_INO_HIGH +
		  dev * FSP_HINT_MUL_DEV;

	h ^= h >> 16;
	h *= FSP_HINT_MUL_INO;
	return h >> (32 - FSP_HINT_SLOT_BITS);
}

static __always_inline struct fsp_watch_hints *watch_hints_table(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&watch_hints, &zero);
}

/* The summary byte that stands for hint slot `slot`. */
static __always_inline __u32 fsp_hint_summary(__u32 slot)
{
	return (slot >> FSP_HINT_SUMMARY_SHIFT) & (FSP_HINT_SUMMARY_BYTES - 1);
}

/*
 * May identity (dev, ino) be watched? No when its summary byte is clear.
 * A cheap first check (the summary stays in cache): the answer "maybe"
 * still needs hinted().
 */
static __always_inline bool summary_hinted(__u32 dev, __u64 ino)
{
	struct fsp_watch_hints *hints = watch_hints_table();
	__u32 slot = fsp_hint_slot(dev, ino) & (FSP_HINT_SLOTS - 1);

	return !hints || hints->summary[fsp_hint_summary(slot)];
}

/* May identity (dev, ino) be watched? No when its hint is clear. */
static __always_inline bool hinted(__u32 dev, __u64 ino)
{
	struct fsp_watch_hints *hints = watch_hints_table();
	__u32 slot = fsp_hint_slot(dev, ino) & (FSP_HINT_SLOTS - 1);

	return !hints || (hints->summary[fsp_hint_summary(slot)] &&
			  hints->slot[slot]);
}

/*
 * The watch flags (enum fsp_watch) of identity (dev, ino), 0 when it is
 * not watched. Global, so that its lookups are verified once rather
 * than at every filter check of every program (the checks are inlined in
 * loops): the verifier's time is most of a start in a slow guest.
 */
__noinline __u32 fsp_watch_flags(__u32 dev, __u64 ino)
{
	struct fsp_inode_key key = { .dev = dev, .pad = 0, .ino = ino };
	void *set;
	__u32 *flags;

	if (!hinted(dev, ino))
		return 0;
	set = watched_set(FSP_WATCHED_NOW);
	flags = set ? bpf_map_lookup_elem(set, &key) : NULL;
	/* While user space copies the set into a larger map (src/watched.rs). */
	if (!flags) {
		set = watched_set(FSP_WATCHED_BEFORE);
		flags = set ? bpf_map_lookup_elem(set, &key) : NULL;
	}
	return flags ? *flags : 0;
}

static __always_inline __u32 key_flags(struct fsp_inode_key *key)
{
	return fsp_watch_flags(key->dev, key->ino);
}

static __always_inline __u32 watch_flags(struct dentry *d)
{
	struct fsp_inode_key key = dentry_key(d);

	return key_flags(&key);
}

/*
 * Directories flagged FSP_WATCH_SUBTREE whose contents user space has not
 * walked yet: [0] counts those flagged (the kernel adds), [1] those user
 * space has walked (only user space writes it). While they differ, a file
 * that does not match otherwise is looked for below them.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} subtrees_pending SEC(".maps");

static __always_inline bool subtrees_pending_now(void)
{
	__u32 added = 0, walked = 1;
	__u64 *a = bpf_map_lookup_elem(&subtrees_pending, &added);
	__u64 *w = bpf_map_lookup_elem(&subtrees_pending, &walked);

	return a && w && *a != *w;
}

/* Ancestors looked at per call of fsp_subtree_chunk(), and chunks per lookup. */
#define FSP_SUBTREE_CHUNK 32
#define FSP_SUBTREE_CHUNKS 64

/*
 * FSP_SUBTREE_CHUNK steps up from the cursor (cache_scratch.subtree_at):
 * 1 found, -1 at the root, 0 go on.
 */
__noinline int fsp_subtree_chunk(void)
{
	struct fsp_cache_scratch *cs = get_cache_scratch();

	if (!cs)
		return -1;
	for (int i = 0; i < FSP_SUBTREE_CHUNK; i++) {
		struct dentry *d = cs->subtree_at;
		struct dentry *parent = BPF_CORE_READ(d, d_parent);

		if (watch_flags(d) & FSP_WATCH_SUBTREE)
			return 1;
		if (!parent || parent == d)
			return -1;
		cs->subtree_at = parent;
	}
	return 0;
}

/*
 * Is d below a directory that entered a watched tree with contents not
 * yet added (FSP_WATCH_SUBTREE)? Global: its loop is verified once.
 */
__noinline int fsp_below_subtree(__u64 dentry)
{
	struct fsp_cache_scratch *cs = get_cache_scratch();

	if (!cs)
		return 0;
	cs->subtree_at = (struct dentry *)dentry;
	/* Unrolled: 5.10's verifier refuses a loop whose head follows a call. */
#pragma unroll
	for (int i = 0; i < FSP_SUBTREE_CHUNKS; i++) {
		int r = fsp_subtree_chunk();

		if (r)
			return r > 0;
	}
	return 0;
}

/*
 * How many watched files and directories may have a name outside the
 * watched trees: followed out of them (--follow), hard-linked (a new
 * link, or one user space found with more than one link when it seeded
 * the filter). While there are none, a name in a directory nobody
 * watches cannot name a watched file, which spares the dcache lookups of
 * most names (resolve/lookup.h). [0]: counted here; [1]: by user space
 * (only it writes that slot).
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} outside_names SEC(".maps");

static __always_inline void outside_names_add(void)
{
	__u32 zero = 0;
	__u64 *n = bpf_map_lookup_elem(&outside_names, &zero);

	if (n)
		__sync_fetch_and_add(n, 1);
}

/* Can a name in a directory that is not watched name a watched file? */
static __always_inline bool may_have_outside_names(void)
{
	__u32 kernel = 0, user = 1;
	__u64 *k = bpf_map_lookup_elem(&outside_names, &kernel);
	__u64 *u = bpf_map_lookup_elem(&outside_names, &user);

	return !k || !u || *k || *u;
}

/*
 * object_matches() with typed loads (has_core_cast()): the same checks.
 * The parent first: user space seeds directories, not the files they
 * hold (src/seed.rs), so a watched file is found by its directory. And an
 * object whose directory was never watched nor flagged (its hint is
 * clear) is not watched itself unless something watched has a name
 * outside the trees: every entry the filter gets has a watched directory
 * (new ones, moved-in ones, seeded ones), or one flagged FSP_WATCH_NAMES
 * (the watched paths), or counts in outside_names (followed out, linked).
 * Most files a host opens end there, after one load.
 */
static __always_inline bool object_matches_cast(struct dentry *plain)
{
	struct dentry *d = bpf_core_cast(plain, struct dentry);
	struct dentry *parent = d->d_parent;
	struct fsp_inode_key key = {
		.dev = d->d_sb->s_dev,
		.pad = 0,
		.ino = parent->d_inode->i_ino,
	};

	if (parent != d) {
		if (!hinted(key.dev, key.ino) && !may_have_outside_names())
			goto pending;
		if (key_flags(&key) & FSP_WATCH_CHILDREN)
			return true;
	}
	key.ino = d->d_inode->i_ino;
	if (key_flags(&key) & FSP_WATCH_SELF)
		return true;
pending:
	return subtrees_pending_now() && fsp_below_subtree((__u64)plain);
}

/* Is the existing object d watched, directly or through its parent? */
static __always_inline bool object_matches(struct dentry *d)
{
	struct dentry *parent;

	if (!cfg_paths_filtering)
		return true;
	if (has_core_cast())
		return object_matches_cast(d);
	parent = BPF_CORE_READ(d, d_parent);
	if (parent != d) {
		struct fsp_inode_key key = dentry_key(parent);

		if (!hinted(key.dev, key.ino) && !may_have_outside_names())
			goto pending;
		if (key_flags(&key) & FSP_WATCH_CHILDREN)
			return true;
	}
	if (watch_flags(d) & FSP_WATCH_SELF)
		return true;
pending:
	return subtrees_pending_now() && fsp_below_subtree((__u64)d);
}

/* Directory dir's watch flags (enum fsp_watch; no pending subtree asked). */
static __always_inline __u32 dir_flags(struct dentry *dir)
{
	if (has_core_cast()) {
		struct dentry *d = bpf_core_cast(dir, struct dentry);
		struct fsp_inode_key key = {
			.dev = d->d_sb->s_dev,
			.pad = 0,
			.ino = d->d_inode->i_ino,
		};

		return key_flags(&key);
	}
	return watch_flags(dir);
}

/* Is a name (existing or not) inside directory dir watched? */
static __always_inline bool child_matches(struct dentry *dir)
{
	if (!cfg_paths_filtering || (dir_flags(dir) & FSP_WATCH_CHILDREN))
		return true;
	return subtrees_pending_now() && fsp_below_subtree((__u64)dir);
}

/*
 * child_matches(), but "maybe" while a moved-in subtree is pending instead
 * of walking up to find it: for the dcache lookup's early stop, whose
 * call chain has no room left for that walk's two frames (the verifier
 * allows 512 bytes of stack over a chain; 5.10 rounds every frame to 32).
 * Also "maybe" in the directory of a watched path (FSP_WATCH_NAMES): the
 * path itself is a name there.
 */
static __always_inline bool child_may_match(struct dentry *dir)
{
	return !cfg_paths_filtering || (dir_flags(dir) & (FSP_WATCH_CHILDREN | FSP_WATCH_NAMES)) ||
	       subtrees_pending_now();
}

/* Start following d (flags: enum fsp_watch); false when the map is full. */
static __always_inline bool watch_with(struct dentry *d, __u32 flags, __u64 map_flags)
{
	struct fsp_inode_key key = dentry_key(d);
	struct fsp_watch_hints *hints = watch_hints_table();
	void *set;
	long err;

	if (!cfg_paths_filtering || !key.ino)
		return true;
	/* Before the insert: a lookup that finds the entry must not skip it. */
	if (hints) {
		__u32 slot = fsp_hint_slot(key.dev, key.ino) & (FSP_HINT_SLOTS - 1);

		hints->slot[slot] = 1;
		hints->summary[fsp_hint_summary(slot)] = 1;
	}
	set = watched_set(FSP_WATCHED_NOW);
	err = set ? bpf_map_update_elem(set, &key, &flags, map_flags) : -FSP_E2BIG;
	if (err == -FSP_E2BIG) {
		count(FSP_CNT_WATCH_FULL);
		return false;
	}
	/* What user space sizes the set by (src/watched.rs). */
	if (!err)
		count(FSP_CNT_WATCH_ADDED);
	return true;
}

/* Start following d, which now lives in a watched directory. */
static __always_inline void watch_new(struct dentry *d)
{
	umode_t mode = BPF_CORE_READ(d, d_inode, i_mode);
	__u32 flags = FSP_WATCH_SELF;

	if (cfg_recursive && (mode & FSP_S_IFMT) == FSP_S_IFDIR)
		flags |= FSP_WATCH_CHILDREN;
	watch_with(d, flags, BPF_NOEXIST);
}

static __always_inline void unwatch_key(struct fsp_inode_key *key)
{
	void *now, *before;
	bool removed = false;

	if (!cfg_paths_filtering)
		return;
	now = watched_set(FSP_WATCHED_NOW);
	before = watched_set(FSP_WATCHED_BEFORE);
	if (now && bpf_map_delete_elem(now, key) == 0)
		removed = true;
	if (before && bpf_map_delete_elem(before, key) == 0)
		removed = true;
	if (removed)
		count(FSP_CNT_WATCH_REMOVED);
}

/*
 * d, a directory with contents, entered a watched tree: everything below
 * it is watched from now on (through the ancestor check), until user
 * space has walked it (the FSP_SUBTREE notice). Returns whether there is
 * such a walk to ask for.
 */
static __always_inline bool watch_subtree(struct dentry *d)
{
	__u32 zero = 0;
	__u64 *n;

	if (!cfg_paths_filtering || !cfg_recursive)
		return false;
	if (!watch_with(d, FSP_WATCH_SELF | FSP_WATCH_CHILDREN | FSP_WATCH_SUBTREE, BPF_ANY))
		return false;
	n = bpf_map_lookup_elem(&subtrees_pending, &zero);
	if (n)
		__sync_fetch_and_add(n, 1);
	return true;
}

/*
 * After a successful creation, link or rename of d (`was_watched`: it was
 * followed before; `moved`: it may have contents): watch it if its new
 * directory is watched; a directory moved in from outside brings its
 * contents along (see watch_subtree()). Out of the watched trees, keep
 * following it with --follow, else stop. Returns whether user space must
 * walk d.
 */
static __always_inline bool track_placement(struct dentry *d, bool was_watched, bool moved)
{
	struct dentry *parent = BPF_CORE_READ(d, d_parent);
	bool inside = parent != d && child_matches(parent);
	umode_t mode = BPF_CORE_READ(d, d_inode, i_mode);
	struct fsp_inode_key key;

	if (!cfg_paths_filtering)
		return false;
	if (inside && moved && !was_watched && (mode & FSP_S_IFMT) == FSP_S_IFDIR)
		return watch_subtree(d);
	if (inside) {
		watch_new(d);
		return false;
	}
	if (was_watched && cfg_follow) {
		watch_new(d);
		outside_names_add();
		return false;
	}
	if (!cfg_follow) {
		key = dentry_key(d);
		unwatch_key(&key);
	}
	return false;
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

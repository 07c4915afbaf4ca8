/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The path caches behind --dentry-resolution-mode.
 *
 * Every mode caches directories only, keyed by (mount id, device, inode):
 * a directory has one dentry (d_splice_alias()), so its path through a
 * given mount is unique; a file may have several (hard links).
 *
 * - perf_buffer and fragments: dir_cache holds the directories user space
 *   knows. The walk stops at the first one it meets; the record carries
 *   that directory's key (the "prefix") and only the path below it, plus
 *   "defs" for the directories it passed, which user space learns (whole
 *   prefixes, or (parent, name) fragments) and the kernel inserts into
 *   dir_cache once the record is in the ring.
 * - single_fragment: path_cache holds whole paths of directories; a hit
 *   on the file's directory skips the rest of the walk.
 *
 * Exactness. An entry is valid only for the generation it was made in and
 * only for the very dentry it was made from. The generation is bumped at
 * the entry and the exit of every syscall that can change the path of a
 * cached directory or reuse its key: the rename of a directory
 * (d_move()), mount, umount, move_mount, pivot_root, and
 * clone/clone3/unshare with CLONE_NEWNS (new mounts can reuse the ids of
 * freed ones). A walk reads the generation before it reads any dentry,
 * and tags what it inserts with it: if a rename's d_move() ran after that
 * read, its exit bump has already made the new entries stale, or will.
 * User space bumps its own epoch (the second slot) to drop its mirror
 * without a race with the kernel's increments.
 *
 * An rmdir changes no other directory's path; it only frees an inode
 * number for reuse. The key's i_generation tells the reuse apart
 * (struct fsp_dir_key), so an rmdir bumps only the rmdir count (the third
 * slot), which is part of the keys of the directories whose file system
 * leaves i_generation 0. Before i_generation was in the key, every rmdir
 * on the host made every cached walk stale (the soak in bench-results/).
 */
#ifndef FSP_CACHE_H
#define FSP_CACHE_H

#include "filter/filter.h"
#include "resolve/dir_memo.h"

struct dir_cached {
	__u64 gen;
	struct dentry *dentry;
	/*
	 * The directory's watch flags (enum fsp_watch) when it was taught:
	 * with FSP_WATCH_CHILDREN, a file in it is watched without a lookup
	 * in the watched set (fsp_parent_watching()).
	 */
	__u32 watch;
	__u32 pad;
};

/* fragments, perf_buffer: the directories user space knows. Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 40000);
	__type(key, struct fsp_dir_key);
	__type(value, struct dir_cached);
} dir_cache SEC(".maps");

/* single_fragment: whole paths of directories. Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, struct fsp_dir_key);
	__type(value, struct path_entry);
} path_cache SEC(".maps");

enum cache_gen_slot {
	GEN_KERNEL = 0,       /* bumped by what changes directories' paths */
	GEN_USER_EPOCH = 1,   /* bumped by user space when it flushes (src/cache.rs) */
	GEN_REMOVED_DIRS = 2, /* bumped by every rmdir */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} cache_gen SEC(".maps");

/* The current generation; never 0 (0 means "no walk" in a record). */
static __always_inline __u64 current_gen(void)
{
	__u32 kernel = GEN_KERNEL, user = GEN_USER_EPOCH;
	__u64 *g = bpf_map_lookup_elem(&cache_gen, &kernel);
	__u64 *e = bpf_map_lookup_elem(&cache_gen, &user);
	__u64 gen = (g ? *g : 0) + ((e ? *e : 0) << 40) + 1;

	barrier(); /* read before any dentry of the walk */
	return gen;
}

/* User space's epoch: bumped when it flushes its mirrors (src/cache.rs). */
static __always_inline __u64 user_epoch(void)
{
	__u32 user = GEN_USER_EPOCH;
	__u64 *e = bpf_map_lookup_elem(&cache_gen, &user);

	return e ? *e : 0;
}

/* [0]: bumped by the syscalls that change the mount table (mount_changes()). */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} mount_gen SEC(".maps");

static __always_inline __u32 current_mount_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&mount_gen, &zero);

	return g ? *g : 0;
}

static __always_inline void bump_mount_gen(void)
{
	__u32 zero = 0;
	__u32 *g = bpf_map_lookup_elem(&mount_gen, &zero);

	if (g)
		__sync_fetch_and_add(g, 1);
}

static __always_inline void bump_slot(__u32 slot)
{
	__u64 *g = bpf_map_lookup_elem(&cache_gen, &slot);

	if (g)
		__sync_fetch_and_add(g, 1);
}

/* Every cached path may have changed. */
static __always_inline void bump_gen(void)
{
	bump_slot(GEN_KERNEL);
}

/* A directory is (or is about to be) gone: its inode number may be reused. */
static __always_inline void bump_removed_dirs(void)
{
	bump_slot(GEN_REMOVED_DIRS);
}

/* Read with the generation, before any dentry of the walk. */
static __always_inline __u32 removed_dirs(void)
{
	__u32 slot = GEN_REMOVED_DIRS;
	__u64 *g = bpf_map_lookup_elem(&cache_gen, &slot);
	__u32 n = g ? (__u32)*g : 0;

	barrier();
	return n;
}

static __always_inline bool caches_fragments(void)
{
	return cfg_resolution == FSP_RES_PERF_BUFFER || cfg_resolution == FSP_RES_FRAGMENTS;
}

/*
 * The walk is at directory d (walk state w), about to write its name:
 * returns true when the rest of the path comes from a cache. On a miss,
 * remembers d so the record can teach it (or single_fragment insert it).
 */
/* Directory d's key, reached through mount (mnt_id, dev), at rmdir count removed. */
static __always_inline void dir_key(struct fsp_dir_key *key, struct dentry *d, __u32 mnt_id,
				    __u32 dev, __u32 removed)
{
	__u32 generation = KREAD(struct dentry, d, d_inode, i_generation);

	key->mnt_id = mnt_id;
	key->dev = dev;
	key->ino = KREAD(struct dentry, d, d_inode, i_ino);
	key->generation = generation ? generation : removed;
	key->flags = generation ? 0 : FSP_DIR_KEY_BY_REMOVALS;
}

static __always_inline bool same_dir_key(struct fsp_dir_key *a, struct fsp_dir_key *b)
{
	return a->mnt_id == b->mnt_id && a->dev == b->dev && a->ino == b->ino &&
	       a->generation == b->generation && a->flags == b->flags;
}

static __always_inline bool cache_visit(struct fsp_scratch *s, struct dentry *d)
{
	struct walk_state *w = &s->ws;
	__u32 generation = KREAD(struct dentry, d, d_inode, i_generation);
	/* The fields of dir_key(), written here: as a call it cost the walk's frame a spill. */
	struct fsp_dir_key key = {
		.mnt_id = w->mnt_id,
		.dev = w->dev,
		.ino = KREAD(struct dentry, d, d_inode, i_ino),
		.generation = generation ? generation : w->removed_dirs,
		.flags = generation ? 0 : FSP_DIR_KEY_BY_REMOVALS,
	};
	struct fsp_cache_scratch *cs = get_cache_scratch();
	struct walk_visit *v;

	if (!cs)
		return false;
	if (caches_fragments()) {
		struct dir_cached *c = bpf_map_lookup_elem(&dir_cache, &key);

		if (c && c->gen == w->gen && c->dentry == d) {
			w->prefix = key;
			return true;
		}
		v = &cs->visit[w->n_visit & (FSP_MAX_DEFS - 1)];
		v->key = key;
		v->dentry = d;
		v->off = w->off;
		v->name_len = KREAD(struct dentry, d, d_name.len);
		w->n_visit++;
		return false;
	}
	/* single_fragment: only the file's own directory is looked up. */
	if (w->n_visit)
		return false;
	w->n_visit = 1;
	w->first_key = key;
	w->first_dentry = d;
	w->first_off = w->off;

	struct path_entry *e = bpf_map_lookup_elem(&path_cache, &key);
	__u32 len;

	if (!e || e->gen != w->gen || e->dentry != d)
		return false;
	len = e->len;
	if (len == 0 || len >= w->off)
		return false; /* would not fit: walk instead */
	w->off -= len;
	bpf_probe_read_kernel(&s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)],
			      FSP_BOUND(len, FSP_PATH_MAX - 1), e->path);
	w->n_visit = 2; /* a hit: nothing to insert */
	return true;
}

/*
 * After a whole walk: stage the defs of the directories passed (the
 * FSP_MAX_DEFS nearest the top, so that each one's parent is known), or
 * insert the directory's path (single_fragment).
 */
static __always_inline void cache_after_walk(struct fsp_scratch *s)
{
	struct walk_state *w = &s->ws;
	struct fsp_cache_scratch *cs = get_cache_scratch();
	__u32 n = w->n_visit, keep, first, at;

	if (!cs || w->flags & (FSP_PATH_TRUNCATED | FSP_PATH_DISCONNECTED))
		return;
	if (!caches_fragments()) {
		struct path_entry *e = &cs->entry;
		__u32 len = w->first_off - w->off;

		if (n != 1 || w->first_off > FSP_PATH_MAX || len == 0 || len >= FSP_PATH_MAX)
			return;
		e->gen = w->gen;
		e->dentry = w->first_dentry;
		e->len = len;
		bpf_probe_read_kernel(e->path, FSP_BOUND(len, FSP_PATH_MAX - 1),
				      &s->walk[FSP_BOUND(w->off, FSP_PATH_MAX - 1)]);
		bpf_map_update_elem(&path_cache, &w->first_key, e, BPF_ANY);
		return;
	}
	/*
	 * The topmost directories, as many as fit: each def's parent must be
	 * the next def, the prefix or the root.
	 */
	at = s->rec.hdr.n_defs;
	keep = n < FSP_MAX_DEFS ? n : FSP_MAX_DEFS;
	if (at >= FSP_DEFS_PER_RECORD)
		return;
	if (keep > FSP_DEFS_PER_RECORD - at)
		keep = FSP_DEFS_PER_RECORD - at;
	first = n - keep;
	for (__u32 j = 0; j < FSP_MAX_DEFS; j++) {
		__u32 vi = FSP_BOUND(first + j, FSP_MAX_DEFS - 1);
		__u32 di = FSP_BOUND(at, FSP_DEF_SLOTS - 1);
		struct walk_visit *v = &cs->visit[vi];
		struct fsp_cache_def *def = &cs->defs[di];

		if (j >= keep || at >= FSP_DEFS_PER_RECORD)
			break;
		def->key = v->key;
		def->end = v->off - w->off;
		def->name_len = v->name_len;
		def->slot = w->slot;
		cs->def_dentry[di] = v->dentry;
		at++;
	}
	s->rec.hdr.n_defs = at;
}

/*
 * The record is in the ring: the directories it taught user space may now
 * stop later walks. Global, so its loop is verified once.
 */
__noinline int fsp_learn_defs(void)
{
	struct fsp_scratch *s = get_scratch();
	struct fsp_cache_scratch *cs = get_cache_scratch();
	struct dir_cached c = {};

	if (!s || !cs)
		return 0;
	for (__u32 i = 0; i < FSP_DEFS_PER_RECORD; i++) {
		struct fsp_cache_def *def;

		if (i >= s->rec.hdr.n_defs)
			break;
		def = &cs->defs[i & (FSP_DEF_SLOTS - 1)];
		c.gen = def->slot == 0 ? s->rec.hdr.file.cache_gen :
			def->slot == 1 ? s->rec.hdr.target.cache_gen : s->rec.hdr.proc.exe.cache_gen;
		c.dentry = cs->def_dentry[i & (FSP_DEF_SLOTS - 1)];
		c.watch = fsp_watch_flags(def->key.dev, def->key.ino);
		bpf_map_update_elem(&dir_cache, &def->key, &c, BPF_ANY);
	}
	return 0;
}

/*
 * Does the path cache know d's directory, reached through vmnt, as one
 * that watches its children? Then d is watched, and a file opened in a
 * directory seen a moment before costs one lookup (in dir_cache, which
 * the path walk then finds warm) instead of two. Only a positive answer
 * is cached: a directory starts to watch its children (a mkdir, a move
 * into the trees, the seed) without touching dir_cache. One stops only
 * when it is removed (its dentry is then dead: no file is opened in it
 * again, and a directory that reuses its inode number has another key)
 * or moved out of the trees (a directory rename, which bumps the
 * generation: every entry is stale). The memo of watching directories
 * (dir_memo.h) answers first, with one cache miss where dir_cache costs
 * two. Global: verified once.
 */
__noinline int fsp_parent_watching(__u64 dentry, __u64 vmnt)
{
	struct dentry *d = (struct dentry *)dentry;
	struct dentry *parent = KREAD(struct dentry, d, d_parent);
	struct mount *m = real_mount((struct vfsmount *)vmnt);
	struct fsp_scratch *s;
	struct fsp_dir_key key;
	struct dir_cached *c;
	__u64 gen;

	/* A mount's root: the walk goes on from its mount point instead. */
	if (!caches_fragments() || !parent || parent == d ||
	    d == KREAD(struct vfsmount, (struct vfsmount *)vmnt, mnt_root))
		return 0;
	gen = current_gen();
	dir_key(&key, parent, KREAD(struct mount, m, mnt_id), KREAD(struct mount, m, mnt.mnt_sb, s_dev),
		removed_dirs());
	if (!dir_memo_holds(parent, &key, gen)) {
		if (!hinted(key.dev, key.ino))
			return 0;
		c = bpf_map_lookup_elem(&dir_cache, &key);
		if (!c || c->gen != gen || c->dentry != parent || !(c->watch & FSP_WATCH_CHILDREN))
			return 0;
		dir_memo_remember(parent, &key, gen);
	}
	s = get_scratch();
	if (s) {
		s->known_key = key;
		s->known_dentry = parent;
		s->known_gen = gen;
	}
	return 1;
}

#endif /* FSP_CACHE_H */

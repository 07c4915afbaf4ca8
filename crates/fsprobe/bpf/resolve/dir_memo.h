/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The memo of watching directories: the directories fsp_parent_watching()
 * (cache.h) found in dir_cache as watching their children, in a 2-way
 * set-associative table indexed by a hash of the directory's key.
 *
 * Why: an open in a watched tree asks whether the file's directory
 * watches its children. dir_cache answers with a hash of the key, its
 * bucket and its element: two cache misses on a tree of 40,000
 * directories, about 250 ns of an open's 900 ns of BPF in scenario 6.
 * The memo answers with one: a set is an aligned pair of cache lines,
 * which the CPU's adjacent-line prefetch fetches together, and an ARRAY
 * lookup is inlined by the verifier (array_map_gen_lookup()).
 *
 * Exactness: a way stands for the dir_cache entry it was copied from and
 * is checked the same way: the directory's dentry and whole key (mount
 * id, inode, generation and its flag) at the current cache generation.
 * The key's device is the mount's, so the mount id stands for it (a mount
 * or umount bumps the generation before a freed id can be reused). A way
 * holds only the fields it is checked by. Every kernel has it (5.10
 * included: no compare-and-swap is needed).
 *
 * Concurrency: CPUs write ways without a lock, and with atomic adds only
 * (5.10 has no compare-and-swap). Each way counts the writes begun and
 * the writes ended. A writer adds to `started`, writes the fields, then
 * adds to `finished`; a reader reads `finished`, then `started` (equal: no
 * write under way), the fields, then `started` again (unchanged: none
 * began since). x86-64 keeps loads in order and stores in order (TSO),
 * a locked add orders both, and the JIT emits them in program order, so
 * the fields a reader accepts are all of one write. (The syscall hooks
 * are x86-64 only.)
 */
#ifndef FSP_DIR_MEMO_H
#define FSP_DIR_MEMO_H

#include "core/maps.h"

/* The stamp's bit for FSP_DIR_KEY_BY_REMOVALS (current_gen() stays far below 2^63). */
#define FSP_MEMO_BY_REMOVALS (1ull << 63)

/* A way: one cache line. */
struct dir_memo_way {
	__u32 started;  /* writes begun */
	__u32 finished; /* writes ended */
	__u64 stamp;    /* cache generation | FSP_MEMO_BY_REMOVALS; 0: empty */
	struct dentry *dentry;
	__u64 ino;
	__u32 mnt_id;
	__u32 generation; /* the key's (struct fsp_dir_key) */
	__u64 pad[3];
};

/*
 * Two ways in an aligned pair of cache lines (the map's values start on a
 * page), which the CPU's adjacent-line prefetch fetches together.
 */
struct dir_memo_set {
	struct dir_memo_way way[2];
};

#define FSP_DIR_MEMO_SETS 8192 /* 1 MiB: 16,384 directories */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/* An mmapable array's values start on a page (array_map_alloc()). */
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FSP_DIR_MEMO_SETS);
	__type(key, __u32);
	__type(value, struct dir_memo_set);
} dir_memo SEC(".maps");

/* The set of the directory with key (its inode number and mount, hashed). */
static __always_inline struct dir_memo_set *dir_memo_set_of(const struct fsp_dir_key *key)
{
	__u64 h = (key->ino ^ ((__u64)key->mnt_id << 40)) * 0x9E3779B97F4A7C15ull;
	__u32 i = (__u32)(h >> 40) & (FSP_DIR_MEMO_SETS - 1);

	return bpf_map_lookup_elem(&dir_memo, &i);
}

static __always_inline __u64 dir_memo_stamp(const struct fsp_dir_key *key, __u64 gen)
{
	return gen | (key->flags & FSP_DIR_KEY_BY_REMOVALS ? FSP_MEMO_BY_REMOVALS : 0);
}

static __always_inline __u32 dir_memo_read32(__u32 *p)
{
	return *(volatile __u32 *)p;
}

static __always_inline bool dir_memo_way_holds(struct dir_memo_way *w, struct dentry *dir,
					       const struct fsp_dir_key *key, __u64 stamp)
{
	__u32 finished = dir_memo_read32(&w->finished), started;
	bool same;

	barrier();
	started = dir_memo_read32(&w->started);
	if (started != finished)
		return false;
	barrier();
	same = w->stamp == stamp && w->dentry == dir && w->ino == key->ino &&
	       w->mnt_id == key->mnt_id && w->generation == key->generation;
	barrier();
	return same && dir_memo_read32(&w->started) == started;
}

/* Does the memo hold directory dir, with key, as watching its children at gen? */
static __always_inline bool dir_memo_holds(struct dentry *dir, const struct fsp_dir_key *key,
					   __u64 gen)
{
	struct dir_memo_set *set = dir_memo_set_of(key);
	__u64 stamp = dir_memo_stamp(key, gen);

	return set && (dir_memo_way_holds(&set->way[0], dir, key, stamp) ||
		       dir_memo_way_holds(&set->way[1], dir, key, stamp));
}

/* May the way be given to dir at stamp (empty, stale, or dir's already)? */
static __always_inline bool dir_memo_way_free(struct dir_memo_way *w, struct dentry *dir,
					      __u64 stamp)
{
	return w->stamp != stamp || w->dentry == dir;
}

/*
 * Remember dir, with key, as watching its children at gen: in a free way,
 * else in either.
 */
static __always_inline void dir_memo_remember(struct dentry *dir, const struct fsp_dir_key *key,
					      __u64 gen)
{
	struct dir_memo_set *set = dir_memo_set_of(key);
	__u64 stamp = dir_memo_stamp(key, gen);
	struct dir_memo_way *w;

	if (!set)
		return;
	if (dir_memo_way_free(&set->way[0], dir, stamp))
		w = &set->way[0];
	else if (dir_memo_way_free(&set->way[1], dir, stamp))
		w = &set->way[1];
	else
		w = &set->way[bpf_get_prandom_u32() & 1];
	__sync_fetch_and_add(&w->started, 1);
	barrier();
	w->stamp = stamp;
	w->dentry = dir;
	w->ino = key->ino;
	w->mnt_id = key->mnt_id;
	w->generation = key->generation;
	barrier();
	__sync_fetch_and_add(&w->finished, 1);
}

#endif /* FSP_DIR_MEMO_H */

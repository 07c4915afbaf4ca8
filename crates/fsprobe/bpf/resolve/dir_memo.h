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
 * The memo answers with one: a set is one cache line, and an ARRAY lookup
 * is inlined by the verifier (array_map_gen_lookup()).
 *
 * Exactness: a way stands for the dir_cache entry it was copied from and
 * is checked the same way: the directory's dentry and whole key (mount
 * id, inode, generation and its flag) at the current cache generation.
 * The key's device is the mount's, so the mount id stands for it (a mount
 * or umount bumps the generation before a freed id can be reused). A way
 * holds only the fields it is checked by.
 *
 * Concurrency: a writer claims a way by swapping its stamp for
 * FSP_MEMO_WRITING (cmpxchg), writes the fields, then the new stamp, whose
 * count (FSP_MEMO_COUNT) differs from the old one's. A reader reads the
 * stamp, the fields, then the stamp again: x86-64 keeps loads in order and
 * stores in order (TSO) and the JIT emits them in program order, so equal
 * stamps mean the fields are the ones written with that stamp. (The
 * syscall hooks are x86-64 only.) Without cmpxchg (before 5.12), no memo.
 */
#ifndef FSP_DIR_MEMO_H
#define FSP_DIR_MEMO_H

#include "core/maps.h"

/*
 * A stamp: the cache generation (bits 0-47; current_gen() stays far below
 * 2^48), the writes' count (bits 48-62), FSP_DIR_KEY_BY_REMOVALS (bit 63).
 * 0: empty. FSP_MEMO_WRITING: claimed by a writer.
 */
#define FSP_MEMO_GEN_MASK ((1ull << 48) - 1)
#define FSP_MEMO_COUNT (1ull << 48)
#define FSP_MEMO_COUNT_MASK (((1ull << 63) - 1) & ~FSP_MEMO_GEN_MASK)
#define FSP_MEMO_BY_REMOVALS (1ull << 63)
#define FSP_MEMO_WRITING (~0ull)

struct dir_memo_way {
	__u64 stamp;
	struct dentry *dentry;
	__u64 ino;
	__u32 mnt_id;
	__u32 generation; /* the key's (struct fsp_dir_key) */
};

/* Two ways, 64 bytes: one cache line (the map's values are page-aligned). */
struct dir_memo_set {
	struct dir_memo_way way[2];
};

#define FSP_DIR_MEMO_SETS 8192 /* 512 KiB: 16,384 directories */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	/* An mmapable array's values start on a page (array_map_alloc()). */
	__uint(map_flags, BPF_F_MMAPABLE);
	__uint(max_entries, FSP_DIR_MEMO_SETS);
	__type(key, __u32);
	__type(value, struct dir_memo_set);
} dir_memo SEC(".maps");

/* cmpxchg (BPF_ATOMIC, 5.12); bpf_for_each_map_elem() came in 5.13. */
static __always_inline bool has_dir_memo(void)
{
	return bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_for_each_map_elem);
}

/* The set of the directory with key (its inode number and mount, hashed). */
static __always_inline struct dir_memo_set *dir_memo_set_of(const struct fsp_dir_key *key)
{
	__u64 h = (key->ino ^ ((__u64)key->mnt_id << 40)) * 0x9E3779B97F4A7C15ull;
	__u32 i = (__u32)(h >> 40) & (FSP_DIR_MEMO_SETS - 1);

	return bpf_map_lookup_elem(&dir_memo, &i);
}

/* The stamp of key at generation gen, without its count. */
static __always_inline __u64 dir_memo_stamp(const struct fsp_dir_key *key, __u64 gen)
{
	return (gen & FSP_MEMO_GEN_MASK) |
	       (key->flags & FSP_DIR_KEY_BY_REMOVALS ? FSP_MEMO_BY_REMOVALS : 0);
}

static __always_inline __u64 dir_memo_read_stamp(struct dir_memo_way *w)
{
	return *(volatile __u64 *)&w->stamp;
}

static __always_inline bool dir_memo_way_holds(struct dir_memo_way *w, struct dentry *dir,
					       const struct fsp_dir_key *key, __u64 want)
{
	__u64 stamp = dir_memo_read_stamp(w);
	bool same;

	if (stamp == FSP_MEMO_WRITING || (stamp & ~FSP_MEMO_COUNT_MASK) != want)
		return false;
	barrier();
	same = w->dentry == dir && w->ino == key->ino && w->mnt_id == key->mnt_id &&
	       w->generation == key->generation;
	barrier();
	return same && dir_memo_read_stamp(w) == stamp;
}

/* Does the memo hold directory dir, with key, as watching its children at gen? */
static __always_inline bool dir_memo_holds(struct dentry *dir, const struct fsp_dir_key *key,
					   __u64 gen)
{
	struct dir_memo_set *set;
	__u64 want;

	if (!has_dir_memo())
		return false;
	set = dir_memo_set_of(key);
	want = dir_memo_stamp(key, gen);
	return set && (dir_memo_way_holds(&set->way[0], dir, key, want) ||
		       dir_memo_way_holds(&set->way[1], dir, key, want));
}

/* May the way be given to dir at stamp want (empty, stale, or dir's)? */
static __always_inline bool dir_memo_way_free(struct dir_memo_way *w, struct dentry *dir,
					      __u64 want)
{
	__u64 stamp = dir_memo_read_stamp(w);

	return stamp != FSP_MEMO_WRITING &&
	       (!stamp || (stamp & ~FSP_MEMO_COUNT_MASK) != want || w->dentry == dir);
}

/*
 * Remember dir, with key, as watching its children at gen: in a free way,
 * else in either. Best effort: a way another CPU is writing is left to it.
 */
static __always_inline void dir_memo_remember(struct dentry *dir, const struct fsp_dir_key *key,
					      __u64 gen)
{
	struct dir_memo_set *set;
	struct dir_memo_way *w;
	__u64 want, old;

	if (!has_dir_memo())
		return;
	set = dir_memo_set_of(key);
	if (!set)
		return;
	want = dir_memo_stamp(key, gen);
	if (dir_memo_way_free(&set->way[0], dir, want))
		w = &set->way[0];
	else if (dir_memo_way_free(&set->way[1], dir, want))
		w = &set->way[1];
	else
		w = &set->way[bpf_get_prandom_u32() & 1];
	old = dir_memo_read_stamp(w);
	if (old == FSP_MEMO_WRITING ||
	    __sync_val_compare_and_swap(&w->stamp, old, FSP_MEMO_WRITING) != old)
		return;
	w->dentry = dir;
	w->ino = key->ino;
	w->mnt_id = key->mnt_id;
	w->generation = key->generation;
	barrier();
	*(volatile __u64 *)&w->stamp = want | ((old + FSP_MEMO_COUNT) & FSP_MEMO_COUNT_MASK);
}

#endif /* FSP_DIR_MEMO_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* Configuration, maps and per-CPU scratch space shared by every backend. */
#ifndef FSP_MAPS_H
#define FSP_MAPS_H

#include "kernel/compat.h"
#include "abi/events.h"

/*
 * Makes libbpf-cargo generate the ABI's enums for the Rust side (one
 * definition): it emits the types of globals.
 */
struct fsp_abi {
	enum fsp_kind kind;
	enum fsp_origin origin;
	enum fsp_record_flags rflags;
	enum fsp_path_flags path_flags;
	enum fsp_attr attr;
	enum fsp_resolution resolution;
	enum fsp_slot slot;
	enum fsp_transport transport;
	enum fsp_proc_filter proc_filter;
	enum fsp_watch watch;
	enum fsp_watch_hint watch_hint;
	enum fsp_watched_slot watched_slot;
	enum fsp_dir_key_flags dir_key_flags;
	enum fsp_event_version event_version;
	enum fsp_counter counter;
	enum fsp_trait trait;
};
const volatile struct fsp_abi fsp_abi = {};

/* Set by user space before load (read-only afterwards). */
const volatile __u32 cfg_self_tgid = 0;
const volatile bool cfg_paths_filtering = true;
const volatile bool cfg_recursive = true;
const volatile bool cfg_follow = true;
const volatile __u32 cfg_event_mask = 0;          /* bit (1 << enum fsp_kind) */
const volatile __u64 cfg_wakeup_watermark = 0;    /* bytes pending before a wakeup */
const volatile __u32 cfg_resolution = FSP_RES_PERF_BUFFER; /* enum fsp_resolution */
const volatile __u32 cfg_transport = FSP_TRANSPORT_RING_BUFFER; /* enum fsp_transport */
/* --pid / --uid / --comm: enum fsp_proc_filter, with the listed values in the maps below. */
const volatile __u32 cfg_pid_filter = FSP_FILTER_OFF;
const volatile __u32 cfg_uid_filter = FSP_FILTER_OFF;
const volatile __u32 cfg_comm_filter = FSP_FILTER_OFF;
/*
 * The syscalls whose entry, and whose exit, the syscall hooks handle: one
 * bit per x86-64 number (abi/syscalls.def), chosen by user space from the
 * selected events and the backend. Every other syscall costs one load.
 */
#define FSP_NR_SYSCALLS 512
/* arch/x86/include/asm/thread_info.h: the task is in a 32-bit syscall. */
#define FSP_TS_COMPAT 0x0002
const volatile __u64 cfg_sys_enter[FSP_NR_SYSCALLS / 64] = {};
const volatile __u64 cfg_sys_exit[FSP_NR_SYSCALLS / 64] = {};
/* The same by ia32 number: the ia32 syscalls whose x86-64 twin's bit is set. */
const volatile __u64 cfg_ia32_enter[FSP_NR_SYSCALLS / 64] = {};
const volatile __u64 cfg_ia32_exit[FSP_NR_SYSCALLS / 64] = {};
/*
 * VFS backends: the syscalls whose operations the VFS hooks report
 * (hooks/vfs.h); their exit reports only a failure before the VFS.
 */
const volatile __u64 cfg_vfs_syscalls[FSP_NR_SYSCALLS / 64] = {};
/* The VFS hooks run (fentry or kprobe backend): they report what reaches the VFS. */
const volatile bool cfg_vfs_hooks = false;
/*
 * The inode number of fsprobe's mount namespace: a file reached through a
 * mount of another namespace gets an FSP_MOUNT_DEF (record/mounts.h).
 */
const volatile __u32 cfg_own_mnt_ns = 0;

/*
 * Written by user space through the mmapped .bss (src/transport.rs): the
 * ring buffer's consumer adds one before it sleeps and one when it wakes,
 * so it is odd while the consumer sleeps, and tells one sleep from the
 * next. A record forces a wakeup only while it is odd, and each CPU at
 * most once per sleep (record/record.h: transport_send()).
 */
volatile __u32 consumer_sleep;

/* Per CPU: the consumer_sleep this CPU last woke the consumer from. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u32);
} woken SEC(".maps");

/* cgroup levels followed up to the root of the hierarchy. */
#define FSP_CGROUP_DEPTH 32

/* Staged defs of one record (all slots), in a power of two. */
#define FSP_DEF_SLOTS 64
#define FSP_DEFS_PER_RECORD (FSP_DEF_SLOTS - 1)

/* Path walk state: see dentry.h. */
struct walk_state {
	struct dentry *dentry;
	struct mount *mnt;
	struct dentry *mnt_root; /* mnt's root dentry, read once per mount */
	__u64 gen;       /* cache generation read before the walk (cache.h) */
	__u32 mnt_id;    /* mnt's id and device: the cache keys' first half */
	__u32 dev;
	__u32 off;       /* start of the path in scratch.walk; it grows downwards */
	__u16 flags;     /* enum fsp_path_flags */
	__u8 done;
	__u8 start_is_dir; /* the first dentry is a directory, so cacheable */
	__u32 steps;     /* names written */
	__u32 n_visit;   /* cacheable directories passed on a cache miss */
	__u8 slot;       /* enum fsp_slot the path is for, or enum walk_purpose */
	__u8 pad[3];
	__u32 removed_dirs; /* the rmdir count, read with gen (struct fsp_dir_key) */
	struct fsp_dir_key prefix; /* the cached directory the walk stopped at */
	/* single_fragment: the first directory passed, to cache its path. */
	struct fsp_dir_key first_key;
	struct dentry *first_dentry;
	__u64 first_off;
};

/* A cacheable directory the walk passed (cache.h). */
struct walk_visit {
	struct fsp_dir_key key;
	struct dentry *dentry;
	__u32 off;       /* its path ends at walk[off] */
	__u32 name_len;
};

/* single_fragment: a directory's whole path (path_cache values). */
struct path_entry {
	__u64 gen;
	struct dentry *dentry;
	__u32 len;
	__u32 pad;
	char path[FSP_PATH_MAX];
};

/* Name lookup state: see lookup.h. */
struct lookup_state {
	struct dentry *cur;   /* deepest dentry resolved so far */
	struct mount *mnt;    /* its mount */
	void *node;           /* children scan: current list node */
	void *head;           /* children scan (before 6.8): the list head */
	__u32 pos;            /* next byte of upath to look at */
	__u32 len;            /* length of upath */
	__u32 comp_start;     /* component being resolved */
	__u32 comp_len;
	__u32 resolved;       /* bytes of upath resolved into cur */
	__u8 state;
	__u8 done;
	__u8 only_watched;    /* stop before the last name when its directory is not watched */
	__u8 unwatched;       /* ... and it stopped there */
	__u32 scanned;        /* children scanned for the current component */
};

/* A child found by a long scan of its directory (resolve/lookup.h: child_memo). */
struct child_memo_key {
	struct dentry *parent;
	__u64 name[3];        /* the name's first 24 bytes, zero-padded */
	__u32 len;
	__u32 pad;
};

/* Per-CPU scratch: BPF stacks are 512 bytes, paths are 4096. */
struct fsp_scratch {
	/* [off, FSP_PATH_MAX): resolved path; then an unresolved suffix. */
	char walk[2 * FSP_PATH_MAX + 256];
	char upath[FSP_PATH_MAX];
	__u64 comp[32];   /* the component being looked up */
	__u64 cand[32];   /* a candidate child's name */
	struct walk_state ws;
	struct lookup_state ls;
	struct child_memo_key memo_key;
	struct dentry *memo_child;
	/*
	 * The directory fsp_parent_watching() last found in dir_cache: the
	 * walk that follows stops there without looking it up again.
	 */
	struct fsp_dir_key known_key;
	struct dentry *known_dentry;
	__u64 known_gen;
	/* The mount each slot of rec was resolved through (record/mounts.h). */
	struct mount *slot_mnt[4];
	/* sys_exit's syscall arguments, for fsp_decode_exit() (hooks/syscalls.h). */
	unsigned long sys_args[6];
	struct fsp_record rec;
};

/* A process's fingerprint, as proc_known keeps it (record/process.h). */
struct proc_seen {
	__u64 start;     /* group_leader->start_boottime */
	__u64 exe;       /* mm->exe_file */
	__u64 nsproxy;
	__u64 cgroup_id;
	__u64 epoch;     /* user space's epoch when sent (cache_gen[1]) */
};

/*
 * Per-CPU scratch of the path caches (cache.h), apart from fsp_scratch:
 * a per-CPU map value is at most 32 KiB (PCPU_MIN_UNIT_SIZE).
 */
struct fsp_cache_scratch {
	/* fragments, perf_buffer: the last FSP_MAX_DEFS directories passed. */
	struct walk_visit visit[FSP_MAX_DEFS];
	/* ... staged as the record's defs, with their dentries. */
	struct fsp_cache_def defs[FSP_DEF_SLOTS];
	struct dentry *def_dentry[FSP_DEF_SLOTS];
	struct path_entry entry; /* single_fragment: a value being inserted */
	/* A process definition's cgroup path (record/process.h). */
	char cgroup[2 * FSP_CGROUP_MAX];
	const char *cg_names[FSP_CGROUP_DEPTH];
	__u32 cg_len;
	__u32 cg_cut;
	/* The ancestor walk of the filter's subtree check (filter/filter.h). */
	struct dentry *subtree_at;
	/* The current process's fingerprint (record/record.h: record_send()). */
	struct proc_seen now;
	/* A directory that entered a watched tree with its contents (record/emit.h). */
	struct dentry *walk_dir;
	struct vfsmount *walk_mnt;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fsp_cache_scratch);
} cache_scratch SEC(".maps");

static __always_inline struct fsp_cache_scratch *get_cache_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&cache_scratch, &zero);
}

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fsp_scratch);
} scratch SEC(".maps");

/* The transport. Its size is set by user space (--perf-buffer-size). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 512 * 1024);
} events SEC(".maps");

/*
 * --transport perf_buffer: one perf buffer per CPU (libbpf sizes the
 * array to the possible CPUs, and user space maps the buffers).
 */
struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events_perf SEC(".maps");

/*
 * Identities of the watched files and directories; never evicts. A hash
 * map allocates its buckets for max_entries up front (htab_map_alloc(),
 * kernel/bpf/hashtab.c: 16 bytes per entry, rounded up to a power of
 * two: 16 MiB for the default --max-watches), so the set lives in an
 * inner map that user space replaces with a larger one as it fills
 * (src/watched.rs). [FSP_WATCHED_NOW] is the one every insert goes to;
 * while user space copies it into its successor, [FSP_WATCHED_BEFORE]
 * holds the previous one, which lookups and deletes also visit. The inner
 * maps may differ in max_entries since 5.10 (commit 134fede4eecf, "bpf:
 * Relax max_entries check for most of the inner map types").
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
	__uint(max_entries, FSP_WATCHED_SLOTS);
	__type(key, __u32);
	__array(values, struct {
		__uint(type, BPF_MAP_TYPE_HASH);
		__uint(map_flags, BPF_F_NO_PREALLOC);
		__uint(max_entries, 1);
		/* Sizes, not types: libbpf cannot size types inside __array(). */
		__uint(key_size, sizeof(struct fsp_inode_key));
		__uint(value_size, sizeof(__u32));
	});
} watched SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, FSP_CNT_MAX);
	__type(key, __u32);
	__type(value, __u64);
} counters SEC(".maps");

/* The next sequence number of each CPU (struct fsp_event.seq). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64);
} seq_next SEC(".maps");

/* The process filters' values (sized by user space). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} pid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u8);
} uid_filter SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, char[16]);
	__type(value, __u8);
} comm_filter SEC(".maps");

static __always_inline struct fsp_scratch *get_scratch(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&scratch, &zero);
}

/* Slot `which` of the record being built in scratch. */
static __always_inline struct fsp_file *slot(struct fsp_scratch *s, enum fsp_slot which)
{
	if (which == FSP_SLOT_FILE)
		return &s->rec.hdr.file;
	return which == FSP_SLOT_TARGET ? &s->rec.hdr.target : &s->rec.hdr.proc.exe;
}

static __always_inline void count(__u32 which)
{
	__u64 *c = bpf_map_lookup_elem(&counters, &which);

	if (c)
		*c += 1;
}

static __always_inline bool event_enabled(__u8 kind)
{
	return cfg_event_mask & (1u << kind);
}

#endif /* FSP_MAPS_H */

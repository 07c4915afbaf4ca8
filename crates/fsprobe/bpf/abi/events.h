/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The one definition of what travels from the BPF programs to user space.
 *
 * A record is a fixed header (struct fsp_event) followed by, in order and
 * without NUL terminators: the file's path (file.path_len bytes), the
 * target's path (target.path_len), the extra string (extra_len: a
 * symlink's target, an xattr's name, a mount's source), and, when the
 * record defines its process (FSP_REC_PROCESS), the executable's path
 * (proc.exe.path_len) and the cgroup's path (proc.cgroup_len); then
 * n_defs struct fsp_cache_def (unaligned). The Rust decoder
 * (src/decode/raw.rs) checks every length against the record size.
 *
 * Fields are ordered so that the header has no implicit padding; every
 * byte of it is written before a record is sent, so nothing from an
 * earlier event can leak into a later one.
 *
 * The Rust side gets these enums through the skeleton (the fsp_abi
 * global in core/maps.h makes libbpf-cargo generate them).
 */
#ifndef FSP_EVENTS_H
#define FSP_EVENTS_H

/* struct fsp_event.version: an enum, so that the Rust side reads it from BTF. */
enum fsp_event_version {
	FSP_EVENT_VERSION = 7,
};

/* Longest path the kernel accepts (include/uapi/linux/limits.h). */
#define FSP_PATH_MAX 4096
/* Longest single name: NAME_MAX. */
#define FSP_NAME_MAX 255
/* Most directories one record teaches user space (see struct fsp_cache_def). */
#define FSP_MAX_DEFS 32
/* Longest extra string (symlink target, xattr name, mount source) sent. */
#define FSP_EXTRA_MAX 1024
/* Longest cgroup path sent (longer ones are cut and flagged). */
#define FSP_CGROUP_MAX 1024

/* What a record reports. */
enum fsp_kind {
	FSP_OPEN = 1,
	FSP_MKDIR = 2,
	FSP_LINK = 3,
	FSP_RENAME = 4,
	FSP_SETATTR = 5,
	FSP_UNLINK = 6,
	FSP_RMDIR = 7,
	FSP_MODIFY = 8,
	FSP_SYMLINK = 9,      /* a symbolic link was created */
	FSP_MKNOD = 10,       /* a FIFO, socket or device node was created */
	FSP_SETXATTR = 11,    /* an extended attribute was set */
	FSP_REMOVEXATTR = 12, /* an extended attribute was removed */
	FSP_MOUNT = 13,       /* a mount was attached (mount, move_mount, pivot_root) */
	FSP_UMOUNT = 14,      /* a mount was detached */
	FSP_KIND_EVENTS = 15, /* kinds below this are events; above, notices */
	/*
	 * The process (pid, proc_start) is gone: user space may forget it.
	 * Sent only for processes that had a record.
	 */
	FSP_PROC_EXIT = 16,
	/*
	 * A directory entered a watched tree with its contents (moved in, or
	 * a mount attached on a watched directory): file describes it; user
	 * space walks it and adds what is below (see filter/filter.h).
	 */
	FSP_SUBTREE = 17,
	/*
	 * A mount outside fsprobe's mount namespace, as later records of this
	 * CPU use it (sent before the first of them, and again when
	 * mount_gen moved): file.mnt_id, file.dev and file.fstype identify it,
	 * file's path is its mount point in its namespace, target's path its
	 * root inside the file system (mountinfo's fourth field), and
	 * proc.mnt_ns the namespace it belongs to (0: detached). It lets user
	 * space place files of a namespace that no task is left in to read
	 * /proc/PID/mountinfo through.
	 */
	FSP_MOUNT_DEF = 18,
	FSP_KIND_MAX = 19,
};

/* How the operation reached the kernel (struct fsp_event.origin). */
enum fsp_origin {
	FSP_ORIGIN_SYSCALL = 1,  /* op: the x86-64 syscall number */
	FSP_ORIGIN_IO_URING = 2, /* op: the io_uring opcode (IORING_OP_*) */
	FSP_ORIGIN_KERNEL = 3,   /* no syscall in flight (a kernel thread, nfsd, ...) */
	FSP_ORIGIN_SYSCALL_IA32 = 4, /* op: the 32-bit (ia32) syscall number (int 0x80) */
};

/* struct fsp_event.rflags */
enum fsp_record_flags {
	/* proc is filled: the process's context, sent once per process. */
	FSP_REC_PROCESS = 1,
	/* The extra string was copied from user memory (it may have changed since). */
	FSP_REC_EXTRA_USER = 2,
	/* The extra string was longer than FSP_EXTRA_MAX and is cut. */
	FSP_REC_EXTRA_TRUNCATED = 4,
	/* proc's cgroup path was longer than FSP_CGROUP_MAX and is cut. */
	FSP_REC_CGROUP_TRUNCATED = 8,
	/* io_uring: the request ran in an io-wq worker or the SQPOLL thread. */
	FSP_REC_IO_ASYNC = 16,
	/*
	 * io_uring: a request with IOSQE_CQE_SKIP_SUCCESS, which posts no
	 * completion when it succeeds: reported at submission, before it ran
	 * (retval 0); a failure is reported again when its completion comes.
	 */
	FSP_REC_IO_UNCONFIRMED = 32,
};

/* struct fsp_file.flags */
enum fsp_path_flags {
	/* The walk stopped before the root: the path is cut at its start. */
	FSP_PATH_TRUNCATED = 1,
	/*
	 * The last user_len bytes of the path were copied from the
	 * operation's name argument because the dcache could not resolve
	 * them (a component that does not exist, a symlink in the middle, a
	 * name not cached). For a syscall that name is in user memory; for
	 * io_uring it is the kernel's copy (struct filename).
	 */
	FSP_PATH_USER_SUFFIX = 2,
	/* The walk reached a file-system root that is not the mount's root. */
	FSP_PATH_DISCONNECTED = 4,
	/* No path at all could be obtained (e.g. unreadable user memory). */
	FSP_PATH_MISSING = 8,
	/*
	 * The file's mount is not in fsprobe's mount namespace: an
	 * FSP_MOUNT_DEF record sent before this one (at a mount_gen at least
	 * this record's) describes it.
	 */
	FSP_PATH_FOREIGN_MOUNT = 16,
};

/* struct fsp_event.attr_mask: what a setattr event changed. */
enum fsp_attr {
	FSP_ATTR_MODE = 1,
	FSP_ATTR_UID = 2,
	FSP_ATTR_GID = 4,
	FSP_ATTR_SIZE = 8,
	FSP_ATTR_TIMES = 16,
};

/*
 * A directory's identity in the path caches: the mount it was reached
 * through (a bind mount shows the same directory under another path) and
 * its inode. Only directories are cached: a directory has a single dentry
 * (d_splice_alias()), where a file may have many names (hard links).
 *
 * An inode number is reused once its directory is removed, so the key
 * also holds the inode's i_generation, which ext4, xfs, btrfs and tmpfs
 * draw anew for every inode they allocate (__ext4_new_inode(),
 * shmem_get_inode()): a new directory under an old number is a new key,
 * and an rmdir needs to invalidate nothing. Where the file system leaves
 * i_generation 0 (overlayfs, ramfs, FAT, ...), the key holds instead the
 * count of rmdirs the walk saw at its start (cache.h), so every rmdir
 * makes those keys new, and flags says so: user space then knows the
 * entry of an older count for dead (src/cache.rs).
 */
struct fsp_dir_key {
	__u32 mnt_id;
	__u32 dev;
	__u64 ino;
	__u32 generation; /* i_generation, or the rmdir count when that is 0 */
	__u32 flags;      /* enum fsp_dir_key_flags */
};

enum fsp_dir_key_flags {
	FSP_DIR_KEY_BY_REMOVALS = 1, /* generation is the rmdir count */
};

/* enum fsp_resolution: --dentry-resolution-mode. */
enum fsp_resolution {
	FSP_RES_PERF_BUFFER = 0, /* user space keeps whole prefixes */
	FSP_RES_FRAGMENTS = 1,   /* user space keeps (parent, name) fragments */
	FSP_RES_SINGLE_FRAGMENT = 2, /* the kernel keeps whole directory paths */
};

/* Record slots whose paths the kernel resolves (struct fsp_cache_def.slot). */
enum fsp_slot {
	FSP_SLOT_FILE = 0,
	FSP_SLOT_TARGET = 1,
	FSP_SLOT_EXE = 2,
};

/*
 * fragments and perf_buffer modes: a directory whose path user space
 * learns from this record and may be asked for by later records. Its
 * path is the slot's prefix followed by the slot's path[0, end); its own
 * name is path[end - name_len, end). Defs of a slot come in walk order
 * (deepest first), each one the parent of the one before; the last one's
 * parent is the slot's prefix (or the root when there is none).
 */
struct fsp_cache_def {
	struct fsp_dir_key key;
	__u16 end;
	__u16 name_len;
	__u8 slot;       /* enum fsp_slot */
	__u8 pad[3];
};

struct fsp_file {
	__u64 ino;        /* inode->i_ino, 64 bits */
	__u32 dev;        /* super_block->s_dev, kernel encoding (major << 20 | minor) */
	__u32 mnt_id;     /* struct mount.mnt_id, as in /proc/self/mountinfo */
	/*
	 * inode->i_generation: with ino, tells this file from a later one
	 * that gets its number (as NFS file handles do); 0 where the file
	 * system sets none.
	 */
	__u32 generation;
	__u16 path_len;   /* bytes of this path in the record's data */
	__u16 user_len;   /* trailing bytes that came from the name argument */
	__u16 flags;      /* enum fsp_path_flags */
	__u16 mode;       /* inode->i_mode (type and permissions), 0 if unknown */
	__u32 pad32;
	/*
	 * fragments and perf_buffer modes: the walk stopped at this cached
	 * directory, whose path user space holds; the path above is what
	 * follows it. prefix.ino == 0: the path is whole.
	 */
	struct fsp_dir_key prefix;
	__u64 cache_gen;  /* cache generation the walk saw; 0: no walk */
	char fstype[16];  /* super_block->s_type->name, NUL-padded */
};

/*
 * The context of a process that does not change while it runs one
 * program: sent with its first record (FSP_REC_PROCESS) and again when
 * it changes (exec, a cgroup move, setns/unshare), else left zero.
 */
struct fsp_proc {
	__u64 cgroup_id;  /* cgroup v2 id (the cgroup directory's inode) */
	__u32 mnt_ns;     /* the task's mount namespace inode number */
	__u32 pid_ns;     /* the task's pid namespace inode number */
	__u16 cgroup_len; /* bytes of the cgroup's path (kernfs names), 0: none */
	__u16 pad16[3];
	struct fsp_file exe; /* mm->exe_file; flags FSP_PATH_MISSING when none */
};

struct fsp_event {
	__u32 size;       /* whole record: header, strings and defs */
	__u8 version;     /* FSP_EVENT_VERSION */
	__u8 kind;        /* enum fsp_kind */
	__u8 origin;      /* enum fsp_origin */
	__u8 rflags;      /* enum fsp_record_flags */
	__u16 op;         /* the syscall number or io_uring opcode (see origin) */
	__u16 n_defs;     /* struct fsp_cache_def entries after the strings */
	__u32 reserved;   /* zero */
	/*
	 * Records that passed every filter are numbered per CPU, in the order
	 * they enter the ring buffer (a BPF program is not preempted on its
	 * CPU): a gap in one CPU's numbers is exactly the records lost there.
	 */
	__u64 seq;
	__u64 ts_ns;      /* CLOCK_BOOTTIME, bpf_ktime_get_boot_ns() */
	__s64 retval;     /* the operation's result: the syscall's, or the CQE's */
	__u32 cpu;
	__u32 pid;        /* thread-group id */
	__u32 tid;
	__u32 ppid;
	__u32 uid;        /* real ids */
	__u32 gid;
	__u32 euid;       /* effective ids */
	__u32 egid;
	/*
	 * The thread group leader's start time (task->start_time, ns since
	 * boot): with pid, the process's identity across pid reuse.
	 */
	__u64 proc_start;
	/*
	 * Mount-table generation when the event was recorded: bumped at the
	 * entry and exit of every syscall that can add, remove or move a
	 * mount. User space re-reads mountinfo when it sees a newer one.
	 */
	__u32 mount_gen;
	__u32 open_flags; /* open: O_* flags as passed; mount: MS_* flags */
	__u32 mode;       /* open: creation mode; mkdir, mknod: mode; setattr: new mode */
	__u32 attr_mask;  /* setattr: enum fsp_attr; setxattr: XATTR_* flags */
	__u32 attr_uid;   /* setattr: new owner ((u32)-1: unchanged) */
	__u32 attr_gid;   /* setattr: new group ((u32)-1: unchanged) */
	__s64 attr_size;  /* setattr: new size (truncate); setxattr: value size */
	__u64 user_data;  /* io_uring: the request's user_data */
	__u32 rdev;       /* mknod: the device number, kernel encoding */
	__u16 extra_len;  /* bytes of the extra string */
	__u16 pad16;
	char comm[16];
	struct fsp_file file;   /* the object (rename/link: the source) */
	struct fsp_file target; /* rename: the new name; link: the new link */
	struct fsp_proc proc;   /* valid with FSP_REC_PROCESS */
};

/* What the transport carries: the header, the strings and the defs. */
/*
 * At most 63 defs per record (all slots). The data is sized so that the
 * verifier can check the masked offsets: the defs start anywhere below
 * 4 * FSP_PATH_MAX.
 */
#define FSP_DEFS_ROOM 2048 /* >= 63 * sizeof(struct fsp_cache_def) */
struct fsp_record {
	struct fsp_event hdr;
	char data[4 * FSP_PATH_MAX + FSP_DEFS_ROOM];
};

/* enum fsp_transport: --transport. */
enum fsp_transport {
	FSP_TRANSPORT_RING_BUFFER = 0, /* one BPF ring buffer shared by all CPUs */
	FSP_TRANSPORT_PERF_BUFFER = 1, /* a perf event array: one buffer per CPU */
};

/* Process filters (--pid, --uid, --comm): cfg_*_filter values. */
enum fsp_proc_filter {
	FSP_FILTER_OFF = 0,
	FSP_FILTER_INCLUDE = 1, /* only the listed ones */
	FSP_FILTER_EXCLUDE = 2, /* all but the listed ones */
};

/* Keys of the watched map: a file's identity. */
struct fsp_inode_key {
	__u32 dev;
	__u32 pad;
	__u64 ino;
};

/* Slots of the watched map, whose values are the inner maps that hold the set. */
enum fsp_watched_slot {
	FSP_WATCHED_NOW = 0,    /* every insert goes here */
	FSP_WATCHED_BEFORE = 1, /* the map being copied into NOW, while it is */
	FSP_WATCHED_SLOTS = 2,
};

/* Values of the watched map. */
enum fsp_watch {
	FSP_WATCH_SELF = 1,     /* events on this inode are reported */
	FSP_WATCH_CHILDREN = 2, /* events on its direct children are reported */
	/*
	 * A directory that entered a watched tree with contents user space
	 * has not walked yet: anything below it is watched (the filter walks
	 * up to it), until user space has added the subtree and clears it.
	 */
	FSP_WATCH_SUBTREE = 4,
	/*
	 * The directory of a watched path (a tree's top, or a watched file)
	 * that does not watch its children: that path is a name in it, which
	 * the dcache lookup of a name must not skip (resolve/lookup.h). Says
	 * nothing of what is reported.
	 */
	FSP_WATCH_NAMES = 8,
};

/*
 * The watch hints (filter/filter.h): a byte per slot, set for every
 * identity ever added to the watched set, so that a lookup of an
 * identity whose slot is clear is skipped; and a summary byte per
 * 2^FSP_HINT_SUMMARY_SHIFT slots, set with any of them. The slot of
 * (dev, ino) is fsp_hint_slot() there and hint_slot() in src/hints.rs:
 * the multipliers are below 2^31 so that BTF carries them as plain enum
 * values.
 */
enum fsp_watch_hint {
	FSP_HINT_SLOT_BITS = 20, /* 2^20 slots: 1 MiB */
	FSP_HINT_SUMMARY_SHIFT = 6, /* 2^14 summary bytes: 16 KiB */
	FSP_HINT_MUL_INO = 0x5bd1e995,
	FSP_HINT_MUL_INO_HIGH = 0x27d4eb2f,
	FSP_HINT_MUL_DEV = 0x165667b1,
};

/* Indices of the per-CPU counters map. */
enum fsp_counter {
	FSP_CNT_EVENTS = 0,      /* records sent */
	FSP_CNT_LOST_RINGBUF,    /* transport full */
	FSP_CNT_LOST_PENDING,    /* too many operations in flight */
	FSP_CNT_WATCH_FULL,      /* watched map full: an inode could not be followed */
	FSP_CNT_WALK_CACHED,     /* path walks cut short by a cache hit */
	FSP_CNT_WALK_FULL,       /* path walks to the root */
	FSP_CNT_FILTERED_PROC,   /* operations left out by --pid/--uid/--comm */
	FSP_CNT_WATCH_ADDED,     /* entries the kernel added to the watched map (or replaced) */
	FSP_CNT_WATCH_REMOVED,   /* entries the kernel removed from it */
	FSP_CNT_MAX,
};

/* enum fsp_trait: the traits column of abi/syscalls.def. */
enum fsp_trait {
	T_ENTRY = 1,
	T_TREE = 2,
	T_MOUNTS = 4,
	T_WATCH = 8,
	T_FD = 16,
};

#endif /* FSP_EVENTS_H */

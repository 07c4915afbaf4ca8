/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * The one definition of what travels from the BPF programs to user space.
 *
 * A record is a fixed header (struct fsp_event) followed by the bytes of
 * the file's path and then the target's path (no NUL terminators; their
 * lengths are in file.path_len and target.path_len). The Rust decoder
 * (src/decode.rs) checks every length against the record size.
 *
 * Fields are ordered so that the header has no implicit padding; every
 * byte of it is written before a record is sent, so nothing from an
 * earlier event can leak into a later one.
 */
#ifndef FSP_EVENTS_H
#define FSP_EVENTS_H

#define FSP_EVENT_VERSION 1

/* Longest path the kernel accepts (include/uapi/linux/limits.h). */
#define FSP_PATH_MAX 4096
/* Longest single name: NAME_MAX. */
#define FSP_NAME_MAX 255

enum fsp_kind {
	FSP_OPEN = 1,
	FSP_MKDIR = 2,
	FSP_LINK = 3,
	FSP_RENAME = 4,
	FSP_SETATTR = 5,
	FSP_UNLINK = 6,
	FSP_RMDIR = 7,
	FSP_MODIFY = 8,
	FSP_KIND_MAX = 9,
};

/* struct fsp_file.flags */
enum fsp_path_flags {
	/* The walk stopped before the root: the path is cut at its start. */
	FSP_PATH_TRUNCATED = 1,
	/*
	 * The last user_len bytes of the path were copied from the syscall's
	 * argument because the dcache could not resolve them (a component
	 * that does not exist, a symlink in the middle, a name not cached).
	 */
	FSP_PATH_USER_SUFFIX = 2,
	/* The walk reached a file-system root that is not the mount's root. */
	FSP_PATH_DISCONNECTED = 4,
	/* No path at all could be obtained (e.g. unreadable user memory). */
	FSP_PATH_MISSING = 8,
};

/* struct fsp_event.attr_mask: what a setattr event changed. */
enum fsp_attr {
	FSP_ATTR_MODE = 1,
	FSP_ATTR_UID = 2,
	FSP_ATTR_GID = 4,
	FSP_ATTR_SIZE = 8,
	FSP_ATTR_TIMES = 16,
};

struct fsp_file {
	__u64 ino;        /* inode->i_ino, 64 bits */
	__u32 dev;        /* super_block->s_dev, kernel encoding (major << 20 | minor) */
	__u32 mnt_id;     /* struct mount.mnt_id, as in /proc/self/mountinfo */
	__u16 path_len;   /* bytes of this path in the record's data */
	__u16 user_len;   /* trailing bytes that came from user memory */
	__u16 flags;      /* enum fsp_path_flags */
	__u16 mode;       /* inode->i_mode (type and permissions), 0 if unknown */
};

struct fsp_event {
	__u32 size;       /* whole record: header + both paths */
	__u8 version;     /* FSP_EVENT_VERSION */
	__u8 kind;        /* enum fsp_kind */
	__u16 syscall_nr; /* the syscall that caused the event */
	__u64 ts_ns;      /* CLOCK_BOOTTIME, bpf_ktime_get_boot_ns() */
	__s64 retval;     /* the syscall's return value */
	__u32 pid;        /* thread-group id */
	__u32 tid;
	__u32 ppid;
	__u32 uid;
	__u32 gid;
	__u32 open_flags; /* open: O_* flags as passed */
	__u32 mode;       /* open: creation mode; mkdir: mode; setattr: new mode */
	__u32 attr_mask;  /* setattr: enum fsp_attr */
	__u32 attr_uid;   /* setattr: new owner ((u32)-1: unchanged) */
	__u32 attr_gid;   /* setattr: new group ((u32)-1: unchanged) */
	__s64 attr_size;  /* setattr: new size (truncate) */
	char comm[16];
	struct fsp_file file;   /* the object (rename/link: the source) */
	struct fsp_file target; /* rename: the new name; link: the new link */
};

/* What the transport carries: the header and room for two whole paths. */
struct fsp_record {
	struct fsp_event hdr;
	char data[2 * FSP_PATH_MAX];
};

/* Keys of the watched map: a file's identity. */
struct fsp_inode_key {
	__u32 dev;
	__u32 pad;
	__u64 ino;
};

/* Values of the watched map. */
enum fsp_watch {
	FSP_WATCH_SELF = 1,     /* events on this inode are reported */
	FSP_WATCH_CHILDREN = 2, /* events on its direct children are reported */
};

/* Indices of the per-CPU counters map. */
enum fsp_counter {
	FSP_CNT_EVENTS = 0,      /* records sent */
	FSP_CNT_LOST_RINGBUF,    /* transport full */
	FSP_CNT_LOST_PENDING,    /* too many syscalls in flight */
	FSP_CNT_WATCH_FULL,      /* watched map full: an inode could not be followed */
	FSP_CNT_MAX,
};

#endif /* FSP_EVENTS_H */

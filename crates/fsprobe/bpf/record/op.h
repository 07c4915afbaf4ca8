/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * An operation in flight: what a hook learnt about it before the point
 * that reports it. A syscall's arguments (hooks/syscalls.h), an io_uring
 * request's (hooks/io_uring.h), or the kernel objects a VFS hook saw
 * (hooks/vfs.h). The emitters (record/emit.h) turn one into a record.
 */
#ifndef FSP_OP_H
#define FSP_OP_H

#include "record/record.h"

struct op {
	__u8 kind;            /* enum fsp_kind */
	__u8 origin;          /* enum fsp_origin */
	__u16 nr;             /* x86-64 syscall number or io_uring opcode */
	__u8 kernel_names;    /* path, path2 and extra are kernel memory */
	__u8 src_matched;     /* the source (src) is watched */
	__u8 rflags;          /* enum fsp_record_flags to set */
	__u8 no_fd;           /* open: the result is no fd (io_uring's fixed table) */
	__u8 unwatched;       /* the source's directory is not watched (resolve_source()) */
	__u8 file_matched;    /* file is watched: the filter said so already */
	__u8 quiet;           /* kept only to invalidate the caches at its end: not reported */
	__u8 pad;
	__u16 nr_ia32;        /* origin FSP_ORIGIN_SYSCALL_IA32: the ia32 number (nr: its twin's) */
	__u16 pad2;
	__s32 fd;             /* fd-based object; -1 otherwise */
	__s64 dirfd;          /* name-based object: dirfd and name */
	const char *path;
	__s64 dirfd2;         /* link, rename: the second name */
	const char *path2;
	const char *extra;    /* symlink target, xattr name, mount source */
	__u32 open_flags;
	__u32 mode;
	__u32 attr_mask;
	__u32 attr_uid;
	__u32 attr_gid;
	__u32 rdev;
	__s64 attr_size;
	__u64 user_data;
	/* Kernel objects a VFS hook or an io_uring request gave. */
	struct dentry *obj;
	struct vfsmount *obj_mnt;
	struct dentry *obj2;
	struct vfsmount *obj2_mnt;
	struct file *file;
	/* unlink, rmdir, rename: the source, resolved before it changes. */
	struct dentry *src;
	struct dentry *src_parent;
	struct vfsmount *src_mnt;
	__u32 src_name_len;
	/* Below: written with src (or src_name_len), not zeroed by new_op(). */
	__u32 src_nlink;
	struct fsp_file src_id;
	char src_name[FSP_NAME_MAX + 1];
};

/* Operations between two hooks, keyed by thread id (or io_uring request). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct op);
} ops_in_flight SEC(".maps");

/* An op being decoded: struct op is too big for the BPF stack. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct op);
} op_scratch SEC(".maps");

/* The op in per-CPU scratch, as new_op() left it. */
static __always_inline struct op *op_current(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&op_scratch, &zero);
}

/* A zeroed op in per-CPU scratch. */
static __always_inline struct op *new_op(__u8 kind, __u8 origin, __u16 nr)
{
	__u32 zero = 0;
	struct op *op = bpf_map_lookup_elem(&op_scratch, &zero);

	if (!op)
		return NULL;
	/* What src and src_name_len stand for is not read unless they are set. */
	__builtin_memset(op, 0, offsetof(struct op, src_nlink));
	op->kind = kind;
	op->origin = origin;
	op->nr = nr;
	op->fd = -1;
	return op;
}

/* Did op come from a syscall (x86-64 or ia32: nr is the x86-64 number either way)? */
static __always_inline bool is_syscall(const struct op *op)
{
	return op->origin == FSP_ORIGIN_SYSCALL || op->origin == FSP_ORIGIN_SYSCALL_IA32;
}

/* The in-flight key of the current thread. */
static __always_inline __u64 thread_key(void)
{
	return (__u32)bpf_get_current_pid_tgid();
}

/* Keeps op until a later hook of the same operation; false if no room. */
static __always_inline bool op_park(__u64 key, struct op *op)
{
	if (bpf_map_update_elem(&ops_in_flight, &key, op, BPF_ANY)) {
		count(FSP_CNT_LOST_PENDING);
		return false;
	}
	return true;
}

static __always_inline struct op *op_find(__u64 key)
{
	return bpf_map_lookup_elem(&ops_in_flight, &key);
}

static __always_inline void op_done(__u64 key)
{
	bpf_map_delete_elem(&ops_in_flight, &key);
}

/*
 * Record the source of unlink, rmdir or rename while it still has its
 * name: its identity, parent and name, and whether it is watched.
 */
static __always_inline void capture_source(struct op *p, struct dentry *d, struct vfsmount *mnt)
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

#endif /* FSP_OP_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kernel differences between 5.10 and 6.18: the one list.
 *
 * Differences in structs and helpers are each behind one helper here,
 * decided by CO-RE when the object is loaded; everything else reads
 * kernel structures through these or through BPF_CORE_READ, so one object
 * runs on every supported kernel. Differences in function and tracepoint
 * prototypes are decided by user space from the running kernel's BTF
 * before load (src/backend/plan.rs), and are listed here too:
 *
 * - vfs_mkdir(), vfs_rmdir(), vfs_unlink(), vfs_link(), vfs_symlink(),
 *   vfs_mknod(), notify_change(): a struct user_namespace * argument from
 *   5.12 (the idmapped mounts series), a struct mnt_idmap * from 6.3 (its
 *   conversion to mnt_idmap); vfs_mkdir() returns a struct dentry * from
 *   6.15 ("Change inode_operations.mkdir to return struct dentry *"): the
 *   exit programs read their arguments at the positions BTF gives
 *   (struct fsp_vfs_layout in hooks/vfs.h).
 * - vfs_rename() takes a struct renamedata * from 5.12 (Debian's 5.10
 *   backports it), whose old_dir/new_dir became old_parent/new_parent in
 *   6.17: only renamedata.old_dentry is read, by name.
 * - io_uring's submission tracepoint: io_uring_submit_sqe(ctx, req,
 *   opcode, user_data, ...) on Debian's 5.10 backport,
 *   io_uring_submit_sqe(req, force_nonblock) from 5.19 (io_uring's
 *   tracepoint rework), io_uring_submit_req(req) from 6.3; its completion
 *   tracepoint: io_uring_complete(ctx, user_data, res, cflags) before
 *   5.19, (ctx, req, user_data, res, cflags, extra1, extra2) after, (ctx,
 *   req, cqe) from 6.17: one program per form (hooks/io_uring.h).
 * - fentry on a function with struct arguments (security_path_chown()'s
 *   kuid_t) needs 6.1 ("bpf: Support struct argument for trampoline base
 *   progs"): probed before load (src/backend/kernel.rs).
 */
#ifndef FSP_COMPAT_H
#define FSP_COMPAT_H

#include "kernel/vmlinux.h"
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_helpers.h>

/*
 * Before 6.8 a dentry's children hang off d_subdirs and are linked
 * through d_child; commit da549bdd15c2 ("dentry: switch the lists of
 * children to hlist") replaced them with d_children / d_sib.
 */
struct dentry___pre68 {
	struct list_head d_child;
	struct list_head d_subdirs;
} __attribute__((preserve_access_index));

static __always_inline bool dentry_has_hlist_children(void)
{
	return bpf_core_field_exists(struct dentry, d_children);
}

/*
 * DCACHE_MOUNTED was the #define 0x10000 up to 6.14; 6.15 turned the
 * flags into enum dentry_flags and renumbered it (BIT(15)).
 */
static __always_inline __u32 dcache_mounted_flag(void)
{
	if (bpf_core_enum_value_exists(enum dentry_flags, DCACHE_MOUNTED))
		return bpf_core_enum_value(enum dentry_flags, DCACHE_MOUNTED);
	return 0x10000;
}

/* real_mount(): struct vfsmount is embedded in struct mount (fs/mount.h). */
static __always_inline struct mount *real_mount(struct vfsmount *mnt)
{
	return (struct mount *)((char *)mnt - bpf_core_field_offset(struct mount, mnt));
}

/*
 * Bound a length for the verifier. clang drops a mask it can prove
 * redundant from an earlier check, but the verifier may not have tracked
 * that check (32-bit arithmetic); barrier_var() keeps the mask.
 */
#define FSP_BOUND(len, mask)            \
	({                              \
		__u32 __v = (len);      \
		barrier_var(__v);       \
		__v & (mask);           \
	})

/*
 * kernfs_node.parent became the RCU pointer __parent in 6.15 ("kernfs:
 * Use RCU to access kernfs_node::parent").
 */
struct kernfs_node___pre615 {
	struct kernfs_node *parent;
} __attribute__((preserve_access_index));

static __always_inline struct kernfs_node *kernfs_parent(struct kernfs_node *kn)
{
	if (bpf_core_field_exists(struct kernfs_node___pre615, parent))
		return BPF_CORE_READ((struct kernfs_node___pre615 *)kn, parent);
	return BPF_CORE_READ(kn, __parent);
}

/* arch/x86/include/asm/thread_info.h: THREAD_SIZE, without KASAN. */
#define FSP_THREAD_SIZE 16384

/*
 * The current task's user registers (task_pt_regs()): bpf_task_pt_regs()
 * from 5.15 ("bpf: Add bpf_task_pt_regs() helper"); before, the top of the
 * task's stack (x86-64 puts pt_regs there with no padding above).
 */
static __always_inline struct pt_regs *current_pt_regs(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_task_pt_regs))
		return (struct pt_regs *)bpf_task_pt_regs(bpf_get_current_task_btf());
	return (struct pt_regs *)((char *)BPF_CORE_READ(task, stack) + FSP_THREAD_SIZE) - 1;
}

/* io_kiocb.flags is an io_req_flags_t (u64) from 6.10, an unsigned int before: its low 32 bits. */
static __always_inline __u32 req_flags(struct io_kiocb *req)
{
	__u32 lo = 0;

	bpf_core_read(&lo, sizeof(lo), &req->flags);
	return lo;
}

/* io_kiocb.user_data moved into io_kiocb.cqe (struct io_cqe) in 5.19. */
struct io_kiocb___old {
	__u64 user_data;
} __attribute__((preserve_access_index));

static __always_inline __u64 req_user_data(struct io_kiocb *req)
{
	if (bpf_core_field_exists(struct io_kiocb___old, user_data))
		return BPF_CORE_READ((struct io_kiocb___old *)req, user_data);
	return BPF_CORE_READ(req, cqe.user_data);
}

/*
 * io_uring's per-op structs: io_link and io_xattr exist from 5.15 and
 * 5.19 (Debian's 5.10 backport stops at UNLINKAT): callers check
 * bpf_core_type_exists() before reading them.
 */

/*
 * A BTF-typed pointer (an fentry, fexit or tp_btf argument) as a plain
 * value. The verifier lets global functions take scalars only (6.12:
 * "R1 is not a scalar"), and the path walk and the filter are global.
 */
static __always_inline void *untyped(const void *p)
{
	__u64 v = 0;

	bpf_probe_read_kernel(&v, sizeof(v), &p);
	return (void *)v;
}

/*
 * Typed loads through a plain kernel pointer: bpf_core_cast() (the kfunc
 * bpf_rdonly_cast(), 6.2+: "bpf: Add bpf_rdonly_cast() kfunc"), each load a
 * few times cheaper than a probe read. The hot filter checks use it where
 * the kernel has it (bpf_ksym_exists() is a constant at load, so the other
 * branch is dead code the verifier drops).
 */
static __always_inline bool has_core_cast(void)
{
	return bpf_ksym_exists(bpf_rdonly_cast);
}

/*
 * The current task for plain loads (callers check that
 * bpf_get_current_task_btf(), 5.11+, exists). Where bpf_core_cast()
 * exists the same pointer is cast untrusted instead: its loads compile
 * the same (BPF_PROBE_MEM), but for each pointer field loaded through a
 * trusted pointer the 6.2+ verifier looks "<type>__safe_trusted" up by
 * name in the kernel's BTF, a linear search of its types
 * (check_ptr_to_btf_access() -> btf_nested_type_is_trusted()), on every
 * path it explores: 12 % of the programs' load time on 6.18.
 */
static __always_inline struct task_struct *current_task_plain(void)
{
	if (has_core_cast())
		return bpf_core_cast((void *)bpf_get_current_task(), struct task_struct);
	return bpf_get_current_task_btf();
}

/*
 * A field read through the plain kernel pointer p of type `type`: a typed
 * load where bpf_core_cast() exists, else a probe read (BPF_CORE_READ).
 * For the hot path (the path walk, a file's identity). A typed result
 * must not reach a global function's argument (store it, or compare it).
 */
#define KREAD(type, p, ...)                                                \
	(has_core_cast() ? ___arrow(bpf_core_cast((p), type), __VA_ARGS__) \
			 : BPF_CORE_READ((type *)(p), __VA_ARGS__))

#define FSP_S_IFMT 00170000
#define FSP_S_IFDIR 0040000
#define FSP_S_IFLNK 0120000

#endif /* FSP_COMPAT_H */

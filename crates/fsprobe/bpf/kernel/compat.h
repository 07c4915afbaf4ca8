/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Kernel differences between 5.10 and 6.18, each behind one helper.
 * Everything else reads kernel structures through these or through
 * BPF_CORE_READ, so one object runs on every supported kernel.
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

#define FSP_S_IFMT 00170000
#define FSP_S_IFDIR 0040000
#define FSP_S_IFLNK 0120000

#endif /* FSP_COMPAT_H */

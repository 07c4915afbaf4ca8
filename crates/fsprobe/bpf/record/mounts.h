/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Mounts of other mount namespaces, described from the kernel.
 *
 * User space places a file (its mount point, its path on the host) with
 * the mount tables. Its own namespace's table is always readable; another
 * namespace's only through a task still in it (/proc/PID/mountinfo), and
 * a short-lived container or an `unshare` that exits at once leaves none.
 * So before the first record that uses a mount of another namespace, an
 * FSP_MOUNT_DEF record says what mountinfo would: the mount point in its
 * namespace and the mount's root inside its file system (both walked
 * from the mount's root dentry, without the path caches), its device and
 * its namespace. mount_known remembers what was sent, per mount id, with
 * the mount and mount_gen it was sent at: mount ids are reused once a
 * mount is freed (the IDA in fs/namespace.c hands out the lowest free
 * one), and every syscall that adds, moves or removes a mount bumps
 * mount_gen (resolve/cache.h), so a new generation sends the definition
 * again. As with the path caches, an entry is written only once its
 * record is in the transport.
 */
#ifndef FSP_MOUNTS_H
#define FSP_MOUNTS_H

#include "resolve/dentry.h"

struct mount_sent {
	struct mount *mnt;
	__u64 epoch;     /* user space's epoch when sent (cache_gen[1]) */
	__u32 mount_gen;
	__u32 pad;
};

/* Mount id → the definition last sent (an evicted one is sent again). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);
	__type(value, struct mount_sent);
} mount_known SEC(".maps");

/*
 * An FSP_MOUNT_DEF being built: the mount point, then the root (at most
 * 2 * FSP_PATH_MAX bytes). The record is larger than any size below
 * FSP_MOUNT_RECORD_MASK, so a masked size is all the verifier needs to see.
 */
#define FSP_MOUNT_RECORD_MASK (4 * FSP_PATH_MAX - 1)
struct fsp_mount_record {
	struct fsp_event hdr;
	char data[4 * FSP_PATH_MAX];
	/* What mount_known gets once the record is sent (not sent itself). */
	__u32 mnt_id;
	__u32 pad;
	struct mount_sent sent;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct fsp_mount_record);
} mount_record SEC(".maps");

static __always_inline struct fsp_mount_record *get_mount_record(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&mount_record, &zero);
}

/* Walks (root, m) for `purpose` and appends the path to r->data at pos. */
static __always_inline __u32 put_mount_path(struct fsp_scratch *s, struct fsp_mount_record *r,
					    struct fsp_file *f, struct dentry *root, struct mount *m,
					    __u32 purpose, __u32 pos)
{
	__u32 len = fsp_resolve((__u64)root, (__u64)&m->mnt, purpose);

	bpf_probe_read_kernel(&r->data[FSP_BOUND(pos, FSP_PATH_MAX - 1)], FSP_BOUND(len, FSP_PATH_MAX - 1),
			      &s->walk[FSP_BOUND(s->ws.off, 2 * FSP_PATH_MAX - 1)]);
	f->path_len = len;
	f->flags = s->ws.flags;
	return len;
}

/*
 * Slot `which` of the record in scratch: is its mount in another mount
 * namespace? Then the slot says so, and, when user space has not been
 * told of it at this mount_gen, its FSP_MOUNT_DEF is built in
 * mount_record. Returns the size of that record, else 0. Global: verified
 * once, whoever calls it.
 */
__noinline int fsp_define_mount(__u32 which)
{
	struct fsp_scratch *s = get_scratch();
	struct fsp_mount_record *r = get_mount_record();
	struct mount_sent *seen;
	struct fsp_event *e;
	struct dentry *root;
	struct mount *m;
	__u32 id, ns, len;

	if (!s || !r || which > FSP_SLOT_EXE)
		return 0;
	m = s->slot_mnt[FSP_BOUND(which, 3)];
	if (!m)
		return 0;
	ns = KREAD(struct mount, m, mnt_ns, ns.inum);
	if (ns == cfg_own_mnt_ns)
		return 0;
	slot(s, which)->flags |= FSP_PATH_FOREIGN_MOUNT;
	id = KREAD(struct mount, m, mnt_id);
	r->sent.mnt = m;
	r->sent.mount_gen = current_mount_gen();
	r->sent.epoch = user_epoch();
	seen = bpf_map_lookup_elem(&mount_known, &id);
	if (seen && seen->mnt == m && seen->mount_gen == r->sent.mount_gen &&
	    seen->epoch == r->sent.epoch)
		return 0;

	e = &r->hdr;
	__builtin_memset(e, 0, sizeof(*e));
	e->version = FSP_EVENT_VERSION;
	e->kind = FSP_MOUNT_DEF;
	e->origin = FSP_ORIGIN_KERNEL;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->cpu = bpf_get_smp_processor_id();
	e->pid = s->rec.hdr.pid;
	e->tid = s->rec.hdr.tid;
	e->mount_gen = r->sent.mount_gen;
	e->attr_uid = (__u32)-1;
	e->attr_gid = (__u32)-1;
	e->proc.mnt_ns = ns;
	/* A probe read: a typed load (KREAD) must not reach fsp_resolve(). */
	root = BPF_CORE_READ(m, mnt.mnt_root);
	e->file.ino = KREAD(struct dentry, root, d_inode, i_ino);
	e->file.mode = KREAD(struct dentry, root, d_inode, i_mode);
	e->file.dev = KREAD(struct mount, m, mnt.mnt_sb, s_dev);
	e->file.mnt_id = id;
	bpf_probe_read_kernel_str(e->file.fstype, sizeof(e->file.fstype),
				  KREAD(struct mount, m, mnt.mnt_sb, s_type, name));
	len = put_mount_path(s, r, &e->file, root, m, FSP_WALK_MOUNT_POINT, 0);
	len += put_mount_path(s, r, &e->target, root, m, FSP_WALK_FS_ROOT, len);
	r->mnt_id = id;
	e->size = sizeof(*e) + len;
	return e->size;
}

/* The FSP_MOUNT_DEF in mount_record is in the transport: remember it. */
static __always_inline void mount_defined(struct fsp_mount_record *r)
{
	bpf_map_update_elem(&mount_known, &r->mnt_id, &r->sent, BPF_ANY);
}

#endif /* FSP_MOUNTS_H */

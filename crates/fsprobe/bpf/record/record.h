/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Building a record in per-CPU scratch and sending it. Backends call
 * record_begin(), then put_dentry() / put_name() for the file and the
 * target, then record_send().
 */
#ifndef FSP_RECORD_H
#define FSP_RECORD_H

#include "resolve/dentry.h"
#include "filter/filter.h"
#include "resolve/lookup.h"

#define FSP_AT_FDCWD -100
#define FSP_MASK (FSP_PATH_MAX - 1)

enum fsp_slot { SLOT_FILE = 0, SLOT_TARGET = 1, SLOT_EXE = 2 };

static __always_inline struct fsp_file *slot(struct fsp_scratch *s, enum fsp_slot which)
{
	if (which == SLOT_FILE)
		return &s->rec.hdr.file;
	return which == SLOT_TARGET ? &s->rec.hdr.target : &s->rec.hdr.exe;
}

/* The inode number of the pid namespace task lives in (task_active_pid_ns()). */
static __always_inline __u32 task_pid_ns(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid upid = {};

	/* pid->numbers[level]: the flexible array, indexed at run time. */
	bpf_probe_read_kernel(&upid, sizeof(upid),
			      (char *)pid + bpf_core_field_offset(struct pid, numbers) +
				      (level & 31) * bpf_core_type_size(struct upid));
	return BPF_CORE_READ(upid.ns, ns.inum);
}

static __always_inline void record_begin(struct fsp_scratch *s, __u8 kind, __u16 nr, __s64 ret)
{
	struct fsp_event *e = &s->rec.hdr;

	__builtin_memset(e, 0, sizeof(*e));
	e->version = FSP_EVENT_VERSION;
	e->kind = kind;
	e->syscall_nr = nr;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->retval = ret;
	e->attr_uid = (__u32)-1;
	e->attr_gid = (__u32)-1;
}

/*
 * Who did it: read only for a record that will be sent, since most
 * syscalls seen are not on watched files.
 */
static __always_inline void record_context(struct fsp_scratch *s)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fsp_event *e = &s->rec.hdr;
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();

	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	e->euid = BPF_CORE_READ(task, cred, euid.val);
	e->egid = BPF_CORE_READ(task, cred, egid.val);
	e->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	e->mount_gen = current_mount_gen();
	e->pid_ns = task_pid_ns(task);
	e->cgroup_id = bpf_get_current_cgroup_id();
	e->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
}

/* Where the next path starts in rec.data: after the file's path. */
static __always_inline __u32 data_pos(struct fsp_scratch *s, enum fsp_slot which)
{
	if (which == SLOT_FILE)
		return 0;
	if (which == SLOT_TARGET)
		return s->rec.hdr.file.path_len;
	return s->rec.hdr.file.path_len + s->rec.hdr.target.path_len;
}

/* Copy the path built in s->walk into the record's slot. */
static __always_inline void commit_path(struct fsp_scratch *s, enum fsp_slot which, __u32 len,
					__u32 user_len)
{
	struct fsp_file *f = slot(s, which);
	__u32 pos = data_pos(s, which);

	bpf_probe_read_kernel(&s->rec.data[FSP_BOUND(pos, 2 * FSP_PATH_MAX - 1)], FSP_BOUND(len, FSP_MASK),
			      /* off is FSP_PATH_MAX when a cached prefix left nothing to walk */
			      &s->walk[FSP_BOUND(s->ws.off, 2 * FSP_PATH_MAX - 1)]);
	f->path_len = len;
	f->user_len = user_len;
	f->flags |= s->ws.flags;
	f->prefix = s->ws.prefix;
	f->cache_gen = s->ws.gen;
}

static __always_inline void fill_identity(struct fsp_file *f, struct dentry *d, struct vfsmount *mnt)
{
	f->ino = BPF_CORE_READ(d, d_inode, i_ino);
	f->dev = BPF_CORE_READ(d, d_sb, s_dev);
	f->mode = BPF_CORE_READ(d, d_inode, i_mode);
	f->mnt_id = mount_id(mnt);
	bpf_probe_read_kernel_str(f->fstype, sizeof(f->fstype), BPF_CORE_READ(d, d_sb, s_type, name));
}

/* The slot gets d's identity and its path. */
static __always_inline void describe(struct fsp_scratch *s, enum fsp_slot which, struct dentry *d,
				     struct vfsmount *mnt)
{
	__u32 len;

	fill_identity(slot(s, which), d, mnt);
	len = resolve_path(s, which, d, mnt);
	commit_path(s, which, len, 0);
}

/*
 * The slot describes the existing object d; returns whether it is
 * watched. The path is resolved only when it will be sent: d is watched,
 * or `needed` (the record's other slot is).
 */
static __always_inline bool put_dentry_if(struct fsp_scratch *s, enum fsp_slot which,
					  struct dentry *d, struct vfsmount *mnt, bool needed)
{
	bool matched;

	if (!d || !mnt) {
		slot(s, which)->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	matched = object_matches(d);
	if (!matched && !needed)
		return false;
	describe(s, which, d, mnt);
	return matched;
}

static __always_inline bool put_dentry(struct fsp_scratch *s, enum fsp_slot which,
				       struct dentry *d, struct vfsmount *mnt)
{
	return put_dentry_if(s, which, d, mnt, true);
}

static __always_inline bool put_file(struct fsp_scratch *s, enum fsp_slot which, struct file *file)
{
	return put_dentry_if(s, which, BPF_CORE_READ(file, f_path.dentry),
			     BPF_CORE_READ(file, f_path.mnt), false);
}

/* The file open as descriptor fd in the current task, or NULL. */
static __always_inline struct file *fd_file(long fd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file **fds = BPF_CORE_READ(fdt, fd);
	struct file *f = NULL;

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/* Where a name lookup starts: the root, the cwd or the dirfd's directory. */
static __always_inline bool lookup_base(struct fsp_scratch *s, long dirfd, struct dentry **d,
					struct vfsmount **mnt)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *f;

	if (s->upath[0] == '/') {
		*d = BPF_CORE_READ(task, fs, root.dentry);
		*mnt = BPF_CORE_READ(task, fs, root.mnt);
	} else if ((int)dirfd == FSP_AT_FDCWD) {
		*d = BPF_CORE_READ(task, fs, pwd.dentry);
		*mnt = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		f = fd_file((int)dirfd);
		if (!f)
			return false;
		*d = BPF_CORE_READ(f, f_path.dentry);
		*mnt = BPF_CORE_READ(f, f_path.mnt);
	}
	return *d && *mnt;
}

/* Index in upath where the unresolved rest starts (ulen when none). */
static __always_inline __u32 suffix_start(struct fsp_scratch *s, __u32 from, __u32 ulen)
{
	for (int i = 0; i < 8 && from < ulen; i++) {
		if (s->upath[FSP_BOUND(from, FSP_MASK)] != '/')
			break;
		from++;
	}
	return from;
}

/*
 * Append upath[from, ulen) to the path in walk, after a '/' unless the
 * path is the root. Returns the bytes appended.
 */
static __always_inline __u32 append_suffix(struct fsp_scratch *s, __u32 from, __u32 ulen)
{
	__u32 base_len = FSP_PATH_MAX - s->ws.off;
	/* No '/' after the root; always one after a cached prefix (never the root). */
	__u32 sep = base_len > 1 || s->ws.prefix.ino ? 1 : 0;
	__u32 n = ulen - from;

	if (s->ws.off < 2 + sep) {
		s->ws.flags |= FSP_PATH_TRUNCATED;
		return 0;
	}
	if (n > s->ws.off - 1 - sep) {
		n = s->ws.off - 1 - sep;
		s->ws.flags |= FSP_PATH_TRUNCATED;
	}
	if (sep)
		s->walk[FSP_PATH_MAX] = '/';
	bpf_probe_read_kernel(&s->walk[FSP_PATH_MAX + sep], FSP_BOUND(n, FSP_MASK), &s->upath[FSP_BOUND(from, FSP_MASK)]);
	return n + sep;
}

/*
 * The slot describes what the path argument at user address `uptr`
 * (relative to dirfd) names: looked up in the dcache as far as it goes,
 * the rest appended and flagged. Returns whether it is watched: the
 * object itself when fully resolved, else its parent when only the last
 * name is missing.
 */
static __always_inline bool put_name_if(struct fsp_scratch *s, enum fsp_slot which, long dirfd,
					const char *uptr, bool needed)
{
	struct fsp_file *f = slot(s, which);
	struct dentry *base = NULL;
	struct vfsmount *bmnt = NULL, *mnt;
	__u32 ulen, len, extra, from;
	bool matched;
	long n;

	n = bpf_probe_read_user_str(s->upath, FSP_PATH_MAX, uptr);
	if (n <= 0 || !lookup_base(s, dirfd, &base, &bmnt)) {
		f->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	ulen = n - 1;
	lookup_path(s, base, bmnt, ulen);
	mnt = (struct vfsmount *)&s->ls.mnt->mnt;
	from = suffix_start(s, s->ls.resolved, ulen);
	if (from >= ulen)
		return put_dentry_if(s, which, s->ls.cur, mnt, needed);
	matched = child_matches(s->ls.cur);
	if (!matched && !needed)
		return false;
	len = resolve_path(s, which, s->ls.cur, mnt);
	extra = append_suffix(s, from, ulen);
	f->flags = FSP_PATH_USER_SUFFIX;
	f->mnt_id = mount_id(mnt);
	commit_path(s, which, len + extra, extra ? extra - (len > 1 || s->ws.prefix.ino ? 1 : 0) : 0);
	return matched;
}

static __always_inline bool put_name(struct fsp_scratch *s, enum fsp_slot which, long dirfd,
				     const char *uptr)
{
	return put_name_if(s, which, dirfd, uptr, true);
}

/*
 * The exe slot: the task's executable, resolved like any file (without
 * asking the filter: it is context, not the event's object).
 */
static __always_inline void put_exe(struct fsp_scratch *s)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct file *exe = BPF_CORE_READ(task, mm, exe_file);
	struct dentry *d = exe ? BPF_CORE_READ(exe, f_path.dentry) : NULL;
	struct vfsmount *mnt = exe ? BPF_CORE_READ(exe, f_path.mnt) : NULL;

	if (!d || !mnt) {
		s->rec.hdr.exe.flags = FSP_PATH_MISSING; /* a kernel thread */
		return;
	}
	describe(s, SLOT_EXE, d, mnt);
}

/*
 * Send the record if it passed the filter (ctx: the program's context,
 * which bpf_perf_event_output() needs); then the directories it taught
 * user space become cache entries (never before: a later record could
 * otherwise refer to a directory user space has not learnt yet).
 */
static __always_inline void record_send(void *ctx, struct fsp_scratch *s, bool matched)
{
	struct fsp_event *e = &s->rec.hdr;
	struct fsp_cache_scratch *cs = get_cache_scratch();
	__u64 size, flags = BPF_RB_NO_WAKEUP;
	__u32 paths, defs, zero = 0;
	__u64 *seq;

	if (!matched || !cs)
		return;
	record_context(s);
	put_exe(s);
	paths = e->file.path_len + e->target.path_len + e->exe.path_len;
	defs = FSP_BOUND(e->n_defs, FSP_DEF_SLOTS - 1) * sizeof(struct fsp_cache_def);
	if (defs)
		bpf_probe_read_kernel(&s->rec.data[FSP_BOUND(paths, 4 * FSP_PATH_MAX - 1)], defs,
				      cs->defs);
	seq = bpf_map_lookup_elem(&seq_next, &zero);
	if (seq)
		e->seq = (*seq)++;
	size = sizeof(*e) + paths + defs;
	if (size > sizeof(s->rec))
		size = sizeof(s->rec);
	e->size = size;
	if (cfg_transport == FSP_TRANSPORT_PERF_BUFFER) {
		/* Fails with -ENOSPC when this CPU's buffer is full (perf_output_begin()). */
		if (bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, &s->rec, size)) {
			count(FSP_CNT_LOST_RINGBUF);
			return;
		}
	} else {
		if (bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size >= cfg_wakeup_watermark)
			flags = BPF_RB_FORCE_WAKEUP;
		if (bpf_ringbuf_output(&events, &s->rec, size, flags)) {
			count(FSP_CNT_LOST_RINGBUF);
			return;
		}
	}
	count(FSP_CNT_EVENTS);
	if (e->n_defs)
		fsp_learn_defs();
}

#endif /* FSP_RECORD_H */

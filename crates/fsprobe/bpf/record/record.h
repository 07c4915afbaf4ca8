/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Building a record in per-CPU scratch and sending it. Emitters call
 * record_begin(), then put_dentry() / put_name() / put_file() for the
 * file and the target, put_extra() for the extra string, then
 * record_send(), which adds who did it.
 */
#ifndef FSP_RECORD_H
#define FSP_RECORD_H

#include "resolve/dentry.h"
#include "filter/filter.h"
#include "resolve/lookup.h"
#include "record/process.h"
#include "record/mounts.h"

#define FSP_AT_FDCWD -100
#define FSP_MASK (FSP_PATH_MAX - 1)

static __always_inline void record_begin(struct fsp_scratch *s, __u8 kind, __u8 origin, __u16 op,
					 __s64 ret)
{
	struct fsp_event *e = &s->rec.hdr;

	__builtin_memset(e, 0, sizeof(*e));
	e->version = FSP_EVENT_VERSION;
	e->kind = kind;
	e->origin = origin;
	e->op = op;
	e->ts_ns = bpf_ktime_get_boot_ns();
	e->retval = ret;
	e->attr_uid = (__u32)-1;
	e->attr_gid = (__u32)-1;
	__builtin_memset(s->slot_mnt, 0, sizeof(s->slot_mnt));
}

/*
 * Where a string starts in rec.data: the file's path, the target's, the
 * extra string, then the executable's path and the cgroup's.
 */
static __always_inline __u32 data_pos(struct fsp_scratch *s, enum fsp_slot which)
{
	struct fsp_event *e = &s->rec.hdr;

	if (which == FSP_SLOT_FILE)
		return 0;
	if (which == FSP_SLOT_TARGET)
		return e->file.path_len;
	return e->file.path_len + e->target.path_len + e->extra_len;
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
	f->ino = KREAD(struct dentry, d, d_inode, i_ino);
	f->generation = KREAD(struct dentry, d, d_inode, i_generation);
	f->dev = KREAD(struct dentry, d, d_sb, s_dev);
	f->mode = KREAD(struct dentry, d, d_inode, i_mode);
	f->mnt_id = mount_id(mnt);
	bpf_probe_read_kernel_str(f->fstype, sizeof(f->fstype),
				  KREAD(struct dentry, d, d_sb, s_type, name));
}

/*
 * The slot gets d's identity and its path. Global (pointers as integers),
 * like the other steps a builder repeats: the verifier checks it once per
 * program, not once for every state a builder reaches it in.
 */
static __always_inline void describe_here(struct fsp_scratch *s, enum fsp_slot which,
					  struct dentry *d, struct vfsmount *mnt)
{
	__u32 len;

	fill_identity(slot(s, which), d, mnt);
	len = resolve_path(s, which, d, mnt);
	commit_path(s, which, len, 0);
}

__noinline int fsp_describe(__u32 which, __u64 dentry, __u64 vmnt)
{
	struct fsp_scratch *s = get_scratch();

	if (s)
		describe_here(s, which, (struct dentry *)dentry, (struct vfsmount *)vmnt);
	return 0;
}

/*
 * The verifier allows 512 bytes of stack over a call chain (5.10 to 6.12;
 * the path walk is three frames deep): a global function that calls the
 * walk describes inline (`here`) instead of through fsp_describe().
 */
static __always_inline void describe_in(struct fsp_scratch *s, enum fsp_slot which,
					struct dentry *d, struct vfsmount *mnt, bool here)
{
	if (here)
		describe_here(s, which, d, mnt);
	else
		fsp_describe(which, (__u64)d, (__u64)mnt);
}

static __always_inline void describe(struct fsp_scratch *s, enum fsp_slot which, struct dentry *d,
				     struct vfsmount *mnt)
{
	describe_in(s, which, d, mnt, false);
}

/*
 * The slot describes the existing object d; returns whether it is
 * watched. The path is resolved only when it will be sent: d is watched,
 * or `needed` (the record's other slot is).
 */
static __always_inline bool put_dentry_in(struct fsp_scratch *s, enum fsp_slot which,
					  struct dentry *d, struct vfsmount *mnt, bool needed,
					  bool here)
{
	bool matched;

	if (!d || !mnt) {
		slot(s, which)->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	matched = object_matches(d);
	if (!matched && !needed)
		return false;
	describe_in(s, which, d, mnt, here);
	return matched;
}

static __always_inline bool put_dentry_if(struct fsp_scratch *s, enum fsp_slot which,
					  struct dentry *d, struct vfsmount *mnt, bool needed)
{
	return put_dentry_in(s, which, d, mnt, needed, false);
}

static __always_inline bool put_dentry(struct fsp_scratch *s, enum fsp_slot which,
				       struct dentry *d, struct vfsmount *mnt)
{
	return put_dentry_if(s, which, d, mnt, true);
}

/*
 * The dentry and mount of file f (NULL when unreadable), read in one probe
 * read. As plain values, not typed pointers: fsp_parent_watching(), a
 * global function, takes them as scalars, which a typed pointer's fields
 * became only through a probe read each (untyped()): this is one helper
 * call instead of two on every open of the host.
 */
static __always_inline void file_path(struct file *f, struct dentry **d, struct vfsmount **mnt)
{
	struct path path;

	/* A failed read zeroes path: NULLs. */
	bpf_core_read(&path, sizeof(path), &f->f_path);
	*d = path.dentry;
	*mnt = path.mnt;
}

static __always_inline bool put_file(struct fsp_scratch *s, enum fsp_slot which, struct file *file)
{
	struct vfsmount *mnt;
	struct dentry *d;

	if (!file) {
		slot(s, which)->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	file_path(file, &d, &mnt);
	return put_dentry_if(s, which, d, mnt, false);
}

/*
 * The file open as descriptor fd in the current task, or NULL. With
 * current_task_plain() (5.11+) the task's fields are plain loads,
 * a few times cheaper than probe reads, on this, the hottest path.
 */
static __always_inline struct file *fd_file(long fd)
{
	struct file *f = NULL;

	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *t = current_task_plain();
		struct fdtable *fdt = t->files->fdt;

		if (fd < 0 || fd >= fdt->max_fds)
			return NULL;
		bpf_probe_read_kernel(&f, sizeof(f), &fdt->fd[fd]);
		return f;
	}
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fdtable *fdt = BPF_CORE_READ(task, files, fdt);
	unsigned int max = BPF_CORE_READ(fdt, max_fds);
	struct file **fds = BPF_CORE_READ(fdt, fd);

	if (fd < 0 || fd >= max)
		return NULL;
	bpf_probe_read_kernel(&f, sizeof(f), &fds[fd]);
	return f;
}

/*
 * Is the existing object d, reached through mnt, watched? object_matches(),
 * but a directory the path cache knows as watching its children answers
 * first (resolve/cache.h: fsp_parent_watching()), once the hints' summary
 * allows it: the memo of watching directories is read before the hint's
 * slot (a miss each), so a watched file costs one miss and an unwatched
 * one that the summary cannot tell apart two.
 */
static __always_inline bool file_watched(struct dentry *d, struct vfsmount *mnt)
{
	struct dentry *parent;

	if (!cfg_paths_filtering)
		return true;
	parent = KREAD(struct dentry, d, d_parent);
	if (mnt &&
	    summary_hinted(KREAD(struct dentry, d, d_sb, s_dev), KREAD(struct dentry, parent, d_inode, i_ino)) &&
	    fsp_parent_watching((__u64)d, (__u64)mnt))
		return true;
	return object_matches(d);
}

/*
 * The file open as fd, if it is watched (or missing, which put_file()
 * reports); else NULL. *missing: there is no such file.
 */
static __always_inline struct file *fd_watched(long fd, bool *missing)
{
	struct file *f = fd_file(fd);
	struct vfsmount *mnt;
	struct dentry *d;

	*missing = !f;
	if (!f)
		return NULL;
	file_path(f, &d, &mnt);
	return !d || file_watched(d, mnt) ? f : NULL;
}

/* Is the file open as fd watched (or missing, which put_file() reports)? */
static __always_inline bool fd_matches(long fd)
{
	bool missing;

	return fd_watched(fd, &missing) || (missing && !cfg_paths_filtering);
}

/* The slot describes file, known to be watched. */
static __always_inline bool put_watched_file(struct fsp_scratch *s, enum fsp_slot which,
					     struct file *file)
{
	struct vfsmount *mnt;
	struct dentry *d;

	file_path(file, &d, &mnt);
	if (!d || !mnt) {
		slot(s, which)->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	describe(s, which, d, mnt);
	return true;
}

/*
 * Where a name lookup starts: the root, the cwd or the dirfd's directory,
 * left in s->ls.cur and s->ls.mnt for lookup_path() (in the map, not on
 * the stack: the callers' frames are at the verifier's limit).
 */
static __always_inline bool lookup_base(struct fsp_scratch *s, long dirfd)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct vfsmount *mnt;
	struct dentry *d;
	struct file *f;

	if (s->upath[0] == '/') {
		d = BPF_CORE_READ(task, fs, root.dentry);
		mnt = BPF_CORE_READ(task, fs, root.mnt);
	} else if ((int)dirfd == FSP_AT_FDCWD) {
		d = BPF_CORE_READ(task, fs, pwd.dentry);
		mnt = BPF_CORE_READ(task, fs, pwd.mnt);
	} else {
		f = fd_file((int)dirfd);
		if (!f)
			return false;
		d = BPF_CORE_READ(f, f_path.dentry);
		mnt = BPF_CORE_READ(f, f_path.mnt);
	}
	if (!d || !mnt)
		return false;
	s->ls.cur = d;
	s->ls.mnt = real_mount(mnt);
	return true;
}

/*
 * Copies a name argument into s->upath: from user memory (a syscall's),
 * or from the kernel's copy (an io_uring request's struct filename).
 * Returns the length with the NUL, <= 0 on failure.
 */
static __always_inline long read_name(struct fsp_scratch *s, const char *name, bool kernel)
{
	if (kernel)
		return bpf_probe_read_kernel_str(s->upath, FSP_PATH_MAX, name);
	return bpf_probe_read_user_str(s->upath, FSP_PATH_MAX, name);
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
 * The slot describes what the name at `name` (relative to dirfd) names:
 * looked up in the dcache as far as it goes, the rest appended and
 * flagged. Returns whether it is watched: the object itself when fully
 * resolved, else its parent when only the last name is missing.
 */
__noinline int fsp_put_name(__u32 which, __s64 dirfd, __u64 name_ptr, __u32 kernel, __u32 needed)
{
	struct fsp_scratch *s = get_scratch();
	const char *name = (const char *)name_ptr;
	struct fsp_file *f;
	struct vfsmount *mnt;
	__u32 ulen, len, extra, from;
	bool matched;
	long n;

	if (!s)
		return 0;
	f = slot(s, which);
	n = read_name(s, name, kernel);
	if (n <= 0 || !lookup_base(s, dirfd)) {
		f->flags = FSP_PATH_MISSING;
		return !cfg_paths_filtering;
	}
	ulen = n - 1;
	lookup_path(s, ulen, !needed);
	mnt = (struct vfsmount *)&s->ls.mnt->mnt;
	from = suffix_start(s, s->ls.resolved, ulen);
	if (from >= ulen)
		return put_dentry_in(s, which, s->ls.cur, mnt, needed, true);
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

static __always_inline bool put_name_if(struct fsp_scratch *s, enum fsp_slot which, long dirfd,
					const char *name, bool kernel, bool needed)
{
	return fsp_put_name(which, dirfd, (__u64)name, kernel, needed);
}

/*
 * The record's extra string (a symlink's target, an xattr's name, a mount's
 * source), from user or kernel memory. Call after both slots are set.
 */
static __always_inline void put_extra(struct fsp_scratch *s, const char *str, bool kernel)
{
	struct fsp_event *e = &s->rec.hdr;
	__u32 pos = e->file.path_len + e->target.path_len;
	char *dst = &s->rec.data[FSP_BOUND(pos, 2 * FSP_PATH_MAX - 1)];
	long n;

	if (!str)
		return;
	/* Up to FSP_EXTRA_MAX bytes at an offset below 2 * FSP_PATH_MAX: inside data. */
	if (kernel) {
		n = bpf_probe_read_kernel_str(dst, FSP_EXTRA_MAX, str);
	} else {
		n = bpf_probe_read_user_str(dst, FSP_EXTRA_MAX, str);
		e->rflags |= FSP_REC_EXTRA_USER;
	}
	if (n <= 1)
		return;
	if (n == FSP_EXTRA_MAX)
		e->rflags |= FSP_REC_EXTRA_TRUNCATED;
	e->extra_len = n - 1; /* without the NUL */
}

/*
 * The process definition: the executable, resolved in the kernel like
 * any file (without asking the filter: it is context, not the object),
 * the namespaces and the cgroup.
 */
static __always_inline void put_process(struct fsp_scratch *s, struct fsp_cache_scratch *cs,
					struct task_struct *task, struct proc_seen *now)
{
	struct fsp_proc *p = &s->rec.hdr.proc;
	struct file *exe = (struct file *)now->exe;
	struct vfsmount *mnt = NULL;
	struct dentry *d = NULL;
	bool cut = false;
	__u32 pos, len;

	if (exe)
		file_path(exe, &d, &mnt);
	s->rec.hdr.rflags |= FSP_REC_PROCESS;
	p->cgroup_id = now->cgroup_id;
	p->mnt_ns = BPF_CORE_READ(task, nsproxy, mnt_ns, ns.inum);
	p->pid_ns = task_pid_ns(task);
	if (d && mnt)
		describe(s, FSP_SLOT_EXE, d, mnt);
	else
		p->exe.flags = FSP_PATH_MISSING; /* a kernel thread */
	len = put_cgroup_path(task, cs, &cut);
	if (cut)
		s->rec.hdr.rflags |= FSP_REC_CGROUP_TRUNCATED;
	pos = data_pos(s, FSP_SLOT_EXE) + p->exe.path_len;
	bpf_probe_read_kernel(&s->rec.data[FSP_BOUND(pos, 4 * FSP_PATH_MAX - 1)],
			      FSP_BOUND(len, FSP_CGROUP_MAX - 1), cs->cgroup);
	p->cgroup_len = len;
}

/*
 * Who did it, into the record in scratch. Read only for a record that
 * will be sent, since most operations seen are not on watched files.
 * Returns whether the record carries the process's definition (then
 * cache_scratch.now is what to remember once it is sent). Global: verified
 * once, whoever calls it.
 */
__noinline int fsp_record_context(void)
{
	struct task_struct *task = (void *)bpf_get_current_task();
	struct fsp_scratch *s = get_scratch();
	struct fsp_cache_scratch *cs = get_cache_scratch();
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u64 uid_gid = bpf_get_current_uid_gid();
	struct fsp_event *e;

	if (!s || !cs)
		return 0;
	e = &s->rec.hdr;
	e->pid = pid_tgid >> 32;
	e->tid = (__u32)pid_tgid;
	e->uid = (__u32)uid_gid;
	e->gid = uid_gid >> 32;
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		struct task_struct *t = current_task_plain();

		e->ppid = t->real_parent->tgid;
		e->euid = t->cred->euid.val;
		e->egid = t->cred->egid.val;
	} else {
		e->ppid = BPF_CORE_READ(task, real_parent, tgid);
		e->euid = BPF_CORE_READ(task, cred, euid.val);
		e->egid = BPF_CORE_READ(task, cred, egid.val);
	}
	e->mount_gen = current_mount_gen();
	e->cpu = bpf_get_smp_processor_id();
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	proc_fingerprint(task, &cs->now);
	e->proc_start = cs->now.start;
	if (!proc_unknown(e->pid, &cs->now))
		return 0;
	put_process(s, cs, task, &cs->now);
	return 1;
}

/* Sends the record at rec; false when the transport had no room. */
static __always_inline bool transport_send(void *ctx, void *rec, __u64 size)
{
	__u64 flags = BPF_RB_NO_WAKEUP;
	__u32 sleep;

	if (cfg_transport == FSP_TRANSPORT_PERF_BUFFER)
		/* Fails with -ENOSPC when this CPU's buffer is full (perf_output_begin()). */
		return !bpf_perf_event_output(ctx, &events_perf, BPF_F_CURRENT_CPU, rec, size);
	/*
	 * Wake the consumer only when it sleeps (it says so in consumer_sleep
	 * just before it waits) and a watermark's worth is pending, and only
	 * once per CPU and sleep. A wakeup is an irq_work, so a self-IPI: a VM
	 * exit here, microseconds. Deciding it from the pending bytes alone
	 * woke a consumer that was awake and reading once every 22 records of
	 * a busy stream, as the pending bytes kept crossing the watermark.
	 * The consumer raises the count before it looks at the ring: one that
	 * then sleeps with less than the watermark pending is woken by a later
	 * record (the wakeup waits on its edge-triggered epoll if it comes
	 * before the wait), or reads within 100 ms.
	 */
	sleep = consumer_sleep;
	if ((sleep & 1) && cfg_wakeup_watermark) {
		__u32 zero = 0, *last = bpf_map_lookup_elem(&woken, &zero);

		if (last && *last != sleep &&
		    bpf_ringbuf_query(&events, BPF_RB_AVAIL_DATA) + size >= cfg_wakeup_watermark) {
			flags = BPF_RB_FORCE_WAKEUP;
			*last = sleep;
		}
	}
	return !bpf_ringbuf_output(&events, rec, size, flags);
}

/* Numbers and sends the record e of `size` bytes. */
static __always_inline bool output_numbered(void *ctx, struct fsp_event *e, __u64 size)
{
	__u32 zero = 0;
	__u64 *seq;

	seq = bpf_map_lookup_elem(&seq_next, &zero);
	if (seq)
		e->seq = (*seq)++;
	e->size = size;
	if (!transport_send(ctx, e, size)) {
		count(FSP_CNT_LOST_RINGBUF);
		return false;
	}
	count(FSP_CNT_EVENTS);
	return true;
}

/* Numbers and sends the record in scratch (a notice or an event). */
static __always_inline bool record_output(void *ctx, struct fsp_scratch *s, __u32 defs)
{
	struct fsp_event *e = &s->rec.hdr;
	struct fsp_proc *p = &e->proc;
	__u64 size;

	size = sizeof(*e) + e->file.path_len + e->target.path_len + e->extra_len +
	       p->exe.path_len + p->cgroup_len + defs;
	if (size > sizeof(s->rec))
		size = sizeof(s->rec);
	return output_numbered(ctx, e, size);
}

/*
 * The mounts of other namespaces that the record's slots use, described
 * before the record that uses them (record/mounts.h).
 */
static __always_inline void send_mount_defs(void *ctx, bool defines)
{
	struct fsp_mount_record *r;
	__u32 size;

#pragma unroll
	for (__u32 which = FSP_SLOT_FILE; which <= FSP_SLOT_EXE; which++) {
		if (which == FSP_SLOT_EXE && !defines)
			break;
		/* Masked: the verifier tracks no bounds through a global's result. */
		size = FSP_BOUND(fsp_define_mount(which), FSP_MOUNT_RECORD_MASK);
		r = get_mount_record();
		if (!r || !size)
			continue;
		if (output_numbered(ctx, &r->hdr, size))
			mount_defined(r);
	}
}

/*
 * Send the record if it passed the filter (ctx: the program's context,
 * which bpf_perf_event_output() needs); then the directories and the
 * process it taught user space become known (never before: a later
 * record could otherwise refer to what user space has not learnt yet).
 */
static __always_inline void record_send(void *ctx, struct fsp_scratch *s, bool matched)
{
	struct fsp_event *e = &s->rec.hdr;
	struct fsp_cache_scratch *cs;
	__u32 strings, defs;
	bool defines;

	if (!matched)
		return;
	defines = fsp_record_context();
	send_mount_defs(ctx, defines);
	cs = get_cache_scratch();
	if (!cs)
		return;
	strings = e->file.path_len + e->target.path_len + e->extra_len + e->proc.exe.path_len +
		  e->proc.cgroup_len;
	defs = FSP_BOUND(e->n_defs, FSP_DEF_SLOTS - 1) * sizeof(struct fsp_cache_def);
	if (defs)
		bpf_probe_read_kernel(&s->rec.data[FSP_BOUND(strings, 4 * FSP_PATH_MAX - 1)], defs,
				      cs->defs);
	if (!record_output(ctx, s, defs))
		return;
	if (e->n_defs)
		fsp_learn_defs();
	if (defines)
		bpf_map_update_elem(&proc_known, &e->pid, &cs->now, BPF_ANY);
}

/* A notice (no process definition): kind, who and when. */
static __always_inline void notice_begin(struct fsp_scratch *s, __u8 kind)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();

	record_begin(s, kind, FSP_ORIGIN_KERNEL, 0, 0);
	s->rec.hdr.cpu = bpf_get_smp_processor_id();
	s->rec.hdr.pid = pid_tgid >> 32;
	s->rec.hdr.tid = (__u32)pid_tgid;
}

#endif /* FSP_RECORD_H */

/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * Who did it, at two rates.
 *
 * Every record carries what may change from one operation to the next
 * and is cheap to read: pid, tid, ppid, the real and effective ids, comm.
 * What stays put while a process runs one program, and is costly to
 * resolve (the executable's path, the cgroup's path, the namespaces),
 * travels once per process: in its first record (FSP_REC_PROCESS), and
 * again when it changed. proc_known remembers, per thread group, what was
 * sent last, as a fingerprint of the task: its start time (a reused pid
 * is another process), its executable (exec), its nsproxy (setns,
 * unshare) and its cgroup (a move). As with the path caches, an entry is
 * written only once its record is in the ring, so user space always
 * knows a process before a record refers to it.
 */
#ifndef FSP_PROCESS_H
#define FSP_PROCESS_H

#include "resolve/cache.h"

/* Thread-group id → what its last process definition said. Sized by user space. */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct proc_seen);
} proc_known SEC(".maps");

/* The fingerprint of the current process, as proc_known keeps it. */
static __always_inline void proc_fingerprint(struct task_struct *task, struct proc_seen *now)
{
	if (bpf_core_enum_value_exists(enum bpf_func_id, BPF_FUNC_get_current_task_btf)) {
		/* Plain loads (5.11+); a kernel thread's NULL mm reads as 0. */
		struct task_struct *t = current_task_plain();

		now->start = t->group_leader->start_boottime;
		now->exe = (__u64)t->mm->exe_file;
		now->nsproxy = (__u64)t->nsproxy;
	} else {
		now->start = BPF_CORE_READ(task, group_leader, start_boottime);
		now->exe = (__u64)BPF_CORE_READ(task, mm, exe_file);
		now->nsproxy = (__u64)BPF_CORE_READ(task, nsproxy);
	}
	now->cgroup_id = bpf_get_current_cgroup_id();
	now->epoch = user_epoch();
}

/* Has user space not been told of this process as it is now? */
static __always_inline bool proc_unknown(__u32 tgid, struct proc_seen *now)
{
	struct proc_seen *seen = bpf_map_lookup_elem(&proc_known, &tgid);

	return !seen || seen->start != now->start || seen->exe != now->exe ||
	       seen->nsproxy != now->nsproxy || seen->cgroup_id != now->cgroup_id ||
	       seen->epoch != now->epoch;
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

/*
 * Appends "/" and cgroup name i (cs->cg_names) to cs->cgroup. The length
 * lives in cache_scratch, so the verifier sees one unknown length per
 * call rather than every combination the loop could make. 1: stop.
 */
__noinline int fsp_cgroup_append(__u32 i)
{
	struct fsp_cache_scratch *cs = get_cache_scratch();
	__u32 len;
	long copied;

	if (!cs)
		return 1;
	len = cs->cg_len;
	if (len + 2 > FSP_CGROUP_MAX) {
		cs->cg_cut = 1;
		return 1;
	}
	cs->cgroup[len & (FSP_CGROUP_MAX - 1)] = '/';
	len++;
	/* At most FSP_CGROUP_MAX bytes at an offset below it: inside cgroup[]. */
	copied = bpf_probe_read_kernel_str(&cs->cgroup[len & (FSP_CGROUP_MAX - 1)], FSP_CGROUP_MAX,
					   cs->cg_names[i & (FSP_CGROUP_DEPTH - 1)]);
	if (copied > 1)
		len += copied - 1; /* without the NUL */
	if (len >= FSP_CGROUP_MAX) {
		len = FSP_CGROUP_MAX - 1;
		cs->cg_cut = 1;
	}
	cs->cg_len = len;
	return 0;
}

/*
 * Writes the path of the task's cgroup v2 (the default hierarchy's
 * kernfs names, "/a/b") at cs->cgroup[0..]; returns its length, 0 when
 * the task is in the root cgroup. Sets *cut when the path did not fit.
 */
static __always_inline __u32 put_cgroup_path(struct task_struct *task,
					     struct fsp_cache_scratch *cs, bool *cut)
{
	struct kernfs_node *kn = BPF_CORE_READ(task, cgroups, dfl_cgrp, kn);
	__u32 n = 0;

	cs->cg_len = 0;
	cs->cg_cut = 0;
	for (int i = 0; i < FSP_CGROUP_DEPTH; i++) {
		struct kernfs_node *parent;

		if (!kn)
			break;
		parent = kernfs_parent(kn);
		if (!parent)
			break; /* the root: no name of its own */
		cs->cg_names[i] = BPF_CORE_READ(kn, name);
		n = i + 1;
		kn = parent;
	}
	if (kn && kernfs_parent(kn))
		cs->cg_cut = 1;
	/* Unrolled: 5.10's verifier refuses a loop whose head follows a call. */
#pragma unroll
	for (int i = FSP_CGROUP_DEPTH - 1; i >= 0; i--) {
		if (i < n && !cs->cg_cut && fsp_cgroup_append(i))
			cs->cg_cut = 1;
	}
	*cut = cs->cg_cut;
	return cs->cg_len & (FSP_CGROUP_MAX - 1);
}

#endif /* FSP_PROCESS_H */

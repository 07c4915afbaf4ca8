/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * A process that had records exits: user space may forget its context
 * (record/process.h). sched_process_exit fires for every thread; the
 * group is gone when signal->live has dropped to 0 (do_exit() decrements
 * it before the tracepoint).
 */
#ifndef FSP_HOOKS_SCHED_H
#define FSP_HOOKS_SCHED_H

#include "record/record.h"
#include <bpf/bpf_tracing.h>

SEC("tp_btf/sched_process_exit")
int BPF_PROG(fsp_proc_exit, struct task_struct *task)
{
	struct task_struct *t = task;
	struct fsp_scratch *s;
	struct proc_seen *seen;
	__u32 tgid;

	if (BPF_CORE_READ(t, signal, live.counter) != 0)
		return 0;
	tgid = BPF_CORE_READ(t, tgid);
	seen = bpf_map_lookup_elem(&proc_known, &tgid);
	s = get_scratch();
	if (!seen || !s)
		return 0;
	notice_begin(s, FSP_PROC_EXIT);
	s->rec.hdr.pid = tgid;
	s->rec.hdr.proc_start = seen->start;
	bpf_map_delete_elem(&proc_known, &tgid);
	record_output(ctx, s, 0);
	return 0;
}

#endif /* FSP_HOOKS_SCHED_H */

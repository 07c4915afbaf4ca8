/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * How an operation that a VFS hook sees reached the kernel: an io_uring
 * request (io-wq workers and the SQPOLL thread included), a syscall of a
 * user task, or neither (a kernel thread).
 */
#ifndef FSP_ORIGIN_H
#define FSP_ORIGIN_H

#include "record/op.h"
#include "abi/syscalls.h"

/* include/linux/sched.h */
#define FSP_PF_KTHREAD 0x00200000
#define FSP_PF_IO_WORKER 0x00000010

/* The io_uring request a thread is issuing (io_issue_sqe() in progress). */
struct io_issuing {
	struct io_kiocb *req;
	__u64 user_data;
	__u8 opcode;
	__u8 async;
	__u8 unreported; /* its submitter is not reported (fsprobe, --pid, --uid, --comm) */
	__u8 pad[5];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct io_issuing);
} io_issuing SEC(".maps");

/*
 * VFS backends: whether a request's submitter is reported, by request
 * address, from submission to issue (rewritten at each submission of the
 * opcodes that VFS hooks report, so a recycled address never keeps it).
 * An io-wq worker that runs one is a thread of its own (comm
 * "iou-wrk-<tid>", io_wq_worker() since 5.12; a kthread on 5.10): the
 * process filter judges the submitter, not it.
 */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, __u8);
} io_unreported SEC(".maps");

/*
 * The syscall the current user task is in: its x86-64 number (an ia32
 * syscall's twin's, abi/syscalls_ia32.def; FSP_NR_SYSCALLS, in no bitmap,
 * for one without), or -1 (no syscall: a kernel or io thread). ia32_nr:
 * the ia32 number, or -1 for an x86-64 syscall.
 */
static __always_inline long current_syscall(long *ia32_nr)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	__u8 shape;
	long nr;

	*ia32_nr = -1;
	if (BPF_CORE_READ(task, flags) & (FSP_PF_KTHREAD | FSP_PF_IO_WORKER))
		return -1;
	nr = BPF_CORE_READ(current_pt_regs(), orig_ax);
	if (BPF_CORE_READ(task, thread_info.status) & FSP_TS_COMPAT) {
		*ia32_nr = nr;
		nr = ia32_native(nr, &shape);
		return nr >= 0 ? nr : FSP_NR_SYSCALLS;
	}
	return nr >= 0 && nr < FSP_NR_SYSCALLS ? nr : -1;
}

/* The op's origin when no io_uring request is being issued: a syscall, or the kernel. */
static __always_inline void set_syscall_origin(struct op *p)
{
	long ia32_nr, nr = current_syscall(&ia32_nr);

	if (nr < 0) {
		p->origin = FSP_ORIGIN_KERNEL;
		return;
	}
	p->origin = ia32_nr >= 0 ? FSP_ORIGIN_SYSCALL_IA32 : FSP_ORIGIN_SYSCALL;
	p->nr = nr;
	p->nr_ia32 = ia32_nr;
}

/* Sets p's origin: the io_uring request being issued, else the syscall, else the kernel. */
static __always_inline void set_origin(struct op *p)
{
	__u64 key = thread_key();
	struct io_issuing *io = bpf_map_lookup_elem(&io_issuing, &key);

	if (io) {
		p->origin = FSP_ORIGIN_IO_URING;
		p->nr = io->opcode;
		p->user_data = io->user_data;
		if (io->async)
			p->rflags |= FSP_REC_IO_ASYNC;
		return;
	}
	set_syscall_origin(p);
}

#endif /* FSP_ORIGIN_H */

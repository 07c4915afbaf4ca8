/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * How an operation that a VFS hook sees reached the kernel: an io_uring
 * request (io-wq workers and the SQPOLL thread included), a syscall of a
 * user task, or neither (a kernel thread).
 */
#ifndef FSP_ORIGIN_H
#define FSP_ORIGIN_H

#include "record/op.h"

/* include/linux/sched.h */
#define FSP_PF_KTHREAD 0x00200000
#define FSP_PF_IO_WORKER 0x00000010

/* The io_uring request a thread is issuing (io_issue_sqe() in progress). */
struct io_issuing {
	struct io_kiocb *req;
	__u64 user_data;
	__u8 opcode;
	__u8 async;
	__u8 pad[6];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct io_issuing);
} io_issuing SEC(".maps");

/*
 * The syscall number the current user task is in, or -1 (no syscall: a
 * kernel or io thread); FSP_NR_IA32 for a 32-bit syscall, whose numbers
 * are another table's.
 */
static __always_inline long current_syscall(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	if (BPF_CORE_READ(task, flags) & (FSP_PF_KTHREAD | FSP_PF_IO_WORKER))
		return -1;
	if (BPF_CORE_READ(task, thread_info.status) & FSP_TS_COMPAT)
		return FSP_NR_IA32;
	return BPF_CORE_READ(current_pt_regs(), orig_ax);
}

/* Sets p's origin: the io_uring request being issued, else the syscall, else the kernel. */
static __always_inline void set_origin(struct op *p)
{
	__u64 key = thread_key();
	struct io_issuing *io = bpf_map_lookup_elem(&io_issuing, &key);
	long nr;

	if (io) {
		p->origin = FSP_ORIGIN_IO_URING;
		p->nr = io->opcode;
		p->user_data = io->user_data;
		if (io->async)
			p->rflags |= FSP_REC_IO_ASYNC;
		return;
	}
	nr = current_syscall();
	if (nr >= 0 && nr < FSP_NR_SYSCALLS) {
		p->origin = FSP_ORIGIN_SYSCALL;
		p->nr = nr;
		return;
	}
	p->origin = FSP_ORIGIN_KERNEL;
}

#endif /* FSP_ORIGIN_H */

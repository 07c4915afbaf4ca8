/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * io_uring requests, which reach the VFS without the syscalls that
 * syscall hooks see.
 *
 * A request is reported at its completion, with the CQE's result (an fd,
 * a byte count, 0 or -errno), from what the submission tracepoint saw
 * once the kernel had prepared it: its opcode, and in the per-op struct
 * at the start of struct io_kiocb (io_kiocb_to_cmd(); a union member of
 * io_kiocb on Debian's 5.10) the kernel's own copies of its names
 * (struct filename) and its directory fds. The names are looked up in
 * the dcache like a syscall's (flagged where a component came from the
 * name); an unlink's or rename's source is resolved at submission,
 * before the request runs. cfg_io_reported selects the opcodes: all of
 * abi/io_uring.def on the tracepoint backend; on the VFS backends those
 * whose operation no VFS hook reports (opens, writes, xattrs).
 *
 * The tracepoints changed (kernel/compat.h lists them): user space loads
 * the programs matching this kernel's BTF.
 *
 * The VFS hooks also need to know which request a thread is issuing:
 * io_issue_sqe()'s entry and exit keep it in io_issuing (hooks/origin.h).
 */
#ifndef FSP_HOOKS_IO_URING_H
#define FSP_HOOKS_IO_URING_H

#include "hooks/vfs.h"

enum {
#define FSP_IO_OP(name, number, event, since) IO_OP_##name = number,
#include "abi/io_uring.def"
#undef FSP_IO_OP
};

/* The event kind an opcode reports, 0 if none. */
static __always_inline __u8 io_op_kind(__u8 opcode)
{
	switch (opcode) {
#define FSP_IO_OP(name, number, event, since) \
	case number:                          \
		return FSP_##event;
#include "abi/io_uring.def"
#undef FSP_IO_OP
	}
	return 0;
}

static __always_inline bool io_reported(__u8 opcode)
{
	return opcode < 64 && ((cfg_io_reported >> opcode) & 1);
}

/* include/linux/io_uring_types.h: REQ_F_FIXED_FILE_BIT 0, REQ_F_CQE_SKIP_BIT 6 (5.17+). */
#define FSP_REQ_F_FIXED_FILE 1
#define FSP_REQ_F_CQE_SKIP 64

static __always_inline const char *filename_of(struct filename *f)
{
	return f ? BPF_CORE_READ(f, name) : NULL;
}

/* The xattr name of an io_uring SETXATTR/FSETXATTR (the kernel's copy). */
static __always_inline const char *xattr_name(struct io_kiocb *req)
{
	struct io_xattr *x = (struct io_xattr *)req;
	struct xattr_name *kname;

	if (!bpf_core_type_exists(struct io_xattr))
		return NULL;
	kname = BPF_CORE_READ(x, ctx.kname);

	return kname ? (const char *)kname->name : NULL;
}

/*
 * Fill p from the prepared request: its names, directory fds, flags.
 * Objects that exist only after the request ran (the new fd, the file of
 * a write) are taken at completion.
 */
static __always_inline bool decode_request(struct op *p, struct io_kiocb *req, __u8 opcode)
{
	p->kernel_names = 1;
	switch (opcode) {
	case IO_OP_OPENAT:
	case IO_OP_OPENAT2: {
		struct io_open *o = (struct io_open *)req;

		p->dirfd = BPF_CORE_READ(o, dfd);
		p->path = filename_of(BPF_CORE_READ(o, filename));
		p->open_flags = BPF_CORE_READ(o, how.flags);
		p->mode = BPF_CORE_READ(o, how.mode);
		return true;
	}
	case IO_OP_MKDIRAT: {
		struct io_mkdir *m = (struct io_mkdir *)req;

		p->dirfd = BPF_CORE_READ(m, dfd);
		p->path = filename_of(BPF_CORE_READ(m, filename));
		p->mode = BPF_CORE_READ(m, mode);
		return true;
	}
	case IO_OP_UNLINKAT: {
		struct io_unlink *u = (struct io_unlink *)req;

		p->dirfd = BPF_CORE_READ(u, dfd);
		p->path = filename_of(BPF_CORE_READ(u, filename));
		if (BPF_CORE_READ(u, flags) & FSP_AT_REMOVEDIR)
			p->kind = FSP_RMDIR;
		return true;
	}
	case IO_OP_RENAMEAT: {
		struct io_rename *r = (struct io_rename *)req;

		p->dirfd = BPF_CORE_READ(r, old_dfd);
		p->path = filename_of(BPF_CORE_READ(r, oldpath));
		p->dirfd2 = BPF_CORE_READ(r, new_dfd);
		p->path2 = filename_of(BPF_CORE_READ(r, newpath));
		p->open_flags = BPF_CORE_READ(r, flags);
		return true;
	}
	case IO_OP_LINKAT:
	case IO_OP_SYMLINKAT: {
		struct io_link *l = (struct io_link *)req;

		/* 5.15+ (Debian's 5.10 backport stops at UNLINKAT). */
		if (!bpf_core_type_exists(struct io_link))
			return false;

		if (opcode == IO_OP_SYMLINKAT) {
			p->extra = filename_of(BPF_CORE_READ(l, oldpath));
			p->dirfd = BPF_CORE_READ(l, new_dfd);
			p->path = filename_of(BPF_CORE_READ(l, newpath));
			return true;
		}
		p->dirfd = BPF_CORE_READ(l, old_dfd);
		p->path = filename_of(BPF_CORE_READ(l, oldpath));
		p->dirfd2 = BPF_CORE_READ(l, new_dfd);
		p->path2 = filename_of(BPF_CORE_READ(l, newpath));
		return true;
	}
	case IO_OP_SETXATTR:
	case IO_OP_FSETXATTR: {
		struct io_xattr *x = (struct io_xattr *)req;

		if (!bpf_core_type_exists(struct io_xattr))
			return false; /* 5.19+ */

		p->extra = xattr_name(req);
		p->attr_size = BPF_CORE_READ(x, ctx.size);
		p->attr_mask = BPF_CORE_READ(x, ctx.flags);
		if (opcode == IO_OP_SETXATTR) {
			p->dirfd = FSP_AT_FDCWD;
			p->path = filename_of(BPF_CORE_READ(x, filename));
		}
		return true;
	}
	case IO_OP_FTRUNCATE:
		p->attr_mask = FSP_ATTR_SIZE;
		return true;
	case IO_OP_WRITE:
	case IO_OP_WRITEV:
	case IO_OP_WRITE_FIXED:
	case IO_OP_WRITEV_FIXED:
	case IO_OP_FALLOCATE:
	case IO_OP_SPLICE:
		return true;
	}
	return false;
}

/* 5.10's completion names no request: its key is (ring, user_data). */
static __always_inline __u64 ring_key(void *ring, __u64 user_data)
{
	return ((__u64)ring ^ (user_data * 0x9E3779B97F4A7C15ULL)) | (1ULL << 63);
}

static __always_inline bool io_current_is_worker(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();

	return BPF_CORE_READ(task, flags) & FSP_PF_IO_WORKER;
}

/* What submission can tell: the objects that exist already, and a fixed-table open. */
static __always_inline void io_note_objects(struct op *p, struct io_kiocb *req)
{
	if (p->kind == FSP_OPEN)
		p->no_fd = BPF_CORE_READ((struct io_open *)req, file_slot) != 0;
	else if (p->kind == FSP_MODIFY || p->kind == FSP_SETATTR || p->nr == IO_OP_FSETXATTR)
		p->file = p->nr == IO_OP_SPLICE ? BPF_CORE_READ((struct io_splice *)req, file_out) :
						  BPF_CORE_READ(req, file);
}

/* A request was submitted: keep what it names until it completes (key). */
static __always_inline void io_submitted(void *ctx, struct io_kiocb *req, __u8 opcode,
					 __u64 user_data, __u64 key)
{
	__u8 kind = io_op_kind(opcode);
	struct op *p;
	bool quiet, skip;
	__u8 unreported;

	if (!kind)
		return;
	quiet = !reported_process();
	if (!io_reported(opcode)) {
		/* A VFS hook reports it: tell it whether the submitter is reported. */
		unreported = quiet;
		if (cfg_vfs_hooks)
			bpf_map_update_elem(&io_unreported, &req, &unreported, BPF_ANY);
		return;
	}
	/*
	 * A rename or an rmdir invalidates the caches whoever asks for it;
	 * unreported, it is kept only for that (io_completed()).
	 */
	if (quiet && opcode != IO_OP_RENAMEAT && opcode != IO_OP_UNLINKAT)
		return;
	p = new_op(kind, FSP_ORIGIN_IO_URING, opcode);
	if (!p || !decode_request(p, req, opcode))
		return;
	skip = req_flags(req) & FSP_REQ_F_CQE_SKIP;
	/*
	 * A request that posts no completion when it succeeds cannot
	 * invalidate after its d_move(): it does so now, at submission. The
	 * tracepoint backend's one window: a walk racing that d_move().
	 */
	if (skip && p->kind == FSP_RENAME)
		bump_gen();
	if (skip && p->kind == FSP_RMDIR)
		bump_removed_dirs();
	if (quiet) {
		if (p->kind == FSP_UNLINK || skip)
			return;
		p->quiet = 1;
		if (bpf_map_update_elem(&ops_in_flight, &key, p, BPF_ANY))
			bump_gen(); /* cannot wait for the completion: invalidate now */
		return;
	}
	if (!event_enabled(p->kind) && p->kind != FSP_RENAME && p->kind != FSP_MKDIR &&
	    p->kind != FSP_UNLINK && p->kind != FSP_RMDIR)
		return;
	p->user_data = user_data;
	io_note_objects(p, req);
	if (p->kind == FSP_UNLINK || p->kind == FSP_RMDIR || p->kind == FSP_RENAME)
		fsp_resolve_source();
	/*
	 * A request that posts no completion when it succeeds: report it now,
	 * and keep it for the failure that would post one. Kept under its
	 * request's address (5.17+, when CQE_SKIP came): a success leaves it
	 * behind, replaced when the request is recycled.
	 */
	if (skip) {
		p->rflags |= FSP_REC_IO_UNCONFIRMED;
		emit_scratch(ctx, 0);
		p = op_current();
		if (!p)
			return;
		p->rflags &= ~FSP_REC_IO_UNCONFIRMED;
	}
	if (bpf_map_update_elem(&ops_in_flight, &key, p, skip ? BPF_ANY : BPF_NOEXIST))
		count(FSP_CNT_LOST_PENDING); /* full, or another request with that 5.10 key */
}

/* The request completed with res: report it. req: NULL on 5.10, whose completion names none. */
static __always_inline void io_completed(void *ctx, struct io_kiocb *req, __u64 key, long res)
{
	struct op *p = op_find(key);

	if (!p)
		return;
	/* After d_move() or the dentry's death: what a walk cached meanwhile is stale. */
	if (res == 0 && p->kind == FSP_RMDIR)
		bump_removed_dirs();
	if (res == 0 && p->kind == FSP_RENAME &&
	    (!p->src || (p->src_id.mode & FSP_S_IFMT) == FSP_S_IFDIR))
		bump_gen();
	if (p->quiet)
		goto done;
	if (req && (p->kind == FSP_MODIFY || p->kind == FSP_SETATTR || p->nr == IO_OP_FSETXATTR)) {
		/* The file is attached when the request is issued (io_assign_file()). */
		if (p->nr == IO_OP_SPLICE)
			p->file = BPF_CORE_READ((struct io_splice *)req, file_out);
		else
			p->file = BPF_CORE_READ(req, file);
	}
	if (io_current_is_worker())
		p->rflags |= FSP_REC_IO_ASYNC;
	emit(ctx, p, res);
done:
	op_done(key);
}

/* Submission, 6.3+: io_uring_submit_req(req), after the request's prep. */
SEC("tp_btf/io_uring_submit_req")
int BPF_PROG(fsp_io_submit_req, struct io_kiocb *req)
{
	struct io_kiocb *r = untyped(req);

	io_submitted(ctx, r, BPF_CORE_READ(r, opcode), req_user_data(r), (__u64)r);
	return 0;
}

/* Submission, 5.18 to 6.2: io_uring_submit_sqe(req, force_nonblock). */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(fsp_io_submit_sqe, struct io_kiocb *req, bool force_nonblock)
{
	struct io_kiocb *r = untyped(req);

	io_submitted(ctx, r, BPF_CORE_READ(r, opcode), req_user_data(r), (__u64)r);
	return 0;
}

/* Submission, Debian's 5.10 backport: io_uring_submit_sqe(ctx, req, opcode, user_data, ...). */
SEC("tp_btf/io_uring_submit_sqe")
int BPF_PROG(fsp_io_submit_sqe_510, void *ring, void *req, __u8 opcode, __u64 user_data)
{
	io_submitted(ctx, untyped(req), opcode, user_data, ring_key(untyped(ring), user_data));
	return 0;
}

/* Completion, 5.19 to 6.16: io_uring_complete(ctx, req, user_data, res, cflags, ...). */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(fsp_io_complete, void *ring, void *req, __u64 user_data, int res)
{
	struct io_kiocb *r = untyped(req);

	io_completed(ctx, r, (__u64)r, res);
	return 0;
}

/* Completion, 6.17+: io_uring_complete(ctx, req, cqe). */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(fsp_io_complete_cqe, void *ring, void *req, struct io_uring_cqe *cqe)
{
	struct io_kiocb *r = untyped(req);

	io_completed(ctx, r, (__u64)r, BPF_CORE_READ(cqe, res));
	return 0;
}

/* Completion, before 5.19 (Debian's 5.10): io_uring_complete(ctx, user_data, res, cflags). */
SEC("tp_btf/io_uring_complete")
int BPF_PROG(fsp_io_complete_510, void *ring, __u64 user_data, int res)
{
	io_completed(ctx, NULL, ring_key(untyped(ring), user_data), res);
	return 0;
}

/* VFS backends: which request a thread is issuing, for the VFS hooks' origin. */
static __always_inline void io_issue_begin(struct io_kiocb *req)
{
	__u64 key = thread_key();
	struct io_issuing io = {
		.req = req,
		.user_data = req_user_data(req),
		.opcode = BPF_CORE_READ(req, opcode),
		.async = io_current_is_worker(),
	};

	/* Inline, the submitter issues it; a worker asks what submission saw. */
	if (io.async) {
		__u8 *unreported = bpf_map_lookup_elem(&io_unreported, &req);

		io.unreported = unreported && *unreported;
	} else {
		io.unreported = !process_reported(bpf_get_current_pid_tgid(),
						  (__u32)bpf_get_current_uid_gid());
	}
	bpf_map_update_elem(&io_issuing, &key, &io, BPF_ANY);
}

static __always_inline void io_issue_end(void)
{
	__u64 key = thread_key();

	bpf_map_delete_elem(&io_issuing, &key);
}

SEC("fentry/io_issue_sqe")
int BPF_PROG(fentry_io_issue_sqe, struct io_kiocb *req)
{
	io_issue_begin(untyped(req));
	return 0;
}

SEC("fexit/io_issue_sqe")
int BPF_PROG(fexit_io_issue_sqe, struct io_kiocb *req)
{
	io_issue_end();
	return 0;
}

SEC("kprobe/io_issue_sqe")
int BPF_KPROBE(kprobe_io_issue_sqe, struct io_kiocb *req)
{
	io_issue_begin(req);
	return 0;
}

SEC("kretprobe/io_issue_sqe")
int BPF_KRETPROBE(kretprobe_io_issue_sqe)
{
	io_issue_end();
	return 0;
}

#endif /* FSP_HOOKS_IO_URING_H */

// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fsprobe's BPF object: every backend's programs, of which user space
 * loads those its backend and the running kernel use (src/backend/).
 *   hooks/syscalls.h  syscall entry and exit (every backend)
 *   hooks/vfs.h       the VFS operations (fentry or kprobe backend)
 *   hooks/io_uring.h  io_uring requests (every backend)
 *   hooks/sched.h     process exits
 */
#include "hooks/syscalls.h"
#include "hooks/vfs.h"
#include "hooks/io_uring.h"
#include "hooks/sched.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

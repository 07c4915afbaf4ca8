// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * fsprobe's BPF object. Every backend loads the syscall tracepoint
 * programs; the fentry and kprobe backends also load their flavour of the
 * VFS hooks (user space disables the programs a backend does not use).
 */
#include "hooks/syscalls.h"
#include "hooks/vfs.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

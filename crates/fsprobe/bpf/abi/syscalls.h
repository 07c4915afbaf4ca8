/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/* The syscall table (abi/syscalls.def) as C: NR_<name> and each one's traits. */
#ifndef FSP_SYSCALLS_H
#define FSP_SYSCALLS_H

#include "abi/events.h"

#define EV(kind) (1u << FSP_##kind)

enum {
#define FSP_SYSCALL(name, nr, tracefs, events, traits) NR_##name = nr,
#include "abi/syscalls.def"
#undef FSP_SYSCALL
};

/* The traits (enum fsp_trait) of syscall nr; 0 for one not in the table. */
static __always_inline __u32 syscall_traits(long nr)
{
	switch (nr) {
#define FSP_SYSCALL(name, nr, tracefs, events, traits) \
	case nr:                                      \
		return traits;
#include "abi/syscalls.def"
#undef FSP_SYSCALL
	}
	return 0;
}

/* The event kinds (bit 1 << enum fsp_kind) syscall nr may report. */
static __always_inline __u32 syscall_events(long nr)
{
	switch (nr) {
#define FSP_SYSCALL(name, nr, tracefs, events, traits) \
	case nr:                                      \
		return events;
#include "abi/syscalls.def"
#undef FSP_SYSCALL
	}
	return 0;
}

/* How an ia32 syscall's arguments differ from its x86-64 twin's (abi/syscalls_ia32.def). */
enum fsp_ia32_shape {
	IA32_SAME = 0,
	IA32_UID16,
	IA32_OFF32,
	IA32_OFF64,
	IA32_OLDUMOUNT,
};

/* The x86-64 number ia32 syscall nr is handled as, and its shape; -1: not handled. */
static __always_inline long ia32_native(long nr, __u8 *shape)
{
	switch (nr) {
#define FSP_IA32_NAME(name, nr)
#define FSP_IA32(name, nr, native, how) \
	case nr:                        \
		*shape = IA32_##how;    \
		return NR_##native;
#include "abi/syscalls_ia32.def"
#undef FSP_IA32
#undef FSP_IA32_NAME
	}
	return -1;
}

#endif /* FSP_SYSCALLS_H */

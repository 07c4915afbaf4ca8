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

#endif /* FSP_SYSCALLS_H */

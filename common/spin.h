/* SPDX-License-Identifier: MIT */
/* Polling a shared flag without starving whoever must set it: a CPU pause
 * between looks, and every 32nd look a sched_yield, so that a thread waiting
 * for the CPU this one polls on (an event loop, a client, a pool worker on
 * an oversubscribed machine) gets to run. Header only: the daemon, the
 * thread pool and libgearbox all poll this way. */
#ifndef GEARBOX_COMMON_SPIN_H
#define GEARBOX_COMMON_SPIN_H

#include <sched.h>

static inline void
spin_relax(unsigned round)
{
	if (round % 32 == 31) {
		sched_yield();
		return;
	}
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__) || defined(__arm__)
	__asm__ __volatile__("yield");
#endif
}

#endif

/* SPDX-License-Identifier: MIT */
#ifndef GEARBOX_COMMON_CPU_MODEL_H
#define GEARBOX_COMMON_CPU_MODEL_H

#include <stddef.h>

/* /proc/cpuinfo's "model name" and, on Arm, the distinct "CPU
 * implementer:CPU part" pairs (a Cortex-A15 and an A7 both say "ARMv7
 * Processor rev 3 (v7l)"); "unknown" when it says neither. */
void cpu_model_name(char *buf, size_t size);

#endif

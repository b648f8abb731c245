/*
 * Constants of the layout probe (probe.c) that only the kernel's headers define, and whose
 * headers clash with glibc's (<linux/sem.h> redefines struct ipc_perm), so they are compiled
 * apart and linked in. tests/layout_test.ts maps each ffi/ name to its uapi_* variable.
 */
#include <linux/sem.h>

/* The largest value of a System V semaphore, include/uapi/linux/sem.h. */
const long long uapi_SEMVMX = SEMVMX;

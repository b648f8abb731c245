/*
 * Constants of the layout probe (probe.c) that only the kernel's headers define, and whose
 * headers clash with glibc's (<linux/sem.h> redefines struct ipc_perm), so they are compiled
 * apart and linked in. tests/layout_test.ts maps each ffi/ name to its uapi_* variable.
 */
#include <linux/sem.h>

/* The largest value of a System V semaphore, include/uapi/linux/sem.h. */
const long long uapi_SEMVMX = SEMVMX;

#include <linux/mqueue.h>

/* mq_notify's cookie and its codes, include/uapi/linux/mqueue.h (it redefines struct mq_attr). */
const long long uapi_NOTIFY_COOKIE_LEN = NOTIFY_COOKIE_LEN;
const long long uapi_NOTIFY_WOKENUP = NOTIFY_WOKENUP;
const long long uapi_NOTIFY_REMOVED = NOTIFY_REMOVED;

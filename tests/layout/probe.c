/*
 * The layout probe: prints, from the real glibc and Linux headers of the architecture it is
 * compiled for, what ffi/layout.ts and ffi/constants.ts claim. tests/layout_test.ts compiles it
 * for x86_64 and aarch64 and compares every line with ffi/'s value for that architecture.
 *
 * The list of what to print is not written here: the test generates it from ffi/'s exports (so
 * that a constant or field added there is checked without anyone touching this file) as a
 * header of SIZE/ALIGN/OFFSET/VALUE lines, named by -DPROBE_ITEMS="...". Built by hand:
 *
 *   printf 'VALUE("O_PATH", O_PATH)\n' > /tmp/items.h
 *   cc -DPROBE_ITEMS='"/tmp/items.h"' tests/layout/probe.c tests/layout/uapi.c -o /tmp/probe
 *   /tmp/probe
 *
 * Output: "arch <name>" first, then one "<name> <decimal value>" line per item.
 */
#define _GNU_SOURCE 1

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <linux/netlink.h>
#include <mqueue.h>
#include <poll.h>
#include <semaphore.h>
#include <signal.h>
#include <spawn.h>
#include <stddef.h>
#include <stdio.h>
#include <sys/file.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/msg.h>
#include <sys/resource.h>
#include <sys/sem.h>
#include <sys/shm.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* Constants that glibc does not export, from kernel headers that clash with glibc's: uapi.c. */
extern const long long uapi_SEMVMX;
extern const long long uapi_NOTIFY_COOKIE_LEN, uapi_NOTIFY_WOKENUP, uapi_NOTIFY_REMOVED;

#define SIZE(name, type) printf("%s %zu\n", name, sizeof(type));
#define ALIGN(name, type) printf("%s %zu\n", name, _Alignof(type));
#define OFFSET(name, type, field) printf("%s %zu\n", name, offsetof(type, field));
#define VALUE(name, expr)                                       \
  if ((expr) < 0) printf("%s %lld\n", name, (long long)(expr)); \
  else printf("%s %llu\n", name, (unsigned long long)(expr));

int main(void) {
#if defined(__x86_64__)
  puts("arch x86_64");
#elif defined(__aarch64__)
  puts("arch aarch64");
#else
  puts("arch unknown");
#endif
#include PROBE_ITEMS
  return 0;
}

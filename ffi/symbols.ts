/**
 * The one table of libc symbols that @posix/ipc calls, as `Deno.dlopen` wants it.
 *
 * Each entry carries the C prototype it binds. Types follow LP64 Linux (x86_64 and aarch64):
 * `int` -> i32, `unsigned`/`mode_t` -> u32, `size_t` -> usize, `off_t` -> i64, pointers to
 * memory the caller passes in -> "buffer", pointers the C side hands back -> "pointer".
 * Variadic functions (`open`, `fcntl`) are bound with their integer arguments spelled out,
 * which the LP64 calling conventions of both architectures allow.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

export const symbols = {
  // int *__errno_location(void);
  __errno_location: { parameters: [], result: "pointer" },
  // int getpagesize(void);
  getpagesize: { parameters: [], result: "i32" },

  // int open(const char *path, int flags, mode_t mode);
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int close(int fd);
  close: { parameters: ["i32"], result: "i32" },
  // int fcntl(int fd, int cmd, int arg);
  fcntl: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // off_t lseek(int fd, off_t offset, int whence);
  lseek: { parameters: ["i32", "i64", "i32"], result: "i64" },
  // int ftruncate(int fd, off_t length);
  ftruncate: { parameters: ["i32", "i64"], result: "i32" },
  // int posix_fallocate(int fd, off_t offset, off_t len);  returns an error number, not -1
  posix_fallocate: { parameters: ["i32", "i64", "i64"], result: "i32" },
  // int statvfs(const char *path, struct statvfs *buf);
  statvfs: { parameters: ["buffer", "buffer"], result: "i32" },

  // int shm_open(const char *name, int oflag, mode_t mode);  (libc since glibc 2.34)
  shm_open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  // int shm_unlink(const char *name);
  shm_unlink: { parameters: ["buffer"], result: "i32" },
  // int memfd_create(const char *name, unsigned int flags);
  memfd_create: { parameters: ["buffer", "u32"], result: "i32" },

  // void *mmap(void *addr, size_t length, int prot, int flags, int fd, off_t offset);
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  // int munmap(void *addr, size_t length);
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  // int msync(void *addr, size_t length, int flags);
  msync: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  // int madvise(void *addr, size_t length, int advice);
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

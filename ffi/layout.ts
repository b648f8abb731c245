/**
 * Struct sizes and field offsets for Linux on x86_64 and aarch64 (glibc), both LP64.
 *
 * Each layout names where its figures come from. Where the two architectures differ, the
 * layout is chosen by `Deno.build.arch`.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

const arch = Deno.build.arch;

/**
 * `struct statvfs` from glibc's bits/statvfs.h: eleven `unsigned long` fields (f_bsize,
 * f_frsize, f_blocks, f_bfree, f_bavail, f_files, f_ffree, f_favail, f_fsid, f_flag,
 * f_namemax) followed by `int __f_spare[6]`. Identical on x86_64 and aarch64.
 */
export const statvfs = {
  size: 112,
  f_frsize: 8,
  f_blocks: 16,
  f_bavail: 32,
} as const;

/**
 * `struct futex_waitv { __u64 val; __u64 uaddr; __u32 flags; __u32 __reserved; }` from
 * <linux/futex.h>, the same on every architecture.
 */
export const futex_waitv = { size: 24, val: 0, uaddr: 8, flags: 16 } as const;

/** `struct pollfd { int fd; short events; short revents; }` from <poll.h>. */
export const pollfd = { size: 8, fd: 0, events: 4, revents: 6 } as const;

/**
 * Opaque glibc types that are only allocated here and filled by their init functions; sizes
 * from glibc's <spawn.h> and <bits/types/__sigset_t.h>, the same on x86_64 and aarch64 (checked
 * with sizeof on x86_64; the structs hold only ints, shorts, pointers and sigset_t).
 */
export const opaque = {
  /** `posix_spawn_file_actions_t`: int, int, pointer, int[16]. */
  posix_spawn_file_actions_t: 80,
  /** `posix_spawnattr_t`: short, pid_t, two sigset_t, sched_param, int, int[16]. */
  posix_spawnattr_t: 336,
  /** `sigset_t`: 1024 bits. */
  sigset_t: 128,
} as const;

/** `struct timespec { time_t tv_sec; long tv_nsec; }`: two 64-bit fields on LP64. */
export const timespec = { size: 16, tv_sec: 0, tv_nsec: 8 } as const;

/**
 * `struct statx` from linux/stat.h, the same on every architecture (checked with gcc
 * `offsetof` on x86_64): each `stx_*time` is `{ __s64 tv_sec; __u32 tv_nsec; __s32 pad; }`.
 */
export const statx = {
  size: 256,
  stx_uid: 20,
  stx_gid: 24,
  stx_mode: 28,
  stx_ino: 32,
  stx_size: 40,
  stx_blocks: 48,
  stx_btime: 80,
  stx_ctime: 96,
  stx_mtime: 112,
  stx_dev_major: 136,
  stx_dev_minor: 140,
} as const;

/** `struct dirent` from glibc's bits/dirent.h: `d_name` follows d_ino, d_off, d_reclen, d_type. */
export const dirent = { d_name: 19 } as const;

/** `struct rlimit { rlim_t rlim_cur; rlim_t rlim_max; }`: two 64-bit fields. */
export const rlimit = { size: 16, rlim_cur: 0, rlim_max: 8 } as const;

/**
 * `struct mq_attr { long mq_flags, mq_maxmsg, mq_msgsize, mq_curmsgs; long __pad[4]; }` from
 * glibc's bits/mqueue.h: eight 64-bit longs on LP64.
 */
export const mq_attr = {
  size: 64,
  mq_flags: 0,
  mq_maxmsg: 8,
  mq_msgsize: 16,
  mq_curmsgs: 24,
} as const;

/**
 * `struct sigevent` from glibc's bits/types/sigevent_t.h (the kernel's is the same, 64 bytes,
 * `SIGEV_MAX_SIZE`): a `union sigval` (a pointer, 8 bytes), `int sigev_signo`, `int
 * sigev_notify`, then a union padding it to 64 bytes. The kernel copies all 64 bytes.
 */
export const sigevent = { size: 64, sigev_value: 0, sigev_signo: 8, sigev_notify: 12 } as const;

/**
 * `sem_t` from glibc's bits/semaphore.h: `__SIZEOF_SEM_T` is 32 on 64-bit targets, aligned as a
 * `long int` (8 bytes), since the new semaphore keeps a 64-bit atomic word first.
 */
export const sem_t = { size: 32, align: 8 } as const;

/**
 * `struct ipc_perm` (48 bytes): key, uid, gid, cuid, cgid as 32-bit fields, then the mode: an
 * `unsigned short` on x86 (sysdeps/unix/sysv/linux/x86/bits/ipc-perm.h), a 32-bit `mode_t` in
 * the generic header that aarch64 uses; read as 16 bits at offset 20 it is right on both
 * (little-endian, and permission bits fit in 16).
 */
export const ipc_perm = { size: 48, key: 0, uid: 4, gid: 8, cuid: 12, cgid: 16, mode: 20 } as const;

/** `struct shmid_ds` (bits/types/struct_shmid_ds.h, 64-bit): the same on x86_64 and aarch64. */
export const shmid_ds = {
  size: 112,
  shm_segsz: 48,
  shm_atime: 56,
  shm_dtime: 64,
  shm_ctime: 72,
  shm_cpid: 80,
  shm_lpid: 84,
  shm_nattch: 88,
} as const;

/**
 * `struct semid_ds`: x86_64 keeps a reserved word after each time
 * (sysdeps/unix/sysv/linux/x86/bits/types/struct_semid_ds.h); aarch64 uses the generic
 * header, which on 64-bit has none (bits/types/struct_semid_ds.h).
 */
export const semid_ds = arch === "aarch64"
  ? { size: 88, sem_otime: 48, sem_ctime: 56, sem_nsems: 64 } as const
  : { size: 104, sem_otime: 48, sem_ctime: 64, sem_nsems: 80 } as const;

/** `struct msqid_ds` (bits/types/struct_msqid_ds.h, 64-bit): the same on x86_64 and aarch64. */
export const msqid_ds = {
  size: 120,
  msg_stime: 48,
  msg_rtime: 56,
  msg_ctime: 64,
  msg_cbytes: 72,
  msg_qnum: 80,
  msg_qbytes: 88,
  msg_lspid: 96,
  msg_lrpid: 100,
} as const;

/** `struct sembuf { unsigned short sem_num; short sem_op; short sem_flg; }`: 6 bytes, packed. */
export const sembuf = { size: 6, sem_num: 0, sem_op: 2, sem_flg: 4 } as const;

/**
 * `struct sockaddr_un { sa_family_t sun_family; char sun_path[108]; }` from <sys/un.h>: the
 * same on x86_64 and aarch64 (sa_family_t is an unsigned short everywhere on Linux).
 */
export const sockaddr_un = { size: 110, sun_family: 0, sun_path: 2 } as const;

/** `struct iovec { void *iov_base; size_t iov_len; }` from <bits/types/struct_iovec.h>. */
export const iovec = { size: 16, iov_base: 0, iov_len: 8 } as const;

/**
 * `struct msghdr` from glibc's bits/socket.h, the same on both LP64 ABIs: a pointer, a
 * socklen_t (padded to 8), a pointer, a size_t, a pointer, a size_t and an int (padded).
 */
export const msghdr = {
  size: 56,
  msg_name: 0,
  msg_namelen: 8,
  msg_iov: 16,
  msg_iovlen: 24,
  msg_control: 32,
  msg_controllen: 40,
  msg_flags: 48,
} as const;

/**
 * `struct cmsghdr { size_t cmsg_len; int cmsg_level; int cmsg_type; }` from glibc's
 * bits/socket.h: the data (CMSG_DATA) follows at `size`, and each header is aligned to
 * `size_t` (CMSG_ALIGN rounds up to 8).
 */
export const cmsghdr = { size: 16, cmsg_len: 0, cmsg_level: 8, cmsg_type: 12 } as const;

/** `struct ucred { pid_t pid; uid_t uid; gid_t gid; }` from bits/socket.h (_GNU_SOURCE). */
export const ucred = { size: 12, pid: 0, uid: 4, gid: 8 } as const;

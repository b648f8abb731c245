/**
 * Platform constants for Linux on x86_64 and aarch64 with glibc.
 *
 * The two architectures agree on most values used here: they differ in `O_DIRECTORY`,
 * `O_NOFOLLOW`, `O_DIRECT` and `O_LARGEFILE` (asm-generic/fcntl.h against
 * arch/x86/include/uapi/asm/fcntl.h); the two of those this library passes are defined per
 * architecture below. Errno numbers come from asm-generic/errno-base.h and asm-generic/errno.h,
 * which both architectures use.
 *
 * Internal: nothing outside `src/` imports this.
 *
 * @module
 */

const arch = Deno.build.arch;

// <fcntl.h>
export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_ACCMODE = 3;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_NONBLOCK = 0o4000;
export const O_NOCTTY = 0o400;
export const O_CLOEXEC = 0o2000000;
/** Opens a file only to hold it (no read or write): what `openFifo` reopens through /proc. */
export const O_PATH = 0o10000000;
export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const F_DUPFD_CLOEXEC = 1030;
export const F_SETPIPE_SZ = 1031;
/** A flag that differs: 0o200000 on x86 (arch/x86 fcntl.h), 0o40000 in asm-generic. */
export const O_DIRECTORY = arch === "aarch64" ? 0o40000 : 0o200000;
/**
 * Does not follow a symlink at the path's end; with O_PATH it opens the link itself. Differs as
 * O_DIRECTORY does: 0o400000 on x86 (arch/x86 fcntl.h), 0o100000 in asm-generic.
 */
export const O_NOFOLLOW = arch === "aarch64" ? 0o100000 : 0o400000;
export const X_OK = 1;
export const FD_CLOEXEC = 1;
export const SEEK_CUR = 1;
export const SEEK_END = 2;

// <sys/mman.h>
export const PROT_READ = 1;
export const PROT_WRITE = 2;
export const MAP_SHARED = 0x01;
export const MAP_PRIVATE = 0x02;
export const MAP_FIXED = 0x10;
export const MAP_ANONYMOUS = 0x20;
export const MAP_NORESERVE = 0x4000;
export const PROT_NONE = 0;
export const MS_ASYNC = 1;
export const MS_SYNC = 4;
export const MADV_NORMAL = 0;
export const MADV_RANDOM = 1;
export const MADV_SEQUENTIAL = 2;
export const MADV_WILLNEED = 3;
export const MADV_DONTNEED = 4;
export const MFD_CLOEXEC = 1;
/** memfd_create: the file starts without F_SEAL_SEAL, so seals can be added (<linux/memfd.h>). */
export const MFD_ALLOW_SEALING = 2;

// <fcntl.h>, <linux/fcntl.h>: file seals (F_LINUX_SPECIFIC_BASE 1024 + 9 and + 10)
export const F_ADD_SEALS = 1033;
export const F_GET_SEALS = 1034;
/** No more seals can be added. */
export const F_SEAL_SEAL = 0x01;
/** The file cannot shrink. */
export const F_SEAL_SHRINK = 0x02;
/** The file cannot grow. */
export const F_SEAL_GROW = 0x04;
/** No write at all: no write(), no shared writable mapping (EBUSY while one exists). */
export const F_SEAL_WRITE = 0x08;
/** No new write access; mappings that exist keep writing (Linux 5.1). */
export const F_SEAL_FUTURE_WRITE = 0x10;

// <poll.h>
export const POLLIN = 0x01;
export const POLLOUT = 0x04;
export const POLLHUP = 0x10;
/** The peer shut down its writing side or closed (<poll.h> with _GNU_SOURCE). */
export const POLLRDHUP = 0x2000;

// <spawn.h> (glibc)
export const POSIX_SPAWN_SETPGROUP = 0x02;
export const POSIX_SPAWN_SETSIGDEF = 0x04;
export const POSIX_SPAWN_SETSIGMASK = 0x08;

// <time.h>
export const CLOCK_MONOTONIC = 1;

// <sys/resource.h>
export const RLIMIT_NPROC = 6;
export const RLIMIT_NOFILE = 7;
export const RLIMIT_MEMLOCK = 8;
export const RLIMIT_MSGQUEUE = 12;

// <fcntl.h>, <linux/stat.h>: for statx
export const AT_FDCWD = -100;
export const AT_SYMLINK_NOFOLLOW = 0x100;
export const STATX_BASIC_STATS = 0x7ff;
export const STATX_BTIME = 0x800;
/** The other file types of `stx_mode` (<sys/stat.h>), for messages about what cannot be mapped. */
export const S_IFSOCK = 0o140000;
export const S_IFLNK = 0o120000;
export const S_IFREG = 0o100000;
export const S_IFBLK = 0o060000;
export const S_IFDIR = 0o040000;
export const S_IFCHR = 0o020000;
export const STATX_TYPE = 0x1;
export const STATX_INO = 0x100;
export const AT_EMPTY_PATH = 0x1000;
/** The file type bits of `stx_mode`, and the type of a FIFO (<sys/stat.h>). */
export const S_IFMT = 0o170000;
export const S_IFIFO = 0o010000;
/**
 * The sticky bit. On a file in /dev/shm or the mqueue file system it means nothing to the
 * kernel, which keeps and shows it: the library sets it on the objects a handle owns (see
 * src/_owned.ts). <sys/stat.h>
 */
export const S_ISVTX = 0o1000;

// <sys/file.h>: flock operations
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;

// <semaphore.h>, <mqueue.h>, <limits.h>
export const SEM_VALUE_MAX = 0x7fffffff;
/** Linux's MQ_PRIO_MAX: priorities run from 0 to 32767. */
export const MQ_PRIO_MAX = 32768;

// <sys/ipc.h>, <sys/shm.h>, <sys/sem.h>, <sys/msg.h>
export const IPC_PRIVATE = 0;
export const IPC_CREAT = 0o1000;
export const IPC_EXCL = 0o2000;
export const IPC_NOWAIT = 0o4000;
export const IPC_RMID = 0;
export const IPC_SET = 1;
export const IPC_STAT = 2;
export const GETPID = 11;
export const GETVAL = 12;
export const GETALL = 13;
export const SETVAL = 16;
export const SEM_UNDO = 0x1000;
export const SHM_RDONLY = 0o10000;
export const SEMVMX = 32767;

// <linux/futex.h>: shared (not FUTEX_PRIVATE) operations, across processes.
export const FUTEX_WAIT = 0;
export const FUTEX_WAKE = 1;
/** The one syscall number here that differs: asm-generic numbers futex 98, x86_64 202. */
export const SYS_futex = arch === "aarch64" ? 98 : 202;

// <sys/wait.h>
export const WNOHANG = 1;

// <sys/syscall.h>: the numbers of the newer syscalls are shared by every architecture.
export const SYS_pidfd_send_signal = 424;
export const SYS_pidfd_open = 434;
/** futex_waitv(2), the same number on x86_64 and aarch64 (the generic table), Linux 5.16+. */
export const SYS_futex_waitv = 449;
/**
 * `FUTEX_32` of <linux/futex.h> (FUTEX2_SIZE_U32 in newer headers), a futex_waitv flag: a 32-bit
 * word, shared between processes (no FUTEX_PRIVATE_FLAG).
 */
export const FUTEX_32 = 0x02;
/** `FUTEX_WAITV_MAX` of <linux/futex.h>: the most words one futex_waitv call takes. */
export const FUTEX_WAITV_MAX = 128;

// <sys/socket.h>, <sys/un.h>: the same on x86_64 and aarch64 (asm-generic/socket.h numbers
// the SO_* options as x86 does; SOCK_NONBLOCK and SOCK_CLOEXEC are O_NONBLOCK and O_CLOEXEC).
export const AF_UNIX = 1;
export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_SEQPACKET = 5;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;
export const SOL_SOCKET = 1;
export const SO_TYPE = 3;
export const SO_DOMAIN = 39;
export const SO_ACCEPTCONN = 30;
export const SO_PASSCRED = 16;
export const SO_PEERCRED = 17;
export const SCM_RIGHTS = 1;
export const SCM_CREDENTIALS = 2;
export const MSG_CTRUNC = 0x08;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_NOSIGNAL = 0x4000;
export const MSG_CMSG_CLOEXEC = 0x40000000;
export const SHUT_RD = 0;
export const SHUT_WR = 1;
export const SHUT_RDWR = 2;
/** `AF_NETLINK`, `SOCK_RAW` and `NETLINK_ROUTE` (<linux/netlink.h>): the socket that
 * glibc's mq_notify makes for SIGEV_THREAD, which the kernel sends a queue's notice to. */
export const AF_NETLINK = 16;
export const SOCK_RAW = 3;
export const NETLINK_ROUTE = 0;

// mq_notify(2): SIGEV_THREAD from <bits/sigevent-consts.h> (2 in asm-generic/siginfo.h); the
// syscall number from <sys/syscall.h>: 244 on x86_64, 184 in the generic table (aarch64).
export const SIGEV_THREAD = 2;
export const SYS_mq_notify = arch === "aarch64" ? 184 : 244;
/** The cookie's length and the codes the kernel writes to its last byte, <linux/mqueue.h>. */
export const NOTIFY_COOKIE_LEN = 32;
/** The queue went from empty to non-empty: the one-shot registration is used up. */
export const NOTIFY_WOKENUP = 1;
/** The registration was removed (mq_notify(NULL), or its owner closed a descriptor of the queue). */
export const NOTIFY_REMOVED = 2;

// <signal.h>: x86_64 and aarch64 (asm-generic) number the classic signals alike.
export const SIGNALS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGILL: 4,
  SIGTRAP: 5,
  SIGABRT: 6,
  SIGBUS: 7,
  SIGFPE: 8,
  SIGKILL: 9,
  SIGUSR1: 10,
  SIGSEGV: 11,
  SIGUSR2: 12,
  SIGPIPE: 13,
  SIGALRM: 14,
  SIGTERM: 15,
  SIGSTKFLT: 16,
  SIGCHLD: 17,
  SIGCONT: 18,
  SIGSTOP: 19,
  SIGTSTP: 20,
  SIGTTIN: 21,
  SIGTTOU: 22,
  SIGURG: 23,
  SIGXCPU: 24,
  SIGXFSZ: 25,
  SIGVTALRM: 26,
  SIGPROF: 27,
  SIGWINCH: 28,
  SIGIO: 29,
  SIGPWR: 30,
  SIGSYS: 31,
};
/** Other names of the same numbers, accepted on input. */
export const SIGNAL_ALIASES: Readonly<Record<string, number>> = {
  SIGIOT: 6,
  SIGPOLL: 29,
  SIGCLD: 17,
};
/** The highest signal number (NSIG - 1). */
export const SIGNAL_MAX = 64;

// <limits.h>
export const NAME_MAX = 255;

// errno numbers that the library tests for by name (asm-generic/errno*.h, as x86_64 uses too).
export const EPERM = 1;
export const ENOENT = 2;
export const ESRCH = 3;
export const EINTR = 4;
export const ENXIO = 6;
export const EAGAIN = 11;
export const ENOMEM = 12;
export const EACCES = 13;
export const EBUSY = 16;
export const ENODEV = 19;
export const EISDIR = 21;
export const EINVAL = 22;
export const ENOSPC = 28;
export const EPIPE = 32;
export const EDEADLK = 35;
export const ENOSYS = 38;
export const ENOMSG = 42;
export const EIDRM = 43;
export const ETIMEDOUT = 110;
export const ENOTSOCK = 88;
export const ECONNABORTED = 103;
export const ECONNREFUSED = 111;

/** errno numbers with their symbolic names and a short description for messages. */
export const ERRNO: Readonly<Record<number, readonly [code: string, description: string]>> = {
  1: ["EPERM", "operation not permitted"],
  2: ["ENOENT", "not found"],
  3: ["ESRCH", "no such process"],
  4: ["EINTR", "interrupted by a signal"],
  5: ["EIO", "input/output error"],
  6: ["ENXIO", "no such device or address"],
  7: ["E2BIG", "argument list too long"],
  8: ["ENOEXEC", "not an executable format"],
  9: ["EBADF", "bad file descriptor"],
  10: ["ECHILD", "no child processes"],
  11: ["EAGAIN", "resource temporarily unavailable"],
  12: ["ENOMEM", "out of memory"],
  13: ["EACCES", "permission denied"],
  14: ["EFAULT", "bad address"],
  16: ["EBUSY", "resource busy"],
  17: ["EEXIST", "already exists"],
  18: ["EXDEV", "cross-device link"],
  19: ["ENODEV", "no such device"],
  20: ["ENOTDIR", "not a directory"],
  21: ["EISDIR", "is a directory"],
  22: ["EINVAL", "invalid argument"],
  23: ["ENFILE", "too many open files in the system"],
  24: ["EMFILE", "too many open files"],
  25: ["ENOTTY", "inappropriate ioctl for device"],
  26: ["ETXTBSY", "text file busy"],
  27: ["EFBIG", "file too large"],
  28: ["ENOSPC", "no space left on device"],
  29: ["ESPIPE", "illegal seek"],
  30: ["EROFS", "read-only file system"],
  31: ["EMLINK", "too many links"],
  32: ["EPIPE", "broken pipe"],
  34: ["ERANGE", "result out of range"],
  35: ["EDEADLK", "resource deadlock would occur"],
  36: ["ENAMETOOLONG", "name too long"],
  38: ["ENOSYS", "function not implemented"],
  39: ["ENOTEMPTY", "directory not empty"],
  40: ["ELOOP", "too many levels of symbolic links"],
  42: ["ENOMSG", "no message of the desired type"],
  43: ["EIDRM", "identifier removed"],
  75: ["EOVERFLOW", "value too large for defined data type"],
  90: ["EMSGSIZE", "message too long"],
  88: ["ENOTSOCK", "not a socket"],
  91: ["EPROTOTYPE", "wrong socket type"],
  95: ["EOPNOTSUPP", "operation not supported"],
  98: ["EADDRINUSE", "address already in use"],
  99: ["EADDRNOTAVAIL", "address not available"],
  103: ["ECONNABORTED", "connection aborted"],
  104: ["ECONNRESET", "connection reset by peer"],
  106: ["EISCONN", "already connected"],
  107: ["ENOTCONN", "not connected"],
  109: ["ETOOMANYREFS", "too many references: cannot splice"],
  110: ["ETIMEDOUT", "timed out"],
  111: ["ECONNREFUSED", "connection refused"],
  125: ["ECANCELED", "operation canceled"],
  130: ["EOWNERDEAD", "owner died"],
  131: ["ENOTRECOVERABLE", "state not recoverable"],
};

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
  // int statx(int dirfd, const char *path, int flags, unsigned int mask, struct statx *buf);
  statx: { parameters: ["i32", "buffer", "i32", "u32", "buffer"], result: "i32" },
  // int fchmod(int fd, mode_t mode);
  fchmod: { parameters: ["i32", "u32"], result: "i32" },
  // int chmod(const char *path, mode_t mode);
  chmod: { parameters: ["buffer", "u32"], result: "i32" },
  // int fchown(int fd, uid_t owner, gid_t group);  (uid_t)-1 leaves one unchanged
  fchown: { parameters: ["i32", "u32", "u32"], result: "i32" },
  // int chown(const char *path, uid_t owner, gid_t group);
  chown: { parameters: ["buffer", "u32", "u32"], result: "i32" },
  // int flock(int fd, int operation);  only with LOCK_NB here, so it never blocks
  flock: { parameters: ["i32", "i32"], result: "i32" },
  // ssize_t readlink(const char *path, char *buf, size_t size);
  readlink: { parameters: ["buffer", "buffer", "usize"], result: "isize" },
  // DIR *opendir(const char *path);
  opendir: { parameters: ["buffer"], result: "pointer" },
  // struct dirent *readdir(DIR *dir);
  readdir: { parameters: ["pointer"], result: "pointer" },
  // int closedir(DIR *dir);
  closedir: { parameters: ["pointer"], result: "i32" },

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

  // int pipe2(int pipefd[2], int flags);
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  // ssize_t read(int fd, void *buf, size_t count);
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // ssize_t write(int fd, const void *buf, size_t count);
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  // int poll(struct pollfd *fds, nfds_t nfds, int timeout);  blocks the calling thread
  poll: { parameters: ["buffer", "u64", "i32"], result: "i32" },
  // the same poll on a worker thread, for async waits in bounded slices; errno is lost
  poll_async: {
    name: "poll",
    parameters: ["buffer", "u64", "i32"],
    result: "i32",
    nonblocking: true,
  },
  // int open(const char *path, int flags, mode_t mode);  on a worker thread: a FIFO's open waits
  open_async: {
    name: "open",
    parameters: ["buffer", "i32", "u32"],
    result: "i32",
    nonblocking: true,
  },
  // int mkfifo(const char *path, mode_t mode);
  mkfifo: { parameters: ["buffer", "u32"], result: "i32" },
  // int access(const char *path, int mode);
  access: { parameters: ["buffer", "i32"], result: "i32" },
  // extern char **environ;
  environ: { type: "pointer" },

  // int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *actions,
  //                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]);
  //   returns an error number, not -1
  posix_spawn: {
    parameters: ["buffer", "buffer", "buffer", "buffer", "pointer", "pointer"],
    result: "i32",
  },
  // int posix_spawn_file_actions_init(posix_spawn_file_actions_t *actions);
  posix_spawn_file_actions_init: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_destroy(posix_spawn_file_actions_t *actions);
  posix_spawn_file_actions_destroy: { parameters: ["buffer"], result: "i32" },
  // int posix_spawn_file_actions_adddup2(posix_spawn_file_actions_t *actions, int fd, int newfd);
  posix_spawn_file_actions_adddup2: { parameters: ["buffer", "i32", "i32"], result: "i32" },
  // int posix_spawn_file_actions_addclose(posix_spawn_file_actions_t *actions, int fd);
  posix_spawn_file_actions_addclose: { parameters: ["buffer", "i32"], result: "i32" },
  // int posix_spawn_file_actions_addopen(posix_spawn_file_actions_t *actions, int fd,
  //                                      const char *path, int oflag, mode_t mode);
  posix_spawn_file_actions_addopen: {
    parameters: ["buffer", "i32", "buffer", "i32", "u32"],
    result: "i32",
  },
  // int posix_spawn_file_actions_addchdir_np(posix_spawn_file_actions_t *actions, const char *path);
  posix_spawn_file_actions_addchdir_np: { parameters: ["buffer", "buffer"], result: "i32" },
  // int posix_spawn_file_actions_addclosefrom_np(posix_spawn_file_actions_t *actions, int from);
  posix_spawn_file_actions_addclosefrom_np: { parameters: ["buffer", "i32"], result: "i32" },
  // int posix_spawnattr_init(posix_spawnattr_t *attr);
  posix_spawnattr_init: { parameters: ["buffer"], result: "i32" },
  // int posix_spawnattr_destroy(posix_spawnattr_t *attr);
  posix_spawnattr_destroy: { parameters: ["buffer"], result: "i32" },
  // int posix_spawnattr_setflags(posix_spawnattr_t *attr, short flags);
  posix_spawnattr_setflags: { parameters: ["buffer", "i16"], result: "i32" },
  // int posix_spawnattr_setpgroup(posix_spawnattr_t *attr, pid_t pgroup);
  posix_spawnattr_setpgroup: { parameters: ["buffer", "i32"], result: "i32" },
  // int posix_spawnattr_setsigmask(posix_spawnattr_t *attr, const sigset_t *mask);
  posix_spawnattr_setsigmask: { parameters: ["buffer", "buffer"], result: "i32" },
  // int posix_spawnattr_setsigdefault(posix_spawnattr_t *attr, const sigset_t *set);
  posix_spawnattr_setsigdefault: { parameters: ["buffer", "buffer"], result: "i32" },
  // int sigemptyset(sigset_t *set);
  sigemptyset: { parameters: ["buffer"], result: "i32" },
  // int sigfillset(sigset_t *set);
  sigfillset: { parameters: ["buffer"], result: "i32" },
  // int sigaddset(sigset_t *set, int signum);
  sigaddset: { parameters: ["buffer", "i32"], result: "i32" },
  // pid_t waitpid(pid_t pid, int *wstatus, int options);
  waitpid: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  // long syscall(long number, long a, long b);  for pidfd_open (no libc wrapper before 2.36)
  syscall2: { name: "syscall", parameters: ["i64", "i64", "i64"], result: "i64" },
  // long syscall(long number, long a, long b, long c, long d);  for pidfd_send_signal
  syscall4: {
    name: "syscall",
    parameters: ["i64", "i64", "i64", "i64", "i64"],
    result: "i64",
  },
  // long syscall(SYS_mq_notify, mqd_t mqdes, const struct sigevent *notification);  the raw
  //   call: glibc's mq_notify would start a helper thread for SIGEV_THREAD; this one takes our
  //   own netlink socket (sigev_signo) and cookie (sigev_value), or NULL to deregister
  mq_notify_syscall: { name: "syscall", parameters: ["i64", "i64", "buffer"], result: "i64" },

  // int clock_gettime(clockid_t clock, struct timespec *now);
  clock_gettime: { parameters: ["i32", "buffer"], result: "i32" },
  // int getrlimit(int resource, struct rlimit *limit);
  getrlimit: { parameters: ["i32", "buffer"], result: "i32" },

  // sem_t *sem_open(const char *name, int oflag, mode_t mode, unsigned int value);  NULL on failure
  sem_open: { parameters: ["buffer", "i32", "u32", "u32"], result: "pointer" },
  // int sem_close(sem_t *sem);
  sem_close: { parameters: ["pointer"], result: "i32" },
  // int sem_unlink(const char *name);
  sem_unlink: { parameters: ["buffer"], result: "i32" },
  // int sem_init(sem_t *sem, int pshared, unsigned int value);
  sem_init: { parameters: ["pointer", "i32", "u32"], result: "i32" },
  // int sem_post(sem_t *sem);
  sem_post: { parameters: ["pointer"], result: "i32" },
  // int sem_trywait(sem_t *sem);
  sem_trywait: { parameters: ["pointer"], result: "i32" },
  // int sem_wait(sem_t *sem);  blocks the calling thread
  sem_wait: { parameters: ["pointer"], result: "i32" },
  // int sem_clockwait(sem_t *sem, clockid_t clock, const struct timespec *deadline);  blocks
  sem_clockwait: { parameters: ["pointer", "i32", "buffer"], result: "i32" },
  // the same on a worker thread, for async waits in bounded slices; errno is lost (0: acquired)
  sem_clockwait_async: {
    name: "sem_clockwait",
    parameters: ["pointer", "i32", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // int sem_getvalue(sem_t *sem, int *value);
  sem_getvalue: { parameters: ["pointer", "buffer"], result: "i32" },

  // mqd_t mq_open(const char *name, int oflag, mode_t mode, struct mq_attr *attr);
  mq_open: { parameters: ["buffer", "i32", "u32", "buffer"], result: "i32" },
  // int mq_unlink(const char *name);
  mq_unlink: { parameters: ["buffer"], result: "i32" },
  // int mq_send(mqd_t mqdes, const char *msg, size_t length, unsigned int priority);
  mq_send: { parameters: ["i32", "buffer", "usize", "u32"], result: "i32" },
  // ssize_t mq_receive(mqd_t mqdes, char *msg, size_t length, unsigned int *priority);
  mq_receive: { parameters: ["i32", "buffer", "usize", "buffer"], result: "isize" },
  // int mq_getattr(mqd_t mqdes, struct mq_attr *attr);
  mq_getattr: { parameters: ["i32", "buffer"], result: "i32" },

  // key_t ftok(const char *path, int project);
  ftok: { parameters: ["buffer", "i32"], result: "i32" },
  // int shmget(key_t key, size_t size, int flags);
  shmget: { parameters: ["i32", "usize", "i32"], result: "i32" },
  // void *shmat(int shmid, const void *address, int flags);  (void *) -1 on failure
  shmat: { parameters: ["i32", "pointer", "i32"], result: "pointer" },
  // int shmdt(const void *address);
  shmdt: { parameters: ["pointer"], result: "i32" },
  // int shmctl(int shmid, int command, struct shmid_ds *buffer);
  shmctl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // int semget(key_t key, int count, int flags);
  semget: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int semtimedop(int semid, struct sembuf *operations, size_t count, const struct timespec *timeout);
  semtimedop: { parameters: ["i32", "buffer", "usize", "buffer"], result: "i32" },
  // the same on a worker thread, for async waits in bounded slices; errno is lost (0: done)
  semtimedop_async: {
    name: "semtimedop",
    parameters: ["i32", "buffer", "usize", "buffer"],
    result: "i32",
    nonblocking: true,
  },
  // int semctl(int semid, int index, int command, union semun value);  GETVAL, SETVAL
  semctl_value: { name: "semctl", parameters: ["i32", "i32", "i32", "i64"], result: "i32" },
  // int semctl(int semid, int index, int command, union semun buffer);  IPC_STAT, GETALL, IPC_RMID
  semctl_buffer: { name: "semctl", parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int msgget(key_t key, int flags);
  msgget: { parameters: ["i32", "i32"], result: "i32" },
  // int msgsnd(int msqid, const void *message, size_t length, int flags);
  msgsnd: { parameters: ["i32", "buffer", "usize", "i32"], result: "i32" },
  // ssize_t msgrcv(int msqid, void *message, size_t length, long type, int flags);
  msgrcv: { parameters: ["i32", "buffer", "usize", "i64", "i32"], result: "isize" },
  // int msgctl(int msqid, int command, struct msqid_ds *buffer);
  msgctl: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  // long syscall(SYS_futex, uint32_t *word, int op, uint32_t value, const struct timespec *timeout);
  //   FUTEX_WAIT blocks this thread; FUTEX_WAKE does not
  futex: {
    name: "syscall",
    parameters: ["i64", "pointer", "i64", "i64", "pointer"],
    result: "i64",
  },
  // the same on a worker thread, for async waits in bounded slices
  futex_async: {
    name: "syscall",
    parameters: ["i64", "pointer", "i64", "i64", "pointer"],
    result: "i64",
    nonblocking: true,
  },

  // long syscall(SYS_futex_waitv, struct futex_waitv *waiters, unsigned int count,
  //   unsigned int flags, const struct timespec *deadline, clockid_t clock);  Linux 5.16+:
  //   sleeps until one of up to 128 futex words is woken; the index of the woken word, or -1
  //   (ETIMEDOUT at the absolute deadline, EAGAIN when a word held another value, ENOSYS)
  futex_waitv: {
    name: "syscall",
    parameters: ["i64", "buffer", "i64", "i64", "buffer", "i64"],
    result: "i64",
  },
  // the same on a worker thread, for select's waits in bounded slices; errno is lost
  futex_waitv_async: {
    name: "syscall",
    parameters: ["i64", "buffer", "i64", "i64", "buffer", "i64"],
    result: "i64",
    nonblocking: true,
  },
  // int socket(int domain, int type, int protocol);
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  // int socketpair(int domain, int type, int protocol, int sv[2]);
  socketpair: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  // int bind(int fd, const struct sockaddr *address, socklen_t length);
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // int listen(int fd, int backlog);
  listen: { parameters: ["i32", "i32"], result: "i32" },
  // int accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);
  //   only on a non-blocking listener here, so it never blocks
  accept4: { parameters: ["i32", "pointer", "pointer", "i32"], result: "i32" },
  // int connect(int fd, const struct sockaddr *address, socklen_t length);
  //   only on a non-blocking socket here, so it never blocks
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  // ssize_t sendmsg(int fd, const struct msghdr *message, int flags);  always with MSG_DONTWAIT
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // ssize_t recvmsg(int fd, struct msghdr *message, int flags);  always with MSG_DONTWAIT
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "isize" },
  // int getsockname(int fd, struct sockaddr *address, socklen_t *length);
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  // int shutdown(int fd, int how);
  shutdown: { parameters: ["i32", "i32"], result: "i32" },
  // int getsockopt(int fd, int level, int name, void *value, socklen_t *length);
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  // int setsockopt(int fd, int level, int name, const void *value, socklen_t length);
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  // int unlink(const char *path);
  unlink: { parameters: ["buffer"], result: "i32" },

  // int sched_yield(void);
  sched_yield: { parameters: [], result: "i32" },
  // int sched_getcpu(void);
  sched_getcpu: { parameters: [], result: "i32" },
  // int kill(pid_t pid, int sig);
  kill: { parameters: ["i32", "i32"], result: "i32" },
  // pid_t getpgrp(void);
  getpgrp: { parameters: [], result: "i32" },
  // int __libc_current_sigrtmin(void);  glibc reserves the first real-time signals
  __libc_current_sigrtmin: { parameters: [], result: "i32" },
  // int __libc_current_sigrtmax(void);
  __libc_current_sigrtmax: { parameters: [], result: "i32" },
} as const satisfies Deno.ForeignLibraryInterface;

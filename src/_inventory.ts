/**
 * Every IPC object on the machine, read from /dev/shm, the mqueue file system and
 * /proc/sysvipc, with the processes that use them and what `ipc gc` may do with each: the data
 * behind `ipc ls`, `ipc rm` and `ipc gc`. Internal: the public face is src/cli.ts.
 *
 * An orphan is an object that is provably abandoned, never one that only looks unused now:
 * - a POSIX object that a handle of this library created and promised to remove (it carries
 *   the mark of src/_owned.ts), whose owning handle is gone (the kernel says so: the lock that
 *   handle held on it is free) and that no process has open or mapped. Removing its name does what that handle's `close()` would have done.
 * - nothing else. A persisted object or another program's (no mark) may be wanted by a process
 *   that comes later; so may a queue with messages, and a System V object, which outlives its
 *   creator by design (the kernel records no owner that promised to remove it, and a segment
 *   whose creator is gone and that nothing has attached may still hold data for the next run,
 *   as PostgreSQL's do). These are "unused" at most, and only `ipc gc --force` removes them.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  EACCES,
  EBUSY,
  ENOENT,
  EPERM,
  GETPID,
  IPC_RMID,
  O_CLOEXEC,
  O_NONBLOCK,
  O_RDONLY,
  S_IFREG,
} from "../ffi/constants.ts";
import { mq_attr } from "../ffi/layout.ts";
import { errno, libc } from "../ffi/libc.ts";
import { check, isSystemError, systemError } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { processIsDead } from "./_liveness.ts";
import { isMarked, probeOwner } from "./_owned.ts";
import { type FileStatus, fileStatus, listDirectory, readLink, readProcText } from "./_proc.ts";
import { MessageQueue } from "./mqueue.ts";
import { Semaphore } from "./semaphore.ts";
import { SharedMemory } from "./shm.ts";

/** One kind of IPC object: POSIX shared memory, semaphore, message queue, or a System V one. */
export type IpcKind = "shm" | "sem" | "mq" | "sysv-shm" | "sysv-sem" | "sysv-msg";

/** The kinds of object the inspector knows, as `--kind` takes them. */
export const KINDS: readonly IpcKind[] = ["shm", "sem", "mq", "sysv-shm", "sysv-sem", "sysv-msg"];

const KIND_SET: ReadonlySet<string> = new Set(KINDS);

/** Whether `kind` is one of {@linkcode KINDS} (a Set lookup: no prototype key passes). */
export function isKind(kind: string): kind is IpcKind {
  return KIND_SET.has(kind);
}

/** A process the kernel records for an object, and whether it still runs. */
export interface IpcProcess {
  /** The process id. */
  pid: number;
  /**
   * What it did: created the object, last operated on it, has it open or mapped now, or (a
   * POSIX message queue's) is registered for its notification (`mq_notify`).
   */
  role:
    | "creator"
    | "last-attach"
    | "last-op"
    | "last-send"
    | "last-receive"
    | "user"
    | "notified";
  /** `false` once the process is gone (a zombie counts as gone). */
  alive: boolean;
}

/**
 * What `ipc gc` makes of an object:
 * - "orphaned": provably abandoned; `ipc gc` removes it;
 * - "unused": nothing seems to use it now, but it may be wanted later (persisted, another
 *   program's, messages waiting, System V); only `ipc gc --force` removes it;
 * - "in use": a process has it open, mapped or attached, or its owner runs; never removed;
 * - "unknown": the kernel tells too little; never removed by `ipc gc`.
 */
export type IpcState = "orphaned" | "unused" | "in use" | "unknown";

/** One IPC object as `ipc ls --json` prints it. Fields that do not apply to a kind are `null`. */
export interface IpcObject {
  /** The kind of object. */
  kind: IpcKind;
  /** POSIX objects: the name ("/jobs"). System V: the key in hex ("0x0000002a"). */
  name: string;
  /** System V: the id that `ipc rm` takes. POSIX: `null`. */
  id: number | null;
  /** POSIX: the inode of its file, which tells it from a later object of the same name. */
  inode: number | null;
  /** Bytes: of the segment (shm, sysv-shm), or queued (mq, sysv-msg). */
  size: number | null;
  /** Permission bits, such as 0o600 (384). */
  mode: number;
  /** The owner's user id. */
  uid: number;
  /** The owner's name, or the uid as text when /etc/passwd does not know it. */
  owner: string;
  /**
   * POSIX: whether a handle of this library created it and removes it when closed (not
   * persisted), as the mark it set tells. System V: `null`.
   */
  owned: boolean | null;
  /** Messages waiting (mq, sysv-msg). */
  messages: number | null;
  /** Semaphores in the set (sysv-sem). */
  semaphores: number | null;
  /** The count of a POSIX named semaphore. */
  value: number | null;
  /** Processes attached (sysv-shm) or that have it open or mapped (POSIX). */
  attached: number | null;
  /** The processes the kernel records for it, and those that use it now. */
  processes: IpcProcess[];
  /** When it was created (System V: last changed), as an ISO date. */
  created: string;
  /** What `ipc gc` makes of it. */
  state: IpcState;
  /**
   * Why, in words: "owned by a handle that is gone, nothing has it open" for an orphan, else
   * "kept: …" ("kept: persisted, or made by another program", "kept: 2 messages waiting",
   * "kept: attached by 2 processes").
   */
  reason: string;
  /** Whether it is provably abandoned: `state === "orphaned"`. */
  orphaned: boolean;
}

/** What a listing found, and what it could not look at. */
export interface Inventory {
  objects: IpcObject[];
  /** Why some kind could not be listed, with what to do about it. */
  notes: string[];
}

/** Lists the objects of the given kinds (all by default). */
export function inventory(kinds: readonly IpcKind[] = KINDS): Inventory {
  const notes: string[] = [];
  const users = needsUsers(kinds) ? scanUsers() : emptyUsers();
  const owners = userNames();
  const objects: IpcObject[] = [];
  if (kinds.includes("shm") || kinds.includes("sem")) objects.push(...devShm(kinds, users, owners));
  if (kinds.includes("mq")) objects.push(...messageQueues(users, owners, notes));
  for (const kind of ["sysv-shm", "sysv-sem", "sysv-msg"] as const) {
    if (kinds.includes(kind)) objects.push(...systemV(kind, owners, notes));
  }
  return { objects, notes };
}

/**
 * Removes an object that {@linkcode inventory} listed: unlinks a POSIX name, or IPC_RMID on a
 * System V id, once it has checked that the name or id still names that object (not one made
 * since under the same name, or given the same id).
 *
 * With `asOrphan` (for a POSIX object listed as orphaned), it is removed only while the kernel
 * still says its owner is gone: the owner's lock is held exclusively across the unlink.
 *
 * @throws {Deno.errors.NotFound} when it is gone or was replaced since it was listed.
 * @throws {Deno.errors.Busy} when its owner's handle is open again.
 * @throws {Deno.errors.PermissionDenied} when it is another user's, with a message that names
 * the owner.
 */
export function removeObject(object: IpcObject, asOrphan = false): void {
  try {
    removeChecked(object, asOrphan);
  } catch (error) {
    throw deniedByOwner(error, object);
  }
}

/**
 * The error of a removal refused for lack of rights (EPERM, EACCES), told in terms of the
 * object's owner: /dev/shm and the mqueue directory are sticky, so only a file's owner (or
 * root) may remove it, and IPC_RMID is allowed to the owner, the creator and root. Any other
 * error is returned as it is.
 */
function deniedByOwner(error: unknown, object: IpcObject): unknown {
  if (!(error instanceof Deno.errors.PermissionDenied) || !isSystemError(error)) return error;
  const owner = object.owner === String(object.uid)
    ? `uid ${object.uid}`
    : `uid ${object.uid} (${object.owner})`;
  const who = object.id === null
    ? "only its owner or root may remove it"
    : "only its owner, its creator or root may remove it";
  return systemError(error.errno, error.syscall, {
    action: `remove ${object.kind}`,
    objectName: object.name,
    hint: `it is owned by ${owner}; ${who}` +
      (object.id === null ? ` (the directory is sticky: other users' files stay)` : ""),
  });
}

function removeChecked(object: IpcObject, asOrphan: boolean): void {
  const c = libc();
  const operation = { action: `remove ${object.kind}`, objectName: object.name };
  switch (object.kind) {
    case "shm":
    case "sem":
    case "mq":
      if (asOrphan) return removeUnderOwnerLock(object);
      assertSameFile(object);
      return unlinkPosix(object);
    case "sysv-shm":
    case "sysv-sem":
    case "sysv-msg": {
      const id = assertSameSystemV(object);
      if (object.kind === "sysv-shm") check(c.shmctl(id, IPC_RMID, null), "shmctl", operation);
      else if (object.kind === "sysv-sem") {
        check(c.semctl_buffer(id, 0, IPC_RMID, null), "semctl", operation);
      } else check(c.msgctl(id, IPC_RMID, null), "msgctl", operation);
      return;
    }
  }
}

function replaced(object: IpcObject, syscall: string): Error {
  return systemError(ENOENT, syscall, {
    action: `remove ${object.kind}`,
    objectName: object.name,
    hint: "it was removed, or replaced by another object, since it was listed",
  });
}

/** The path of a POSIX object's file, where the inspector reads it. */
function posixPath(object: Pick<IpcObject, "kind" | "name">): string | undefined {
  if (object.kind === "shm") return `/dev/shm${object.name}`;
  if (object.kind === "sem") return `/dev/shm/sem.${object.name.slice(1)}`;
  const mount = mqueueMount();
  return mount === undefined ? undefined : `${mount}${object.name}`;
}

function assertSameFile(object: IpcObject): void {
  const path = posixPath(object);
  const status = path === undefined ? undefined : fileStatus(path);
  if (!status || status.inode !== object.inode) throw replaced(object, "statx");
}

/** Opens a POSIX object's file, read-only, to ask about it, or returns -1. */
function openObject(object: Pick<IpcObject, "kind" | "name">): number {
  const flags = O_RDONLY | O_NONBLOCK | O_CLOEXEC;
  if (object.kind === "mq") return libc().mq_open(cstring(object.name), flags, 0, null);
  return libc().open(cstring(posixPath(object)!), flags, 0);
}

function unlinkPosix(object: IpcObject): void {
  if (object.kind === "shm") SharedMemory.unlink(object.name);
  else if (object.kind === "sem") Semaphore.unlink(object.name);
  else MessageQueue.unlink(object.name);
}

/** Removes an orphan while holding the lock its owner held, taken exclusively. */
function removeUnderOwnerLock(object: IpcObject): void {
  const fd = openObject(object);
  if (fd < 0) {
    const syscall = object.kind === "mq" ? "mq_open" : "open";
    const code = errno();
    if (code === EACCES || code === EPERM) {
      throw systemError(code, syscall, { action: `remove ${object.kind}` }); // told by owner above
    }
    throw replaced(object, syscall);
  }
  try {
    const owner = probeOwner(fd, object.inode ?? -1);
    if (owner === "present") {
      throw systemError(EBUSY, "flock", {
        action: `remove ${object.kind}`,
        objectName: object.name,
        hint: "the handle that owns it is open again",
      });
    }
    if (owner !== "gone") throw replaced(object, "flock");
    // The name still names the file we hold locked: no owner can take it back meanwhile.
    assertSameFile(object);
    unlinkPosix(object);
  } finally {
    closeFd(fd); // releases the exclusive lock
  }
}

/**
 * Checks that the System V id still names the object listed: same key and owner, and for a
 * segment the same creator. (Not the change time: a semaphore set's changes with every SETVAL.)
 * An id names a new object only after the old one went and its slot's sequence number wrapped.
 */
function assertSameSystemV(object: IpcObject): number {
  const kind = object.kind as SystemVKind;
  const now = systemV(kind, new Map(), []).find((fresh) => fresh.id === object.id);
  const creator = (o: IpcObject) => o.processes.find((p) => p.role === "creator")?.pid;
  if (
    !now || now.name !== object.name || now.uid !== object.uid || creator(now) !== creator(object)
  ) {
    const syscall = kind === "sysv-shm" ? "shmctl" : kind === "sysv-sem" ? "semctl" : "msgctl";
    throw replaced(object, syscall);
  }
  return now.id!;
}

/** Which processes have a /dev/shm file or a message queue open or mapped. */
interface Users {
  /** By the inode of a file in /dev/shm (glibc maps a semaphore under a temporary name). */
  byInode: Map<number, Set<number>>;
  /** By the inode of a message queue, from the fd links ("/jobs"). */
  byQueue: Map<number, Set<number>>;
}

function emptyUsers(): Users {
  return { byInode: new Map(), byQueue: new Map() };
}

function needsUsers(kinds: readonly IpcKind[]): boolean {
  return kinds.includes("shm") || kinds.includes("sem") || kinds.includes("mq");
}

/**
 * Walks /proc: every readable process's fds and mappings. Those that cannot be read (another
 * user's, for a user other than root) are skipped: no verdict rests on this walk alone.
 */
function scanUsers(): Users {
  const users = emptyUsers();
  const add = <K>(map: Map<K, Set<number>>, key: K, pid: number) => {
    const set = map.get(key) ?? new Set<number>();
    set.add(pid);
    map.set(key, set);
  };
  for (const entry of listDirectory("/proc") ?? []) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    for (const fd of listDirectory(`/proc/${pid}/fd`) ?? []) {
      const link = `/proc/${pid}/fd/${fd}`;
      const target = readLink(link);
      if (target === undefined) continue;
      const shm = target.startsWith("/dev/shm/");
      if (!shm && !/^\/[^/]+$/.test(target)) continue; // a queue's fd links to "/name"
      // The open file itself (following the link), not whatever the name holds now.
      const status = fileStatus(link, true);
      if (status) add(shm ? users.byInode : users.byQueue, status.inode, pid);
    }
    const maps = readProcText(`/proc/${pid}/maps`, 16 << 20) ?? "";
    for (const line of maps.split("\n")) {
      const at = line.indexOf(" /dev/shm/");
      if (at < 0) continue;
      const inode = Number(line.slice(0, at).trim().split(/\s+/)[4]);
      if (inode > 0) add(users.byInode, inode, pid);
    }
  }
  return users;
}

type Verdict = Pick<IpcObject, "state" | "reason">;

const ORPHAN = "owned by a handle that is gone";

function plural(count: number, noun: string): string {
  return `${count} ${noun}${count === 1 ? "" : "s"}`;
}

/** The verdict on a POSIX object, from who has it open and what the kernel says of its owner. */
function judgePosix(
  kind: "shm" | "sem" | "mq",
  pids: number[],
  owner: ReturnType<typeof probeOwner>,
  messages: number | null,
): Verdict {
  const use = kind === "sem" ? "mapped" : "open or mapped";
  if (pids.length > 0) {
    return { state: "in use", reason: `kept: ${use} by ${plural(pids.length, "process")}` };
  }
  if (owner === "present") {
    return { state: "in use", reason: "kept: the handle that owns it is open" };
  }
  if (owner === "unknown" || owner === "replaced") {
    return {
      state: "unknown",
      reason: owner === "replaced"
        ? "kept: it was replaced while being inspected"
        : "kept: the kernel would not say whether the handle that owns it is open",
    };
  }
  if (messages !== null && messages > 0) {
    return { state: "unused", reason: `kept: ${plural(messages, "message")} waiting` };
  }
  if (owner === "gone") {
    return { state: "orphaned", reason: `${ORPHAN}, nothing has it ${use}` };
  }
  return {
    state: "unused",
    reason: `kept: persisted, or made by another program; nothing has it ${use}`,
  };
}

function devShm(kinds: readonly IpcKind[], users: Users, owners: Map<number, string>): IpcObject[] {
  const objects: IpcObject[] = [];
  for (const file of listDirectory("/dev/shm") ?? []) {
    const semaphore = file.startsWith("sem.");
    const kind = semaphore ? "sem" : "shm";
    if (!kinds.includes(kind)) continue;
    const status = fileStatus(`/dev/shm/${file}`);
    if (status?.type !== S_IFREG) continue; // removed meanwhile, or no shm_open object
    const name = `/${semaphore ? file.slice(4) : file}`;
    const pids = [...(users.byInode.get(status.inode) ?? [])];
    const marked = isMarked(status.mode);
    const owner = marked ? probe({ kind, name }, status.inode) : "unmarked";
    objects.push({
      ...blank(kind, name, status.mode, status.uid, owners, status.created),
      inode: status.inode,
      owned: marked,
      size: semaphore ? null : status.size,
      value: semaphore ? semaphoreValue(name) : null,
      attached: pids.length,
      processes: pids.map((pid) => recorded(pid, "user")),
      ...verdict(judgePosix(kind, pids, owner, null)),
    });
  }
  return objects;
}

/** What the kernel says of the owner of a marked shm or mq object (see `probeOwner`). */
function probe(object: Pick<IpcObject, "kind" | "name">, inode: number) {
  const fd = openObject(object);
  if (fd < 0) return "unknown" as const;
  try {
    return probeOwner(fd, inode);
  } finally {
    closeFd(fd);
  }
}

function verdict(judged: Verdict): Verdict & { orphaned: boolean } {
  return { ...judged, orphaned: judged.state === "orphaned" };
}

function semaphoreValue(name: string): number | null {
  try {
    using semaphore = Semaphore.open(name);
    return semaphore.value;
  } catch {
    return null; // not ours to open, or gone
  }
}

/** Where the mqueue file system is mounted in this mount namespace, if anywhere. */
export function mqueueMount(): string | undefined {
  const mounts = readProcText("/proc/self/mounts", 1 << 20) ?? "";
  return mounts.split("\n").map((line) => line.split(" ")).find((fields) => fields[2] === "mqueue")
    ?.[1];
}

function messageQueues(users: Users, owners: Map<number, string>, notes: string[]): IpcObject[] {
  const mount = mqueueMount();
  if (mount === undefined) {
    notes.push(
      "POSIX message queues cannot be listed: no mqueue file system is mounted. As root: " +
        "mkdir -p /dev/mqueue && mount -t mqueue none /dev/mqueue",
    );
    return [];
  }
  const objects: IpcObject[] = [];
  for (const file of listDirectory(mount) ?? []) {
    const status = fileStatus(`${mount}/${file}`);
    if (status?.type !== S_IFREG) continue;
    const name = `/${file}`;
    const pids = [...(users.byQueue.get(status.inode) ?? [])];
    // The file reads "QSIZE:128 NOTIFY:0 SIGNO:0 NOTIFY_PID:0 ".
    const text = readProcText(`${mount}/${file}`, 256) ?? "";
    const queued = Number(/QSIZE:(\d+)/.exec(text)?.[1] ?? NaN);
    const notified = Number(/NOTIFY_PID:(\d+)/.exec(text)?.[1] ?? 0); // 0: nobody registered
    const { messages, owner } = inspectQueue(name, status);
    objects.push({
      ...blank("mq", name, status.mode, status.uid, owners, status.created),
      inode: status.inode,
      owned: isMarked(status.mode),
      size: Number.isFinite(queued) ? queued : null,
      messages,
      attached: pids.length,
      processes: [
        ...pids.map((pid) => recorded(pid, "user")),
        ...(notified > 0 ? [recorded(notified, "notified")] : []),
      ],
      ...verdict(judgePosix("mq", pids, owner, messages)),
    });
  }
  return objects;
}

/**
 * Messages in a queue (mq_getattr) and what the kernel says of its owner, through a read-only
 * descriptor that receives nothing.
 */
function inspectQueue(
  name: string,
  status: FileStatus,
): { messages: number | null; owner: ReturnType<typeof probeOwner> } {
  const c = libc();
  const fd = openObject({ kind: "mq", name });
  if (fd < 0) return { messages: null, owner: "unknown" };
  try {
    const attributes = new BigInt64Array(mq_attr.size / 8);
    const messages = c.mq_getattr(fd, attributes) === 0
      ? Number(attributes[mq_attr.mq_curmsgs / 8])
      : null;
    const owner = isMarked(status.mode) ? probeOwner(fd, status.inode) : "unmarked";
    // Messages unknown: never judged empty.
    return { messages, owner: messages === null ? "unknown" : owner };
  } finally {
    closeFd(fd);
  }
}

type SystemVKind = "sysv-shm" | "sysv-sem" | "sysv-msg";

const SYSV_KEPT = "may hold data for a later process (System V objects outlive their " +
  "creators by design); --force removes it";

function systemV(kind: SystemVKind, owners: Map<number, string>, notes: string[]): IpcObject[] {
  const file = `/proc/sysvipc/${kind.slice(5)}`;
  const text = readProcText(file, 16 << 20);
  if (text === undefined) {
    notes.push(`System V objects cannot be listed: ${file} cannot be read`);
    return [];
  }
  const [header = "", ...rows] = text.split("\n");
  const columns = header.trim().split(/\s+/);
  const objects: IpcObject[] = [];
  for (const row of rows) {
    const values = row.trim().split(/\s+/);
    if (values.length < columns.length) continue;
    const field = (name: string) => Number(values[columns.indexOf(name)]);
    const key = field("key");
    const id = field(kind === "sysv-shm" ? "shmid" : kind === "sysv-sem" ? "semid" : "msqid");
    const mode = parseInt(values[columns.indexOf("perms")]!, 8) & 0o777;
    const object = {
      ...blank(kind, keyName(key), mode, field("uid"), owners, new Date(field("ctime") * 1000)),
      id,
    };
    // A pid of 0 is a process of another PID namespace (or none yet): not judged.
    if (kind === "sysv-shm") {
      const creator = recorded(field("cpid"), "creator");
      const last = recorded(field("lpid"), "last-attach");
      const attached = field("nattch");
      let judged: Verdict;
      if (attached > 0) {
        judged = { state: "in use", reason: `kept: attached by ${plural(attached, "process")}` };
      } else if (creator.alive) {
        judged = { state: "in use", reason: `kept: its creator (pid ${creator.pid}) runs` };
      } else if (last.alive) {
        judged = { state: "in use", reason: `kept: pid ${last.pid}, which attached it last, runs` };
      } else if (creator.pid <= 0) {
        judged = { state: "unknown", reason: "kept: its creator is not visible here" };
      } else {
        judged = {
          state: "unused",
          reason: `kept: its creator is gone and nothing is attached, but it ${SYSV_KEPT}`,
        };
      }
      objects.push({
        ...object,
        size: field("size"),
        attached,
        processes: [creator, last].filter((p) => p.pid > 0),
        ...verdict(judged),
      });
    } else if (kind === "sysv-msg") {
      const processes = [
        recorded(field("lspid"), "last-send"),
        recorded(field("lrpid"), "last-receive"),
      ]
        .filter((p) => p.pid > 0);
      const messages = field("qnum");
      objects.push({
        ...object,
        size: field("cbytes"),
        messages,
        processes,
        ...verdict(judgeUsers(processes, messages, "used")),
      });
    } else {
      const semaphores = field("nsems");
      const pids = new Set<number>();
      for (let index = 0; index < semaphores; index++) {
        const pid = libc().semctl_value(id, index, GETPID, 0n);
        if (pid > 0) pids.add(pid);
      }
      const processes = [...pids].map((pid) => recorded(pid, "last-op"));
      objects.push({
        ...object,
        semaphores,
        processes,
        ...verdict(judgeUsers(processes, null, "operated on")),
      });
    }
  }
  return objects;
}

/** The verdict on a System V semaphore set or queue, from the last processes that used it. */
function judgeUsers(processes: IpcProcess[], messages: number | null, used: string): Verdict {
  const alive = processes.find((p) => p.alive);
  if (alive) {
    return { state: "in use", reason: `kept: pid ${alive.pid}, which ${used} it last, runs` };
  }
  if (processes.length === 0) {
    return { state: "unknown", reason: `kept: no process that ${used} it is visible here` };
  }
  if (messages !== null && messages > 0) {
    return { state: "unused", reason: `kept: ${plural(messages, "message")} waiting` };
  }
  return {
    state: "unused",
    reason: `kept: every process that ${used} it is gone, but it ${SYSV_KEPT}`,
  };
}

function keyName(key: number): string {
  return `0x${(key >>> 0).toString(16).padStart(8, "0")}`;
}

/** A process the kernel records for an object, with whether it still runs. */
function recorded(pid: number, role: IpcProcess["role"]): IpcProcess {
  return { pid, role, alive: pid > 0 && !processIsDead(pid, true) };
}

function blank(
  kind: IpcKind,
  name: string,
  mode: number,
  uid: number,
  owners: Map<number, string>,
  created: Date,
): IpcObject {
  return {
    kind,
    name,
    id: null,
    inode: null,
    size: null,
    mode: mode & 0o777,
    uid,
    owner: owners.get(uid) ?? String(uid),
    owned: null,
    messages: null,
    semaphores: null,
    value: null,
    attached: null,
    processes: [],
    created: created.toISOString(),
    state: "unknown",
    reason: "kept: not judged",
    orphaned: false,
  };
}

/** uid -> user name, from /etc/passwd. */
function userNames(): Map<number, string> {
  const names = new Map<number, string>();
  for (const line of (readProcText("/etc/passwd", 4 << 20) ?? "").split("\n")) {
    const [name, , uid] = line.split(":");
    if (name && uid !== undefined) names.set(Number(uid), name);
  }
  return names;
}

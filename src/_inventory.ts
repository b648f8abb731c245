/**
 * Every IPC object on the machine, read from /dev/shm, the mqueue file system and
 * /proc/sysvipc, with the processes that use them: the data behind `ipc ls`, `ipc rm` and
 * `ipc gc`. Internal: the public face is src/cli.ts.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import { GETPID, IPC_RMID, O_CLOEXEC, O_NONBLOCK, O_RDONLY } from "../ffi/constants.ts";
import { mq_attr } from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { check } from "./errors.ts";
import { closeFd } from "./fd.ts";
import { processIsDead } from "./_liveness.ts";
import { fileStatus, listDirectory, readLink, readProcText } from "./_proc.ts";
import { MessageQueue } from "./mqueue.ts";
import { Semaphore } from "./semaphore.ts";
import { SharedMemory } from "./shm.ts";

/** One kind of IPC object: POSIX shared memory, semaphore, message queue, or a System V one. */
export type IpcKind = "shm" | "sem" | "mq" | "sysv-shm" | "sysv-sem" | "sysv-msg";

/** The kinds of object the inspector knows, as `--kind` takes them. */
export const KINDS: readonly IpcKind[] = ["shm", "sem", "mq", "sysv-shm", "sysv-sem", "sysv-msg"];

/** A process the kernel records for an object, and whether it still runs. */
export interface IpcProcess {
  /** The process id. */
  pid: number;
  /** What it did: created the object, last operated on it, or has it open or mapped now. */
  role: "creator" | "last-attach" | "last-op" | "last-send" | "last-receive" | "user";
  /** `false` once the process is gone (a zombie counts as gone). */
  alive: boolean;
}

/** One IPC object as `ipc ls --json` prints it. Fields that do not apply to a kind are `null`. */
export interface IpcObject {
  /** The kind of object. */
  kind: IpcKind;
  /** POSIX objects: the name ("/jobs"). System V: the key in hex ("0x0000002a"). */
  name: string;
  /** System V: the id that `ipc rm` takes. POSIX: `null`. */
  id: number | null;
  /** Bytes: of the segment (shm, sysv-shm), or queued (mq, sysv-msg). */
  size: number | null;
  /** Permission bits, such as 0o600 (384). */
  mode: number;
  /** The owner's user id and name. */
  uid: number;
  /** The owner's name, or the uid as text when /etc/passwd does not know it. */
  owner: string;
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
  /**
   * Whether no process can use it any more: its creator is gone and nothing has it attached
   * (sysv-shm), nothing has it open or mapped (POSIX), or every process that used it is gone
   * (sysv-sem, sysv-msg). `null` when the kernel records too little to tell (a System V
   * semaphore set or queue that no one has used yet).
   */
  orphaned: boolean | null;
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

/** Removes an object: unlinks a POSIX name, or IPC_RMID on a System V id. */
export function removeObject(object: Pick<IpcObject, "kind" | "name" | "id">): void {
  const c = libc();
  const operation = { action: `remove ${object.kind}`, objectName: object.name };
  switch (object.kind) {
    case "shm":
      return SharedMemory.unlink(object.name);
    case "sem":
      return Semaphore.unlink(object.name);
    case "mq":
      return MessageQueue.unlink(object.name);
    case "sysv-shm":
      check(c.shmctl(object.id!, IPC_RMID, null), "shmctl", operation);
      return;
    case "sysv-sem":
      check(c.semctl_buffer(object.id!, 0, IPC_RMID, null), "semctl", operation);
      return;
    case "sysv-msg":
      check(c.msgctl(object.id!, IPC_RMID, null), "msgctl", operation);
      return;
  }
}

/** Which processes have a /dev/shm file or a message queue open or mapped. */
interface Users {
  /** By the inode of a file in /dev/shm (glibc maps a semaphore under a temporary name). */
  byInode: Map<number, Set<number>>;
  /** By the name of a message queue ("/jobs"), from the fd links. */
  byQueue: Map<string, Set<number>>;
}

function emptyUsers(): Users {
  return { byInode: new Map(), byQueue: new Map() };
}

function needsUsers(kinds: readonly IpcKind[]): boolean {
  return kinds.includes("shm") || kinds.includes("sem") || kinds.includes("mq");
}

/** Walks /proc: every readable process's fds and mappings. Unreadable ones are skipped. */
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
      const target = readLink(`/proc/${pid}/fd/${fd}`);
      if (target === undefined) continue;
      if (target.startsWith("/dev/shm/")) {
        const status = fileStatus(target);
        if (status) add(users.byInode, status.inode, pid);
      } else if (/^\/[^/]+$/.test(target)) {
        add(users.byQueue, target, pid); // a queue's fd links to "/name"
      }
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

function devShm(kinds: readonly IpcKind[], users: Users, owners: Map<number, string>): IpcObject[] {
  const objects: IpcObject[] = [];
  for (const file of listDirectory("/dev/shm") ?? []) {
    const semaphore = file.startsWith("sem.");
    const kind = semaphore ? "sem" : "shm";
    if (!kinds.includes(kind)) continue;
    const status = fileStatus(`/dev/shm/${file}`);
    if (!status) continue; // removed meanwhile
    const name = `/${semaphore ? file.slice(4) : file}`;
    const pids = [...(users.byInode.get(status.inode) ?? [])];
    objects.push({
      ...blank(kind, name, status.mode, status.uid, owners, status.created),
      size: semaphore ? null : status.size,
      value: semaphore ? semaphoreValue(name) : null,
      attached: pids.length,
      processes: pids.map((pid) => recorded(pid, "user")),
      orphaned: pids.length === 0,
    });
  }
  return objects;
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
    if (!status) continue;
    const name = `/${file}`;
    const pids = [...(users.byQueue.get(name) ?? [])];
    // The file reads "QSIZE:128 NOTIFY:0 SIGNO:0 NOTIFY_PID:0 ".
    const text = readProcText(`${mount}/${file}`, 256) ?? "";
    const queued = Number(/QSIZE:(\d+)/.exec(text)?.[1] ?? NaN);
    objects.push({
      ...blank("mq", name, status.mode, status.uid, owners, status.created),
      size: Number.isFinite(queued) ? queued : null,
      messages: queueLength(name),
      attached: pids.length,
      processes: pids.map((pid) => recorded(pid, "user")),
      orphaned: pids.length === 0,
    });
  }
  return objects;
}

/** Messages in a queue, through mq_getattr on a read-only descriptor that receives nothing. */
function queueLength(name: string): number | null {
  const c = libc();
  const fd = c.mq_open(cstring(name), O_RDONLY | O_NONBLOCK | O_CLOEXEC, 0, null);
  if (fd < 0) return null;
  try {
    const attributes = new BigInt64Array(mq_attr.size / 8);
    if (c.mq_getattr(fd, attributes) !== 0) return null;
    return Number(attributes[mq_attr.mq_curmsgs / 8]);
  } finally {
    closeFd(fd);
  }
}

function systemV(
  kind: "sysv-shm" | "sysv-sem" | "sysv-msg",
  owners: Map<number, string>,
  notes: string[],
): IpcObject[] {
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
    if (kind === "sysv-shm") {
      const processes = [recorded(field("cpid"), "creator"), recorded(field("lpid"), "last-attach")]
        .filter((p) => p.pid > 0);
      const attached = field("nattch");
      objects.push({
        ...object,
        size: field("size"),
        attached,
        processes,
        orphaned: attached === 0 && !processes[0]?.alive,
      });
    } else if (kind === "sysv-msg") {
      const processes = [
        recorded(field("lspid"), "last-send"),
        recorded(field("lrpid"), "last-receive"),
      ]
        .filter((p) => p.pid > 0);
      objects.push({
        ...object,
        size: field("cbytes"),
        messages: field("qnum"),
        processes,
        orphaned: processes.length === 0 ? null : processes.every((p) => !p.alive),
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
        orphaned: processes.length === 0 ? null : processes.every((p) => !p.alive),
      });
    }
  }
  return objects;
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
    size: null,
    mode,
    uid,
    owner: owners.get(uid) ?? String(uid),
    messages: null,
    semaphores: null,
    value: null,
    attached: null,
    processes: [],
    created: created.toISOString(),
    orphaned: null,
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

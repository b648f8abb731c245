/**
 * Reading /proc, /dev/shm and /dev/mqueue through libc: Deno 2 lets only --allow-all read
 * /proc and /dev, and these reads serve error messages, buffer sizes, liveness checks and the
 * `ipc` inspector, for which --allow-ffi already grants everything. Internal.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  O_CLOEXEC,
  O_RDONLY,
  S_IFMT,
  STATX_BASIC_STATS,
  STATX_BTIME,
} from "../ffi/constants.ts";
import { dirent, rlimit, statvfs, statx } from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { closeFd } from "./fd.ts";

const decoder = new TextDecoder();

/** The start of a /proc file (up to `max` bytes), or `undefined` when it cannot be read. */
export function readProcText(path: string, max = 1024): string | undefined {
  const c = libc();
  const fd = c.open(cstring(path), O_RDONLY | O_CLOEXEC, 0);
  if (fd < 0) return undefined;
  try {
    const chunks: Uint8Array[] = [];
    let total = 0;
    while (total < max) {
      const chunk = new Uint8Array(Math.min(max - total, 64 * 1024));
      const n = Number(c.read(fd, chunk, BigInt(chunk.length)));
      if (n < 0) return undefined;
      if (n === 0) break;
      chunks.push(chunk.subarray(0, n));
      total += n;
    }
    return chunks.length === 1 ? decoder.decode(chunks[0]) : decoder.decode(concat(chunks, total));
  } finally {
    closeFd(fd);
  }
}

/** The number in a /proc file such as /proc/sys/kernel/msgmax, or `undefined`. */
export function readProcNumber(path: string): number | undefined {
  const value = Number(readProcText(path, 64)?.trim() || NaN);
  return Number.isFinite(value) ? value : undefined;
}

/** The names in a directory, without "." and "..", or `undefined` when it cannot be read. */
export function listDirectory(path: string): string[] | undefined {
  const c = libc();
  const dir = c.opendir(cstring(path));
  if (dir === null) return undefined;
  try {
    const names: string[] = [];
    for (let entry = c.readdir(dir); entry !== null; entry = c.readdir(dir)) {
      const name = Deno.UnsafePointerView.getCString(entry, dirent.d_name);
      if (name !== "." && name !== "..") names.push(name);
    }
    return names;
  } finally {
    c.closedir(dir);
  }
}

/** What `statx` tells of a file, as far as the inspector needs it. */
export interface FileStatus {
  size: number;
  /** The file type bits (`S_IFREG`, `S_IFDIR`, …). */
  type: number;
  /** The permission bits with setuid, setgid and sticky (0o7777). */
  mode: number;
  uid: number;
  gid: number;
  inode: number;
  /** Birth time where the file system records it, else the last status change. */
  created: Date;
  modified: Date;
}

/**
 * The status of a file, or `undefined` when it is gone. A final symlink is not followed unless
 * `follow` (which /proc/PID/fd/N needs, to reach the open file itself).
 */
export function fileStatus(path: string, follow = false): FileStatus | undefined {
  return statusAt(AT_FDCWD, path, follow ? 0 : AT_SYMLINK_NOFOLLOW);
}

/** The status of the file an open descriptor refers to (fstat), or `undefined`. */
export function descriptorStatus(fd: number): FileStatus | undefined {
  return statusAt(fd, "", AT_EMPTY_PATH);
}

function statusAt(dirfd: number, path: string, flags: number): FileStatus | undefined {
  const buffer = new Uint8Array(statx.size);
  const mask = STATX_BASIC_STATS | STATX_BTIME;
  if (libc().statx(dirfd, cstring(path), flags, mask, buffer) !== 0) return undefined;
  const view = new DataView(buffer.buffer);
  const time = (at: number) =>
    new Date(Number(view.getBigInt64(at, true)) * 1000 + view.getUint32(at + 8, true) / 1e6);
  const got = view.getUint32(0, true);
  const mode = view.getUint16(statx.stx_mode, true);
  return {
    size: Number(view.getBigUint64(statx.stx_size, true)),
    type: mode & S_IFMT,
    mode: mode & 0o7777,
    uid: view.getUint32(statx.stx_uid, true),
    gid: view.getUint32(statx.stx_gid, true),
    inode: Number(view.getBigUint64(statx.stx_ino, true)),
    created: time(got & STATX_BTIME ? statx.stx_btime : statx.stx_ctime),
    modified: time(statx.stx_mtime),
  };
}

/** Where a symlink such as /proc/PID/fd/3 points, or `undefined`. */
export function readLink(path: string): string | undefined {
  const buffer = new Uint8Array(4096);
  const n = Number(libc().readlink(cstring(path), buffer, BigInt(buffer.length)));
  return n >= 0 ? decoder.decode(buffer.subarray(0, n)) : undefined;
}

/** The size of the file system holding `dir` and what is free in it, in bytes (statvfs). */
export function fileSystemSpace(dir: string): { free: number; total: number } | undefined {
  const buffer = new Uint8Array(statvfs.size);
  if (libc().statvfs(cstring(dir), buffer) !== 0) return undefined;
  const view = new DataView(buffer.buffer);
  const blockSize = Number(view.getBigUint64(statvfs.f_frsize, true));
  return {
    free: Number(view.getBigUint64(statvfs.f_bavail, true)) * blockSize,
    total: Number(view.getBigUint64(statvfs.f_blocks, true)) * blockSize,
  };
}

/** A resource limit of this process (getrlimit); `Infinity` stands for RLIM_INFINITY. */
export function resourceLimit(resource: number): { soft: number; hard: number } | undefined {
  const limit = new BigUint64Array(rlimit.size / 8);
  if (libc().getrlimit(resource, limit) !== 0) return undefined;
  const value = (raw: bigint) => raw === 0xffff_ffff_ffff_ffffn ? Infinity : Number(raw);
  return { soft: value(limit[0]!), hard: value(limit[1]!) };
}

function concat(chunks: Uint8Array[], total: number): Uint8Array {
  const all = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    all.set(chunk, at);
    at += chunk.length;
  }
  return all;
}

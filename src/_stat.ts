/**
 * What the kernel says of an open descriptor or a path (statx), for the checks made before
 * memory is mapped: the file's type, its size and how much of it is backed, and its identity.
 * A size read from anywhere else (a header, a size this process remembers) is trusted only
 * after this check. Internal.
 *
 * @module
 */

import { cstring } from "../ffi/cstring.ts";
import {
  AT_EMPTY_PATH,
  AT_FDCWD,
  AT_SYMLINK_NOFOLLOW,
  S_IFBLK,
  S_IFCHR,
  S_IFDIR,
  S_IFIFO,
  S_IFLNK,
  S_IFMT,
  S_IFREG,
  S_IFSOCK,
  STATX_BASIC_STATS,
} from "../ffi/constants.ts";
import { statx } from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { check, type Operation } from "./errors.ts";

/** The statx fields that mapping needs. */
export interface FileFacts {
  /** The file type bits (`S_IFREG`, `S_IFDIR`, …). */
  readonly type: number;
  /** The size in bytes. */
  readonly size: number;
  /** The bytes actually allocated (blocks × 512): less than `size` for a sparse file. */
  readonly allocated: number;
  /** "major:minor:inode": equal for two descriptors or paths of the same file. */
  readonly identity: string;
  /** The permission bits with setuid, setgid and sticky (0o7777). */
  readonly mode: number;
  /** The owner's user id. */
  readonly uid: number;
  /** The owner's group id. */
  readonly gid: number;
}

/** statx of an open descriptor, as fstat; throws the typed error (EBADF: BadResource). */
export function statDescriptor(fd: number, operation: Operation): FileFacts {
  return statAt(fd, EMPTY_PATH, AT_EMPTY_PATH, operation);
}

/** statx of a path, following symlinks as open does; throws the typed error (ENOENT: NotFound). */
export function statPath(path: string, operation: Operation): FileFacts {
  return statAt(AT_FDCWD, cstring(path), 0, operation);
}

/**
 * statx of a path itself, not following a symlink at its end (lstat); throws the typed error.
 * For files this process made at a path and means to remove: a symlink put there since is not
 * theirs.
 */
export function statLink(path: string, operation: Operation): FileFacts {
  return statAt(AT_FDCWD, cstring(path), AT_SYMLINK_NOFOLLOW, operation);
}

/** The path of a statx on the descriptor itself (AT_EMPTY_PATH): "", made once. */
const EMPTY_PATH = cstring("");

/**
 * The statx buffer, reused: every call is synchronous, on this thread, and reads it back
 * before it returns. (A fresh buffer a call cost more than the system call itself: statx is
 * on the path of every mapping, a descriptor received and mapped included.)
 */
const buffer = new Uint8Array(statx.size);
const view = new DataView(buffer.buffer);

function statAt(dirfd: number, path: Uint8Array, flags: number, operation: Operation): FileFacts {
  check(libc().statx(dirfd, path, flags, STATX_BASIC_STATS, buffer), "statx", operation);
  const mode = view.getUint16(statx.stx_mode, true);
  return {
    type: mode & S_IFMT,
    size: Number(view.getBigUint64(statx.stx_size, true)),
    allocated: Number(view.getBigUint64(statx.stx_blocks, true)) * 512,
    identity: `${view.getUint32(statx.stx_dev_major, true)}:` +
      `${view.getUint32(statx.stx_dev_minor, true)}:${view.getBigUint64(statx.stx_ino, true)}`,
    mode: mode & 0o7777,
    uid: view.getUint32(statx.stx_uid, true),
    gid: view.getUint32(statx.stx_gid, true),
  };
}

const TYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [S_IFSOCK, "a socket"],
  [S_IFLNK, "a symbolic link"],
  [S_IFREG, "a regular file"],
  [S_IFBLK, "a block device"],
  [S_IFDIR, "a directory"],
  [S_IFCHR, "a character device"],
  [S_IFIFO, "a FIFO"],
]);

/** "a directory", "a FIFO", …: the file type in words, for messages. */
export function typeName(type: number): string {
  return TYPE_NAMES.get(type) ?? `a file of type 0o${type.toString(8)}`;
}

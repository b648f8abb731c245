/**
 * The socket file a listener bound at a path, acted on only while the path still names it: its
 * mode set through a descriptor that holds it (never by a path that another process may have
 * turned into a symlink since), and its removal. Internal.
 *
 * @module
 */

import { cstring } from "../../ffi/cstring.ts";
import { ENOENT, O_CLOEXEC, O_NOFOLLOW, O_PATH, S_IFSOCK } from "../../ffi/constants.ts";
import { errno, libc } from "../../ffi/libc.ts";
import { changeMode } from "../_ownership.ts";
import { statDescriptor, statLink, typeName } from "../_stat.ts";
import { type Operation, removed, systemError } from "../errors.ts";
import { closeFd } from "../fd.ts";

/**
 * Sets the permission bits of the socket file at `path` to exactly `mode`, if that file is
 * still the socket whose identity ("major:minor:inode", from `statLink`) is `identity`.
 *
 * The path is opened with O_PATH | O_NOFOLLOW, which holds whatever is there (a symlink
 * itself, never its target); the descriptor is checked to be that socket, and the mode changed
 * through /proc/self/fd, which reaches exactly the inode it holds. So a file put at the path
 * since the bind (a symlink to a file of the caller's, another socket) keeps its mode, and is
 * left where it is.
 *
 * @throws {Deno.errors.NotFound} when the path no longer names that socket: removed, or
 * replaced by another file.
 */
export function chmodBoundSocket(
  path: string,
  identity: string,
  mode: number,
  operation: Operation,
): void {
  const fd = libc().open(cstring(path), O_PATH | O_NOFOLLOW | O_CLOEXEC, 0);
  if (fd < 0) {
    const code = errno();
    const hint = code === ENOENT
      ? "the socket file was removed before its mode was set"
      : undefined;
    throw systemError(code, "open", { ...operation, hint });
  }
  try {
    const facts = statDescriptor(fd, operation);
    if (facts.type !== S_IFSOCK || facts.identity !== identity) {
      const what = facts.type === S_IFSOCK ? "another socket" : typeName(facts.type);
      throw systemError(ENOENT, "statx", {
        ...operation,
        hint: `the socket file was replaced by ${what} before its mode was set; ` +
          "that file was left as it was",
      });
    }
    changeMode(fd, mode, operation, true);
  } finally {
    closeFd(fd);
  }
}

/**
 * Removes the socket file at `path` if it is still the one whose identity is `identity`: never
 * a file that replaced it. (Between the look and the unlink another process could still swap
 * it; the window is two system calls wide, where without the look it was the listener's life.)
 */
export function removeIfStill(path: string, identity: string): void {
  const operation = { action: "remove the socket file", objectName: path };
  let facts;
  try {
    facts = statLink(path, operation);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return; // removed already
    throw error;
  }
  if ((facts.type !== S_IFSOCK) || facts.identity !== identity) return; // not ours any more
  removed(libc().unlink(cstring(path)), [ENOENT], "unlink", operation);
}

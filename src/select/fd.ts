/**
 * How {@linkcode select} waits on its descriptor sources (pipe read ends, message queues: on
 * Linux an mqd_t is a descriptor): all of them in ONE `poll` on one worker thread, with the
 * read end of a pipe made for the wait, which a cancel writes to, so that a cancelled wait ends
 * at once. Each poll lasts a slice at most, so that a source closed meanwhile (its descriptor
 * number may be reused) is noticed. Internal.
 *
 * @module
 */

import { O_CLOEXEC, POLLIN } from "../../ffi/constants.ts";
import { pollfd } from "../../ffi/layout.ts";
import { libc } from "../../ffi/libc.ts";
import { check } from "../errors.ts";
import type { Cancel } from "./cancel.ts";
import { SourceEnded } from "./protocol.ts";

/** The longest single poll, in ms. */
export const FD_SLICE_MS = 400;

/** A descriptor source and its index in select's list. */
export interface IndexedFd {
  readonly index: number;
  /** The descriptor; throws BadResource once the source is closed. */
  readonly fd: () => number;
}

const wakeByte = new Uint8Array(1);

/** The descriptors of `sources`, each throwing as its source's {@linkcode SourceEnded}. */
function descriptors(sources: readonly IndexedFd[]): number[] {
  return sources.map(({ index, fd }) => {
    try {
      return fd();
    } catch (error) {
      throw new SourceEnded(index, error);
    }
  });
}

/** Polls the sources in slices until one has an event or `signal` aborts. */
export async function pollSources(
  sources: readonly IndexedFd[],
  signal: Cancel,
): Promise<void> {
  if (signal.aborted) return;
  const fds = descriptors(sources);
  const ends = new Int32Array(2);
  check(libc().pipe2(ends, O_CLOEXEC), "pipe2", { action: "wait on descriptors in select" });
  const cancel = () => void libc().write(ends[1]!, wakeByte, 1n);
  signal.on(cancel);
  try {
    const polled = new Uint8Array((fds.length + 1) * pollfd.size);
    const view = new DataView(polled.buffer);
    [...fds, ends[0]!].forEach((fd, i) => {
      view.setInt32(i * pollfd.size + pollfd.fd, fd, true);
      view.setInt16(i * pollfd.size + pollfd.events, POLLIN, true);
    });
    while (!signal.aborted) {
      descriptors(sources); // throws once a source closed
      await libc().poll_async(polled, BigInt(fds.length + 1), FD_SLICE_MS);
      // POLLIN, POLLHUP (end of file), POLLERR, POLLNVAL: the tries will tell which.
      for (let i = 0; i < fds.length; i++) {
        if (view.getInt16(i * pollfd.size + pollfd.revents, true) !== 0) return;
      }
    }
  } finally {
    signal.off(cancel);
    libc().close(ends[0]!);
    libc().close(ends[1]!);
  }
}

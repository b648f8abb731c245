/**
 * The select adapter of a source that is a pollable descriptor (a pipe's read end, a message
 * queue: on Linux an mqd_t is a descriptor). Internal.
 *
 * Its wait is one `poll` on a worker thread over two descriptors: the source's and the read end
 * of a pipe made for the wait, which select's abort writes to, so that a cancelled wait ends at
 * once instead of at the end of its slice. A slice still bounds each poll, so that a source
 * closed meanwhile (its descriptor number may be reused) is noticed.
 *
 * @module
 */

import { O_CLOEXEC, POLLIN } from "../../ffi/constants.ts";
import { pollfd } from "../../ffi/layout.ts";
import { libc } from "../../ffi/libc.ts";
import { check } from "../errors.ts";
import type { SelectAdapter, Taken } from "./protocol.ts";

/** The longest single poll of a select wait on a descriptor, in ms. */
export const FD_SLICE_MS = 400;

/** What a descriptor source gives its adapter. */
export interface FdSource<T> {
  /** The descriptor to poll for POLLIN; throws BadResource once the source is closed. */
  fd(): number;
  /** Takes one item without waiting, or returns `undefined`. */
  take(): Taken<T> | undefined;
}

const wakeByte = new Uint8Array(1);

/** Makes the select adapter of a pollable descriptor. */
export function fdAdapter<T>(source: FdSource<T>): SelectAdapter<T> {
  return {
    try: () => source.take(),
    wait: (signal) => pollUntilReady(source, signal),
  };
}

/** Polls the source and a cancel pipe in slices until the source is readable or `signal` aborts. */
async function pollUntilReady(source: FdSource<unknown>, signal: AbortSignal): Promise<void> {
  if (signal.aborted) return;
  const fd = source.fd();
  const ends = new Int32Array(2);
  check(libc().pipe2(ends, O_CLOEXEC), "pipe2", { action: "wait on a descriptor in select" });
  const cancel = () => void libc().write(ends[1]!, wakeByte, 1n);
  signal.addEventListener("abort", cancel);
  try {
    const polled = new Uint8Array(2 * pollfd.size);
    const view = new DataView(polled.buffer);
    view.setInt32(pollfd.fd, fd, true);
    view.setInt16(pollfd.events, POLLIN, true);
    view.setInt32(pollfd.size + pollfd.fd, ends[0]!, true);
    view.setInt16(pollfd.size + pollfd.events, POLLIN, true);
    while (!signal.aborted) {
      source.fd(); // throws once the source closed
      await libc().poll_async(polled, 2n, FD_SLICE_MS);
      // POLLIN, POLLHUP (end of file), POLLERR: a try will tell which.
      if (view.getInt16(pollfd.revents, true) !== 0) return;
    }
  } finally {
    signal.removeEventListener("abort", cancel);
    libc().close(ends[0]!);
    libc().close(ends[1]!);
  }
}

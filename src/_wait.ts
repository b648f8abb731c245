/**
 * Waiting without blocking the event loop, in bounded slices, as DESIGN.md asks: try the call
 * at once on the main thread (errno intact); when it would block, wait on a worker thread for
 * at most one slice, then look again at the abort signal, the deadline and whether the object
 * was closed. Internal.
 *
 * @module
 */

import { CLOCK_MONOTONIC } from "../ffi/constants.ts";
import { pollfd, timespec } from "../ffi/layout.ts";
import { libc } from "../ffi/libc.ts";
import { cTimeoutMs, INT_MAX, validateTimeout } from "./_validate.ts";

/** Options of every call that can wait. */
export interface WaitOptions {
  /**
   * Give up after this many milliseconds, rejecting with `Deno.errors.TimedOut`. Default, and
   * `Infinity`: wait as long as it takes.
   */
  timeout?: number;
  /** Give up when this signal aborts, rejecting with its reason. */
  signal?: AbortSignal;
}

/** The longest single wait: how late an abort, a timeout or a close can be noticed. */
export const SLICE_MS = 100;

/** What an attempt returns when it has to wait and try again. */
export const RETRY: unique symbol = Symbol("retry");

/**
 * The longest wait a single C call is given, in ms (2^31 - 1, 24.8 days): longer timeouts are
 * waited in several calls, and `Infinity` in as many as it takes.
 */
export const MAX_WAIT_MS: number = INT_MAX;

/**
 * Checks `timeout` and `signal` before anything is done: `timeout` a number of ms >= 0 or
 * `Infinity` (a RangeError for NaN and negatives, a TypeError for other types), `signal` an
 * AbortSignal.
 *
 * @returns The timeout in ms, `Infinity` when there is none.
 */
export function validateWaitOptions(options: WaitOptions, what: string): number {
  return readWaitOptions(options, what).timeout;
}

/** Wait options read once and checked: what a wait uses from then on. */
export interface CheckedWait {
  /** The timeout in ms, `Infinity` when there is none. */
  readonly timeout: number;
  readonly signal: AbortSignal | undefined;
}

/**
 * Reads `timeout` and `signal` once each, and checks them as {@linkcode validateWaitOptions}
 * does. A wait must use what this returns, never read the caller's object again: a getter can
 * answer differently the second time (a timeout of 100, then NaN, once hung a sync wait).
 *
 * @returns The checked values, in an object of its own.
 */
export function readWaitOptions(options: WaitOptions, what: string): CheckedWait {
  if (options === null || typeof options !== "object") {
    throw new TypeError(`Cannot ${what}: options must be an object`);
  }
  const { signal } = options;
  const timeout = validateTimeout(options.timeout, what);
  if (signal !== undefined && !(signal instanceof AbortSignal)) {
    throw new TypeError(`Cannot ${what}: signal must be an AbortSignal`);
  }
  return { timeout, signal };
}

/** The `performance.now()` at which a wait of `timeout` ms (`Infinity`: none) started now ends. */
export function deadlineAfter(timeout: number): number {
  return timeout === Infinity ? Infinity : performance.now() + timeout;
}

/** How long a sync wait that ends at `deadline` may still block in one C call, in ms. */
export function sliceUntil(deadline: number): number {
  return Math.min(MAX_WAIT_MS, Math.max(0, deadline - performance.now()));
}

/** A wait loop's parts. */
export interface WaitLoop<T> {
  /** What is being done, for messages: "read from the pipe". */
  what: string;
  /** Tries once without blocking: the result, or {@linkcode RETRY}. */
  attempt: () => T | typeof RETRY;
  /** Waits at most `ms` for a reason to try again. */
  sleep: (ms: number) => Promise<unknown>;
  /** Throws when the object was closed meanwhile. */
  assertOpen: () => void;
  /**
   * The longest single wait, for objects that wake their waiters on abort and close
   * themselves. Default {@linkcode SLICE_MS}.
   */
  slice?: number;
}

/** Repeats `loop.attempt` until it gives a result, the deadline passes or the signal aborts. */
export async function waitUntil<T>(options: WaitOptions, loop: WaitLoop<T>): Promise<T> {
  const tries = attempts(options, loop);
  for (let next = tries.next();; next = tries.next()) {
    if (next.done) return next.value;
    await loop.sleep(next.value);
  }
}

/** A sync wait loop's parts: those of {@linkcode WaitLoop}, with a sleep that blocks. */
export interface SyncWaitLoop<T> extends Omit<WaitLoop<T>, "sleep"> {
  /** Blocks this thread at most `ms`. */
  sleep: (ms: number) => void;
}

/**
 * {@linkcode waitUntil} for the `…Sync` forms: blocks this thread between attempts. Only a
 * signal aborted before the call is seen (nothing can abort it while the thread blocks).
 */
export function waitUntilSync<T>(options: WaitOptions, loop: SyncWaitLoop<T>): T {
  const tries = attempts(options, loop);
  for (let next = tries.next();; next = tries.next()) {
    if (next.done) return next.value;
    loop.sleep(next.value);
  }
}

/**
 * The wait protocol, for both drivers: checks the signal and the object, attempts, and yields
 * how long to sleep before the next attempt; returns the result, or throws TimedOut.
 */
function* attempts<T>(
  options: WaitOptions,
  loop: Omit<WaitLoop<T>, "sleep">,
): Generator<number, T, void> {
  const { timeout, signal } = readWaitOptions(options, loop.what);
  const deadline = deadlineAfter(timeout);
  while (true) {
    signal?.throwIfAborted();
    loop.assertOpen();
    const result = loop.attempt();
    if (result !== RETRY) return result;
    yield pauseBefore(deadline, timeout, loop);
  }
}

/** How long to sleep before the next attempt, in ms; throws TimedOut past the deadline. */
function pauseBefore(
  deadline: number,
  timeout: number,
  loop: { what: string; slice?: number },
): number {
  const left = deadline - performance.now();
  if (left <= 0) {
    throw new Deno.errors.TimedOut(`Cannot ${loop.what}: timed out after ${timeout} ms`);
  }
  return Math.max(1, Math.min(loop.slice ?? SLICE_MS, Math.ceil(left)));
}

function pollBuffer(fd: number, events: number): Uint8Array<ArrayBuffer> {
  const buffer = new Uint8Array(pollfd.size);
  const view = new DataView(buffer.buffer);
  view.setInt32(pollfd.fd, fd, true);
  view.setInt16(pollfd.events, events, true);
  return buffer;
}

/** Waits on a worker thread, at most `ms`, until `fd` has one of `events` (POLLIN, POLLOUT). */
export async function pollAsync(fd: number, events: number, ms: number): Promise<void> {
  const buffer = pollBuffer(fd, events);
  await libc().poll_async(buffer, 1n, cTimeoutMs(ms));
}

/**
 * The pollfd of {@linkcode pollNow}, reused: the call is synchronous on this thread and reads it
 * back before it returns, and a socket's wait looks with it many times in a row.
 */
const nowBuffer = new Uint8Array(pollfd.size);
const nowView = new DataView(nowBuffer.buffer);

/** The events `fd` has now, among `events` and POLLHUP/POLLERR, without waiting (0: none). */
export function pollNow(fd: number, events: number): number {
  nowView.setInt32(pollfd.fd, fd, true);
  nowView.setInt16(pollfd.events, events, true);
  nowView.setInt16(pollfd.revents, 0, true);
  libc().poll(nowBuffer, 1n, 0);
  return nowView.getInt16(pollfd.revents, true);
}

/**
 * Blocks this thread until `fd` has one of `events`, or `ms` pass (`Infinity`, the default: no
 * timeout; over {@linkcode MAX_WAIT_MS}: that long): for the `…Sync` forms.
 */
export function pollSync(fd: number, events: number, ms = Infinity): void {
  libc().poll(pollBuffer(fd, events), 1n, cTimeoutMs(ms));
}

/** Resolves after `ms` milliseconds. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** A word nobody ever changes, for {@linkcode sleepSync} to wait on. */
const neverWoken = new Int32Array(new SharedArrayBuffer(4));

/** Blocks this thread for `ms` milliseconds (at most {@linkcode MAX_WAIT_MS}). */
export function sleepSync(ms: number): void {
  Atomics.wait(neverWoken, 0, 0, Math.min(Math.max(0, ms), MAX_WAIT_MS));
}

/**
 * The deadline of sync waits, reused: they block the only thread that runs JavaScript, so one
 * buffer serves them all, and allocating an ArrayBuffer per wait makes V8 wake a helper thread,
 * which costs a hundred microseconds when the machine is idle.
 */
const syncDeadline = new Uint8Array(timespec.size);

/**
 * An absolute CLOCK_MONOTONIC deadline `ms` from now, as a `struct timespec` (sem_clockwait).
 * `ms` is clamped to 0 .. {@linkcode MAX_WAIT_MS} (`Infinity` and NaN included), so a caller
 * that waits longer, or forever, must loop until its own deadline.
 * Pass `sync: true` for a wait that blocks this thread: it gets the reused buffer. An async wait
 * gets its own, which it keeps alive until the worker thread is done.
 */
export function deadlineIn(ms: number, sync = false): Uint8Array<ArrayBuffer> {
  const buffer = sync ? syncDeadline : new Uint8Array(timespec.size);
  libc().clock_gettime(CLOCK_MONOTONIC, buffer);
  const view = new DataView(buffer.buffer);
  const wait = ms > 0 ? Math.min(ms, MAX_WAIT_MS) : 0;
  const nanos = view.getBigInt64(timespec.tv_nsec, true) + BigInt(Math.round(wait * 1e6));
  view.setBigInt64(
    timespec.tv_sec,
    view.getBigInt64(timespec.tv_sec, true) + nanos / 1_000_000_000n,
    true,
  );
  view.setBigInt64(timespec.tv_nsec, nanos % 1_000_000_000n, true);
  return buffer;
}

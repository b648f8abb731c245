/**
 * Open-or-create without races, shared by every named kind. Internal.
 *
 * Each round tries to create the object exclusively (O_CREAT | O_EXCL, IPC_CREAT | IPC_EXCL);
 * when it exists, opens it; when it vanished in between (removed by its owner), starts over. An
 * object that its creator is still initialising counts as not there yet: the opener waits for
 * it, in short sleeps that never block the event loop, until the timeout, and then fails with
 * `Deno.errors.TimedOut` (a creator that died while initialising leaves such an object behind).
 * The `…Sync` forms take the same steps, and sleep by blocking the thread instead.
 *
 * The initialisation protocol of segments: the creator makes the object with mode 0, fills it
 * in, then sets its real mode (fchmod, or IPC_SET for System V): mode 0 is the "not ready"
 * flag. Openers check the mode with fstat, since root opens a mode-0 object all the same.
 *
 * @module
 */

import { S_ISVTX } from "../ffi/constants.ts";
import { libc } from "../ffi/libc.ts";
import { check, type Operation } from "./errors.ts";
import { descriptorStatus } from "./_proc.ts";
import { delay, RETRY, sleepSync, type WaitOptions, waitUntil, waitUntilSync } from "./_wait.ts";
import { describe } from "./_validate.ts";

/** Options of every `openOrCreate`: how long to wait for a creator that is initialising. */
export interface OpenOrCreateWaitOptions extends WaitOptions {
  /**
   * How long to wait, in ms, for the object that another process is creating to be
   * initialised, and for the race with its removal to settle. Default 5000; `Infinity`: no
   * limit.
   */
  timeout?: number;
}

/** The default of {@linkcode OpenOrCreateWaitOptions.timeout}. */
export const OPEN_OR_CREATE_TIMEOUT_MS = 5000;

/** What one attempt got: the handle, and whether this attempt created the object. */
export interface Opened<H> {
  readonly handle: H;
  readonly created: boolean;
}

/** The parts of an open-or-create. */
export interface OpenOrCreateSteps<H> {
  /** What is being done, for messages: `open or create shared memory "/jobs"`. */
  what: string;
  /** Creates the object exclusively; throws `Deno.errors.AlreadyExists` when it exists. */
  create: () => H;
  /**
   * Opens the existing object; throws `Deno.errors.NotFound` when it is gone, or returns
   * {@linkcode RETRY} while its creator is still initialising it.
   */
  open: () => H | typeof RETRY;
  /**
   * For kinds with an initialisation protocol: what the creator does once it made the object
   * (fill it in, publish the ready flag, or undo). Without it, a created object is ready.
   */
  initialisation?: Omit<Initialisation<H>, "what">;
}

/** One round: create, else open, else {@linkcode RETRY}. */
function attempt<H>(steps: OpenOrCreateSteps<H>): Opened<H> | typeof RETRY {
  try {
    return { handle: steps.create(), created: true };
  } catch (error) {
    if (!(error instanceof Deno.errors.AlreadyExists)) throw error;
  }
  try {
    const handle = steps.open();
    return handle === RETRY ? RETRY : { handle, created: false };
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return RETRY; // removed in between
    throw error;
  }
}

/**
 * Creates or opens, waiting while another process initialises the object: see the module.
 *
 * @param options `timeout` (default 5000 ms) and `signal`, as the caller got them.
 * @param steps How to create and open.
 * @returns The handle and whether this call created the object.
 */
export async function openOrCreateWith<H extends object>(
  options: OpenOrCreateWaitOptions,
  steps: OpenOrCreateSteps<H>,
): Promise<Opened<H>> {
  const timeout = options.timeout ?? OPEN_OR_CREATE_TIMEOUT_MS;
  const opened = await waitUntil({ timeout, signal: options.signal }, {
    what: steps.what,
    attempt: () => attempt(steps),
    sleep: (ms) => delay(Math.min(ms, 2)),
    assertOpen: () => {},
  });
  if (!opened.created || !steps.initialisation) return opened;
  const handle = await initialise(opened.handle, { what: steps.what, ...steps.initialisation });
  return { handle, created: true };
}

/**
 * {@linkcode openOrCreateWith} for the `openOrCreateSync` forms: the same steps, the same
 * default timeout, with short sleeps that block this thread between the tries.
 *
 * @param options `timeout` (default 5000 ms), as the caller got them.
 * @param steps How to create and open.
 * @returns The handle and whether this call created the object.
 */
export function openOrCreateSyncWith<H extends object>(
  options: OpenOrCreateWaitOptions,
  steps: OpenOrCreateSteps<H>,
): Opened<H> {
  const timeout = options.timeout ?? OPEN_OR_CREATE_TIMEOUT_MS;
  const opened = waitUntilSync({ timeout, signal: options.signal }, {
    what: steps.what,
    attempt: () => attempt(steps),
    sleep: (ms) => sleepSync(Math.min(ms, 2)),
    assertOpen: () => {},
  });
  if (!opened.created || !steps.initialisation) return opened;
  const handle = initialiseSync(opened.handle, { what: steps.what, ...steps.initialisation });
  return { handle, created: true };
}

/** The creator's part once it made the object: fill it in, then say it is ready. */
export interface Initialisation<H> {
  /** What is being done, for messages. */
  what: string;
  /** The user's `init`, run on the new object before anyone else may use it. */
  init: ((handle: H) => unknown) | undefined;
  /** Publishes the ready flag. */
  publish: (handle: H) => void;
  /** Undoes the creation when `init` or `publish` failed: removes the name, closes. */
  abandon: (handle: H) => void;
}

/**
 * Runs `init` (awaiting what it returns), then publishes; on failure abandons and rethrows.
 *
 * @returns The handle, marked as its object's creator.
 */
async function initialise<H extends object>(
  handle: H,
  steps: Initialisation<H>,
): Promise<H> {
  try {
    await steps.init?.(handle);
    steps.publish(handle);
  } catch (error) {
    steps.abandon(handle);
    throw error;
  }
  return markCreated(handle);
}

/**
 * {@linkcode initialise} for the sync forms: `init` must not return a promise, which nothing
 * could wait for (a TypeError, and the object is abandoned).
 *
 * @returns The handle, marked as its object's creator.
 */
function initialiseSync<H extends object>(handle: H, steps: Initialisation<H>): H {
  try {
    const result = steps.init?.(handle);
    if (isThenable(result)) {
      Promise.resolve(result).catch(() => {}); // its failure has nowhere to go
      throw new TypeError(
        `Cannot ${steps.what}: init returned a promise, which a sync call cannot wait for; ` +
          "use openOrCreate()",
      );
    }
    steps.publish(handle);
  } catch (error) {
    steps.abandon(handle);
    throw error;
  }
  return markCreated(handle);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as { then?: unknown }).then === "function";
}

/**
 * Checks an `init` option: a function or `undefined`.
 *
 * @param init The option given.
 * @param what The call, for the message.
 * @returns `init`.
 */
export function validateInit<A>(
  init: unknown,
  what: string,
): ((handle: A) => unknown) | undefined {
  if (init === undefined || typeof init === "function") {
    return init as ((handle: A) => unknown) | undefined;
  }
  throw new TypeError(`Cannot ${what}: init ${describe(init)} must be a function`);
}

/**
 * Checks the mode of an object to create with the mode-0 protocol: mode 0 would read as "still
 * being initialised" forever.
 */
export function validatePublishedMode(mode: number, what: string): number {
  if (mode === 0) {
    throw new RangeError(
      `Cannot ${what}: mode 0 marks an object still being initialised; give permission bits`,
    );
  }
  return mode;
}

/** The handles whose call created their object. */
const creators = new WeakSet<object>();

/** Records that `handle` created its object; returns it. */
export function markCreated<H extends object>(handle: H): H {
  creators.add(handle);
  return handle;
}

/** Whether `handle` created its object (see {@linkcode markCreated}). */
export function wasCreated(handle: object): boolean {
  return creators.has(handle);
}

/**
 * Sets the real mode of an object created with mode 0, keeping the sticky bit (the mark of an
 * owned object, see _owned.ts): from now on, openers may use it.
 *
 * @param fd The object's descriptor.
 * @param mode The permission bits asked for, exactly (no umask).
 * @param operation What is being done, for the error.
 */
export function publishMode(fd: number, mode: number, operation: Operation): void {
  const sticky = (descriptorStatus(fd)?.mode ?? 0) & S_ISVTX;
  check(libc().fchmod(fd, sticky | mode), "fchmod", operation);
}

/** Whether an object's mode says its creator is still initialising it (mode 0). */
export function stillInitialising(mode: number | undefined): boolean {
  return mode !== undefined && (mode & 0o777) === 0;
}

/**
 * The protocol between {@linkcode select} and the sources it waits on. Internal to the library,
 * but stable: a new kind of source (a Topic subscription, say) joins `select` by implementing
 * one symbol-keyed method, `[selectable]()`, that returns a {@linkcode SelectAdapter}.
 *
 * An adapter separates *taking* from *waiting*, which is what makes `select` race-free:
 * - `try()` takes one item without waiting (a message, a semaphore count, an exit status...)
 *   and returns it as `{ value }`, or returns `undefined` when there is nothing to take. It
 *   may throw: the source has ended (`Deno.errors.UnexpectedEof`, `BrokenPipe`), and `select`
 *   reports that source with the error.
 * - Waiting takes nothing: it ends once the source *may* be ready (a spurious end only costs
 *   another round of tries). An adapter gives one of three ways, from the cheapest:
 *   - `futex`, a {@linkcode FutexSleeper}: a 32-bit word in shared memory that a producer
 *     wakes (a semaphore's value, a channel's data semaphore). `select` sleeps on all such
 *     words at once in one `futex_waitv` call on one worker thread;
 *   - `pollFd`: a descriptor that polls readable (POLLIN, POLLHUP) when the source may be
 *     ready; `select` polls all of them in one `poll` call on one worker thread;
 *   - `wait(signal)`, anything else (a promise, an event): resolves when the source may be
 *     ready, rejects with the error that ended the source, and settles promptly (microseconds,
 *     not a slice) once `signal` aborts; it waits in bounded slices and never spins.
 * - `release()`, optional, runs once `select` is done with the adapter: a wait may have been
 *   woken by a post or a send meant for any one sleeper and taken nothing, so a source that
 *   still holds an item while others sleep on it wakes one of them.
 *
 * Because only `try()` takes, and `select` calls it for one source at a time on the JS thread,
 * an item is taken at most once and always returned: when another process consumed what woke
 * a wait, the try finds nothing and `select` waits again.
 *
 * @module
 */

/** The key of the method that makes an object a source of {@linkcode select}. */
export const selectable: unique symbol = Symbol.for("@posix/ipc/selectable");

/** What a successful `try()` took. */
export interface Taken<T> {
  /** The item taken from the source. */
  readonly value: T;
}

/** A futex word to sleep on, and the value it holds while the source has nothing. */
export interface FutexWord {
  /** The address of the 32-bit word (in shared memory for a cross-process source). */
  readonly word: Deno.PointerObject;
  /** The value it holds while there is nothing: the sleep ends as soon as it differs. */
  readonly expected: number;
}

/**
 * How `select` sleeps on a source's futex word; every call may throw `BadResource` once the
 * source is closed.
 */
export interface FutexSleeper {
  /** A wait begins: the source keeps its memory mapped until {@linkcode FutexSleeper.end}. */
  begin(): void;
  /** The wait ended. */
  end(): void;
  /**
   * Announces a sleeper (so that producers wake it), then returns the word to sleep on, or
   * `undefined` when the source is ready already; {@linkcode FutexSleeper.leave} follows
   * either way. One that throws has announced nothing (or withdrawn it), and no `leave`
   * follows.
   */
  enter(): FutexWord | undefined;
  /** Withdraws the sleeper that `enter` announced. */
  leave(): void;
  /**
   * After a whole slice of sleep: throws when the source was closed (`BadResource`) or ended
   * (a channel whose peers all closed or died).
   */
  check(): void;
}

/**
 * How {@linkcode select} takes from and waits on one source; see the module docs. It gives
 * `futex`, `pollFd` or `wait`.
 *
 * @typeParam T What a take yields.
 */
export interface SelectAdapter<T> {
  /** Takes one item without waiting, or returns `undefined`; throws when the source ended. */
  try(): Taken<T> | undefined;
  /** Sleeps on a futex word, with the other futex sources. */
  readonly futex?: FutexSleeper;
  /** Polls a descriptor for POLLIN, with the other descriptor sources; throws once closed. */
  readonly pollFd?: () => number;
  /** Resolves when the source may be ready; settles promptly once `signal` aborts. */
  wait?(signal: AbortSignal): Promise<void>;
  /** Passes on a wake-up that a wait consumed without taking; see the module docs. */
  release?(): void;
}

/**
 * A source that {@linkcode select} can wait on: a `Channel`, a `Semaphore`, a `MessageQueue`,
 * a pipe's `ReadEnd`, a `ChildProcess`, a Topic `Subscription`, the iterator of `signals()`, or any object with a
 * `[selectable]()` method.
 *
 * @typeParam T What selecting it yields.
 */
export interface Selectable<T> {
  /** Makes the adapter through which `select` takes from and waits on this source. */
  [selectable](): SelectAdapter<T>;
}

/** Whether `value` implements the protocol. */
export function isSelectable(value: unknown): value is Selectable<unknown> {
  return (typeof value === "object" || typeof value === "function") && value !== null &&
    typeof (value as Partial<Selectable<unknown>>)[selectable] === "function";
}

/** A wait's failure that belongs to one source: the source at `index` ended with `error`. */
export class SourceEnded {
  /** Records which source ended and why. */
  constructor(readonly index: number, readonly error: unknown) {}
}

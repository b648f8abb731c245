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
 * - `wait(signal)` takes nothing: it resolves once the source *may* be ready (a spurious
 *   resolve only costs another round of tries), rejects with the error that ended the source,
 *   and settles promptly (microseconds, not a slice) when `signal` aborts. It waits in bounded
 *   slices, so that a close or a dead peer is noticed, and must never spin without a bound.
 *
 * Because only `try()` takes, and `select` calls it for one source at a time on the JS thread,
 * an item is taken at most once and always returned: when another process consumed what woke
 * a wait, the try finds nothing and `select` waits again. A wait that consumed a wake-up meant
 * for one sleeper (a semaphore post, a channel send) passes it on in `release()` when `select`
 * returned another source.
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

/**
 * How {@linkcode select} takes from and waits on one source; see the module docs.
 *
 * @typeParam T What a take yields.
 */
export interface SelectAdapter<T> {
  /** Takes one item without waiting, or returns `undefined`; throws when the source ended. */
  try(): Taken<T> | undefined;
  /** Resolves when the source may be ready; settles promptly once `signal` aborts. */
  wait(signal: AbortSignal): Promise<void>;
  /**
   * Called once `select` is done with the adapter (after every wait ended): a wait may have
   * been woken by a post or a send meant for any one sleeper and taken nothing, so a source
   * that still holds an item while others sleep on it wakes one of them here.
   */
  release?(): void;
}

/**
 * A source that {@linkcode select} can wait on: a `Channel`, a `Semaphore`, a `MessageQueue`,
 * a pipe's `ReadEnd`, a `ChildProcess`, the iterator of `signals()`, or any object with a
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

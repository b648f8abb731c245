/**
 * The async iterator of a receiving handle (a channel, a topic's subscription). Internal.
 *
 * A plain iterator rather than an async generator: a message already waiting is handed out in
 * one resolved promise, without the generator's extra hops (in one process, 0.24 µs a message
 * instead of 0.44 µs). Calls of `next()` made before the previous one settled wait for it, so
 * values come in order, as from a generator.
 *
 * @module
 */

/** What the iterator needs of its handle. */
export interface Receiver<T> {
  /** A value waiting now, or `undefined`. */
  tryReceive(): T | undefined;
  /** The next value, waiting for it. */
  receive(): Promise<T>;
  /** Whether the handle was closed (iteration then ends quietly). */
  isClosed(): boolean;
}

/**
 * Receives until the stream ends: `UnexpectedEof` ends it quietly, and so does the handle's
 * close; any other error is thrown once, and later calls say done.
 */
export function receiverIterator<T>(receiver: Receiver<T>): AsyncIterableIterator<T> {
  let done = false;
  /** The last `next()` that had to wait, until it settles. */
  let waiting: Promise<unknown> | null = null;
  const end = (): IteratorResult<T> => {
    done = true;
    return { value: undefined, done: true };
  };
  const ended = (error: unknown): IteratorResult<T> => {
    if (error instanceof Deno.errors.UnexpectedEof) return end();
    if (error instanceof Deno.errors.BadResource && receiver.isClosed()) return end();
    done = true; // as a generator that threw: later calls say done
    throw error;
  };
  const next = (): Promise<IteratorResult<T>> => {
    if (waiting !== null) return waiting.then(next, next);
    try {
      if (done || receiver.isClosed()) return Promise.resolve(end());
      const value = receiver.tryReceive();
      if (value !== undefined) return Promise.resolve({ value, done: false });
    } catch (error) {
      try {
        return Promise.resolve(ended(error));
      } catch (thrown) {
        return Promise.reject(thrown);
      }
    }
    const result = receiver.receive().then(
      (value): IteratorResult<T> => ({ value, done: false }),
      ended,
    );
    const settled = () => {
      if (waiting === result) waiting = null;
    };
    waiting = result;
    result.then(settled, settled);
    return result;
  };
  return {
    next,
    return: (value?: unknown) => {
      done = true;
      return Promise.resolve({ value: value as T, done: true });
    },
    [Symbol.asyncIterator]() {
      return this;
    },
  };
}

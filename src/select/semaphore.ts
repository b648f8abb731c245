/**
 * The select adapter of a glibc semaphore (named or placed in shared memory). Internal.
 *
 * Its wait takes no count: it sleeps on the semaphore's futex word as `sem_wait` does
 * (src/select/sem_word.ts), with select's other futex sources, so that only `try()`
 * (`sem_trywait`) takes. A post wakes one sleeper: if that was this select and it returned
 * another source, the count stays while a real `sem_wait` may sleep on; `release` then wakes
 * one of them.
 *
 * @module
 */

import type { SelectAdapter, Taken } from "./protocol.ts";
import { SemWord } from "./sem_word.ts";

/** What a semaphore gives its adapter. */
export interface SemaphoreSource<T> {
  /** The `sem_t`; throws BadResource once the handle is closed. */
  pointer(): Deno.PointerObject;
  /** Takes one count without waiting, as `{ value }`, or returns `undefined`. */
  take(): Taken<T> | undefined;
  /** A wait begins: the handle keeps the semaphore mapped until every wait has ended. */
  begin(): void;
  /** A wait ended. */
  end(): void;
}

/** Makes the select adapter of a semaphore. */
export function semaphoreAdapter<T>(source: SemaphoreSource<T>): SelectAdapter<T> {
  let sem: SemWord | undefined;
  const word = () => {
    const pointer = source.pointer(); // throws once closed
    if (sem?.pointer !== pointer) sem = new SemWord(pointer);
    return sem;
  };
  return {
    try: () => source.take(),
    futex: {
      begin: source.begin,
      end: source.end,
      enter: () => {
        const sem = word();
        sem.addWaiter();
        return sem.posted ? undefined : { word: sem.pointer, expected: 0 };
      },
      leave: () => sem?.removeWaiter(),
      check: () => void source.pointer(),
    },
    release: () => word().passOn(),
  };
}

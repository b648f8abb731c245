/**
 * The cancel of select's own waits: an AbortController costs a DOMException (with its stack
 * trace) per abort and an EventTarget per round, which showed in the profile of a wake through
 * select; this one costs an object and an array. Internal.
 *
 * @module
 */

/** A one-shot cancel with listeners. */
export class Cancel {
  #aborted = false;
  readonly #listeners = new Set<() => void>();

  /** Whether it was cancelled. */
  get aborted(): boolean {
    return this.#aborted;
  }

  /** Calls `listener` when cancelled (at once if it was already). */
  on(listener: () => void): void {
    if (this.#aborted) listener();
    else this.#listeners.add(listener);
  }

  /** Forgets `listener`. */
  off(listener: () => void): void {
    this.#listeners.delete(listener);
  }

  /** Cancels, once: calls every listener. */
  abort(): void {
    if (this.#aborted) return;
    this.#aborted = true;
    for (const listener of this.#listeners) listener();
    this.#listeners.clear();
  }
}

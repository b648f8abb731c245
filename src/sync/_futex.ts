/**
 * Futexes on words in shared memory, across processes (FUTEX_WAIT/FUTEX_WAKE without
 * FUTEX_PRIVATE: the kernel keys them by the physical page). `Atomics.wait` cannot serve here:
 * V8 keeps its waiters in the process. Internal.
 *
 * @module
 */

import { FUTEX_WAIT, FUTEX_WAKE, SYS_futex } from "../../ffi/constants.ts";
import { timespec } from "../../ffi/layout.ts";
import { libc } from "../../ffi/libc.ts";
import { address } from "../../ffi/cstring.ts";
import type { Placement } from "../_placement.ts";
import { closedError } from "../errors.ts";

const NR = BigInt(SYS_futex);

/**
 * The timeout of sync waits, reused: they block the only thread that runs JavaScript, so one
 * buffer serves them all, and allocating an ArrayBuffer per wait makes V8 wake a helper thread
 * (a hundred microseconds on an idle machine). Async waits need their own, kept alive until the
 * worker thread is done.
 */
const syncTimeout = new Uint8Array(timespec.size);

function relative(
  ms: number,
  into: Uint8Array<ArrayBuffer> = new Uint8Array(timespec.size),
): Uint8Array<ArrayBuffer> {
  const buffer = into;
  const view = new DataView(buffer.buffer);
  view.setBigInt64(timespec.tv_sec, BigInt(Math.floor(ms / 1000)), true);
  view.setBigInt64(timespec.tv_nsec, BigInt(Math.round((ms % 1000) * 1e6)), true);
  return buffer;
}

/** Wakes up to `count` processes waiting on the word. */
export function futexWake(word: Deno.PointerObject, count: number): void {
  libc().futex(NR, word, BigInt(FUTEX_WAKE), BigInt(count), null);
}

/** Blocks this thread while the word holds `expected`, at most `ms`. */
export function futexWaitSync(word: Deno.PointerObject, expected: number, ms: number): void {
  const timeout = relative(ms, syncTimeout);
  libc().futex(
    NR,
    word,
    BigInt(FUTEX_WAIT),
    BigInt(expected >>> 0),
    Deno.UnsafePointer.of(timeout),
  );
}

/** Waits on a worker thread while the word holds `expected`, at most `ms`. */
export async function futexWait(
  word: Deno.PointerObject,
  expected: number,
  ms: number,
): Promise<void> {
  const timeout = relative(ms);
  await libc().futex_async(
    NR,
    word,
    BigInt(FUTEX_WAIT),
    BigInt(expected >>> 0),
    Deno.UnsafePointer.of(timeout),
  );
  void timeout; // kept alive until the worker thread is done with it
}

/**
 * The life of an object placed in shared memory: Int32 cells over its bytes, and its pin on
 * the pages, released only once the handle is closed and nothing uses the pages any more: no
 * worker thread waiting inside them, no held lock (a mutex guard outlives its handle's close,
 * so that it can still unlock).
 */
export class PlacedCells {
  readonly cells: Int32Array<ArrayBuffer>;
  readonly pointer: Deno.PointerObject;
  #unpin: (() => void) | null;
  #users = 0;
  #closed = false;
  readonly #label: string;

  constructor(placement: Placement, size: number, label: string) {
    this.pointer = placement.pointer;
    this.#unpin = placement.unpin;
    this.cells = new Int32Array(Deno.UnsafePointerView.getArrayBuffer(placement.pointer, size));
    this.#label = label;
  }

  /** The address of cell `index`, for the futex calls. */
  word(index: number): Deno.PointerObject {
    return Deno.UnsafePointer.create(
      address(this.pointer) + BigInt(index * 4),
    ) as Deno.PointerObject;
  }

  get closed(): boolean {
    return this.#closed;
  }

  assertOpen(): void {
    if (this.#closed) throw closedError(this.#label);
  }

  /** Runs an async wait, keeping the pages pinned until it ends. */
  async waiting<T>(wait: () => Promise<T>): Promise<T> {
    const done = this.use();
    try {
      return await wait();
    } finally {
      done();
    }
  }

  /**
   * Keeps the pages pinned, even past `close()`, until the returned function is called (which
   * does something only the first time).
   */
  use(): () => void {
    this.#users++;
    let using = true;
    return () => {
      if (!using) return;
      using = false;
      if (--this.#users === 0 && this.#closed) this.#release();
    };
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#users === 0) this.#release();
  }

  #release(): void {
    this.cells.buffer.transfer(0);
    this.#unpin?.();
    this.#unpin = null;
  }
}

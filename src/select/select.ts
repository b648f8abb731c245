/**
 * `select`: waits on many sources at once and takes from the first that is ready.
 *
 * @module
 */

import { deadlineAfter, delay, validateWaitOptions, type WaitOptions } from "../_wait.ts";
import { describe, optionsObject } from "../_validate.ts";
import { Cancel } from "./cancel.ts";
import { type IndexedFd, pollSources } from "./fd.ts";
import { FUTEX_WAITV_MAX, type IndexedSleeper, sleepOnWords } from "./futex.ts";
import {
  isSelectable,
  type Selectable,
  selectable,
  type SelectAdapter,
  SourceEnded,
} from "./protocol.ts";

/**
 * The most sources one `select` takes: the futex sources share one `futex_waitv`, which takes
 * up to 128 words, one of them select's own.
 */
export const MAX_SOURCES: number = FUTEX_WAITV_MAX - 1;

/**
 * What {@linkcode select} returns for one source: the source, its index in the list, and either
 * what was taken from it (`value`) or the error that ended it (`error`: the channel's
 * `UnexpectedEof` or `BrokenPipe`, as its `receive()` would throw).
 *
 * @typeParam S The source's type.
 * @typeParam I Its index: a literal for a list written as an array literal, so that a check of
 *   `index` narrows `value`.
 */
export type SelectedSource<S, I extends number = number> = S extends Selectable<infer T> ? {
    /** The source that was ready. */
    readonly source: S;
    /** Its index in the list given to `select`. */
    readonly index: I;
    /** What was taken from it. */
    readonly value: T;
    /** Absent: the source did not end. */
    readonly error?: undefined;
  } | {
    /** The source that ended. */
    readonly source: S;
    /** Its index in the list given to `select`. */
    readonly index: I;
    /** Absent: nothing was taken. */
    readonly value?: undefined;
    /** Why the source ended: what its own receive would have thrown. */
    readonly error: Error;
  }
  : never;

/**
 * What {@linkcode select} returns for the list `S`: one {@linkcode SelectedSource} per element,
 * told apart by `index`.
 *
 * @typeParam S The sources' list type.
 */
export type Selected<S extends readonly unknown[]> = number extends S["length"]
  ? SelectedSource<S[number]>
  : { [K in keyof S]: SelectedSource<S[K], K extends `${infer N extends number}` ? N : number> }[
    number
  ];

/** The reason of select's own cancels of the adapters' waits: no DOMException per round. */
const CANCELLED = Symbol("cancelled by select");

/** Rounds that may end at once with nothing taken before `select` pauses between rounds. */
const HASTY_ROUNDS = 8;

/** Where the next `select` starts trying, so that an always-ready source cannot starve others. */
let rotation = 0;

/**
 * Waits, without blocking the event loop, until one of `sources` is ready, and takes one item
 * from it: a channel's or a message queue's next message, a semaphore's count (as a permit), a
 * pipe's next chunk (`null` at end of file), a child's exit status, a signal's name.
 *
 * Only the source returned gives up an item, so several processes (or several `select`s) that
 * consume the same sources lose nothing and take nothing twice: a source that turns out empty
 * on the try (another consumer won) makes `select` wait again. Each call starts trying at the
 * next source in turn, so one that is always ready cannot starve the others. A channel whose
 * peers have all closed (or died) is ready too, and so is a subscription whose publishers have:
 * it comes back with `error` set.
 *
 * While the sources are idle, the waiting costs one wake-up every 400 ms per kind of wait (to
 * notice a close or a dead peer): one `futex_waitv` for the semaphores and channels, one
 * `poll` for the descriptors (measured: 0.3% of a core for 8 idle sources).
 *
 * @param sources The sources, at most {@linkcode MAX_SOURCES}, each once: `Channel`,
 *   `Semaphore`, `MessageQueue`, a pipe's `ReadEnd`, `ChildProcess`, a topic's
 *   `Subscription`, the iterator of `signals()`, or any object with a `[selectable]()` method.
 * @param options `timeout` (ms) and `signal`.
 * @returns The ready source, its index, and what was taken or why it ended.
 * @throws {TypeError} when `sources` is not an iterable of selectable objects, or names one
 *   twice.
 * @throws {RangeError} when `sources` is empty or longer than {@linkcode MAX_SOURCES}.
 * @throws {Deno.errors.BadResource} when a source is closed, also while waiting.
 * @throws {Deno.errors.TimedOut} after `timeout`.
 * @throws the signal's reason when it aborts.
 * @example Whichever comes first
 * ```ts
 * import { Channel, codecs } from "@posix/ipc/channel";
 * import { Semaphore } from "@posix/ipc/semaphore";
 * import { select } from "@posix/ipc/select";
 *
 * using jobs = Channel.create({ codec: codecs.text });
 * using stop = Semaphore.create(`/stop-${Deno.pid}`);
 * setTimeout(() => jobs.sendSync("build"), 10);
 * const ready = await select([jobs, stop], { timeout: 5000 });
 * if (ready.source === jobs) console.log(ready.value); // "build"
 * ```
 */
export async function select<const S extends readonly Selectable<unknown>[]>(
  sources: S,
  options: WaitOptions = {},
): Promise<Selected<S>> {
  const list = validateSources(sources);
  const own = optionsObject(options, "select() options");
  const wait: WaitOptions = {
    timeout: Object.hasOwn(own, "timeout") ? own.timeout : undefined,
    signal: Object.hasOwn(own, "signal") ? own.signal : undefined,
  };
  const deadline = deadlineAfter(validateWaitOptions(wait, "select"));
  const adapters = list.map(adapterOf);
  const start = rotation;
  rotation = (rotation + 1) % 0x4000_0000;
  let hasty = 0;
  let skipFds = false; // after a wake of the futex side only: see Woken
  let cancelPoll: (() => void) | undefined; // a poll left running: see Woken
  try {
    while (true) {
      wait.signal?.throwIfAborted();
      for (let k = 0; k < list.length; k++) {
        const index = (start + k) % list.length;
        if (skipFds && adapters[index]!.pollFd && !adapters[index]!.futex) continue;
        const taken = tryOne(adapters[index]!);
        if (taken !== undefined) {
          return { source: list[index], index, ...taken } as Selected<S>;
        }
      }
      const left = deadline - performance.now();
      if (left <= 0) {
        throw new Deno.errors.TimedOut(`Cannot select: timed out after ${wait.timeout} ms`);
      }
      const began = performance.now();
      cancelPoll?.();
      const woken = await waitForAny(adapters, wait.signal, left);
      cancelPoll = woken.cancelPoll;
      if (woken.ended !== undefined) {
        const [index, error] = woken.ended;
        return { source: list[index], index, error } as Selected<S>;
      }
      skipFds = woken.futexOnly;
      // A wait that keeps ending at once with nothing to take (a foreign adapter's, or other
      // consumers that always win) must not spin: after a few such rounds, a timer's pause.
      hasty = performance.now() - began < 1 ? hasty + 1 : 0;
      if (hasty >= HASTY_ROUNDS) await delay(Math.min(hasty - HASTY_ROUNDS + 1, 10));
    }
  } finally {
    if (cancelPoll) afterCaller(cancelPoll);
    for (const adapter of adapters) {
      try {
        adapter.release?.();
      } catch {
        // closed meanwhile: nothing to pass on
      }
    }
  }
}

/**
 * Runs `fn` once the code that awaited `select()` has run on, up to its next `await`: queued
 * from select's `finally`, a first microtask runs before that code (which is queued when the
 * promise of `select()` resolves, just after), and queues `fn` behind it.
 */
function afterCaller(fn: () => void): void {
  queueMicrotask(() => queueMicrotask(fn));
}

/** The adapter of `source`, checked: it must say how to take and how to wait. */
function adapterOf(source: Selectable<unknown>, index: number): SelectAdapter<unknown> {
  const adapter = source[selectable]();
  if (
    typeof adapter?.try !== "function" ||
    !(adapter.futex || typeof adapter.pollFd === "function" || typeof adapter.wait === "function")
  ) {
    throw new TypeError(
      `Cannot select: the [selectable]() of sources[${index}] gave no try() and way to wait`,
    );
  }
  return adapter;
}

/** Checks `sources` and copies it into an array. */
function validateSources(sources: unknown): Selectable<unknown>[] {
  if (
    sources === null || typeof sources !== "object" ||
    typeof (sources as Partial<Iterable<unknown>>)[Symbol.iterator] !== "function"
  ) {
    throw new TypeError(`Cannot select: sources ${describe(sources)} must be an array or iterable`);
  }
  const list: Selectable<unknown>[] = [];
  for (const source of sources as Iterable<unknown>) {
    if (list.length === MAX_SOURCES) {
      throw new RangeError(`Cannot select: more than ${MAX_SOURCES} sources`);
    }
    if (!isSelectable(source)) {
      throw new TypeError(
        `Cannot select: sources[${list.length}], ${describe(source)}, must be a selectable source`,
      );
    }
    if (list.includes(source)) {
      throw new TypeError(`Cannot select: sources[${list.length}] appears twice in the list`);
    }
    list.push(source);
  }
  if (list.length === 0) throw new RangeError("Cannot select: sources is empty");
  return list;
}

/** One try: `{ value }`, `{ error }` for a source that ended, or `undefined`. */
function tryOne(
  adapter: SelectAdapter<unknown>,
): { value: unknown } | { error: Error } | undefined {
  try {
    const taken = adapter.try();
    return taken === undefined ? undefined : { value: taken.value };
  } catch (error) {
    if (endsSource(error)) return { error };
    throw error;
  }
}

/** Whether `error` ends one source (reported with it) rather than the whole select (thrown). */
function endsSource(error: unknown): error is Error {
  return error instanceof Deno.errors.UnexpectedEof || error instanceof Deno.errors.BrokenPipe ||
    error instanceof Deno.errors.InvalidData;
}

/** How a wait of {@linkcode waitForAny} ended. */
interface Woken {
  /** The index and error of a source found ended. */
  readonly ended?: [number, Error];
  /**
   * Whether the futex side woke by itself, before the poll ended or a cancel: then only the
   * futex sources (and those with a wait of their own) may have become ready since the tries,
   * and the next tries skip the descriptors, whose tries are system calls (a descriptor that
   * became ready meanwhile makes the next poll return at once, or is found by the next call's
   * tries, which try every source).
   */
  readonly futexOnly: boolean;
  /**
   * With `futexOnly`: ends the poll, left running. Cancelling it wakes its worker thread, which
   * cost the wake through select 45-70 µs on a 2-core VM (a cross-CPU wake-up); select does it
   * once its caller has the result, or before it waits again.
   */
  readonly cancelPoll?: () => void;
}

/**
 * Waits on every source at once until one may be ready, `left` ms pass or `signal` aborts: the
 * futex sources in one `futex_waitv`, the descriptors in one `poll`, the others each by their
 * own `wait`. Cancels the other waits and lets them end before it returns, all but the poll,
 * which holds nothing of the sources' but their descriptors (which it only polls): it is never
 * awaited, as its worker thread's return would delay the result, and after a wake of the futex
 * side it is left running for the caller to cancel (`cancelPoll`).
 */
async function waitForAny(
  adapters: SelectAdapter<unknown>[],
  signal: AbortSignal | undefined,
  left: number,
): Promise<Woken> {
  const cancel = new Cancel();
  const pollCancel = new Cancel();
  const abort = () => {
    cancel.abort();
    pollCancel.abort();
  };
  signal?.addEventListener("abort", abort);
  const timer = left === Infinity ? undefined : setTimeout(abort, Math.max(1, Math.ceil(left)));
  const sleepers: IndexedSleeper[] = [];
  const fds: IndexedFd[] = [];
  const waits: Promise<void>[] = [];
  let controller: AbortController | undefined; // only for the adapters' own waits
  adapters.forEach((adapter, index) => {
    if (adapter.futex) sleepers.push({ index, sleeper: adapter.futex });
    else if (adapter.pollFd) fds.push({ index, fd: adapter.pollFd });
    else {
      if (controller === undefined) {
        const made = controller = new AbortController();
        cancel.on(() => made.abort(CANCELLED));
      }
      const own = controller.signal;
      waits.push(
        adapter.wait!(own).catch((error) => {
          throw own.aborted && error === CANCELLED ? error : new SourceEnded(index, error);
        }),
      );
    }
  });
  let futexWoke = false;
  if (sleepers.length > 0) {
    waits.push(sleepOnWords(sleepers, cancel).then(() => void (futexWoke = !cancel.aborted)));
  }
  const outcomes = waits.map((wait) => wait.then(() => undefined, (failure) => ({ failure })));
  const polled = fds.length === 0
    ? undefined
    : pollSources(fds, pollCancel).then(() => undefined, (failure) => ({ failure }));
  let first: { failure: unknown } | undefined;
  let futexOnly = false;
  try {
    first = await Promise.race(polled ? [...outcomes, polled] : outcomes);
    futexOnly = futexWoke && fds.length > 0;
  } finally {
    cancel.abort();
    if (!futexOnly) pollCancel.abort();
    clearTimeout(timer);
    signal?.removeEventListener("abort", abort);
  }
  try {
    let ended: [number, Error] | undefined;
    for (const outcome of [first, ...await Promise.all(outcomes)]) {
      if (outcome === undefined || outcome.failure === CANCELLED) continue;
      const reason = outcome.failure;
      if (!(reason instanceof SourceEnded)) throw reason;
      if (!endsSource(reason.error)) throw reason.error;
      ended ??= [reason.index, reason.error];
    }
    return { ended, futexOnly, cancelPoll: futexOnly ? () => pollCancel.abort() : undefined };
  } catch (error) {
    pollCancel.abort();
    throw error;
  }
}

/**
 * Waiting on many sources at once: {@linkcode select} resolves with the first source that is
 * ready among channels, semaphores, message queues, pipe read ends, child processes and
 * signals, and takes one item from it (Go's `select` receives), so that processes that
 * consume the same sources lose nothing and take nothing twice.
 *
 * | Source | What `select` takes | Ready when |
 * | --- | --- | --- |
 * | `Channel` (receive side) | the next message | a message is there, or every peer closed or died (`error`) |
 * | `Semaphore` (named or placed) | a count, as a permit | the value is above zero |
 * | `MessageQueue` | the next message | a message is there |
 * | `ReadEnd` of a pipe or FIFO | up to 64 KiB, `null` at end of file | bytes or end of file |
 * | `ChildProcess` | its exit status | it exited (and from then on) |
 * | `signals(...)` | the oldest signal received | a signal is queued |
 *
 * **The protocol.** A source is any object with a `[selectable]()` method returning a
 * {@linkcode SelectAdapter}: `try()` takes one item without waiting (`{ value }` or
 * `undefined`; throwing `UnexpectedEof`/`BrokenPipe` reports the source as ended), and
 * `wait(signal)` resolves when the source may be ready, taking nothing, and settles at once
 * when `signal` aborts; an optional `release()` passes on a wake-up that a wait consumed when
 * `select` returned another source. A new kind of source, such as a Topic subscription, joins
 * with those few lines.
 *
 * **How it waits.** `select` first tries every source, starting one further each call (fair:
 * an always-ready source cannot starve the others). When none has anything, it waits on all of
 * them at once, each as its own receive would sleep, taking nothing: the semaphores and the
 * channels (on their ring's semaphore) together in one `futex_waitv` on one worker thread,
 * sleeping on each `sem_t`'s futex word as `sem_wait` does (Linux 5.16+; an older kernel gets
 * one `FUTEX_WAIT` per source); the descriptors together in one `poll`; child exits and signals
 * as promises. Each wait lasts 400 ms at most, to notice a close or a dead peer. The first wait
 * to end cancels the others at once (a private futex word, a pipe), and `select` tries again.
 *
 * @example
 * ```ts
 * import { Channel, codecs } from "@posix/ipc/channel";
 * import { pipe } from "@posix/ipc/pipe";
 * import { select } from "@posix/ipc/select";
 *
 * using jobs = Channel.create({ codec: codecs.text });
 * using control = pipe();
 * control.writer.writeSync("stop");
 * const ready = await select([jobs, control.reader], { timeout: 1000 });
 * console.log(ready.index, ready.value); // 1 Uint8Array(4) [ 115, 116, 111, 112 ]
 * ```
 *
 * @module
 */

export { MAX_SOURCES, select, type Selected, type SelectedSource } from "./select.ts";
export {
  type FutexSleeper,
  type FutexWord,
  type Selectable,
  selectable,
  type SelectAdapter,
  type Taken,
} from "./protocol.ts";

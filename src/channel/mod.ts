/**
 * The fast lane: a ring buffer of variable-length messages in shared memory, between Deno
 * processes, at close to memory speed.
 *
 * The ring lives in an anonymous segment by default (hand `channel.fd` to a child with
 * `spawn`'s `fds`; the child calls `Channel.fromFd`), or in a named one that unrelated processes
 * `Channel.open`. A channel carries messages one way: make two for a conversation.
 *
 * How it goes fast: the data region is mapped twice, back to back, so that every message is
 * contiguous even where it wraps; each side keeps its own index and publishes it with one
 * atomic store per message; a receiver that finds the ring empty spins for a few microseconds
 * (bounded) before it sleeps on a semaphore in the segment, and a sender posts it only when it
 * sleeps. A process that was asleep, or has just woken a sleeping peer, yields the CPU once its
 * message is out: the kernel often runs the woken peer on the same CPU. An idle receiver costs
 * almost nothing: it wakes every 400 ms to see whether its peers are alive, and at once on close
 * or abort.
 *
 * The parts, each in its own file: the ring's memory layout and header checks (layout.ts), the
 * participant and liveness registry (registry.ts), the wait-and-wake strategy (wait.ts), the
 * frames a handle writes and reads (frames.ts), the multi mode's locks (locks.ts), loans
 * (loan.ts), opening (open.ts, options.ts) and releasing (lease.ts) a handle, and the `Channel`
 * API over them (channel.ts).
 *
 * @example Text messages
 * ```ts
 * import { Channel, codecs } from "@posix/ipc/channel";
 *
 * using channel = Channel.create({ codec: codecs.text });
 * channel.sendSync("hello");
 * console.log(channel.tryReceive()); // "hello"
 * ```
 *
 * @module
 */

export { Channel } from "./channel.ts";
export type {
  CreateChannelOptions,
  OpenChannelOptions,
  OpenOrCreateChannelOptions,
  ReceiveOptions,
} from "./options.ts";
export type { OpenOrCreateWaitOptions } from "../_open_or_create.ts";
export { Loan } from "./loan.ts";
export type { ChannelRole } from "./registry.ts";
export { type Codec, codecs } from "../codec.ts";
export type { WaitOptions } from "../_wait.ts";

/**
 * The wait-and-wake strategy of a channel: how a side that finds the ring empty (a receiver) or
 * full (a sender) waits for the other side, and how the other side wakes it. Internal.
 *
 * A waiter first spins for a few microseconds (bounded) on the other side's index: a hot peer
 * answers within that time. An async waiter whose peer answered recently then keeps looking
 * after each turn of the event loop, for up to 3× its last wait and at most
 * {@linkcode ADAPTIVE_MAX_MS} ({@linkcode adaptiveBudget}): a peer that is about to answer is
 * seen without a sleep, whose wake-up costs two thread hops (the kernel wakes a pool thread,
 * which wakes the event loop). Between looks timers and I/O run, so an async wait holds the
 * event loop for {@linkcode SPIN_MS} at most at once. Then it announces itself in its side's
 * "waiting" counter and sleeps on a process-shared semaphore in the header (receivers on DATA,
 * senders on SPACE); the other side posts the semaphore only when that counter says someone
 * sleeps, so a busy channel makes no system call per message. A sleep lasts a slice at most ({@linkcode CHANNEL_SLICE_MS}), after
 * which the waiter looks at its peers (src/channel/registry.ts) to notice one that died. Close
 * and abort wake every waiter of both sides at once ({@linkcode wakeAll}).
 *
 * A process that was asleep, or has just woken a sleeping peer, yields the CPU once its message
 * is out: the kernel often runs the woken peer on the same CPU. A spin yields only while the
 * other side last ran on this CPU (each side leaves its CPU in the header): a peer on another
 * CPU does not need this one, and on a CPU busy with another program a yield can lose it for a
 * whole time slice.
 *
 * @module
 */

import { CLOCK_MONOTONIC } from "../../ffi/constants.ts";
import { libc } from "../../ffi/libc.ts";
import {
  deadlineAfter,
  deadlineIn,
  readWaitOptions,
  RETRY,
  type WaitOptions,
  waitUntil,
} from "../_wait.ts";
import { check } from "../errors.ts";
import type { FutexSleeper } from "../select/protocol.ts";
import { SemWord } from "../select/sem_word.ts";
import {
  C_HEAD,
  C_RECEIVER_CPU,
  C_RECEIVERS_WAITING,
  C_SENDER_CPU,
  C_SENDERS_WAITING,
  C_TAIL,
  C_WAKE_ALLS,
} from "./layout.ts";

/**
 * The CPU this process last ran on, plus 1 (0: not looked yet), refreshed where it may have
 * moved: at a spin's first yield point and after a sleep. Sends and receives leave it in the
 * header, for the other side's spin ({@linkcode peerApart}).
 */
let cpuMark = 0;

function refreshCpu(): number {
  return cpuMark = libc().sched_getcpu() + 1;
}

/**
 * Whether the other side last ran on another CPU than this process runs on now: then a spin
 * need not yield for it to run, and a yield would only risk the CPU to another program for a
 * time slice.
 */
function peerApart(cells: Int32Array, cell: number): boolean {
  const peer = cells[cell]!;
  const mine = refreshCpu();
  return peer !== 0 && mine !== 0 && peer !== mine; // 0: not known (sched_getcpu failed)
}

/**
 * How long a waiter spins on the other side's index before it sleeps, blocking its thread: the
 * longest an async wait holds the event loop at once.
 */
export const SPIN_MS = 0.02;

/**
 * The longest an async waiter keeps looking, one look per turn of the event loop, before it
 * sleeps. bench/fixtures/wake_trials.ts measured it: with 1 ms, a round trip to a sleeping
 * peer took about 0.88× as long as with a sleep right after the spin (the median of ten runs,
 * 0.69-0.99×, shorter in every one): both processes' wake-ups cost two thread hops, and this
 * spares the one of the side that waits for the answer. An idle waiter still uses nothing: it sleeps once its budget is
 * spent. bench/wake_bench.ts compares it with the other ways to wake a sleeping async waiter.
 */
export const ADAPTIVE_MAX_MS = 1;

/**
 * How long the last async wait of each handle and side that outlasted the spin lasted, in ms
 * (for the adaptive budget).
 */
const lastWaits = new WeakMap<WaitHost, [receive: number, send: number]>();

/**
 * How long an async waiter may keep looking after each turn of the event loop before it sleeps:
 * 3× its last wait when that was short (the peer answers quickly: a round trip is under way),
 * at most {@linkcode ADAPTIVE_MAX_MS} and `timeout`; none after a long wait (an idle peer).
 */
export function adaptiveBudget(lastWait: number, timeout: number): number {
  if (!(lastWait < ADAPTIVE_MAX_MS)) return 0;
  return Math.min(ADAPTIVE_MAX_MS, 3 * lastWait, timeout);
}

/**
 * Turns of the event loop, through a MessageChannel made for one adaptive spin and closed after
 * it (an open port that listens keeps the process alive): each `next()` resolves once timers and
 * I/O have had their turn, ~5-10 µs. node's `setImmediate` costs ~2 µs, but importing
 * node:timers makes Deno set up more of its Node layer (descriptors and mappings) in every
 * process that uses a channel.
 */
export class Turns implements Disposable {
  readonly #channel = new MessageChannel();
  #resolve: (() => void) | null = null;

  constructor() {
    this.#channel.port2.onmessage = () => {
      const resolve = this.#resolve;
      this.#resolve = null;
      resolve?.();
    };
  }

  next(): Promise<void> {
    return new Promise((resolve) => {
      this.#resolve = resolve;
      this.#channel.port1.postMessage(null);
    });
  }

  [Symbol.dispose](): void {
    this.#channel.port1.close();
    this.#channel.port2.close();
  }
}

/**
 * Looks after each turn of the event loop until `blocked()` says false (the other side moved,
 * or the handle closed: then the wait loop says why), the budget is spent or the signal aborts.
 * Yields the CPU after a look that found nothing: on a busy machine the peer may wait for this
 * CPU. A topic's waits use it too (src/topic/wait.ts).
 */
export async function spinAcrossTurns(
  blocked: () => boolean,
  budget: number,
  signal: AbortSignal | undefined,
  cells?: Int32Array,
  peerCpuCell = 0,
): Promise<void> {
  const until = performance.now() + budget;
  using turns = new Turns();
  while (performance.now() < until) {
    await turns.next();
    if (signal?.aborted || !blocked()) return;
    if (cells === undefined || !peerApart(cells, peerCpuCell)) libc().sched_yield();
  }
}

/**
 * A waiting side wakes this often to see whether its peers are alive. Close and abort wake it
 * at once through its semaphore, so the slice sets only the idle cost (each wake-up of Deno's event
 * loop costs about half a millisecond of CPU) and how soon a dead peer is noticed.
 */
export const CHANNEL_SLICE_MS = 400;

/**
 * Whether the next send yields the CPU once its message is out: set when this process wakes
 * from a sleep in a wait, or wakes a sleeping peer. The kernel often runs a woken process on its
 * waker's CPU, so the peer that woke us, or that we woke, may be waiting for that CPU. Yielding
 * at once (not only at the next spin or sleep) cut the round trip to a sleeping peer by a
 * fifth. Each yield is a system call, on paths that have just made one.
 */
let yieldAfterSend = false;

/**
 * A yield after a send that took longer than this (ms) most likely gave the CPU to another
 * program, which keeps it for a whole time slice (milliseconds), where a peer on this CPU usually
 * hands it back sooner. Measured with `natural_round_trip.ts … 2` (two busy processes), a round
 * trip after an idle gap took 1.04-1.18× the socket's time in 5 runs of 7 with this rule (8.8-
 * 10.9× in the other 2), and without it 3.0-24× in 17 runs of 20 (1.2-1.6× in 3); alone on one
 * CPU, where a woken peer's turn can outlast the threshold too, it took 1.14-1.25× against
 * 1.12-1.17× (4 and 5 runs); unloaded, no change beyond the noise
 * (bench/fixtures/natural_trials.ts `startBusy`).
 */
const LOST_YIELD_MS = 0.1;

/**
 * For how long after a lost yield sends yield no more (ms).
 *
 * Only sends: a lost yield that also made every wait skip its yields and sleep at once (no spin
 * and no looks across turns: a woken sleeper preempts a busy program, a yielder waits out its
 * time slice) was tried with `natural_round_trip.ts`, taking turns with this code. With two
 * busy processes its hot round trip was steady, 67-131 µs (1.2-3.0× the socket's time, 20
 * runs), where this code's was 13-70 µs in 11 runs of 21 and 2-4 ms in the other 10, as the
 * yielding floor's; its idle trip was 1.7-2.2× the socket's in 16 runs of 20, against 0.4-1.6×
 * in 18 of 21. But with no busy process it took the hot trip from 11-22 µs to 60-112 µs in all
 * 10 runs, with a threshold of 0.1 ms or of 1 ms: a yield that outlasts them is common on a
 * machine with any load, and once one side sleeps, the other's yields wait for it too. Spinning
 * without yields in that mode, or looking across turns without yields, did no better.
 */
const NO_YIELDS_MS = 250;

/** Until when sends do not yield (`performance.now()`), after a lost yield. */
let noYieldsUntil = 0;

/**
 * Yields the CPU if this process has just slept or woken a peer; after a send, outside locks.
 * When such a yield lost the CPU to another program for a time slice, which on a busy machine
 * made every round trip after an idle gap take milliseconds, sends stop yielding for a while.
 */
export function yieldIfDue(): void {
  if (yieldAfterSend) {
    yieldAfterSend = false;
    const before = performance.now();
    if (before < noYieldsUntil) return;
    libc().sched_yield();
    if (performance.now() - before > LOST_YIELD_MS) noYieldsUntil = before + NO_YIELDS_MS;
  }
}

/** Makes the two semaphores of a new ring, where receivers and senders sleep. */
export function initWaits(data: Deno.PointerObject, space: Deno.PointerObject): void {
  const c = libc();
  check(c.sem_init(data, 1, 0), "sem_init", { action: "create a channel" });
  check(c.sem_init(space, 1, 0), "sem_init", { action: "create a channel" });
}

/**
 * After a message was published: leaves the sender's CPU for the receivers' spins, and wakes a
 * sleeping receiver, if one announced itself.
 */
export function wakeReceivers(cells: Int32Array, data: Deno.PointerObject): void {
  cells[C_SENDER_CPU] = cpuMark;
  passWakeOn(cells, data);
}

/**
 * Wakes a sleeping receiver, if one announced itself: for a receiver that took a wake-up it did
 * not use (a `select` that returned another source) while a message stays.
 */
export function passWakeOn(cells: Int32Array, data: Deno.PointerObject): void {
  if (Atomics.load(cells, C_RECEIVERS_WAITING) !== 0) {
    libc().sem_post(data);
    yieldAfterSend = true;
  }
}

/**
 * After a message was consumed: leaves the receiver's CPU for the senders' spins, and wakes a
 * sleeping sender, if one announced itself.
 */
export function wakeSenders(cells: Int32Array, space: Deno.PointerObject): void {
  cells[C_RECEIVER_CPU] = cpuMark;
  if (Atomics.load(cells, C_SENDERS_WAITING) !== 0) libc().sem_post(space);
}

/** Wakes every waiter of both sides, in every process, to look again (close, abort). */
export function wakeAll(
  cells: Int32Array,
  data: Deno.PointerObject,
  space: Deno.PointerObject,
): void {
  Atomics.add(cells, C_WAKE_ALLS, 1);
  const c = libc();
  for (const [sem, counter] of [[data, C_RECEIVERS_WAITING], [space, C_SENDERS_WAITING]] as const) {
    for (let waiting = Atomics.load(cells, counter); waiting > 0; waiting--) c.sem_post(sem);
  }
}

/** What a wait needs from the handle that waits; made once per handle. */
export interface WaitHost {
  /** The header's cells. */
  readonly cells: Int32Array<ArrayBuffer>;
  /** The semaphore receivers sleep on. */
  readonly data: Deno.PointerObject;
  /** The semaphore senders sleep on. */
  readonly space: Deno.PointerObject;
  /**
   * The other side's index as this handle last saw it: its own head when receiving (the ring is
   * empty while the tail equals it), the head it last read when sending (full while unchanged).
   */
  seen(receiving: boolean): number;
  /**
   * After a failed attempt: judges the peers, and returns the result of one last attempt or
   * `RETRY` to wait on, or throws the end of the stream or a broken pipe. `thorough` when the
   * waiter slept its whole slice (time for the costlier look at zombies).
   */
  giveUp<R>(attempt: () => R | undefined, receiving: boolean, thorough: boolean): R | typeof RETRY;
  /** Throws `BadResource` once the handle closed. */
  readonly assertOpen: () => void;
  /** A wait begins: the handle keeps its mapping until every wait has ended. */
  begin(): void;
  /** A wait ended. */
  end(): void;
}

/**
 * Whether the other side has not moved since `seen`: the value a waiter may sleep on, read after
 * announcing the wait, so that no wake-up is lost.
 */
function unmoved(cells: Int32Array, receiving: boolean, seen: number): boolean {
  return Atomics.load(cells, receiving ? C_TAIL : C_HEAD) === seen;
}

/**
 * Whether a waiter that has announced itself may go to sleep now. First it takes the counts
 * that earlier posts left in the semaphore (they found a waiter awake): whatever they were
 * for happened before and shows in the checks that follow. A close or abort since `wakeAlls`
 * was read (before the last look at the peers) means look again; otherwise sleep unless the
 * other side has moved.
 *
 * Draining here, not after a wake-up, keeps the path from a wake-up to the message short.
 */
function maySleep(
  host: WaitHost,
  sem: Deno.PointerObject,
  wakeAlls: number,
  receiving: boolean,
): boolean {
  while (libc().sem_trywait(sem) === 0) {
    // a count that no one needs any more
  }
  return Atomics.load(host.cells, C_WAKE_ALLS) === wakeAlls &&
    unmoved(host.cells, receiving, host.seen(receiving));
}

/**
 * How long a spin first looks without yielding the CPU: a peer on another CPU answers a hot
 * round trip within it, and a yield (a system call) in the middle of the look delays seeing the
 * answer. Pinned with taskset to two CPUs, this took the async round trip from 2.6 to 1.8 µs
 * and the sync one from about 0.8 to 0.65 µs (bench/fixtures/natural_round_trip.ts,
 * hot_round_trip.ts).
 */
const PURE_SPIN_MS = 0.002;

/**
 * Spins to come with no pure look, because a yield showed that another task wants this CPU.
 * Two processes on one CPU (the kernel often wakes a peer on its waker's CPU) can take turns
 * only when one yields: a pure look there only delays the peer, by its whole length (the
 * round trip went from 7.5 to 11.4 µs). Per process, as the CPU is; spins from then on yield at
 * once, and the pure look is tried again after this many, in case the processes moved apart.
 */
let sharedCpuSpins = 0;
const SHARED_CPU_SPINS = 64;

/**
 * Spins briefly while `blocked()` (the other side's index has not moved, a topic has nothing
 * new): a hot peer answers within microseconds. After a
 * short pure look ({@linkcode PURE_SPIN_MS}) the spin yields the CPU now and then: the kernel
 * often wakes a peer on the waker's CPU, and there it could run only once this spin ended, which
 * tripled the round trip to a sleeping peer. A yield that took long (another task ran) turns
 * the pure look off for a while ({@linkcode sharedCpuSpins}).
 *
 * Given the header's `cells` and the cell where the other side leaves its CPU, the spin does not
 * yield while that CPU is not this one ({@linkcode peerApart}): the peer runs elsewhere, and a
 * yield on a CPU busy with another program hands it over for a whole time slice. Measured with
 * `natural_round_trip.ts 1000 60 2` (two busy processes), taking turns with the spin that always
 * yields: the hot round trip took 3.8-38 µs (1.3-12× faster than the socket) in 9 runs of 15,
 * and 1.7-3.9 ms in 5, where the old spin took 2.1-4.0 ms in 13 runs of 15; with no busy
 * process, no change beyond the noise (12.7-20 µs against 12.7-22 µs; on one CPU, 12-18 µs
 * against 12-20 µs).
 */
export function spinWhile(blocked: () => boolean, cells?: Int32Array, peerCpuCell = 0): void {
  const started = performance.now();
  const until = started + SPIN_MS;
  let pure = PURE_SPIN_MS;
  if (sharedCpuSpins > 0) {
    sharedCpuSpins--;
    pure = 0;
  }
  // Sharing a CPU, a look that found nothing yields at once, as the peer can only run then.
  const every = pure === 0 ? 0 : 63;
  let apart = false;
  for (let tries = 1; blocked(); tries++) {
    if ((tries & every) === 0) {
      const now = performance.now();
      if (now >= until) return; // bounded: SPIN_MS at most
      if (!apart && now - started >= pure) {
        if (cells !== undefined && peerApart(cells, peerCpuCell)) {
          apart = true; // the peer runs elsewhere: spin on without yielding
          continue;
        }
        libc().sched_yield();
        if (performance.now() - now > 0.001) sharedCpuSpins = SHARED_CPU_SPINS;
      }
    }
  }
}

/** Whether a sleep that began at `sliceStarted` lasted its whole `slice`. */
function sleptWholeSlice(sliceStarted: number, slice: number): boolean {
  return sliceStarted > 0 && performance.now() - sliceStarted >= slice * 0.9;
}

/**
 * The spin that begins every wait ({@linkcode spinWhile} on the other side's index), taken by an
 * async wait before its first `await`: the value of `attempt()` when the other side moved
 * meanwhile, `undefined` when the wait goes on ({@linkcode waitAsync}). A hot peer's answer
 * then costs no promise of the wait's own: in the round trip of two async processes, each
 * receive saved the two async frames of the sleep path.
 */
export function spinThenTry<R>(
  host: WaitHost,
  receiving: boolean,
  attempt: () => R | undefined,
): R | undefined {
  const cells = host.cells;
  const seen = host.seen(receiving);
  spinWhile(() => unmoved(cells, receiving, seen), cells, peerCpuCellOf(receiving));
  return unmoved(cells, receiving, seen) ? undefined : attempt();
}

/**
 * Waits, without blocking the event loop, until `attempt` gives a value, after
 * {@linkcode spinThenTry} found none: looks after each turn of the event loop for a while when
 * the last wait was short, then sleeps in slices on the side's semaphore, judging the peers
 * after every look.
 */
export async function waitAsync<R>(
  host: WaitHost,
  receiving: boolean,
  given: WaitOptions,
  what: string,
  attempt: () => R | undefined,
): Promise<R> {
  const options = readWaitOptions(given, what); // read once: a getter may change its answer
  const cells = host.cells;
  // The wait outlasted the spin: it is timed, for the next one's budget.
  const started = performance.now() - SPIN_MS;
  const budget = adaptiveBudget(lastWaitsOf(host)[receiving ? 0 : 1], options.timeout);
  const sem = receiving ? host.data : host.space;
  const counter = receiving ? C_RECEIVERS_WAITING : C_SENDERS_WAITING;
  let sliceStarted = 0;
  let wakeAlls = 0;
  const wake = () => wakeAll(cells, host.data, host.space); // an abort must not wait for the slice
  options.signal?.addEventListener("abort", wake);
  host.begin();
  try {
    if (budget > 0) {
      const seen = host.seen(receiving);
      await spinAcrossTurns(
        () => isOpen(host) && unmoved(cells, receiving, seen),
        budget,
        options.signal,
        cells,
        peerCpuCellOf(receiving),
      );
    }
    return await waitUntil<R>(options, {
      what,
      slice: CHANNEL_SLICE_MS,
      attempt: () => {
        wakeAlls = Atomics.load(cells, C_WAKE_ALLS);
        const result = attempt();
        if (result !== undefined) return result;
        return host.giveUp(attempt, receiving, sleptWholeSlice(sliceStarted, CHANNEL_SLICE_MS));
      },
      sleep: async (ms) => {
        Atomics.add(cells, counter, 1);
        try {
          sliceStarted = performance.now();
          if (maySleep(host, sem, wakeAlls, receiving)) {
            await libc().sem_clockwait_async(sem, CLOCK_MONOTONIC, deadlineIn(ms));
            yieldAfterSend = true;
            refreshCpu();
          }
        } finally {
          // (The ring's buffer may have been transferred away meanwhile: assertOpen says so.)
          if (!cells.buffer.detached) Atomics.sub(cells, counter, 1);
        }
      },
      assertOpen: host.assertOpen,
    });
  } finally {
    lastWaitsOf(host)[receiving ? 0 : 1] = performance.now() - started;
    options.signal?.removeEventListener("abort", wake);
    host.end();
  }
}

/**
 * How `select` sleeps on a channel's receive side, taking nothing (src/select/futex.ts): like a
 * receiver it announces itself in C_RECEIVERS_WAITING, so that senders post the DATA
 * semaphore, and in the semaphore's own waiter count (src/select/sem_word.ts), so that the post
 * wakes its futex word; it takes the counts earlier posts left (as {@linkcode maySleep}) and
 * sleeps on the word while `ready` says no message is published. Before each sleep it judges
 * the peers (after a whole slice, thoroughly), so that the end of the stream or a dead peer
 * comes back as the error `receive()` would throw.
 */
export function receiveSleeper(host: WaitHost, ready: () => true | undefined): FutexSleeper {
  const sem = new SemWord(host.data);
  const leave = () => {
    sem.removeWaiter();
    Atomics.sub(host.cells, C_RECEIVERS_WAITING, 1);
  };
  return {
    begin: host.begin,
    end: host.end,
    enter: () => {
      host.assertOpen();
      Atomics.add(host.cells, C_RECEIVERS_WAITING, 1);
      sem.addWaiter();
      try {
        while (libc().sem_trywait(host.data) === 0) {
          // a count that no one needs any more
        }
        if (ready() || host.giveUp(ready, true, false) !== RETRY) return undefined;
        return { word: host.data, expected: 0 };
      } catch (error) {
        leave(); // the end of the stream or a dead peer: no sleep, so no leave() follows
        throw error;
      }
    },
    leave,
    check: () => {
      host.assertOpen();
      host.giveUp(ready, true, true);
    },
  };
}

/** The header cell where the other side leaves its CPU: a receiver waits for a sender. */
function peerCpuCellOf(receiving: boolean): number {
  return receiving ? C_SENDER_CPU : C_RECEIVER_CPU;
}

/** Whether the handle is still open (the wait loop then says why it is not). */
function isOpen(host: WaitHost): boolean {
  try {
    host.assertOpen();
    return true;
  } catch {
    return false;
  }
}

/** The record of `host`'s last async waits, made on first use. */
function lastWaitsOf(host: WaitHost): [number, number] {
  let record = lastWaits.get(host);
  if (record === undefined) {
    record = [Infinity, Infinity];
    lastWaits.set(host, record);
  }
  return record;
}

/** Waits, blocking this thread, until `attempt` gives a value; see {@linkcode waitAsync}. */
export function waitSync<R>(
  host: WaitHost,
  receiving: boolean,
  options: { timeout?: number },
  what: string,
  attempt: () => R | undefined,
): R {
  // Read once: a getter that said 100 and then NaN made the deadline NaN, a wait without end.
  const { timeout } = readWaitOptions(options, what);
  const cells = host.cells;
  const seen = host.seen(receiving);
  spinWhile(() => unmoved(cells, receiving, seen), cells, peerCpuCellOf(receiving));
  const sem = receiving ? host.data : host.space;
  const counter = receiving ? C_RECEIVERS_WAITING : C_SENDERS_WAITING;
  const deadline = deadlineAfter(timeout);
  let sliceStarted = 0;
  let slice = 0;
  while (true) {
    const wakeAlls = Atomics.load(cells, C_WAKE_ALLS);
    const first = attempt();
    if (first !== undefined) return first;
    const result = host.giveUp(attempt, receiving, sleptWholeSlice(sliceStarted, slice));
    if (result !== RETRY) return result;
    const left = deadline - performance.now();
    if (left <= 0) {
      throw new Deno.errors.TimedOut(`Cannot ${what}: timed out after ${timeout} ms`);
    }
    slice = Math.min(CHANNEL_SLICE_MS, left);
    Atomics.add(cells, counter, 1);
    sliceStarted = performance.now();
    if (maySleep(host, sem, wakeAlls, receiving)) {
      libc().sem_clockwait(sem, CLOCK_MONOTONIC, deadlineIn(slice, true));
      yieldAfterSend = true;
      refreshCpu();
    }
    Atomics.sub(cells, counter, 1);
  }
}

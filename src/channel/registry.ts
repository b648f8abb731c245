/**
 * The participant registry of a channel: which handles are open, with which role, in which
 * process, so that a waiting side can tell whether its peers may still act, have all closed
 * (the end of the stream), or died without closing (a broken pipe). Internal.
 *
 * The registry is 32 slots of two Int32 cells, [pid, state], in the header (src/channel/layout.ts).
 * A slot's state is 0 when free, else the handle's role bits, and CLOSED once it closed.
 *
 * @module
 */

import { processIsDead } from "../_liveness.ts";
import { C_PARTICIPANTS } from "./layout.ts";

/** The slots of the registry: how many handles may be open at once. */
export const SLOTS = 32;
/** Role bits of a slot's state. */
export const SENDS = 1;
export const RECEIVES = 2;
/** Set in a slot's state once its handle closed. */
const CLOSED = 4;

/**
 * What a handle does: peers use it to tell when a channel has ended. A waiting receiver gives up
 * once no handle that may send is open; a waiting sender once no handle that may receive is.
 */
export type ChannelRole = "send" | "receive" | "both";

/** A Map, not an object: a prototype key such as "toString" is no role. */
const ROLES: ReadonlyMap<string, number> = new Map([
  ["send", SENDS],
  ["receive", RECEIVES],
  ["both", SENDS | RECEIVES],
]);

/** The role bits of `role`, or a TypeError naming the argument. */
export function validateRole(role: unknown): number {
  const bits = typeof role === "string" ? ROLES.get(role) : undefined;
  if (bits === undefined) {
    throw new TypeError(
      `Cannot use channel role ${
        typeof role === "string" ? `"${role}"` : `of type ${typeof role}`
      }: use "send", "receive" or "both"`,
    );
  }
  return bits;
}

/** Takes a participant slot for a handle of `role`: [pid, state], so that peers can tell closed from dead. */
export function attach(cells: Int32Array, role: number): number {
  for (let slot = 0; slot < SLOTS; slot++) {
    const state = C_PARTICIPANTS + 2 * slot + 1;
    const current = Atomics.load(cells, state);
    if (
      (current === 0 || current & CLOSED) &&
      Atomics.compareExchange(cells, state, current, role) === current
    ) {
      Atomics.store(cells, C_PARTICIPANTS + 2 * slot, Deno.pid);
      return slot;
    }
  }
  throw new RangeError(`Cannot open the channel: it has ${SLOTS} handles open already`);
}

/** Marks a handle's slot closed, so that peers see it gone rather than dead. */
export function detach(cells: Int32Array, slot: number, role: number): void {
  Atomics.store(cells, C_PARTICIPANTS + 2 * slot + 1, role | CLOSED);
}

/**
 * What a waiting handle's peers of `role` say: "alive" (one may still act), "ended" (all
 * closed), "died" (none alive, one died without closing), or "alone" (none ever came).
 * `thorough` also counts zombies as dead (a system call more per peer).
 */
export type Peers = "alive" | "ended" | "died" | "alone";

/** Looks at the peers of `role` of the handle in slot `self`; see {@linkcode Peers}. */
export function peers(cells: Int32Array, self: number, role: number, thorough: boolean): Peers {
  let died = false;
  let others = false;
  for (let slot = 0; slot < SLOTS; slot++) {
    if (slot === self) continue;
    const state = Atomics.load(cells, C_PARTICIPANTS + 2 * slot + 1);
    if ((state & role) === 0) continue;
    others = true;
    if (state & CLOSED) continue;
    // A pid not yet written (0), or not a pid at all, never reaches kill(): it counts as alive.
    const pid = Atomics.load(cells, C_PARTICIPANTS + 2 * slot);
    if (pid <= 0 || !processIsDead(pid, thorough)) return "alive";
    died = true;
  }
  if (died) return "died";
  return others ? "ended" : "alone";
}

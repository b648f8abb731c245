/**
 * The participant registry of a channel: which handles are open, with which role, in which
 * process and PID namespace, so that a waiting side can tell whether its peers may still act,
 * have all closed (the end of the stream), or died without closing (a broken pipe). Internal.
 *
 * It lives in the header (src/channel/layout.ts):
 *
 * - 32 slots, each one 64-bit word changed only by 64-bit compare-and-swap, so that a handle's
 *   pid, PID-namespace tag and role are always written and read together: the pid in bits 0-31,
 *   the role bits in 32-33, the tag ({@linkcode pidNamespaceTag}) in 34-63; 0 when free. A
 *   handle that closes frees its slot.
 * - LEFT: the roles of every handle that closed. It keeps the record that a sender existed
 *   after the sender closed and its slot was taken again, so that a receiver that attaches
 *   late still sees the end of the stream.
 * - DIED: the roles of handles that died without closing and whose slots were reclaimed.
 * - CREATOR: the pid and tag of the process that created the channel, cleared when its handle
 *   closes. While no peer of a role ever came, a waiter waits as long as the creator, who
 *   arranges for peers to come, lives; once the creator died, the wait ends as for a dead peer.
 *
 * A pid is judged (no such process, or a zombie) only when its tag is this process's own: in
 * another PID namespace (a container sharing /dev/shm) the number names another process or
 * none. A peer of another namespace counts as alive and its slot is never reclaimed; its
 * death is not detected, so a waiter facing it waits until its timeout.
 *
 * @module
 */

import { pidNamespaceTag, processIsDead } from "../_liveness.ts";
import { C_CREATOR_PID, C_CREATOR_TAG, C_DIED, C_LEFT, C_PARTICIPANTS, HEADER } from "./layout.ts";

/** The slots of the registry: how many handles may be open at once. */
export const SLOTS = 32;
/** Role bits. */
export const SENDS = 1;
export const RECEIVES = 2;

const ROLE_MASK = SENDS | RECEIVES;
const LOW = 0xffff_ffffn;

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

/**
 * What a waiting handle's peers of one role say: "alive" (one may still act), "ended" (all that
 * came closed), "died" (none alive, one died without closing, or none came and the creator
 * died), or "alone" (none came yet, and the creator may still bring one).
 */
export type Peers = "alive" | "ended" | "died" | "alone";

/** The 64-bit slot word of a handle of `role` in process `pid` of namespace `tag`. */
function pack(pid: number, tag: number, role: number): bigint {
  return (BigInt(((tag << 2) | role) >>> 0) << 32n) | BigInt(pid >>> 0);
}

/**
 * Whether the process `pid` of namespace `tag` is gone, judged only within this process's own
 * namespace (a known tag, equal to ours); elsewhere it counts as alive. A pid not yet written
 * (0) never reaches kill().
 */
function gone(pid: number, tag: number, thorough: boolean): boolean {
  const ours = pidNamespaceTag();
  return ours !== 0 && tag === ours && pid > 0 && processIsDead(pid, thorough);
}

/** The registry of a mapped header. */
export class Registry {
  readonly #cells: Int32Array;
  readonly #slots: BigInt64Array;
  readonly #kind: string;
  /** The creator's pid (low half) and PID-namespace tag (high half), as one 64-bit word. */
  readonly #creator: BigInt64Array;

  /**
   * @param header The header page of a mapped ring (8-aligned).
   * @param kind What the ring is, for messages: "channel", "topic".
   */
  constructor(header: ArrayBuffer, kind = "channel") {
    this.#kind = kind;
    this.#cells = new Int32Array(header, 0, HEADER / 4);
    this.#slots = new BigInt64Array(header, C_PARTICIPANTS * 4, SLOTS);
    this.#creator = new BigInt64Array(header, C_CREATOR_PID * 4, 1); // byte 216: 8-aligned
  }

  /** Records this process as the channel's creator (before the header is published). */
  recordCreator(): void {
    this.#cells[C_CREATOR_PID] = Deno.pid;
    this.#cells[C_CREATOR_TAG] = pidNamespaceTag();
  }

  /**
   * Takes a slot for a handle of `role`: a free one, else one whose process died without
   * closing (remembered in DIED). Returns the slot.
   *
   * @throws {RangeError} when 32 handles are open, alive or in another PID namespace.
   */
  attach(role: number): number {
    const mine = pack(Deno.pid, pidNamespaceTag(), role);
    const slots = this.#slots;
    for (let slot = 0; slot < SLOTS; slot++) {
      if (
        Atomics.load(slots, slot) === 0n && Atomics.compareExchange(slots, slot, 0n, mine) === 0n
      ) {
        return slot;
      }
    }
    for (let slot = 0; slot < SLOTS; slot++) {
      const word = Atomics.load(slots, slot);
      const high = Number(word >> 32n);
      if (
        word !== 0n && gone(Number(word & LOW), high >>> 2, true) &&
        Atomics.compareExchange(slots, slot, word, mine) === word
      ) {
        Atomics.or(this.#cells, C_DIED, high & ROLE_MASK);
        return slot;
      }
    }
    throw new RangeError(
      `Cannot open the ${this.#kind}: it has ${SLOTS} handles open already, in live processes`,
    );
  }

  /**
   * Gives back the slot of a handle of `role` that closes, so that peers see it gone rather
   * than dead; the creator's handle also clears the creator's record.
   */
  detach(slot: number, role: number, creator: boolean): void {
    Atomics.or(this.#cells, C_LEFT, role); // first: a peer never finds neither slot nor record
    Atomics.compareExchange(this.#slots, slot, pack(Deno.pid, pidNamespaceTag(), role), 0n);
    if (creator && Atomics.compareExchange(this.#cells, C_CREATOR_PID, Deno.pid, 0) === Deno.pid) {
      Atomics.store(this.#cells, C_CREATOR_TAG, 0);
    }
  }

  /** Whether slot `slot` holds a handle of `role` now. */
  holds(slot: number, role: number): boolean {
    return (Atomics.load(this.#cells, C_PARTICIPANTS + 2 * slot + 1) & role) !== 0;
  }

  /**
   * Frees slot `slot` when it holds a handle of `role` whose process died without closing,
   * remembered in DIED as `attach` does; returns whether it did.
   */
  reclaim(slot: number, role: number, thorough: boolean): boolean {
    const word = Atomics.load(this.#slots, slot);
    const high = Number(word >> 32n);
    if ((high & role) === 0 || !gone(Number(word & LOW), high >>> 2, thorough)) return false;
    if (Atomics.compareExchange(this.#slots, slot, word, 0n) !== word) return false;
    Atomics.or(this.#cells, C_DIED, high & ROLE_MASK);
    return true;
  }

  /**
   * Claims a channel that was abandoned: its creator died without closing (judged in this PID
   * namespace only, zombies counting as dead) and no handle of `role` is alive. The claim is a
   * 64-bit compare-and-swap of the creator's record (pid and tag) to this process's, so that of
   * many processes that find it abandoned at once exactly one gets `true`, and the others then
   * find a live creator. A creator that closed (record 0), lives, or belongs to another
   * namespace gives `false`. Used to take over the name of a killed service (src/service/).
   */
  claimAbandoned(role: number): boolean {
    const word = Atomics.load(this.#creator, 0);
    const pid = Number(word & LOW);
    if (pid === 0 || !gone(pid, Number(word >> 32n), true)) return false;
    if (this.peers(-1, role, true) === "alive") return false;
    const mine = (BigInt(pidNamespaceTag()) << 32n) | BigInt(Deno.pid);
    return Atomics.compareExchange(this.#creator, 0, word, mine) === word;
  }

  /**
   * Looks at the peers of `role` of the handle in slot `self`; see {@linkcode Peers}.
   * `thorough` also counts zombies as dead (a system call more per peer).
   */
  peers(self: number, role: number, thorough: boolean): Peers {
    const cells = this.#cells;
    let died = false;
    for (let slot = 0; slot < SLOTS; slot++) {
      // The role bits sit in the high half: look at it alone first, and read the whole word,
      // with its pid and tag, only for a slot of the role.
      if (slot === self || (Atomics.load(cells, C_PARTICIPANTS + 2 * slot + 1) & role) === 0) {
        continue;
      }
      const word = Atomics.load(this.#slots, slot);
      const high = Number(word >> 32n);
      if ((high & role) === 0) continue; // it changed in between
      if (!gone(Number(word & LOW), high >>> 2, thorough)) return "alive";
      died = true;
    }
    if (died || (Atomics.load(cells, C_DIED) & role) !== 0) return "died";
    if ((Atomics.load(cells, C_LEFT) & role) !== 0) return "ended";
    const creator = Atomics.load(cells, C_CREATOR_PID);
    return gone(creator, Atomics.load(cells, C_CREATOR_TAG), thorough) ? "died" : "alone";
  }
}

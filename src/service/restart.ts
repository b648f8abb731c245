/**
 * A server's request ring, made under a name that a killed server may have left behind.
 * Internal.
 *
 * A server killed with SIGKILL never removes its name. A new server of the name takes it over
 * when the old one is dead: its creator's process is gone (pid and PID-namespace tag, as the
 * channel registry judges them) and no receiving handle of the ring is alive. Of several
 * restarters at once exactly one claims the old ring (a compare-and-swap in its header:
 * src/channel/registry.ts `claimAbandoned`), removes the name and creates the ring anew with
 * O_EXCL; the others get `AlreadyExists`, as does anyone while a live server holds the name.
 *
 * @module
 */

import { Channel, claimAbandoned } from "../channel/channel.ts";
import { RECEIVES } from "../channel/registry.ts";
import { removeName } from "./names.ts";

/** What the request ring is made of (the server's options, checked). */
export interface RequestRingOptions {
  /** A name, `null` for a generated one, `undefined` for none. */
  name: string | null | undefined;
  mode: number | undefined;
  capacity: number | undefined;
}

/**
 * Creates a server's request ring; under a name a dead server left, takes the name over.
 *
 * @throws {Deno.errors.AlreadyExists} when a live server, another restarter, or anything that
 * is not an abandoned service has the name.
 */
export function createRequestRing(options: RequestRingOptions): Channel<Uint8Array> {
  const create = () =>
    Channel.create({
      name: options.name,
      mode: options.mode,
      capacity: options.capacity,
      multi: true,
      role: "receive",
    });
  try {
    return create();
  } catch (error) {
    if (
      !(error instanceof Deno.errors.AlreadyExists) || typeof options.name !== "string" ||
      !takeOver(options.name)
    ) throw error;
  }
  // O_EXCL again: a process that created the name in between (a restarter that found it
  // gone, not one that claimed it) wins, and this create is AlreadyExists.
  return create();
}

/**
 * Removes `name` when it is a service whose server died, and this process claimed it. Returns
 * whether the name is free to create now.
 */
function takeOver(name: string): boolean {
  let old: Channel<Uint8Array>;
  try {
    old = Channel.open(name, { role: "send" });
  } catch (error) {
    // Gone in between: free. Anything else (no access, not a channel, another codec, every
    // slot taken by live clients) is not ours to take.
    return error instanceof Deno.errors.NotFound;
  }
  try {
    // Only a service's ring (multi), and only one abandoned: the claim makes this process its
    // creator in the header, so another restarter finds a live creator and backs off. Nobody
    // else removes a name that a live server or claimer holds, so the name still is this ring.
    if (!old.multi || !claimAbandoned(old, RECEIVES)) return false;
    removeName(name);
    return true;
  } finally {
    old.close();
  }
}

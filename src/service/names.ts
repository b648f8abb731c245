/**
 * The names of clients' response rings. Internal.
 *
 * @module
 */

import { SharedMemory } from "../shm.ts";

/**
 * Every client's response ring is named with this prefix, its pid and a random part; a server
 * opens only names that start with it, so a hello can never make it open anything else.
 */
export const RESPONSE_PREFIX = "/ipc-response-";

/** A fresh name for a client's response ring. */
export function responseName(): string {
  const random = crypto.getRandomValues(new Uint32Array(2));
  return `${RESPONSE_PREFIX}${Deno.pid}-${random[0]!.toString(36)}${random[1]!.toString(36)}`;
}

/**
 * Removes a name; one already gone is no error. For a response ring's name once the server holds
 * the ring open: both sides call it, the server as soon as it opened the ring (so that a client
 * killed before it saw the welcome leaves no name behind) and the client after the welcome;
 * whichever comes second finds it gone. And for a killed server's name (restart.ts).
 */
export function removeName(name: string): void {
  try {
    SharedMemory.unlink(name);
  } catch (error) {
    if (!(error instanceof Deno.errors.NotFound)) throw error;
  }
}

/**
 * The names of clients' response rings. Internal.
 *
 * @module
 */

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

/**
 * Generated names, for objects created with `null` as their name (posix_ipc's `name=None`):
 * the creator makes a name nobody else can guess or clash with, and hands it on by message.
 * Internal.
 *
 * A generated name is {@linkcode GENERATED_NAME_PREFIX} then 128 random bits from
 * `crypto.getRandomValues`, in hex. The object is created with O_EXCL as any other, so a clash
 * (a 2^-128 chance, or a name someone made on purpose) is an `AlreadyExists`, and creation is
 * retried with a fresh name, at most {@linkcode GENERATED_NAME_ATTEMPTS} times.
 *
 * @module
 */

import { describe, validateName } from "./_validate.ts";

/** What every generated name starts with. */
export const GENERATED_NAME_PREFIX = "/posix-ipc-";

/** The random bytes of a generated name: 128 bits. */
const RANDOM_BYTES = 16;

/** How many fresh names a create tries before it gives up with `AlreadyExists`. */
export const GENERATED_NAME_ATTEMPTS = 8;

/** A fresh name: {@linkcode GENERATED_NAME_PREFIX} and 32 random hex digits. */
export function generatedName(): string {
  const random = crypto.getRandomValues(new Uint8Array(RANDOM_BYTES));
  return GENERATED_NAME_PREFIX + Array.from(random, (byte) => byte.toString(16).padStart(2, "0"))
    .join("");
}

/**
 * Checks the name given to a `create`: a valid name, or `null` for a generated one.
 *
 * @param name The name given.
 * @param kind The kind of object, for messages: "shared memory".
 * @param maxBytes The longest name after the "/", in bytes.
 * @returns The name, or `null`.
 */
export function validateNameOrNull(name: unknown, kind: string, maxBytes?: number): string | null {
  if (name === null) return null;
  if (typeof name !== "string") {
    throw new TypeError(
      `Cannot use ${kind} name ${describe(name)}: it must be a string, or null to generate one`,
    );
  }
  return validateName(name, kind, maxBytes);
}

/**
 * Creates an object under `name`, or under a generated name when `name` is `null`: a fresh one
 * per attempt, until `create` does not throw `AlreadyExists` or
 * {@linkcode GENERATED_NAME_ATTEMPTS} names were tried.
 *
 * @param name The name given, already checked, or `null`.
 * @param create Creates the object exclusively under the name it is given.
 * @param fresh Where names come from (tests give their own).
 * @returns What `create` returned.
 */
export function createUnderName<H>(
  name: string | null,
  create: (name: string) => H,
  fresh: () => string = generatedName,
): H {
  if (name !== null) return create(name);
  for (let attempt = 1;; attempt++) {
    try {
      return create(fresh());
    } catch (error) {
      if (!(error instanceof Deno.errors.AlreadyExists) || attempt >= GENERATED_NAME_ATTEMPTS) {
        throw error;
      }
    }
  }
}

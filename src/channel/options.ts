/**
 * The options of the `Channel` API: their types, and the checks and defaults of the values they
 * carry (boolean flags, the codec, `view`). `validateCodec` and `defaultCodec` serve the other
 * objects that carry values through a codec too (src/topic/, src/map/, src/service/). Internal:
 * the public entry is src/channel/mod.ts, which re-exports the option types.
 *
 * @module
 */

import type { WaitOptions } from "../_wait.ts";
import { type Codec, codecs } from "../codec.ts";
import type { OpenOrCreateWaitOptions } from "../_open_or_create.ts";
import { optionsObject } from "../_validate.ts";
import { CODEC_NAME_MAX } from "./layout.ts";
import type { ChannelRole } from "./registry.ts";

const encoder = new TextEncoder();

/** Options of {@linkcode Channel.create}. */
export interface CreateChannelOptions<T> {
  /** The ring's size in bytes: a power of two from 4096 to 1 GiB. Default 1 MiB. */
  capacity?: number;
  /**
   * A name for unrelated processes to `open` (as for `SharedMemory`), or `null` to generate a
   * unique one (read it from `name` and send it). Default: anonymous.
   */
  name?: string | null;
  /** Permission bits of a named channel. Default 0o600. */
  mode?: number;
  /** Keep a named channel when the creator closes it. Default `false`. */
  persist?: boolean;
  /** How values become bytes. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /**
   * Several senders and several receivers, in any processes: each side takes a robust lock
   * around its part. Default `false`: one sending process and one receiving process, the fast
   * lane.
   */
  multi?: boolean;
  /** What the creator's handle does. Default `"both"`. */
  role?: ChannelRole;
}

/** Options of {@linkcode Channel.openOrCreate}. */
export interface OpenOrCreateChannelOptions<T>
  extends Omit<CreateChannelOptions<T>, "name">, OpenOrCreateWaitOptions {}

/** Options of {@linkcode Channel.open} and {@linkcode Channel.fromFd}. */
export interface OpenChannelOptions<T> {
  /** The codec; it must be the creator's. Default `codecs.bytes`. */
  codec?: Codec<T>;
  /** What this handle does. Default `"both"`. */
  role?: ChannelRole;
}

/** Options of the receive methods. */
export interface ReceiveOptions extends WaitOptions {
  /**
   * Zero-copy, for the bytes codec: a view into the ring itself, valid only until the next
   * receive or close (after which it may be overwritten). Default `false`: a copy that never
   * changes. A copy of up to 8 KiB is a part of a 256 KiB slab shared with the messages
   * received around it (its `buffer` is the slab; a slab is never reused), so holding it keeps
   * at most 256 KiB alive; `copy.slice()` keeps only its own bytes. A larger copy has an
   * ArrayBuffer of its own. To allocate nothing per message, use `receiveInto(buffer)`.
   */
  view?: boolean;
}

/** A boolean option, or `false` when left out; anything else is a TypeError naming it. */
export function validateFlag(value: unknown, name: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== "boolean") {
    throw new TypeError(
      `Cannot create a channel: ${name} must be true or false, not ${typeof value}`,
    );
  }
  return value;
}

/**
 * Checks a codec before anything is created: an object with `encode` and `decode` functions and
 * a name of 1 to 31 UTF-8 bytes without NUL. The header stores the name whole, so two codecs
 * whose names differ are never taken for one another. Returns a built-in codec as it is, and
 * any other as a frozen copy of what was checked (its name, and its functions called on it): a
 * getter read again could answer an unchecked name.
 */
export function validateCodec<T>(codec: unknown): Codec<T> {
  if (isBuiltIn(codec)) return codec as Codec<T>;
  if (typeof codec !== "object" || codec === null) throw notACodec();
  // Each member read once: the codec used is what was checked, whatever its getters say later.
  const { name, encode, decode } = codec as Partial<Codec<T>>;
  if (typeof encode !== "function" || typeof decode !== "function" || typeof name !== "string") {
    throw notACodec();
  }
  const bytes = encoder.encode(name).length;
  if (bytes === 0 || bytes > CODEC_NAME_MAX || name.includes("\0")) {
    throw new RangeError(
      `Cannot use codec name "${name}": it must be 1 to ${CODEC_NAME_MAX} UTF-8 bytes, ` +
        "without NUL",
    );
  }
  return Object.freeze({
    name,
    encode: (value: T) => encode.call(codec, value),
    decode: (bytes: Uint8Array) => decode.call(codec, bytes),
  });
}

/** Whether `codec` is one of {@linkcode codecs}: used as it is (the fast paths know them). */
function isBuiltIn(codec: unknown): boolean {
  return Object.values(codecs).includes(codec as Codec<unknown>);
}

function notACodec(): TypeError {
  return new TypeError(
    "Cannot use the codec: give an object with a name and encode and decode functions",
  );
}

/** The codec of a channel (or topic, or map) made without one: `codecs.bytes`. */
export function defaultCodec<T>(): Codec<T> {
  return codecs.bytes as unknown as Codec<T>;
}

/** The `view` flag of receive options, after checking that the options are an object. */
export function viewOption(options: { view?: boolean }): boolean {
  return optionsObject(options, "receive options").view === true;
}

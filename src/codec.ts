/**
 * Codecs turn a channel's values into bytes and back: bytes as they are, UTF-8 text, JSON, and
 * structured clone (V8's serializer, as `node:v8` exposes it: Maps, Dates, typed arrays, cycles).
 *
 * @module
 */

import { deserialize, serialize } from "node:v8";
import { describe } from "../ffi/describe.ts";

/**
 * How values become bytes and back. A `Channel` gives `decode` a copy of the message that
 * nothing else writes to, so a value may keep `bytes` or lay views over it (V8's deserializer
 * does); only the built-in text and JSON codecs, whose values never point into their input,
 * decode from the ring itself.
 */
export interface Codec<T> {
  /** A short name, stored in the channel so that both sides can check they agree. */
  readonly name: string;
  /** The value's bytes. */
  encode(value: T): Uint8Array;
  /** The value of the bytes; throws on bytes this codec did not make. */
  decode(bytes: Uint8Array): T;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder("utf-8", { fatal: true });

/** `bytes`, known to be a Uint8Array, or a TypeError naming the codec. */
function input(bytes: unknown, codec: string): Uint8Array {
  if (bytes instanceof Uint8Array) return bytes;
  throw new TypeError(
    `Cannot decode ${describe(bytes)} with the ${codec} codec: it must be a Uint8Array`,
  );
}

/** V8's serializer, its untyped "could not be cloned" Error as the DataCloneError of the web. */
function structuredEncode(value: unknown): Uint8Array {
  try {
    return new Uint8Array(serialize(value));
  } catch (error) {
    const why = error instanceof Error ? error.message : describe(error);
    if (!/could not be cloned/.test(why)) throw error; // a getter's own error, say
    throw new DOMException(
      `Cannot send ${describe(value)} with the structured codec: ${why} ` +
        "(functions, symbols, class instances' methods and host objects have no structured clone)",
      "DataCloneError",
    );
  }
}

/** V8's deserializer, its untyped Error on bytes it did not make as a TypeError. */
function structuredDecode(bytes: unknown): unknown {
  const checked = input(bytes, "structured");
  try {
    return deserialize(checked);
  } catch (error) {
    throw new TypeError(
      "Cannot decode with the structured codec: the bytes are no structured clone " +
        `(${error instanceof Error ? error.message : describe(error)})`,
      { cause: error },
    );
  }
}

/**
 * The codecs that come with the library. Each `decode` throws a TypeError for anything but a
 * Uint8Array, and for bytes its codec did not make (json: the SyntaxError of `JSON.parse`);
 * `structured.encode` throws a `DataCloneError` (a `DOMException`, as `structuredClone` does)
 * for a value without a structured clone, such as a function.
 *
 * @example
 * ```ts
 * import { codecs } from "@posix/ipc/channel";
 *
 * const bytes = codecs.structured.encode(new Map([["a", 1]]));
 * console.log(codecs.structured.decode(bytes)); // Map(1) { "a" => 1 }
 * ```
 */
export const codecs: {
  /** Bytes as they are; the receiver gets a copy it owns. */
  readonly bytes: Codec<Uint8Array>;
  /** Strings as UTF-8. */
  readonly text: Codec<string>;
  /** Any JSON value. */
  readonly json: Codec<unknown>;
  /** Any structured-cloneable value, through V8's serializer (`node:v8`). */
  readonly structured: Codec<unknown>;
} = {
  bytes: {
    name: "bytes",
    encode(value) {
      if (!(value instanceof Uint8Array)) {
        throw new TypeError(
          `Cannot send ${describe(value)} with the bytes codec: give a Uint8Array`,
        );
      }
      return value;
    },
    decode: (bytes) => input(bytes, "bytes").slice(),
  },
  text: {
    name: "text",
    encode(value) {
      if (typeof value !== "string") {
        throw new TypeError(`Cannot send ${describe(value)} with the text codec: give a string`);
      }
      return encoder.encode(value);
    },
    decode: (bytes) => decoder.decode(input(bytes, "text")),
  },
  json: {
    name: "json",
    encode(value) {
      const text = JSON.stringify(value);
      if (text === undefined) {
        throw new TypeError(
          `Cannot send ${describe(value)} with the json codec: it has no JSON form`,
        );
      }
      return encoder.encode(text);
    },
    decode: (bytes) => JSON.parse(decoder.decode(input(bytes, "json"))),
  },
  structured: {
    name: "structured",
    encode: structuredEncode,
    decode: structuredDecode,
  },
};

/**
 * The frames of a service's two kinds of channel (src/service/). Internal.
 *
 * The request channel (many clients send, the server receives) carries
 * `[kind u8, 0, 0, 0][client u32][request u32][payload]`; each client's response channel (the
 * server sends, the client receives) carries `[kind u8, 0, 0, 0][request u32][payload]`. Integers
 * are little-endian; the payload is the user's codec's bytes, or, for HELLO, the response
 * channel's name and the codec's name as UTF-8, and for ERROR, JSON (src/service/remote_error.ts). Every frame read is
 * checked: a frame too short or of an unknown kind is dropped, never trusted.
 *
 * @module
 */

import { type Codec, codecs } from "../codec.ts";

/**
 * Request channel: a client introduces itself; the payload is its response channel's name and
 * its codec's name, NUL between them (neither may hold a NUL).
 */
export const HELLO = 1;
/** Request channel: a request; the payload is the value. */
export const REQUEST = 2;
/** Request channel: the client gave up on a request (timeout, abort, or it stopped reading). */
export const CANCEL = 3;
/** Request channel: the client closed. */
export const BYE = 4;
/**
 * Request channel: the client took parts of a streamed answer; `request` is the stream's and the
 * payload a u32: how many more parts the server may send.
 */
export const CREDIT = 5;

/**
 * How many parts of a streamed answer the server sends ahead of what the client's reader took:
 * the most a slow reader makes its client hold. The client grants more as its reader takes them,
 * half a window at a time.
 */
export const STREAM_WINDOW = 32;

/** Response channel: the server took the client; `request` holds the client's id. */
export const WELCOME = 1;
/** Response channel: the single answer to a request. */
export const VALUE = 2;
/** Response channel: one part of a streamed answer. */
export const PART = 3;
/** Response channel: a streamed answer is complete. */
export const END = 4;
/**
 * Response channel: the handler threw; the payload says what (remote_error.ts). With request 0,
 * in answer to a HELLO: the server refused the client (its codec is not the server's).
 */
export const ERROR = 5;

/** Bytes before the payload on the request channel. */
export const REQUEST_HEADER = 12;
/** Bytes before the payload on a response channel. */
export const RESPONSE_HEADER = 8;

const EMPTY = new Uint8Array(0);

/** The payload of a CREDIT frame: `parts`, as a u32. */
export function creditPayload(parts: number): Uint8Array {
  const payload = new Uint8Array(4);
  writeU32(payload, 0, parts);
  return payload;
}

/** Writes `value` as a little-endian u32 at `at` of `bytes`. */
function writeU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/** The largest frame built in the reused buffer: larger ones are rare and cost their copy. */
const SCRATCH_MAX = 64 * 1024;

/**
 * Builds frames in one reused buffer: a frame of more than 64 bytes in a fresh Uint8Array costs
 * about half a microsecond (V8 gives it an ArrayBuffer of its own, src/channel/slab.ts), more
 * than the round trip's copies. A frame is valid until the next one is built: send it with a
 * `trySend` at once (which copies it into the ring), or `slice()` it for a send that waits.
 */
export class FrameWriter {
  #scratch = new Uint8Array(4096);

  /** Room for `size` bytes, the frame's kind byte set and its padding zero. */
  #frame(size: number, kind: number): Uint8Array {
    if (size > this.#scratch.length && size <= SCRATCH_MAX) {
      this.#scratch = new Uint8Array(2 ** Math.ceil(Math.log2(size)));
    }
    // A larger frame gets a buffer of its own: the scratch never holds on to a huge one.
    const frame = size > SCRATCH_MAX ? new Uint8Array(size) : this.#scratch.subarray(0, size);
    frame[0] = kind;
    frame[1] = frame[2] = frame[3] = 0;
    return frame;
  }

  /** A frame of the request channel (valid until the next frame). */
  request(kind: number, client: number, request: number, payload: Uint8Array = EMPTY): Uint8Array {
    const frame = this.#frame(REQUEST_HEADER + payload.length, kind);
    writeU32(frame, 4, client);
    writeU32(frame, 8, request);
    frame.set(payload, REQUEST_HEADER);
    return frame;
  }

  /** A frame of a response channel (valid until the next frame). */
  response(kind: number, request: number, payload: Uint8Array = EMPTY): Uint8Array {
    const frame = this.#frame(RESPONSE_HEADER + payload.length, kind);
    writeU32(frame, 4, request);
    frame.set(payload, RESPONSE_HEADER);
    return frame;
  }
}

const rare = new FrameWriter();

/** A frame of the request channel in a buffer of its own (for a send that may wait). */
export function requestFrame(
  kind: number,
  client: number,
  request: number,
  payload: Uint8Array = EMPTY,
): Uint8Array {
  return rare.request(kind, client, request, payload).slice();
}

/** A frame of a response channel in a buffer of its own (for a send that may wait). */
export function responseFrame(
  kind: number,
  request: number,
  payload: Uint8Array = EMPTY,
): Uint8Array {
  return rare.response(kind, request, payload).slice();
}

/** A request-channel frame, read. */
export interface RequestFrame {
  kind: number;
  client: number;
  request: number;
  payload: Uint8Array;
}

/** A response-channel frame, read. */
export interface ResponseFrame {
  kind: number;
  request: number;
  payload: Uint8Array;
}

/** The u32 at `at` of `bytes` (little-endian); the caller checks that it is there. */
export function u32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | bytes[at + 1]! << 8 | bytes[at + 2]! << 16 | bytes[at + 3]! << 24) >>> 0;
}

/** Reads a request-channel frame, or `undefined` for one too short or of an unknown kind. */
export function readRequestFrame(bytes: Uint8Array): RequestFrame | undefined {
  if (bytes.length < REQUEST_HEADER || bytes[0]! < HELLO || bytes[0]! > CREDIT) {
    return undefined;
  }
  return {
    kind: bytes[0]!,
    client: u32(bytes, 4),
    request: u32(bytes, 8),
    payload: bytes.subarray(REQUEST_HEADER),
  };
}

/** Reads a response-channel frame, or `undefined` for one too short or of an unknown kind. */
export function readResponseFrame(bytes: Uint8Array): ResponseFrame | undefined {
  if (bytes.length < RESPONSE_HEADER || bytes[0]! < WELCOME || bytes[0]! > ERROR) return undefined;
  return { kind: bytes[0]!, request: u32(bytes, 4), payload: bytes.subarray(RESPONSE_HEADER) };
}

/**
 * The value of a frame's payload. The payload is already a copy that only this frame shares (a
 * channel's copying receive), so the bytes codec takes it as it is instead of copying it again;
 * every other codec decodes it.
 */
export function decodePayload<T>(codec: Codec<T>, payload: Uint8Array): T {
  return codec === (codecs.bytes as unknown) ? payload as T : codec.decode(payload);
}

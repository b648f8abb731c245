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
  new DataView(payload.buffer).setUint32(0, parts, true);
  return payload;
}

/** A frame of the request channel. */
export function requestFrame(
  kind: number,
  client: number,
  request: number,
  payload: Uint8Array = EMPTY,
): Uint8Array {
  const frame = new Uint8Array(REQUEST_HEADER + payload.length);
  const view = new DataView(frame.buffer);
  frame[0] = kind;
  view.setUint32(4, client, true);
  view.setUint32(8, request, true);
  frame.set(payload, REQUEST_HEADER);
  return frame;
}

/** A frame of a response channel. */
export function responseFrame(
  kind: number,
  request: number,
  payload: Uint8Array = EMPTY,
): Uint8Array {
  const frame = new Uint8Array(RESPONSE_HEADER + payload.length);
  frame[0] = kind;
  new DataView(frame.buffer).setUint32(4, request, true);
  frame.set(payload, RESPONSE_HEADER);
  return frame;
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
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getUint32(at, true);
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
